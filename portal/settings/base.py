"""Settings shared by every environment; values come from the environment.

`local` (make run), `test` (make test) and `production` extend this module.
Nothing here may carry a secret that production would inherit: production
requires every secret from the environment.
"""

from pathlib import Path

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Base URL the product is reachable on; used for links in emails and for the
# simulated payment provider's webhook deliveries.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
# The reverse proxies whose X-Forwarded-For / X-Forwarded-Proto the web server believes
# (uvicorn's --forwarded-allow-ips: comma-separated addresses or networks, "*" for any).
# Empty: none. Then the client's address is the connecting peer's, whatever headers it
# sends (portal.net.client_ip). Set it to your load balancer's address when behind one.
FORWARDED_ALLOW_IPS = env("FORWARDED_ALLOW_IPS", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    # The packages' own AppConfigs, renamed for the admin (portal.third_party_apps).
    "portal.third_party_apps.AuthenticatorAppsConfig",
    "portal.third_party_apps.BackupCodesConfig",
    "portal.third_party_apps.SignInLockoutsConfig",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "csp",
    "django_celery_beat",
    "accounts",
    "trading",
]

MIDDLEWARE = [
    # HTTP metrics (django-prometheus): the Before/After pair spans every other middleware.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # The request id (portal.logs) first, so every other middleware's log lines carry it.
    "portal.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.RequestGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.TimeZoneMiddleware",
    "portal.sessions.SessionLifetimeMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.middleware.ServiceUnavailableMiddleware",
    # The portal's 404 page under DEBUG too (no technical page listing every URL).
    "portal.middleware.FriendlyNotFoundMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes requires: it turns lockouts into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
# The WebSocket routes (`browser_urlpatterns`, `partner_urlpatterns`), mounted by portal.asgi.
WEBSOCKET_URLCONF = "trading.routing"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.portal",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
# `local` defaults to SQLite under var/, `test` to PostgreSQL; both honour
# DATABASE_URL.


# Database metrics (django-prometheus' backends: queries, their time and errors).
METRICS_DB = env.bool("METRICS_DB", default=True)
DB_METRICS_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}


def database_from_env(default: str, *, pool: bool = True) -> dict:
    """DATABASES['default'] from DATABASE_URL, tuned for the backend.

    PostgreSQL connections are pooled (psycopg_pool, DB_POOL_MAX per process):
    under ASGI every request runs in a thread of its own, so persistent
    per-thread connections would be opened per request and pile up; the pool
    hands each request a warm connection and takes it back.
    """
    db = env.db_url("DATABASE_URL", default=default)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # Web, worker, beat and the feed share one file: wait for the write
        # lock instead of failing, and take it at BEGIN so a read-then-write
        # transaction cannot deadlock against another writer.
        db.setdefault("OPTIONS", {}).update(
            {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
    elif pool and env.bool("DB_POOL", default=True):
        db["CONN_MAX_AGE"] = 0  # the pool keeps the connections
        db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env.int("DB_POOL_MAX", default=10),
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }
    else:
        db.setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
        db.setdefault("CONN_HEALTH_CHECKS", True)
    db["ATOMIC_REQUESTS"] = False
    if METRICS_DB:
        # django-prometheus' wrapper of the same backend: query counts, time and errors.
        db["ENGINE"] = DB_METRICS_ENGINES.get(db["ENGINE"], db["ENGINE"])
    return db


DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker ---------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
KEY_PREFIX = env("REDIS_KEY_PREFIX", default="portal")

# Reference data (portal.refdata): a process re-checks its cached copy this often.
REFDATA_MAX_AGE = env.float("REFDATA_MAX_AGE", default=0.05)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": KEY_PREFIX,
    }
}

# Redis pub/sub: a push is delivered to whoever is subscribed when it is sent, at
# once, and never queued. Pushes are hints (every page and client re-reads a
# snapshot when it (re)connects), and the list-based RedisChannelLayer drops
# them anyway once a process's inbox holds `capacity` (100) messages: at 1,000
# dashboards it lost half of them (bench/ws_fanout.py). The subclass adds
# group_send_batch: a batch of pushes (the engine's tick) in one Redis pipeline.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "portal.channel_layer.RedisPubSubBatchChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{KEY_PREFIX}:asgi"},
    }
}

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Work that must happen does not rely on the broker keeping a message: it is an
# outbox item in PostgreSQL (accounts.outbox), re-sent by the dispatcher
# until a run of its task has succeeded; periodic tasks simply run again next time.
# So Redis does not emulate acknowledgements (no "unacked" copies, no visibility
# timeout): kombu's emulation crashed the worker ("Unrecoverable error:
# AttributeError … hostname" in restore_unacked) whenever Redis went away while the
# worker held a message, and its copies vanish with a Redis restart anyway. A task
# is acknowledged when it finishes; one whose pool process dies is put back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# DatabaseScheduler that sends only while it holds a Redis lock: 2 beats are safe.
CELERY_BEAT_SCHEDULER = "portal.beat:LeaderScheduler"
# No task may run longer than this (the longest, a ten-year report, takes seconds).
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": f"{KEY_PREFIX}:celery:",
    "ack_emulation": False,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
}
# Workers and beat reconnect to a restarted Redis by themselves, for ever; a task
# running when the connection drops runs to its end.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False

