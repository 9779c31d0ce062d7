"""Settings for `make run` and development: embedded defaults, no secrets needed.

SQLite under var/ unless DATABASE_URL is set; Redis from REDIS_URL (the
launcher points it at a reachable or private Redis).
"""

from .base import *  # noqa: F403
from .base import VAR_DIR, database_from_env, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-development-only-not-a-secret")
PAYMENT_WEBHOOK_SECRET = env("PAYMENT_WEBHOOK_SECRET", default="whsec_local_development_only")
# DEVELOPMENT ONLY: a published key (`check --deploy` refuses it), so linking works
# under `make run`. Credentials sealed with it are readable by anyone with this file.
LINKED_CREDENTIAL_KEYS = env.list(
    "LINKED_CREDENTIAL_KEYS", default=["oRAsd2PtbXPcVDG4AuUU2ZegPd4yjZ_4JlARZj6ucYU="]
)

VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": database_from_env(f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}

# Serve static files straight from static/ without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT = None  # static files are served from static/ by the finders

# Local fake Kalshi and Polymarket servers (`manage.py run_fake_venues`, Procfile
# `venues`): linked accounts sync against them, never the real venues. The demo
# user bob@prime.local gets a linked Kalshi key and Polymarket wallet on start.
FAKE_VENUES = env.bool("FAKE_VENUES", default=True)
FAKE_KALSHI_PORT = env.int("FAKE_KALSHI_PORT", default=8701)
FAKE_POLYMARKET_PORT = env.int("FAKE_POLYMARKET_PORT", default=8702)
if FAKE_VENUES:
    _kalshi = f"http://127.0.0.1:{FAKE_KALSHI_PORT}/trade-api/v2"
    KALSHI_BASE_URLS = {"production": _kalshi, "demo": _kalshi}
    POLYMARKET_DATA_URL = f"http://127.0.0.1:{FAKE_POLYMARKET_PORT}/data"
    POLYMARKET_GAMMA_URL = f"http://127.0.0.1:{FAKE_POLYMARKET_PORT}/gamma"
    POLYMARKET_CLOB_URL = f"http://127.0.0.1:{FAKE_POLYMARKET_PORT}/clob"
