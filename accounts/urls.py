from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path(
        "payments/webhooks/<slug:provider>/",
        views.payment_webhook,
        name="payment-webhook",
    ),
]
