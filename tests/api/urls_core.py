"""A test URLconf: the API's own URLs plus small views that exercise the core."""

from django.urls import include, path

from tests.api import core_views

urlpatterns = [
    path("v1/test/ping", core_views.PingApi.as_view()),
    path("v1/test/orders", core_views.EchoApi.as_view()),
    path("v1/test/boom", core_views.BoomApi.as_view()),
    path("v1/test/refused", core_views.RefusedApi.as_view()),
    path("v1/", include("portal.api.urls")),
]
