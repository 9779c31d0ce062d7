"""Margin engine shards: which of `settings.ENGINE_SHARDS` engines owns an account.

An account belongs to shard `shard_of(account_id, count)`: a stable hash of
its id (Fibonacci hashing: the id times 2654435761 modulo 2**32, whose top
16 bits are well mixed even for consecutive ids) modulo the number of shards.
The same rule runs in Python (`shard_of`, `shards_of` over NumPy arrays) and
in SQL (`Shard.q_annotation`), so an engine loads only its own accounts and a
ledger write marks a changed account in its shard's set. It never changes
with the process, the Python version or PYTHONHASHSEED (Python's `hash()` of
a str does), so every process agrees on every account, those created later
too. With one shard (the default) every account is shard 0 and nothing is
filtered: the engine behaves exactly as before sharding.

Changing ENGINE_SHARDS moves accounts between shards: stop every engine, change
it everywhere (web, workers, engines) and start them again; each engine's first
full sweep rebuilds its book from PostgreSQL.
"""

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import models
from django.db.models.functions import Mod

MULTIPLIER = 2654435761  # 2**32 / golden ratio, odd
_ID_MODULUS = 2**31  # ids are folded first, so the product fits a signed 64-bit integer
_WORD = 2**32
_SHIFT = 16


def shard_of(account_id: int, count: int) -> int:
    """The shard (0 … count-1) of this account among `count` shards."""
    if count <= 1:
        return 0
    return ((((account_id % _ID_MODULUS) * MULTIPLIER) % _WORD) >> _SHIFT) % count


def shards_of(account_ids: np.ndarray, count: int) -> np.ndarray:
    """`shard_of` over an array of ids (int64)."""
    ids = np.asarray(account_ids, dtype=np.int64)
    if count <= 1:
        return np.zeros(ids.shape, dtype=np.int64)
    return ((((ids % _ID_MODULUS) * MULTIPLIER) % _WORD) >> _SHIFT) % count


def shards_count() -> int:
    """`settings.ENGINE_SHARDS` (at least 1)."""
    return max(1, int(getattr(settings, "ENGINE_SHARDS", 1)))


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`; `Shard()` is the whole book (one shard)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"No shard {self.index} of {self.count}.")

    @classmethod
    def configured(cls, index: int | None = None) -> "Shard":
        """Shard `index` (default settings.ENGINE_SHARD_INDEX) of settings.ENGINE_SHARDS.
        An index beyond the count stands by for index mod count (a StatefulSet of 2N
        replicas: pods N … 2N-1 are the standbys of shards 0 … N-1)."""
        count = shards_count()
        if index is None:
            index = int(getattr(settings, "ENGINE_SHARD_INDEX", 0))
        if index < 0:
            raise ValueError(f"No shard {index}.")
        return cls(index=index % count, count=count)

    @property
    def whole(self) -> bool:
        return self.count == 1

    def owns(self, account_id: int) -> bool:
        return shard_of(account_id, self.count) == self.index

    def mask(self, account_ids: np.ndarray) -> np.ndarray:
        """Which of these ids this shard owns (a boolean array)."""
        return shards_of(account_ids, self.count) == self.index

    def filter(self, queryset: models.QuerySet, field: str = "pk") -> models.QuerySet:
        """`queryset` restricted to the rows whose `field` (an account id) is in this shard."""
        if self.whole:
            return queryset
        return queryset.alias(_engine_shard=shard_expression(field, self.count)).filter(
            _engine_shard=self.index
        )

    @property
    def label(self) -> str:
        return "" if self.whole else f"shard {self.index} of {self.count}"

    def __str__(self) -> str:
        return self.label or "all accounts"


def shard_expression(field: str, count: int) -> models.Expression:
    """`shard_of(field, count)` as a SQL expression (integer arithmetic only)."""
    big = models.BigIntegerField()
    folded = Mod(models.F(field), models.Value(_ID_MODULUS, output_field=big))
    product = models.ExpressionWrapper(
        folded * models.Value(MULTIPLIER, output_field=big), output_field=big
    )
    hashed = Mod(product, models.Value(_WORD, output_field=big)).bitrightshift(_SHIFT)
    return Mod(
        models.ExpressionWrapper(hashed, output_field=big),
        models.Value(count, output_field=big),
        output_field=big,
    )
