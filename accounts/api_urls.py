"""The accounts app's /v1/intelligence/ endpoints (mounted by portal.api.urls)."""

urlpatterns: list = []