# The outbox (accounts.outbox) sends an item again when its task has not
# reported this long after it was sent (lost message, killed worker, Redis restart).
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=120)
# A report whose run has not beaten its heartbeat for this long lost its worker:
# the next run (the outbox re-sends it) takes it over.
REPORT_STALE_SECONDS = env.int("REPORT_STALE_SECONDS", default=120)
# The daily interest run charges this many days up to yesterday (each account once a
# day), so a day a lost run or an account's error left uncharged is charged next time.
INTEREST_CATCH_UP_DAYS = env.int("INTEREST_CATCH_UP_DAYS", default=7)

# /ready/ (portal.health): how old the feed's, the margin engine's and the workers'
# heartbeats may be before the product counts as not ready.
READY_FEED_MAX_AGE_SECONDS = env.float("READY_FEED_MAX_AGE_SECONDS", default=10.0)
READY_ENGINE_MAX_AGE_SECONDS = env.float("READY_ENGINE_MAX_AGE_SECONDS", default=15.0)
READY_WORKER_MAX_AGE_SECONDS = env.float("READY_WORKER_MAX_AGE_SECONDS", default=60.0)

# Margin engine shards (portal.shards, trading.engine): ENGINE_SHARDS engines each own
# the accounts whose stable id hash mod ENGINE_SHARDS is their ENGINE_SHARD_INDEX (or
# `run_margin_engine --shard-index`), each under its own lock: a second process of a
# shard stands by and takes over ENGINE_LOCK_TTL_SECONDS (at most 4/3 of it) after the
# holder dies. The same ENGINE_SHARDS everywhere (web and workers mark changed accounts
# per shard; /ready/ checks every shard's heartbeat). 1: one engine for every account.
# The market-data feed and Celery beat run once per Redis, under a leadership lock
# (portal.redis.Leadership); a standby takes over this long after the holder dies.
LEADER_LOCK_TTL_SECONDS = env.float("LEADER_LOCK_TTL_SECONDS", default=15.0)
ENGINE_SHARDS = env.int("ENGINE_SHARDS", default=1)
ENGINE_SHARD_INDEX = env.int("ENGINE_SHARD_INDEX", default=0)
ENGINE_LOCK_TTL_SECONDS = env.float("ENGINE_LOCK_TTL_SECONDS", default=None)  # None: 30

# Figures served from the engine (trading.services.figures_store): after each batch the
# margin engine stores the evaluated accounts' GET positions / GET margin / dashboard
# figures in Redis (those read within FIGURES_WATCHED_SECONDS, at most
# FIGURES_STORE_MAX_ACCOUNTS a batch), and reads serve them
# while the account's figures_version, the reference data and every quote they were
# priced from are unchanged and they are younger than FIGURES_MAX_AGE_SECONDS (also the
# keys' TTL); otherwise the read computes them and writes them back. FIGURES_STORE off:
# every read computes, nothing is stored.
FIGURES_STORE = env.bool("FIGURES_STORE", default=True)
FIGURES_MAX_AGE_SECONDS = env.float("FIGURES_MAX_AGE_SECONDS", default=2.0)
FIGURES_STORE_MAX_ACCOUNTS = env.int("FIGURES_STORE_MAX_ACCOUNTS", default=500)
FIGURES_WATCHED_SECONDS = env.int("FIGURES_WATCHED_SECONDS", default=5)

# --- Auth ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # django-axes first so locked-out credentials never reach the database.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The customer portal's sign-in; ops use the admin's own two-factor login at /admin/.
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/login/"

