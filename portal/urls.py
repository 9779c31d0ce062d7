"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

from portal.views import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("", include("accounts.urls")),
]
