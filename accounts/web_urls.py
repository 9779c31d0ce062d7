"""The accounts app's browser pages (mounted at the site root by portal.urls)."""

urlpatterns: list = []
