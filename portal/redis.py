"""The process's Redis client for settings.REDIS_URL, and the product's key names."""

import functools

import redis
from django.conf import settings


@functools.cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def redis_client() -> redis.Redis:
    """A pooled, thread-safe client for `settings.REDIS_URL`."""
    return _client_for(settings.REDIS_URL)


def redis_key(*parts: str) -> str:
    """A key under this deployment's prefix: `<KEY_PREFIX>:<part>:<part>…`."""
    return ":".join((settings.KEY_PREFIX, *parts))