# Sessions (portal.sessions): signed out after SESSION_IDLE_TIMEOUT_MINUTES without a
# request (each request pushes the expiry forward), and SESSION_MAX_AGE_HOURS after
# sign-in however active. An open dashboard socket re-checks its session every
# DASHBOARD_SESSION_CHECK_SECONDS and closes (4401) once it has ended.
SESSION_COOKIE_AGE = round(env.float("SESSION_IDLE_TIMEOUT_MINUTES", default=30) * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_ABSOLUTE_MAX_AGE = env.float("SESSION_MAX_AGE_HOURS", default=12) * 3600
DASHBOARD_SESSION_CHECK_SECONDS = env.float("DASHBOARD_SESSION_CHECK_SECONDS", default=2.0)

# Lockout after repeated failures (per email + IP), cleared on success.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token"]
AXES_LOCKOUT_TEMPLATE = "admin/lockout.html"
# The same client address as every other check (portal.net), never a request header.
AXES_CLIENT_IP_CALLABLE = "portal.net.client_ip"

OTP_TOTP_ISSUER = "Prime Portal"

# Content-Security-Policy on every response (django-csp): scripts, styles, fonts and
# images only from the site itself (static/, the admin's and the API docs' bundled
# assets); no inline script or style, no eval, no plugins, no framing, forms post only
# here; fetches and the dashboard's WebSocket only to the same origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- I18N / static ---------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "media/"

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Prime Portal <no-reply@prime.local>")

# --- DRF -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "portal.api.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["portal.api.renderers.OrjsonRenderer"],
    "DEFAULT_PARSER_CLASSES": ["portal.api.parsers.JsonParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api_auth.ScopePermission"],
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Prime Portal API",
    "DESCRIPTION": "The partner REST API (/v1): positions, execute, margin, orders, leverage, "
    'transfers, markets and reports. Every error is {"code", "message"}.',
    "VERSION": "2026-04-01",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OrderSideEnum": ["buy", "sell"],
        "PositionSideEnum": ["long", "short"],
        "InstrumentKindEnum": ["binary", "perpetual"],
    },
}
# Lev-Version: the versions the API answers, and the one used when the header is absent.
API_VERSIONS = frozenset({"2026-04-01"})
API_DEFAULT_VERSION = "2026-04-01"
# Requests per minute per API key and endpoint group (seed "Rate Limits").
API_RATE_LIMITS = {"market_data": 300, "order_management": 60, "execute": 30}
# Failed API key authentications (bad, unknown or revoked key) one client address may
# make within the window before its key authentications get 429 (REST and stream).
API_KEY_FAILURE_LIMIT = env.int("API_KEY_FAILURE_LIMIT", default=20)
API_KEY_FAILURE_WINDOW_SECONDS = env.float("API_KEY_FAILURE_WINDOW_SECONDS", default=60.0)

# Partner stream (/v1/stream, trading.streams): open connections per key (seed "Rate
# Limits"), a connection's slot lifetime between renewals, how long a new socket may
# take to authenticate, how often an open socket re-checks its key (revoked: closed),
# the pulse of seed 002's positions and balances subscriptions, subscriptions per
# socket, and messages waiting for a slow client before its subscriptions see gaps.
STREAM_MAX_CONNECTIONS_PER_KEY = env.int("STREAM_MAX_CONNECTIONS_PER_KEY", default=5)
STREAM_SLOT_TTL_SECONDS = env.float("STREAM_SLOT_TTL_SECONDS", default=60.0)
STREAM_AUTH_TIMEOUT_SECONDS = env.float("STREAM_AUTH_TIMEOUT_SECONDS", default=10.0)
STREAM_KEY_RECHECK_SECONDS = env.float("STREAM_KEY_RECHECK_SECONDS", default=5.0)
STREAM_PULSE_SECONDS = env.float("STREAM_PULSE_SECONDS", default=1.0)
STREAM_MAX_SUBSCRIPTIONS = env.int("STREAM_MAX_SUBSCRIPTIONS", default=50)
STREAM_SEND_QUEUE = env.int("STREAM_SEND_QUEUE", default=2000)

