"""Settings for `make test`: real PostgreSQL and real Redis.

DATABASE_URL defaults to the machine's PostgreSQL (pytest-django creates and
drops its own test database); REDIS_URL to the machine's Redis, in a database
and key prefix of its own so tests never touch a developer's data.
"""

import os

from .base import *  # noqa: F403
from .base import CHANNEL_LAYERS, database_from_env, env

SECRET_KEY = "test-only-secret-key-not-for-production-use-0123456789"
PAYMENT_WEBHOOK_SECRET = "whsec_test_only"
# Test-only keys (newest first; published, refused by `check --deploy`).
LINKED_CREDENTIAL_KEYS = [
    "yujalpDL2RbTJ7SInjFYmiBZKIMnaXDJ95jxwgYt6X0=",
    "QCOkrOJbFl10yPFfkkcfsCkb8HGKleMiU3hmYPQ1DlU=",
]
DEBUG = False

# Unpooled: pytest-django wraps each test in a transaction on one connection.
DATABASES = {"default": database_from_env("postgres://postgres@127.0.0.1:5432/portal", pool=False)}

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/15")
# One prefix per test process so parallel runs cannot see each other's keys (a server
# a test starts in a subprocess is given its parent's prefix through the environment).
KEY_PREFIX = env("REDIS_KEY_PREFIX", default=f"portal-test-{os.getpid()}")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": KEY_PREFIX,
    }
}
CHANNEL_LAYERS["default"]["CONFIG"] = {"hosts": [REDIS_URL], "prefix": f"{KEY_PREFIX}:asgi"}
CELERY_BROKER_URL = REDIS_URL
# Tasks run in the calling process, except in the processes the fault harness
# (tests/faults.py) starts: real workers and beat, with a broker.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = env.path("MEDIA_ROOT", default=f"/tmp/portal-test-media-{os.getpid()}")
SIMULATED_BANK_TRANSFER_DELAY = 0
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None  # static files are served from static/ by the finders
# An open stream notices a revoked key within half a second (tests revoke and wait).
STREAM_KEY_RECHECK_SECONDS = env.float("STREAM_KEY_RECHECK_SECONDS", default=0.5)
