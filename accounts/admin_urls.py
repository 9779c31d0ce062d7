"""The ops console's URLs (mounted at /admin/ by portal.urls).

Loaded with the root URLconf, when every app's admin module has registered its
ModelAdmins, so `ops_admin_site()` wraps them all in the audit mixin.
"""

from accounts.admin_site import ops_admin_site

urlpatterns, app_name, _namespace = ops_admin_site().urls
