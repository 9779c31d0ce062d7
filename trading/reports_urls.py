"""The reports endpoints under /v1/intelligence/ (mounted by portal.api.urls)."""

urlpatterns: list = []
