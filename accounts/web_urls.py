"""The accounts app's browser pages (mounted at the site root by portal.urls).

The accounts overview (`account_list`) and the reports pages are trading's
(trading.web_urls): they show trading's figures.
"""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import web_views as views

password_reset_urls = [
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            template_name="registration/password_reset_form.html",
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/verify/", views.login_verify_view, name="login_verify"),
    path("logout/", views.logout_view, name="logout"),
    *password_reset_urls,
    path("kyb-pending/", views.kyb_pending_view, name="kyb_pending"),
    path("accounts/switch/", views.account_switch_view, name="account_switch"),
    path("deposits/", views.deposit_list_view, name="deposit_list"),
    path("deposits/<str:deposit_id>/", views.deposit_detail_view, name="deposit_detail"),
    path("withdrawals/", views.withdrawal_list_view, name="withdrawal_list"),
    path(
        "withdrawals/<str:withdrawal_id>/cancel/",
        views.withdrawal_cancel_view,
        name="withdrawal_cancel",
    ),
    path("transactions/", views.transaction_list_view, name="transaction_list"),
    path("notifications/", views.notification_list_view, name="notification_list"),
    path("notifications/read/", views.notifications_read_view, name="notifications_read"),
    path("api-keys/", views.api_key_list_view, name="api_key_list"),
    path("security/", views.security_view, name="security"),
    path("security/two-factor/start/", views.totp_start_view, name="totp_start"),
    path("security/two-factor/confirm/", views.totp_confirm_view, name="totp_confirm"),
    path("security/two-factor/disable/", views.totp_disable_view, name="totp_disable"),
]
