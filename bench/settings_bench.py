"""Settings of the API load benchmark's server (bench/api_load.py).

`portal.settings.local` (DATABASE_URL, REDIS_URL and REDIS_KEY_PREFIX from the
environment) with what a load test needs:

- DEBUG off (DEBUG keeps every query in memory) and WhiteNoise's per-request
  file lookup off, as in production;
- the bench URLconf (`urls_bench`): the portal's URLs plus the bare Django
  JSON view the API is compared against;
- API rate limits raised far above any load this machine can offer: the
  throttle still runs on every request (its Redis script is part of the read
  path being measured), it just never answers 429;
- logging at WARNING.

Used with bench/ on PYTHONPATH: DJANGO_SETTINGS_MODULE=settings_bench.
"""

from portal.settings.local import *  # noqa: F403
from portal.settings.local import API_RATE_LIMITS, LOGGING

DEBUG = False
ROOT_URLCONF = "urls_bench"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
WHITENOISE_AUTOREFRESH = False

# Requests per minute per key and group: 1e9 ≈ 16 million a second, never reached.
BENCH_RATE_LIMIT = 1_000_000_000
API_RATE_LIMITS = dict.fromkeys(API_RATE_LIMITS, BENCH_RATE_LIMIT)

LOGGING = {**LOGGING, "root": {**LOGGING["root"], "level": "WARNING"}}