# --- Product ---------------------------------------------------------------
# Payment provider for deposits and withdrawals (dotted path to a class
# implementing accounts.payments.base.PaymentProvider).
PAYMENT_PROVIDER = env(
    "PAYMENT_PROVIDER", default="accounts.payments.simulated.SimulatedPaymentProvider"
)
# Shared secret the simulated provider signs its webhooks with.
PAYMENT_WEBHOOK_SECRET = env("PAYMENT_WEBHOOK_SECRET", default="")
# How old a signed webhook may be before it is refused (replay window).
PAYMENT_WEBHOOK_TOLERANCE_SECONDS = env.int("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", default=300)
# Seconds the simulated provider waits before it confirms a bank transfer.
SIMULATED_BANK_TRANSFER_DELAY = env.int("SIMULATED_BANK_TRANSFER_DELAY", default=20)
# Withdrawal destinations the simulated provider refuses to pay out to, as a closed bank
# account would be refused (the withdrawal fails and its amount returns to cash).
SIMULATED_PAYOUT_REFUSED_DESTINATIONS = env.list(
    "SIMULATED_PAYOUT_REFUSED_DESTINATIONS", default=["Closed account 0000"]
)
# Withdrawals above this many USDC need a second staff member's approval (four-eyes,
# accounts.services.withdrawal_review); at or below it one staff member approves.
WITHDRAWAL_FOUR_EYES_USDC = env("WITHDRAWAL_FOUR_EYES_USDC", default="10000")

# Fernet keys sealing users' linked exchange credentials (accounts.credential_keys),
# NEWEST FIRST, comma-separated. Their own key set, not SECRET_KEY; rotate with
# `manage.py linked_credentials_rotate`. Empty here: local/test set their own,
# production requires it (the `accounts.E101` check fails while it is empty).
LINKED_CREDENTIAL_KEYS = env.list("LINKED_CREDENTIAL_KEYS", default=[])

# Venue hosts: for linked (non-custodial) accounts, and for the broker's own
# trading where VENUE_ADAPTERS routes a venue to its real adapter. `make run`
# points them at local fake venues (portal/settings/local.py).
KALSHI_BASE_URLS = {
    "production": env(
        "KALSHI_PRODUCTION_URL", default="https://external-api.kalshi.com/trade-api/v2"
    ),
    "demo": env("KALSHI_DEMO_URL", default="https://external-api.demo.kalshi.co/trade-api/v2"),
}
# Kalshi's Basic tier; one token bucket per key, shared by every process (Redis).
# A Kalshi key's token buckets (refill tokens per second, capacity) until its own
# are read from GET /account/limits: the Basic tier (getting_started/rate_limits).
KALSHI_READ_BUCKET = (
    env.float("KALSHI_READ_TOKENS_PER_SECOND", default=200.0),
    env.float("KALSHI_READ_TOKEN_CAPACITY", default=400.0),
)
KALSHI_WRITE_BUCKET = (
    env.float("KALSHI_WRITE_TOKENS_PER_SECOND", default=100.0),
    env.float("KALSHI_WRITE_TOKEN_CAPACITY", default=100.0),
)
# The broker's own (omnibus) Kalshi key, used when VENUE_ADAPTERS routes kalshi to "kalshi".
KALSHI_BROKER_KEY_ID = env("KALSHI_BROKER_KEY_ID", default="")
KALSHI_BROKER_PRIVATE_KEY_PEM = env("KALSHI_BROKER_PRIVATE_KEY_PEM", default="")
KALSHI_BROKER_ENVIRONMENT = env("KALSHI_BROKER_ENVIRONMENT", default="production")
# The broker key's Kalshi subaccount for its orders (0: the primary account; 1–63).
KALSHI_BROKER_SUBACCOUNT = env.int("KALSHI_BROKER_SUBACCOUNT", default=0)
POLYMARKET_DATA_URL = env("POLYMARKET_DATA_URL", default="https://data-api.polymarket.com")
POLYMARKET_GAMMA_URL = env("POLYMARKET_GAMMA_URL", default="https://gamma-api.polymarket.com")
POLYMARKET_CLOB_URL = env("POLYMARKET_CLOB_URL", default="https://clob.polymarket.com")
# Local fake venues (local settings turn them on for `make run`).
FAKE_VENUES = False
# Polymarket requests per second per service, shared by every process (Polymarket
# limits per IP per 10 s: Data API /v2/positions 200, Gamma /markets 300, CLOB /book
# 1,500).
POLYMARKET_RATES = {"data": 20.0, "gamma": 30.0, "clob": 150.0}
# The broker signer's order bucket (orders per second, burst): Polymarket's Standard
# tier (api-reference/trading-rate-limits); Poly-RateLimit-Warning slows it further.
POLYMARKET_ORDER_BUCKET = (
    env.float("POLYMARKET_ORDERS_PER_SECOND", default=40.0),
    env.float("POLYMARKET_ORDER_BURST", default=60.0),
)
# The broker's dead-man switch: POST /heartbeats this often from the feed's process.
POLYMARKET_HEARTBEAT_SECONDS = env.float("POLYMARKET_HEARTBEAT_SECONDS", default=5.0)
# The broker's own Polymarket wallet and CLOB keys, used when VENUE_ADAPTERS routes
# polymarket to "polymarket".
POLYMARKET_PRIVATE_KEY = env("POLYMARKET_PRIVATE_KEY", default="")
POLYMARKET_CLOB_API_KEY = env("POLYMARKET_CLOB_API_KEY", default="")
POLYMARKET_CLOB_API_SECRET = env("POLYMARKET_CLOB_API_SECRET", default="")
POLYMARKET_CLOB_API_PASSPHRASE = env("POLYMARKET_CLOB_API_PASSPHRASE", default="")
POLYMARKET_FUNDER = env("POLYMARKET_FUNDER", default="")
POLYMARKET_SIGNATURE_TYPE = env.int("POLYMARKET_SIGNATURE_TYPE", default=0)
POLYMARKET_CHAIN_ID = env.int("POLYMARKET_CHAIN_ID", default=137)  # Polygon mainnet
# Linked accounts are synced this often; a failing one backs off, doubling up to the cap.
LINKED_SYNC_INTERVAL_SECONDS = env.int("LINKED_SYNC_INTERVAL_SECONDS", default=60)
LINKED_SYNC_BACKOFF_MAX_SECONDS = env.int("LINKED_SYNC_BACKOFF_MAX_SECONDS", default=3600)

