"""Production settings: every secret from the environment, no defaults.

Passes `manage.py check --deploy`.
"""

from .base import *  # noqa: F403
from .base import LOGGING, database_from_env, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
PAYMENT_WEBHOOK_SECRET = env("PAYMENT_WEBHOOK_SECRET")
# Fernet keys for linked exchange credentials, newest first, comma-separated.
LINKED_CREDENTIAL_KEYS = env.list("LINKED_CREDENTIAL_KEYS")
DATABASES = {"default": database_from_env(env("DATABASE_URL"))}

# No SECURE_PROXY_SSL_HEADER: uvicorn already takes the scheme from X-Forwarded-Proto, and
# only from the proxies in FORWARDED_ALLOW_IPS; Django reading the header itself would
# believe any client that sends it.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")

# One JSON object per log line (portal.logs), unless LOG_FORMAT=plain.
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING["handlers"]["console"]["formatter"] = "json" if LOG_FORMAT == "json" else "plain"
LOGGING["loggers"]["portal.access"]["level"] = env(
    "ACCESS_LOG_LEVEL", default="INFO" if LOG_FORMAT == "json" else "WARNING"
)
# /metrics: no network is trusted by default here (a proxy on the same host would make
# every client look local); set METRICS_BEARER_TOKEN for the scraper, or list its network.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
