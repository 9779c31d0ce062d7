"""The one page of every list (API and pages): `limit` rows from `offset`, newest first.

Lists read one row past the page to tell whether another follows (no COUNT
query). `limit` is 1–PAGE_LIMIT_MAX and `offset` 0–PAGE_OFFSET_MAX: the API
documents and checks both (`portal.api.pagination`), and `Page.read` refuses
anything else before it reaches the database (PostgreSQL's OFFSET is a
bigint; an offset past 2^63 was a server error).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from portal.errors import InvalidParams

T = TypeVar("T")

PAGE_LIMIT_DEFAULT = 100
PAGE_LIMIT_MAX = 500
PAGE_OFFSET_MAX = 10_000_000


def page_bounds_check(*, limit: int, offset: int) -> None:
    """Raises InvalidParams unless 1 ≤ limit ≤ PAGE_LIMIT_MAX and 0 ≤ offset ≤ PAGE_OFFSET_MAX."""
    if not 1 <= limit <= PAGE_LIMIT_MAX:
        raise InvalidParams(f"limit must be from 1 to {PAGE_LIMIT_MAX}.")
    if not 0 <= offset <= PAGE_OFFSET_MAX:
        raise InvalidParams(f"offset must be from 0 to {PAGE_OFFSET_MAX}.")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    limit: int
    offset: int
    has_more: bool

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.has_more else None

    @classmethod
    def of(cls, fetched: Sequence[T], *, limit: int, offset: int) -> "Page[T]":
        """The page of `limit` rows at `offset`, from up to limit + 1 rows read there
        (one more than shown tells whether another page follows)."""
        return cls(
            items=list(fetched[:limit]), limit=limit, offset=offset, has_more=len(fetched) > limit
        )

    @classmethod
    def read(cls, rows: Any, *, limit: int, offset: int) -> "Page":
        """The page of `rows` (a queryset or a sequence) at `offset`: one query of at most
        limit + 1 rows. Raises InvalidParams for a limit or offset out of range."""
        page_bounds_check(limit=limit, offset=offset)
        return cls.of(list(rows[offset : offset + limit + 1]), limit=limit, offset=offset)

    def map(self, shape: Callable[[T], Any]) -> "Page":
        """The same page with each item shaped by `shape`."""
        return Page(
            items=[shape(item) for item in self.items],
            limit=self.limit,
            offset=self.offset,
            has_more=self.has_more,
        )