# Which adapter serves each venue code; the embedded default routes every
# venue through the simulated order book fed by the market-data simulator.
VENUE_ADAPTERS = env.dict(
    "VENUE_ADAPTERS",
    default={
        "kalshi": "simulated",
        "polymarket": "simulated",
        "leviathan": "simulated",
        "simulated": "simulated",
    },
)

# Market-data feed: seconds between ticks, RNG seed, TWAP window, and how often
# a tick is kept in the database for charts.
MARKETDATA_INTERVAL = env.float("MARKETDATA_INTERVAL", default=1.0)
MARKETDATA_SEED = env.int("MARKETDATA_SEED", default=20261121)
MARKETDATA_TWAP_SECONDS = env.float("MARKETDATA_TWAP_SECONDS", default=60.0)
MARKETDATA_HISTORY_EVERY_SECONDS = env.float("MARKETDATA_HISTORY_EVERY_SECONDS", default=5.0)
MARKETDATA_HISTORY_RETENTION_DAYS = env.int("MARKETDATA_HISTORY_RETENTION_DAYS", default=30)

# --- Observability (README "Metrics, logs and traces") ---------------------------
# /metrics (portal.metrics): served to clients in these networks, or to a request with
# `Authorization: Bearer <METRICS_BEARER_TOKEN>` when that is set; 404 to anyone else.
# Several processes on one host share samples through PROMETHEUS_MULTIPROC_DIR (an
# environment variable, read by prometheus_client at import; `make run` sets it).
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
METRICS_BEARER_TOKEN = env("METRICS_BEARER_TOKEN", default="")
# Processes without a web server (margin engine, feed, Celery worker and beat) serve their
# own metrics on METRICS_ADDRESS:METRICS_PORT (an IP address: loopback by default, the
# pod's in Kubernetes), under the same access rules, when METRICS_PORT is set (unset: off).
METRICS_PORT = env.int("METRICS_PORT", default=None)
METRICS_ADDRESS = env("METRICS_ADDRESS", default="127.0.0.1")

# Logs (portal.logs): "plain" lines for people, "json" (one object a line) for a log
# pipeline; each carries the request id. Celery workers log through the same handlers.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING_CONFIG = "portal.logs.logging_configure"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Tracing (portal.tracing), off unless OTEL_ENABLED: the OpenTelemetry packages are an
# optional extra (requirements-otel.txt), imported only when it is on. Spans go over
# OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://collector:4318).
OTEL_ENABLED = env.bool("OTEL_ENABLED", default=False)
OTEL_EXPORTER_OTLP_ENDPOINT = env("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env("OTEL_SERVICE_NAME", default="prime-portal")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "portal.logs.PlainFormatter"},
        "json": {"()": "portal.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One line per request (portal.middleware.RequestIdMiddleware): on with JSON logs.
        "portal.access": {
            "level": env("ACCESS_LOG_LEVEL", default="INFO" if LOG_FORMAT == "json" else "WARNING")
        },
        "axes": {"level": "WARNING"},
        # A failed readiness check is answered in /ready/'s body, not logged with a trace.
        "health_check": {"level": "ERROR"},
    },
}
