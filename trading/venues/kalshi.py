"""Kalshi (Trade API v2): a thin signed HTTP client, the tracker and the broker's venue.

- `KalshiClient` speaks the REST API over one httpx.Client. Private requests
  are signed (RSA-PSS/SHA-256 over `timestamp + METHOD + path`, the path
  from `/trade-api/v2` without the query string); every request first takes
  a token from the bucket its account shares across processes (reads and
  writes separately, `trading.venues.ratelimit`); 429s, 5xx and network
  failures of reads are retried with backoff. Order creation is never
  retried blindly: a timeout, 5xx or dropped connection there raises
  `VenueTimeout` (the order may exist; reconcile by client_order_id).
- `KalshiTracker` is the tracking client for a user's linked, read-only key
  (trading.venues.tracking.TrackingClient).
- `KalshiVenue` is the custodial adapter, trading with the broker's own key.

Numbers come from the fixed-point fields (`*_dollars`, `*_fp`) and are
parsed to Decimal; JSON numbers are read as Decimal too, never float.
Nothing here logs or raises with a header, a signature or the private key.

Where each wire detail comes from (recorded examples, with their pages and
versions, in `trading/venues/fakes/examples/kalshi/`):

- Orders: Create Order V2, `POST /portfolio/events/orders`
  (docs.kalshi.com/api-reference/orders/create-order-v2, OpenAPI 3.26.0):
  `side` is `bid`/`ask` on the YES leg (an ask sells YES or, with no YES
  held, buys NO at 1 − price), `count` and `price` fixed-point strings (≤ 2
  and ≤ 4 decimals), `time_in_force` `immediate_or_cancel`,
  `self_trade_prevention_type` required, `subaccount`. The answer is
  `{order_id, client_order_id, fill_count, remaining_count, ts_ms,
  average_fill_price?, average_fee_paid?}`, final for an IOC order. The
  legacy `POST /portfolio/orders` (side yes/no + action) is no longer used:
  Kalshi turned its writes off in June 2026 (changelog).
- Order records: `GET /portfolio/orders` and `/portfolio/orders/{id}`
  (get-order, OpenAPI 3.29.0): `outcome_side`/`book_side`, `*_count_fp`,
  `*_dollars`, status `resting`/`canceled`/`executed`. Fills:
  `GET /portfolio/fills?order_id=` (get-fills): `count_fp`,
  `yes_price_dollars` per fill.
- Budgets: Kalshi meters every request in tokens from two buckets per
  member, Read and Write (getting_started/rate_limits, token-bucket
  version): most calls cost 10 tokens (`default_cost`), some less (Get
  Order 2); `GET /account/limits` gives the tier's `refill_rate` and
  `bucket_capacity` per bucket and `GET /account/endpoint_costs` the
  non-default costs. `KalshiBudget` holds them per key in Redis (read when
  a key is linked and daily by `venue_budgets_refresh`; Basic tier and the
  documented costs until then) and every process spends the same buckets
  (`trading.venues.ratelimit`). A 429 carries no Retry-After: the client
  backs off exponentially with jitter and empties the shared bucket for
  that long, so every process slows down.
- Ticks: a market's `price_ranges` `[{start, end, step}]`
  (getting_started/fixed_point_migration; changelog July–August 2026): a
  price must sit on the step of the band holding it; the
  `price_level_structure` label is not interpreted.

Undocumented, and assumed here: the path format of `/account/endpoint_costs`
(both `/trade-api/v2/…` and relative paths are read, `{param}` segments
match any segment); the cost of the two budget reads themselves (the
default); Kalshi has no lookup of an order by
`client_order_id`, so `order_get_by_client_id` pages the market's orders;
that a duplicate `client_order_id` answers 409 (the FIX page says an id must
not match an open order); that V2's `average_fill_price` is in YES-leg terms
(V2 "quotes everything from the YES side"; the adapter reads the fills'
documented `yes_price_dollars` when it reconciles); whether a market takes
fractional counts (`fractional_trading_enabled` was removed from the market
schema on 2026-07-09: a market that does not send it true gets whole
contracts only).
"""

import base64
import functools
import hashlib
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings

from portal.errors import ErrorCode, InvalidParams
from portal.money import ZERO
from portal.redis import redis_client, redis_key
from trading.marketdata.quotes import ONE, BookLevel, OrderBook, Outcome, Quote, quantize_price
from trading.marketdata.store import MarketDataUnavailable
from trading.models import Listing
from trading.venues.base import (
    PRICE_LIMIT,
    Side,
    VenueAdapter,
    VenueOrder,
    VenueOrderStatus,
    VenueTimeout,
    book_quote,
    order_size_check,
)
from trading.venues.http import (
    MAX_PAGES,
    backoff_seconds,
    decimal_parse,
    retry_after_seconds,
    throttled_wait,
)
from trading.venues.ratelimit import token_bucket_penalize, token_bucket_take
from trading.venues.tracking import (
    CredentialCheck,
    TrackedAccount,
    TrackedMarket,
    TrackedPosition,
    VenueAuthError,
    VenueBadResponse,
    VenueError,
    VenueRateLimited,
    VenueUnavailable,
)

logger = logging.getLogger(__name__)

PAGE_LIMIT = 100  # Kalshi's default page size
SIGNATURE_HEADER = "KALSHI-ACCESS-SIGNATURE"
WRITE_SCOPE_WARNING = "This key can place orders; a read-only key is enough for tracking."
PRICE_FORMAT = Decimal("0.0001")  # Kalshi accepts 2-4 decimals in request prices
CONTRACT = Decimal(1)
MIN_PRICE = Decimal("0.01")
MAX_PRICE = Decimal("0.99")

# Kalshi order statuses (OrderStatus enum).
STATUS_RESTING = "resting"
STATUS_CANCELED = "canceled"
STATUS_EXECUTED = "executed"


class KalshiForbidden(VenueAuthError):
    """403: the key is valid but may not use this endpoint (e.g. a read-only key)."""


class KalshiNotFound(VenueError):
    """404: no such market, event or order on Kalshi."""

    error = ErrorCode.VENUE_NOT_FOUND


class KalshiConflict(VenueError):
    """409: e.g. an order with this client_order_id already exists."""

    error = ErrorCode.VENUE_CONFLICT


class KalshiRejected(VenueError):
    """Another 4xx: Kalshi refused the request itself (bad parameters, no balance, …)."""

    error = ErrorCode.VENUE_REJECTED

    def __init__(self, message: str, *, venue_code: str = ""):
        super().__init__(message)
        self.venue_code = venue_code


# ---------------------------------------------------------------------------
# Parsing helpers


def _json_loads(text: str) -> Any:
    """JSON with every number as Decimal (floats never touch money)."""
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


parse_decimal = functools.partial(decimal_parse, venue="Kalshi")


def _optional_decimal(value: Any, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    return parse_decimal(value, field)


def _field(data: dict[str, Any], name: str, where: str) -> Any:
    try:
        return data[name]
    except (KeyError, TypeError):
        raise VenueBadResponse(f"Kalshi's {where} has no {name}.") from None


def _dollars_or_cents(data: dict[str, Any], name: str, where: str) -> Decimal:
    """`<name>_dollars` when sent, else the legacy integer-cent `<name>` / 100."""
    dollars = data.get(f"{name}_dollars")
    if dollars is not None:
        return parse_decimal(dollars, f"{where} {name}_dollars")
    return parse_decimal(_field(data, name, where), f"{where} {name}") / 100


def _fp_or_count(data: dict[str, Any], name: str, where: str) -> Decimal:
    """`<name>_fp` when sent, else the legacy integer count `<name>`."""
    fp = data.get(f"{name}_fp")
    if fp is not None:
        return parse_decimal(fp, f"{where} {name}_fp")
    return parse_decimal(_field(data, name, where), f"{where} {name}")


def decimalize(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Kalshi record with every `*_dollars`/`*_fp` string (and fee_cost) as Decimal."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, str) and (key.endswith(("_dollars", "_fp")) or key == "fee_cost"):
            out[key] = parse_decimal(value, key)
        else:
            out[key] = value
    return out


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise VenueBadResponse(f"Kalshi sent an unreadable time: {value!r}.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _error_detail(response: httpx.Response) -> tuple[str, str]:
    """(code, message) from Kalshi's error body `{"error": {"code", "message", …}}`."""
    try:
        body = _json_loads(response.text)
    except ValueError:
        return "", ""
    error = body.get("error", body) if isinstance(body, dict) else {}
    if not isinstance(error, dict):
        return "", str(error)
    code = str(error.get("code") or "")
    message = str(error.get("message") or error.get("details") or "")
    return code, message


# ---------------------------------------------------------------------------
# What the client returns


@dataclass(frozen=True, slots=True)
class KalshiPosition:
    """One market position: `position` > 0 is YES contracts, < 0 NO contracts."""

    ticker: str
    position: Decimal
    market_exposure: Decimal  # "cost of the aggregate market position", dollars
    realized_pnl: Decimal
    fees_paid: Decimal
    total_traded: Decimal


PriceRanges = tuple[tuple[Decimal, Decimal, Decimal], ...]  # (start, end, step), dollars
LINEAR_CENT: PriceRanges = ((ZERO, ONE, MIN_PRICE),)


def price_tick(ranges: PriceRanges, price: Decimal) -> Decimal | None:
    """The tick of the band of `ranges` holding `price` (None: outside every band)."""
    for start, end, step in ranges:
        if start <= price < end or price == end == ranges[-1][1]:
            return step
    return None


def price_on_grid(ranges: PriceRanges, price: Decimal, *, up: bool) -> Decimal:
    """`price` moved onto the tick grid, up or down (the direction that keeps a limit
    safe: down for a bid, up for an ask), kept strictly inside (0, 1)."""
    for start, end, step in ranges:
        if start <= price <= end:
            steps = ((price - start) / step).quantize(
                CONTRACT, rounding=ROUND_CEILING if up else ROUND_FLOOR
            )
            snapped = start + steps * step
            low, high = ranges[0][0] + ranges[0][2], ranges[-1][1] - ranges[-1][2]
            return min(max(snapped, low), high)
    raise InvalidParams(f"Price {price} is outside the market's price ranges.")


@dataclass(frozen=True, slots=True)
class KalshiMarket:
    ticker: str
    event_ticker: str
    title: str
    status: str
    close_time: datetime | None
    expiration_time: datetime | None
    yes_bid: Decimal | None
    yes_ask: Decimal | None
    last_price: Decimal | None
    price_ranges: PriceRanges = LINEAR_CENT
    fractional: bool = False

    @property
    def is_open(self) -> bool:
        """Open for trading (Kalshi's market status `active`)."""
        return self.status == "active"

    def yes_top(self) -> tuple[Decimal | None, Decimal | None]:
        """(best YES bid, best YES ask), None for a side with no orders (Kalshi reports
        an empty side as a 0 bid or a 1 ask)."""
        bid, ask = self.yes_bid, self.yes_ask
        return (
            bid if bid is not None and ZERO < bid < ONE else None,
            ask if ask is not None and ZERO < ask < ONE else None,
        )


@dataclass(frozen=True, slots=True)
class KalshiApiKey:
    api_key_id: str
    name: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KalshiOrder:
    """An order as Kalshi records it (the Order object of GET /portfolio/orders)."""

    order_id: str
    client_order_id: str
    ticker: str
    book_side: str  # bid / ask, on the YES leg
    status: str  # resting / canceled / executed
    yes_price: Decimal | None
    initial_count: Decimal
    fill_count: Decimal
    remaining_count: Decimal


@dataclass(frozen=True, slots=True)
class KalshiOrderAck:
    """Create Order V2's answer: final for an immediate-or-cancel order."""

    order_id: str
    client_order_id: str
    fill_count: Decimal
    remaining_count: Decimal
    average_yes_price: Decimal | None  # `average_fill_price`, when something filled


def _position_from(data: dict[str, Any]) -> KalshiPosition:
    where = "market position"
    return KalshiPosition(
        ticker=str(_field(data, "ticker", where)),
        position=_fp_or_count(data, "position", where),
        market_exposure=_dollars_or_cents(data, "market_exposure", where),
        realized_pnl=_dollars_or_cents(data, "realized_pnl", where),
        fees_paid=_optional_decimal(data.get("fees_paid_dollars"), "fees_paid_dollars") or ZERO,
        total_traded=_optional_decimal(data.get("total_traded_dollars"), "total_traded_dollars")
        or ZERO,
    )


def _market_from(data: dict[str, Any]) -> KalshiMarket:
    where = "market"
    ticker = str(_field(data, "ticker", where))
    return KalshiMarket(
        ticker=ticker,
        event_ticker=str(data.get("event_ticker") or ""),
        # `title` is deprecated in the spec but still sent; yes_sub_title is the fallback.
        title=str(data.get("title") or data.get("yes_sub_title") or ticker),
        status=str(_field(data, "status", where)),
        close_time=_parse_time(data.get("close_time")),
        expiration_time=_parse_time(
            data.get("expected_expiration_time")
            or data.get("latest_expiration_time")
            or data.get("expiration_time")
        ),
        yes_bid=_optional_decimal(data.get("yes_bid_dollars"), "yes_bid_dollars"),
        yes_ask=_optional_decimal(data.get("yes_ask_dollars"), "yes_ask_dollars"),
        last_price=_optional_decimal(data.get("last_price_dollars"), "last_price_dollars"),
        price_ranges=_price_ranges_from(data.get("price_ranges")),
        fractional=data.get("fractional_trading_enabled") is True,
    )


def _price_ranges_from(value: Any) -> PriceRanges:
    """A market's `price_ranges` ([{start, end, step}] in dollars); one-cent ticks when
    the market sends none."""
    if value is None:
        return LINEAR_CENT
    if not isinstance(value, list) or not value:
        raise VenueBadResponse("Kalshi's price_ranges is not a list of bands.")
    bands = []
    for band in value:
        if not isinstance(band, dict):
            raise VenueBadResponse("Kalshi's price_ranges holds a band that is not an object.")
        start, end, step = (
            parse_decimal(band.get(name), f"price_ranges {name}")
            for name in ("start", "end", "step")
        )
        if not ZERO <= start < end <= ONE or step <= ZERO:
            raise VenueBadResponse(f"Kalshi's price band {start}–{end} by {step} is malformed.")
        bands.append((start, end, step))
    return tuple(sorted(bands))


def _order_from(data: dict[str, Any]) -> KalshiOrder:
    where = "order"
    return KalshiOrder(
        order_id=str(_field(data, "order_id", where)),
        client_order_id=str(data.get("client_order_id") or ""),
        ticker=str(_field(data, "ticker", where)),
        book_side=str(_field(data, "book_side", where)),
        status=str(_field(data, "status", where)),
        yes_price=_optional_decimal(data.get("yes_price_dollars"), "yes_price_dollars"),
        initial_count=_fp_or_count(data, "initial_count", where),
        fill_count=_fp_or_count(data, "fill_count", where),
        remaining_count=_fp_or_count(data, "remaining_count", where),
    )


def _order_ack_from(data: dict[str, Any]) -> KalshiOrderAck:
    where = "order answer"
    return KalshiOrderAck(
        order_id=str(_field(data, "order_id", where)),
        client_order_id=str(data.get("client_order_id") or ""),
        fill_count=parse_decimal(_field(data, "fill_count", where), "fill_count"),
        remaining_count=parse_decimal(_field(data, "remaining_count", where), "remaining_count"),
        average_yes_price=_optional_decimal(data.get("average_fill_price"), "average_fill_price"),
    )


def _book_side(levels: Any, field: str) -> list[BookLevel]:
    if levels is None:
        return []
    if not isinstance(levels, list):
        raise VenueBadResponse(f"Kalshi's order book {field} is not a list.")
    out = []
    for level in levels:
        if not isinstance(level, list | tuple) or len(level) != 2:
            raise VenueBadResponse(f"Kalshi's order book {field} has a malformed level.")
        price = parse_decimal(level[0], f"order book {field} price")
        size = parse_decimal(level[1], f"order book {field} size")
        if size > ZERO:
            out.append(BookLevel(price, size))
    return out


def order_book_from(payload: dict[str, Any]) -> OrderBook:
    """The YES book from Kalshi's bids-only answer.

    YES bids are the `yes_dollars` levels; a NO bid at p is a YES ask at
    1 − p, so YES asks are the complement of `no_dollars`. Best level first
    on each side (Kalshi lists them ascending; we sort rather than rely on it).
    Raises VenueBadResponse when `orderbook_fp` is missing or malformed.
    """
    book = _field(payload, "orderbook_fp", "order book answer")
    if not isinstance(book, dict):
        raise VenueBadResponse("Kalshi's orderbook_fp is not an object.")
    yes_bids = _book_side(book.get("yes_dollars"), "yes_dollars")
    no_bids = _book_side(book.get("no_dollars"), "no_dollars")
    bids = sorted(yes_bids, key=lambda level: level.price, reverse=True)
    asks = sorted(
        (BookLevel(ONE - level.price, level.size) for level in no_bids),
        key=lambda level: level.price,
    )
    return OrderBook(bids=tuple(bids), asks=tuple(asks))


# ---------------------------------------------------------------------------
# The budget: Kalshi's token buckets for one key

DEFAULT_COST = 10  # tokens; "currently 10" (getting_started/rate_limits)
# Non-default costs stated on the endpoints' pages, until the key's own are read.
DOCUMENTED_COSTS: dict[tuple[str, str], int] = {
    ("GET", "/portfolio/orders/{order_id}"): 2,
    ("DELETE", "/portfolio/events/orders/{order_id}"): 2,
    ("DELETE", "/portfolio/events/orders/batched"): 2,
}
BUDGET_MAX_AGE_SECONDS = 24 * 3600  # Kalshi reviews tiers daily; refreshed as often
BUDGET_CACHE_SECONDS = 60.0  # a process re-reads the shared budget this often
MARKET_CACHE_SECONDS = 60.0  # a market's tick grid rarely changes; resting orders keep theirs


@dataclass(frozen=True, slots=True)
class KalshiBudget:
    """One key's buckets and costs: (refill tokens/s, capacity) for reads and writes."""

    tier: str
    read: tuple[float, float]
    write: tuple[float, float]
    default_cost: int
    costs: dict[tuple[str, str], int]  # (METHOD, path template under /trade-api/v2)
    fetched_at: float  # Unix time of the read from Kalshi; 0: the documented defaults

    @classmethod
    def documented(cls) -> "KalshiBudget":
        """The Basic tier (settings KALSHI_READ_BUCKET / KALSHI_WRITE_BUCKET) and the
        documented costs: what a key gets before its own figures are read."""
        return cls(
            tier="",
            read=tuple(settings.KALSHI_READ_BUCKET),
            write=tuple(settings.KALSHI_WRITE_BUCKET),
            default_cost=DEFAULT_COST,
            costs=dict(DOCUMENTED_COSTS),
            fetched_at=0.0,
        )

    def cost(self, method: str, path: str) -> int:
        """The tokens `method` `path` (relative to /trade-api/v2) costs."""
        exact = self.costs.get((method, "/" + path.strip("/")))
        if exact is not None:
            return exact
        parts = path.strip("/").split("/")
        for (cost_method, template), cost in self.costs.items():
            pattern = template.strip("/").split("/")
            if (
                cost_method == method
                and len(pattern) == len(parts)
                and all(
                    p == q or (p[:1] == "{" and p[-1:] == "}")
                    for p, q in zip(pattern, parts, strict=True)
                )
            ):
                return cost
        return self.default_cost

    def as_json(self) -> str:
        return json.dumps(
            {
                "tier": self.tier,
                "read": self.read,
                "write": self.write,
                "default_cost": self.default_cost,
                "costs": [[m, p, c] for (m, p), c in self.costs.items()],
                "fetched_at": self.fetched_at,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> "KalshiBudget":
        data = json.loads(text)
        return cls(
            tier=data["tier"],
            read=tuple(data["read"]),
            write=tuple(data["write"]),
            default_cost=int(data["default_cost"]),
            costs={(m, p): int(c) for m, p, c in data["costs"]},
            fetched_at=float(data["fetched_at"]),
        )


def budget_key_for(key_id: str) -> str:
    """The shared budget's name for Kalshi key `key_id` (a digest: Redis keys, logs and
    the ops page never carry the key id itself)."""
    return "kalshi:" + hashlib.sha256(key_id.encode()).hexdigest()[:16]


def stored_budget(budget_key: str) -> KalshiBudget | None:
    """The budget shared under `budget_key` (None: not read yet, or unreadable: a
    request never waits on Redis trouble, it falls back to the documented one)."""
    try:
        raw = redis_client().get(redis_key("venue-budget", budget_key))
        return None if raw is None else KalshiBudget.from_json(raw)
    except Exception:
        logger.warning("kalshi: the shared budget of %s is unreadable", budget_key)
        return None


def _bucket_limit(data: Any, name: str) -> tuple[float, float]:
    bucket = data.get(name) if isinstance(data, dict) else None
    if not isinstance(bucket, dict):
        raise VenueBadResponse(f"Kalshi's account limits have no {name} bucket.")
    rate = parse_decimal(bucket.get("refill_rate"), f"{name} refill_rate")
    capacity = parse_decimal(bucket.get("bucket_capacity"), f"{name} bucket_capacity")
    if rate <= 0 or capacity <= 0:
        raise VenueBadResponse(f"Kalshi's {name} bucket is not positive.")
    return float(rate), float(capacity)


def _token_count(value: Any, field: str) -> int:
    """A positive whole number of tokens (JSON numbers arrive as Decimal)."""
    number = parse_decimal(value, field)
    if number <= 0 or number != number.to_integral_value():
        raise VenueBadResponse(f"Kalshi's {field} is not a positive whole number of tokens.")
    return int(number)


def budget_from(limits: dict[str, Any], costs: dict[str, Any], *, now: float) -> KalshiBudget:
    """A key's budget from `GET /account/limits` and `GET /account/endpoint_costs`.
    Raises VenueBadResponse for answers in another shape."""
    default = _token_count(costs.get("default_cost", DEFAULT_COST), "default_cost")
    rows = costs.get("endpoint_costs") or []
    if not isinstance(rows, list):
        raise VenueBadResponse("Kalshi's endpoint_costs is not a list.")
    table = dict(DOCUMENTED_COSTS)
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("path"), str):
            raise VenueBadResponse("Kalshi's endpoint_costs holds a malformed row.")
        cost = _token_count(row.get("cost"), "endpoint cost")
        path = row["path"].removeprefix("/trade-api/v2")
        table[(str(row.get("method", "GET")).upper(), path)] = cost
    return KalshiBudget(
        tier=str(limits.get("usage_tier") or ""),
        read=_bucket_limit(limits, "read"),
        write=_bucket_limit(limits, "write"),
        default_cost=default,
        costs=table,
        fetched_at=now,
    )


# ---------------------------------------------------------------------------
# The client


def _load_private_key(private_key_pem: str) -> rsa.RSAPrivateKey:
    """The RSA key from its PEM text. Raises VenueAuthError without quoting the key."""
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # `from None`: the parser's own message is dropped with the PEM it looked at.
        raise VenueAuthError(
            "The Kalshi private key could not be read: give the unencrypted RSA private key "
            "(PEM) that Kalshi issued with the key id."
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise VenueAuthError("The Kalshi private key must be an RSA key.")
    return key


class KalshiClient:
    """One Kalshi account (or none: public data only) over one pooled HTTP client.

    Thread-safe: httpx.Client is, and the client holds no other mutable state.
    """

    def __init__(
        self,
        base_url: str,
        *,
        key_id: str | None = None,
        private_key_pem: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        rate_key: str | None = None,
        backoff_seconds: float = 0.5,
    ):
        """Raises VenueAuthError for a private key that cannot be read, or a key id without one."""
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path
        self.key_id = key_id
        if (key_id is None) != (private_key_pem is None):
            raise VenueAuthError("A Kalshi key needs both its key id and its private key.")
        self._private_key = None if private_key_pem is None else _load_private_key(private_key_pem)
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.rate_key = rate_key or key_id or "public"
        self._http = httpx.Client(timeout=timeout, headers={"Accept": "application/json"})
        self._budget: KalshiBudget | None = None
        self._budget_read_at = 0.0
        self._markets: dict[str, tuple[float, KalshiMarket]] = {}

    def __repr__(self) -> str:
        return f"<KalshiClient {self.base_url} key={self.key_id or '-'}>"

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    # -- signing and rate limiting ------------------------------------------------

    @staticmethod
    def _timestamp_ms() -> int:
        return int(time.time() * 1000)

    def _signed_headers(self, method: str, path: str) -> dict[str, str]:
        """The three auth headers for `method` on the full `path` (no query string)."""
        if self._private_key is None or self.key_id is None:
            raise VenueAuthError("No Kalshi API key is configured for this request.")
        timestamp = str(self._timestamp_ms())
        message = f"{timestamp}{method}{path}".encode()
        signature = self._private_key.sign(
            message,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
            hashes.SHA256(),
        )
        return {
            "KALSHI-ACCESS-KEY": self.key_id,
            "KALSHI-ACCESS-TIMESTAMP": timestamp,
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        }

    @property
    def budget_key(self) -> str:
        """This key's name in the shared budget: a digest, never the key itself."""
        return budget_key_for(self.rate_key)

    def budget(self) -> KalshiBudget:
        """This key's budget as shared by every process through Redis (`budget_refresh`
        writes it: when a key is linked, and daily), or the documented defaults."""
        now = time.time()
        cached = self._budget
        if cached is not None and now - self._budget_read_at < BUDGET_CACHE_SECONDS:
            return cached
        budget = stored_budget(self.budget_key) or KalshiBudget.documented()
        self._budget, self._budget_read_at = budget, now
        return budget

    def budget_refresh(self) -> KalshiBudget | None:
        """Read this key's tier and endpoint costs from Kalshi and share them; None (and
        a warning) when Kalshi cannot say: what is shared stays in force."""
        try:
            limits = self.request("GET", "/account/limits")
            costs = self.request("GET", "/account/endpoint_costs")
            budget = budget_from(limits, costs, now=time.time())
        except VenueError as exc:
            logger.warning("kalshi: could not read the budget of %s: %s", self.budget_key, exc)
            return None
        try:
            redis_client().set(
                redis_key("venue-budget", self.budget_key),
                budget.as_json(),
                ex=2 * BUDGET_MAX_AGE_SECONDS,
            )
        except Exception:
            logger.warning("kalshi: could not share the budget of %s", self.budget_key)
        self._budget, self._budget_read_at = budget, time.time()
        # What Kalshi's buckets hold now is not reported: ours start empty at the new rates.
        for method in ("GET", "POST"):
            key, rate, capacity = self._bucket(method)
            token_bucket_penalize(key, rate, capacity, seconds=0)
        return budget

    def _bucket(self, method: str) -> tuple[str, float, float]:
        """(bucket key, refill rate, capacity) of the bucket `method` spends."""
        budget = self.budget()
        kind = "read" if method == "GET" else "write"
        rate, capacity = budget.read if kind == "read" else budget.write
        return f"{self.budget_key}:{kind}", rate, capacity

    def _rate_wait(self, method: str, path: str) -> None:
        """Sleep until this request's tokens in the key's shared bucket are there."""
        cost = self.budget().cost(method, path)
        key, rate, capacity = self._bucket(method)
        wait = token_bucket_take(key, rate, capacity, cost)
        if wait > 0:
            time.sleep(wait)

    def _throttled(self, method: str, seconds: float) -> None:
        """A 429: every process of this key waits `seconds` before its next request."""
        key, rate, capacity = self._bucket(method)
        token_bucket_penalize(key, rate, capacity, seconds=seconds, event="429")

    # -- the request loop ------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        signed: bool = True,
    ) -> dict[str, Any]:
        """One API call; the decoded JSON object it answered.

        `path` is relative to the base URL (`/portfolio/balance`). GETs are
        retried on 429, 5xx, timeouts and connection errors (with backoff, a
        429's Retry-After honoured) up to max_retries; other methods only on
        429 (refused before any processing). Raises VenueRateLimited,
        VenueUnavailable, VenueAuthError (401; KalshiForbidden for 403),
        KalshiNotFound, KalshiConflict, KalshiRejected, VenueBadResponse, and
        for a non-GET whose outcome is unknown (timeout, 5xx, dropped
        connection) VenueTimeout.
        """
        method = method.upper()
        is_read = method == "GET"
        full_path = f"{self._base_path}{path}"
        url = f"{self.base_url}{path}"
        what = f"Kalshi {method} {path}"
        for attempt in range(self.max_retries + 1):
            self._rate_wait(method, path)
            headers = self._signed_headers(method, full_path) if signed else {}
            try:
                response = self._http.request(
                    method, url, params=params, json=body, headers=headers
                )
            except httpx.TimeoutException:
                if not is_read:
                    raise VenueTimeout(f"{what} timed out: the outcome is unknown.") from None
                failure = f"{what} timed out"
            except httpx.TransportError as exc:
                if not is_read:
                    raise VenueTimeout(
                        f"{what} lost the connection ({type(exc).__name__}): "
                        "the outcome is unknown."
                    ) from None
                failure = f"{what} failed to connect ({type(exc).__name__})"
            else:
                status = response.status_code
                if status == 429:
                    # Kalshi sends no Retry-After: back off exponentially with jitter,
                    # and the whole key's bucket with it.
                    wait = throttled_wait(
                        response,
                        what=what,
                        attempt=attempt,
                        max_retries=self.max_retries,
                        base_backoff=self.backoff_seconds,
                    )
                    if retry_after_seconds(response) is None:
                        wait = wait / 2 + random.uniform(0, wait / 2)  # noqa: S311 (jitter)
                    self._throttled(method, wait)
                    logger.warning("%s: 429, retrying in %.2fs", what, wait)
                    time.sleep(wait)
                    continue
                if status >= 500:
                    if not is_read:
                        raise VenueTimeout(f"{what} answered {status}: the outcome is unknown.")
                    failure = f"{what} answered {status}"
                else:
                    return self._decode(response, what, secret=headers.get(SIGNATURE_HEADER))
            if attempt < self.max_retries:
                wait = backoff_seconds(self.backoff_seconds, attempt)
                logger.warning("%s; retrying in %.2fs", failure, wait)
                time.sleep(wait)
        raise VenueUnavailable(f"{failure} ({self.max_retries + 1} attempts).")

    def _decode(
        self, response: httpx.Response, what: str, *, secret: str | None = None
    ) -> dict[str, Any]:
        status = response.status_code
        if status >= 400:
            code, message = _error_detail(response)
            if secret and secret in message:
                # Whatever the venue echoes, our signature does not travel on in a message.
                message = message.replace(secret, "[redacted]")
            message = message[:200]
            detail = f": {message}" if message else ""
            if status == 401:
                raise VenueAuthError(f"Kalshi refused the API key{detail}.")
            if status == 403:
                raise KalshiForbidden(f"Kalshi refused the API key for this request{detail}.")
            if status == 404:
                raise KalshiNotFound(f"{what}: not found{detail}.")
            if status == 409:
                raise KalshiConflict(f"{what}: conflict{detail}.")
            raise KalshiRejected(f"{what} was refused ({status}){detail}.", venue_code=code)
        try:
            data = _json_loads(response.text)
        except ValueError:
            raise VenueBadResponse(f"{what} answered something other than JSON.") from None
        if not isinstance(data, dict):
            raise VenueBadResponse(f"{what} answered JSON that is not an object.")
        if "error" in data and isinstance(data["error"], dict):
            # Kalshi has answered 2xx with an error body (e.g. a deprecated endpoint).
            _, message = _error_detail(response)
            raise VenueBadResponse(f"{what} answered an error: {message[:200] or 'unknown'}.")
        return data

    def paginate(
        self,
        path: str,
        item_key: str,
        *,
        params: dict[str, Any] | None = None,
        limit: int = PAGE_LIMIT,
        signed: bool = True,
    ) -> list[dict[str, Any]]:
        """Every item of a cursor-paged listing, all pages collected in order.

        Pages with `cursor` + `limit` until the answer's cursor is empty or
        null. Raises VenueBadResponse for a page without `item_key` or a
        cursor that repeats, and what `request` raises.
        """
        query = {key: value for key, value in (params or {}).items() if value is not None}
        query["limit"] = limit
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page = self.request("GET", path, params=query, signed=signed)
            # A present-but-null list is an empty page (Go encodes empty slices as null).
            batch = _field(page, item_key, f"{path} page") or []
            if not isinstance(batch, list):
                raise VenueBadResponse(f"Kalshi {path}: {item_key} is not a list.")
            items.extend(item for item in batch if isinstance(item, dict))
            cursor = page.get("cursor")
            if not cursor:
                return items
            cursor = str(cursor)
            if cursor in seen:
                raise VenueBadResponse(f"Kalshi {path} repeated a page cursor.")
            seen.add(cursor)
            query["cursor"] = cursor
        raise VenueBadResponse(f"Kalshi {path} did not stop paging after {MAX_PAGES} pages.")

    # -- portfolio -------------------------------------------------------------

    def balance(self) -> Decimal:
        """Cash available for trading, in dollars (`balance_dollars`; legacy cents as fallback)."""
        data = self.request("GET", "/portfolio/balance")
        return _dollars_or_cents(data, "balance", "balance answer")

    def positions(self) -> list[KalshiPosition]:
        """Every unsettled market position with a non-zero position, all pages."""
        rows = self.paginate(
            "/portfolio/positions", "market_positions", params={"count_filter": "position"}
        )
        positions = [_position_from(row) for row in rows]
        return [position for position in positions if position.position != ZERO]

    def fills(self, **filters: Any) -> list[dict[str, Any]]:
        """Every fill (filters: ticker, order_id, min_ts, max_ts), Decimal fields parsed."""
        return [
            decimalize(row) for row in self.paginate("/portfolio/fills", "fills", params=filters)
        ]

    def settlements(self, **filters: Any) -> list[dict[str, Any]]:
        """Every settlement (filters: ticker, event_ticker, min_ts, max_ts), Decimals parsed."""
        rows = self.paginate("/portfolio/settlements", "settlements", params=filters)
        return [decimalize(row) for row in rows]

    def api_keys(self) -> list[KalshiApiKey]:
        """The account's API keys with their scopes (`read`, `write`)."""
        data = self.request("GET", "/api_keys")
        keys = _field(data, "api_keys", "api keys answer")
        if not isinstance(keys, list):
            raise VenueBadResponse("Kalshi's api_keys is not a list.")
        return [
            KalshiApiKey(
                api_key_id=str(_field(key, "api_key_id", "api key")),
                name=str(key.get("name") or ""),
                scopes=tuple(str(scope) for scope in key.get("scopes") or ()),
            )
            for key in keys
            if isinstance(key, dict)
        ]

    # -- markets (public; signed when a key is configured) ---------------------

    @property
    def _sign_public(self) -> bool:
        return self._private_key is not None

    def markets(self, **filters: Any) -> list[dict[str, Any]]:
        """Every market matching `filters` (status, event_ticker, series_ticker, tickers, …)."""
        rows = self.paginate("/markets", "markets", params=filters, signed=self._sign_public)
        return [decimalize(row) for row in rows]

    def market(self, ticker: str) -> KalshiMarket:
        """One market by ticker. Raises KalshiNotFound for an unknown ticker."""
        data = self.request("GET", f"/markets/{ticker}", signed=self._sign_public)
        market = _field(data, "market", "market answer")
        if not isinstance(market, dict):
            raise VenueBadResponse("Kalshi's market is not an object.")
        return _market_from(market)

    def market_cached(self, ticker: str) -> KalshiMarket:
        """`market`, read at most every MARKET_CACHE_SECONDS: its tick grid rarely
        changes. Kept by the client, which the broker's orders share in a process
        (an adapter is made per call)."""
        cached = self._markets.get(ticker)
        if cached is not None and time.monotonic() - cached[0] < MARKET_CACHE_SECONDS:
            return cached[1]
        market = self.market(ticker)
        self._markets[ticker] = (time.monotonic(), market)
        return market

    def event(self, event_ticker: str) -> dict[str, Any]:
        """One event (title, series_ticker, …). Raises KalshiNotFound for an unknown ticker."""
        data = self.request("GET", f"/events/{event_ticker}", signed=self._sign_public)
        event = _field(data, "event", "event answer")
        if not isinstance(event, dict):
            raise VenueBadResponse("Kalshi's event is not an object.")
        return event

    def order_book(self, ticker: str) -> OrderBook:
        """The market's YES book, full depth (see `order_book_from`)."""
        data = self.request("GET", f"/markets/{ticker}/orderbook", signed=self._sign_public)
        return order_book_from(data)

    # -- orders ----------------------------------------------------------------

    def order_create(
        self,
        *,
        market: KalshiMarket,
        book_side: str,
        count: Decimal,
        price: Decimal,
        client_order_id: str,
        subaccount: int = 0,
        time_in_force: str = "immediate_or_cancel",
    ) -> KalshiOrderAck:
        """Send a Create Order V2 limit order on the YES book; return Kalshi's answer.

        `book_side` is `bid` (buy YES) or `ask` (sell YES, or buy NO at
        1 − `price`); `price` is the YES price in dollars. Both are checked
        against `market` before anything is sent: a price off the market's
        tick grid or a fractional count on a whole-contract market raises
        InvalidParams naming the tick. Self-trades cancel the taker; the order
        is cancelled if the exchange pauses while it rests. Not retried on
        timeouts, 5xx or dropped connections: those raise VenueTimeout and
        the caller reconciles by `client_order_id`. A duplicate
        client_order_id raises KalshiConflict; a refused order KalshiRejected.
        """
        if book_side not in ("bid", "ask"):
            raise InvalidParams("A Kalshi V2 order is a bid or an ask on the YES book.")
        tick = price_tick(market.price_ranges, price) if ZERO < price < ONE else None
        if tick is None or price % tick:
            raise InvalidParams(
                f"Price {price} is not on {market.ticker}'s tick grid"
                + (f" (ticks of {tick} there)." if tick is not None else ".")
            )
        step = Decimal("0.01") if market.fractional else CONTRACT
        if count <= ZERO or count % step:
            raise InvalidParams(
                f"{market.ticker} takes counts in steps of {step}"
                + ("." if market.fractional else ": whole contracts only.")
            )
        body = {
            "ticker": market.ticker,
            "client_order_id": client_order_id,
            "side": book_side,
            "count": f"{count:.2f}",
            "price": str(price.quantize(PRICE_FORMAT)),
            "time_in_force": time_in_force,
            "self_trade_prevention_type": "taker_at_cross",
            "cancel_order_on_pause": True,
            "subaccount": subaccount,
        }
        return _order_ack_from(self.request("POST", "/portfolio/events/orders", body=body))

    def order_fills_yes_average(self, order_id: str) -> tuple[Decimal, Decimal]:
        """(contracts filled, their average YES price) from the order's fills."""
        rows = self.paginate("/portfolio/fills", "fills", params={"order_id": order_id})
        filled = cost = ZERO
        for row in rows:
            count = parse_decimal(_field(row, "count_fp", "fill"), "fill count_fp")
            price = parse_decimal(_field(row, "yes_price_dollars", "fill"), "fill yes_price")
            filled += count
            cost += count * price
        return filled, (cost / filled if filled else ZERO)

    def order_get_by_client_id(
        self, client_order_id: str, *, ticker: str | None = None
    ) -> KalshiOrder | None:
        """The order sent as `client_order_id`, or None if Kalshi has none.

        GET /portfolio/orders has no client_order_id filter in Kalshi's
        docs, so this pages through the orders (of `ticker` when given) and
        matches it here.
        """
        rows = self.paginate("/portfolio/orders", "orders", params={"ticker": ticker})
        for row in rows:
            if row.get("client_order_id") == client_order_id:
                return _order_from(row)
        return None


# ---------------------------------------------------------------------------
# Tracking a user's linked account


def _base_url(environment: str) -> str:
    try:
        return settings.KALSHI_BASE_URLS[environment]
    except KeyError:
        raise InvalidParams(
            f"Unknown Kalshi environment {environment!r}: use 'production' or 'demo'."
        ) from None


class KalshiTracker:
    """A user's linked Kalshi key, read-only (trading.venues.tracking.TrackingClient)."""

    def __init__(self, client: KalshiClient):
        if client.key_id is None:
            raise VenueAuthError("Tracking a Kalshi account needs its API key.")
        self.client = client

    def credential_check(self) -> CredentialCheck:
        """Prove the key with a signed read and report its scopes.

        Reads GET /api_keys for this key's scopes (write implies read); when
        that endpoint is refused or missing, a signed GET /portfolio/balance
        proves the key instead and only `read` is claimed. Warns when the key
        can place orders. Raises VenueAuthError (the key is refused) or
        another VenueError.
        """
        key_id = self.client.key_id or ""
        try:
            keys = self.client.api_keys()
        except (KalshiForbidden, KalshiNotFound, KalshiRejected, VenueBadResponse):
            self.client.balance()
            self.client.budget_refresh()
            return CredentialCheck(identity=key_id, scopes=("read",))
        scopes: set[str] = set()
        for key in keys:
            if key.api_key_id == key_id:
                scopes = set(key.scopes)
        if "write" in scopes:
            scopes.add("read")
        ordered = tuple(scope for scope in ("read", "write") if scope in scopes) + tuple(
            sorted(scopes - {"read", "write"})
        )
        warnings = (WRITE_SCOPE_WARNING,) if "write" in scopes else ()
        self.client.budget_refresh()  # the key's tier and costs, as it is linked
        return CredentialCheck(identity=key_id, scopes=ordered, warnings=warnings)

    def account_fetch(self) -> TrackedAccount:
        """Cash and every open position, all pages collected, numbers as Decimal.

        Each position's market (and its event's title) is read once.
        Raises a VenueError.
        """
        cash = self.client.balance()
        markets: dict[str, KalshiMarket] = {}
        event_titles: dict[str, str] = {}
        positions = []
        for position in self.client.positions():
            market = markets.get(position.ticker)
            if market is None:
                market = markets[position.ticker] = self.client.market(position.ticker)
            if market.event_ticker and market.event_ticker not in event_titles:
                event_titles[market.event_ticker] = self._event_title(market.event_ticker)
            positions.append(
                tracked_position(
                    position, market, event_title=event_titles.get(market.event_ticker, "")
                )
            )
        return TrackedAccount(cash=cash, positions=tuple(positions))

    def _event_title(self, event_ticker: str) -> str:
        try:
            return str(self.client.event(event_ticker).get("title") or "")
        except KalshiNotFound:
            return ""


def tracked_position(
    position: KalshiPosition, market: KalshiMarket, *, event_title: str = ""
) -> TrackedPosition:
    """Our view of one Kalshi market position.

    position_fp > 0 holds YES contracts, < 0 NO contracts; quantity is its
    absolute value. Kalshi documents market_exposure as the "cost of the
    aggregate market position" (the money paid for the contracts still
    held, fees excluded — those are fees_paid), so the average price per
    contract is market_exposure / quantity, in the held outcome's terms
    (a NO position's exposure is what the NO contracts cost). The market
    carries its best YES bid and ask (`KalshiMarket.yes_top`) and last trade:
    the sync values the position from them, a NO one from the YES ask side.
    """
    outcome = Outcome.YES if position.position > ZERO else Outcome.NO
    quantity = abs(position.position)
    average = quantize_price(position.market_exposure / quantity)
    if not ZERO <= average <= ONE:
        # Not a price a binary contract can have: keep the sync going, clamped, and say so.
        logger.warning("kalshi: %s average price %s outside [0, 1]", position.ticker, average)
        average = min(max(average, ZERO), ONE)
    yes_bid, yes_ask = market.yes_top()
    last = market.last_price
    return TrackedPosition(
        market=TrackedMarket(
            venue_market_id=market.ticker,
            title=market.title,
            event_code=market.event_ticker,
            event_title=event_title,
            expires_at=market.close_time or market.expiration_time,
            is_open=market.is_open,
            yes_bid=yes_bid,
            yes_ask=yes_ask,
            last_price=last if last is not None and ZERO < last < ONE else None,
        ),
        outcome=outcome.value,
        quantity=quantity,
        average_price=average,
        realized_pnl=position.realized_pnl,
    )


def tracking_client(*, key_id: str, private_key_pem: str, environment: str) -> KalshiTracker:
    """The tracker for a user's Kalshi key in `environment` ("production" or "demo").

    The base URL comes from settings.KALSHI_BASE_URLS (defaults: Kalshi's
    hosts). Raises InvalidParams for an unknown environment and
    VenueAuthError for an unreadable private key. Sends nothing yet.
    """
    client = KalshiClient(
        _base_url(environment), key_id=key_id, private_key_pem=private_key_pem, rate_key=key_id
    )
    return KalshiTracker(client)


# ---------------------------------------------------------------------------
# The broker's own (custodial) trading on Kalshi

_broker_clients: dict[tuple[str, str, str], KalshiClient] = {}
_broker_lock = threading.Lock()


def broker_client() -> KalshiClient:
    """The pooled client for the broker's omnibus key (settings KALSHI_BROKER_*).

    One per configuration per process, so connections are reused across
    requests. Raises VenueAuthError when no broker key is configured.
    """
    key_id = settings.KALSHI_BROKER_KEY_ID
    pem = settings.KALSHI_BROKER_PRIVATE_KEY_PEM
    environment = settings.KALSHI_BROKER_ENVIRONMENT
    if not key_id or not pem:
        raise VenueAuthError("No Kalshi broker key is configured (KALSHI_BROKER_KEY_ID).")
    base_url = _base_url(environment)
    # Keyed by a digest: the cache never holds the PEM as a dictionary key.
    cache_key = (base_url, key_id, hashlib.sha256(pem.encode()).hexdigest())
    with _broker_lock:
        client = _broker_clients.get(cache_key)
        if client is None:
            client = KalshiClient(base_url, key_id=key_id, private_key_pem=pem, rate_key=key_id)
            _broker_clients[cache_key] = client
        return client


def _count_for(value: Decimal, market: KalshiMarket) -> Decimal:
    """`value` contracts rounded down to what the market takes (whole, or 0.01 steps)."""
    step = Decimal("0.01") if market.fractional else CONTRACT
    return (value / step).quantize(CONTRACT, rounding=ROUND_DOWN) * step


class KalshiVenue(VenueAdapter):
    """Kalshi as the broker trades on it, with its own key (binary markets, YES quoted)."""

    def __init__(self, code: str, *, client: KalshiClient | None = None):
        super().__init__(code)
        self._client = client

    @property
    def client(self) -> KalshiClient:
        if self._client is None:
            self._client = broker_client()
        return self._client

    def quote(self, listing: Listing) -> Quote:
        """The listing's YES quote from Kalshi's live order book.

        The mark is the mid; Kalshi publishes no TWAP, so one book snapshot
        gives twap = mark (the feed keeps the time-weighted history).
        Raises MarketDataUnavailable when Kalshi cannot be read or either
        side of the book is empty, ValueError for another venue's listing.
        """
        ticker = self.venue_symbol(listing)
        try:
            book = self.client.order_book(ticker)
        except VenueError as exc:
            raise MarketDataUnavailable(f"No Kalshi quote for {listing.key}: {exc}") from exc
        return book_quote(listing, book, venue_name="Kalshi")

    def market_order_place(
        self,
        listing: Listing,
        side: Side | str,
        *,
        notional: Decimal | None = None,
        quantity: Decimal | None = None,
        client_order_id: str,
        outcome: Outcome | None = None,
        worst_price: Decimal | None = None,
        fill_or_kill: bool = False,
    ) -> VenueOrder:
        """Send an immediate-or-cancel order (fill-or-kill with `fill_or_kill`) for
        `notional` dollars, or for `quantity` contracts; return Kalshi's record.

        Kalshi takes no market orders: this is Create Order V2's IOC limit on
        the YES book at the protective price. Buying YES or selling NO is a
        bid, selling YES or buying NO an ask; the limit is `worst_price` (the
        book walk's worst level without one), in YES terms, moved onto the
        market's tick grid the safe way (down for a bid, up for an ask).
        Counts are whole contracts, or 0.01 steps where the market allows,
        rounded down: `quantity`; else a buy takes notional / worst_price
        (never spending more than `notional`), a sell what the book walk
        says `notional` raises. The
        broker's account is an omnibus one, so orders are never reduce-only
        (an ask nets against YES the broker holds for other customers).
        Idempotent by `client_order_id`: an order already at Kalshi under
        that id is returned (looked up first, and on a 409). Whatever did not
        fill is cancelled by Kalshi at once; nothing filled is REJECTED with
        reject_code PRICE_LIMIT when a limit was given. Raises VenueTimeout
        when the outcome is unknown, and VenueError when nothing was sent or
        accepted.
        """
        order_size_check(notional, quantity)
        side = Side(side)
        outcome = outcome or Outcome.YES
        ticker = self.venue_symbol(listing)
        existing = self.client.order_get_by_client_id(client_order_id, ticker=ticker)
        if existing is not None:
            return self._venue_order(existing, outcome=outcome, worst_price=worst_price)
        market = self.client.market_cached(ticker)
        if notional is not None and side == Side.BUY and worst_price is not None:
            count = _count_for(notional / worst_price, market)
            limit = worst_price
        else:
            estimate = self.fill_market(
                listing, side, notional=notional, quantity=quantity, outcome=outcome
            )
            count = _count_for(estimate.quantity if quantity is None else quantity, market)
            limit = worst_price if worst_price is not None else estimate.worst_price
        if count <= ZERO or limit is None:
            size = f"{notional} USDC" if quantity is None else f"{quantity} contracts"
            return VenueOrder(
                client_order_id=client_order_id,
                venue_order_id="",
                status=VenueOrderStatus.REJECTED,
                reason=f"{size}: not one Kalshi contract can trade here now.",
            )
        bid = (side == Side.BUY) == (outcome == Outcome.YES)
        yes_limit = limit if outcome == Outcome.YES else ONE - limit
        yes_limit = price_on_grid(market.price_ranges, yes_limit, up=not bid)
        try:
            ack = self.client.order_create(
                market=market,
                book_side="bid" if bid else "ask",
                count=count,
                price=yes_limit,
                client_order_id=client_order_id,
                subaccount=settings.KALSHI_BROKER_SUBACCOUNT,
                time_in_force="fill_or_kill" if fill_or_kill else "immediate_or_cancel",
            )
        except KalshiConflict:
            order = self.client.order_get_by_client_id(client_order_id, ticker=ticker)
            if order is None:
                raise VenueTimeout(
                    f"Kalshi reports order {client_order_id} exists but does not list it."
                ) from None
            return self._venue_order(order, outcome=outcome, worst_price=worst_price)
        except KalshiRejected as exc:
            return VenueOrder(
                client_order_id=client_order_id,
                venue_order_id="",
                status=VenueOrderStatus.REJECTED,
                reason=exc.message,
            )
        common = {"client_order_id": client_order_id, "venue_order_id": ack.order_id}
        if ack.fill_count <= ZERO:
            return self._unfilled(common, worst_price=worst_price)
        average = ack.average_yes_price
        if average is None:
            _, average = self.client.order_fills_yes_average(ack.order_id)
        return self._filled(
            common,
            quantity=ack.fill_count,
            yes_average=average,
            outcome=outcome,
            partial=ack.fill_count < count,
        )

    def order_status(
        self, listing: Listing, *, client_order_id: str, outcome: Outcome | None = None
    ) -> VenueOrder | None:
        """Kalshi's record of the order sent as `client_order_id` (None: never received).

        `outcome` is the contract the order traded (YES by default): Kalshi's
        V2 records say only bid or ask. Raises VenueTimeout when Kalshi cannot
        answer (unavailable or rate-limited).
        """
        try:
            order = self.client.order_get_by_client_id(
                client_order_id, ticker=self.venue_symbol(listing)
            )
            if order is None:
                return None
            return self._venue_order(order, outcome=outcome or Outcome.YES, worst_price=None)
        except (VenueUnavailable, VenueRateLimited) as exc:
            raise VenueTimeout(f"Kalshi did not answer for {client_order_id}: {exc}") from exc

    def _venue_order(
        self, order: KalshiOrder, *, outcome: Outcome, worst_price: Decimal | None
    ) -> VenueOrder:
        """Map Kalshi's order record onto the adapter's VenueOrder (fills read for the price)."""
        common = {"client_order_id": order.client_order_id, "venue_order_id": order.order_id}
        if order.status == STATUS_RESTING:
            return VenueOrder(**common, status=VenueOrderStatus.PENDING)
        if order.status not in (STATUS_EXECUTED, STATUS_CANCELED):
            logger.warning("kalshi: order %s has unknown status %r", order.order_id, order.status)
            return VenueOrder(**common, status=VenueOrderStatus.PENDING)
        if order.fill_count <= ZERO:
            return self._unfilled(common, worst_price=worst_price)
        filled, average = self.client.order_fills_yes_average(order.order_id)
        if filled != order.fill_count:  # fills not all listed yet: ask again later
            return VenueOrder(**common, status=VenueOrderStatus.PENDING)
        return self._filled(
            common,
            quantity=order.fill_count,
            yes_average=average,
            outcome=outcome,
            partial=order.fill_count < order.initial_count,
        )

    @staticmethod
    def _filled(
        common: dict[str, str],
        *,
        quantity: Decimal,
        yes_average: Decimal,
        outcome: Outcome,
        partial: bool,
    ) -> VenueOrder:
        # One logical fill per order (immediate-or-cancel): the order id is the fill's id.
        average = yes_average if outcome == Outcome.YES else ONE - yes_average
        return VenueOrder(
            **common,
            status=VenueOrderStatus.FILLED,
            quantity=quantity,
            average_price=quantize_price(average),
            venue_fill_id=common["venue_order_id"],
            reason="Partially filled; the rest was cancelled." if partial else "",
        )

    @staticmethod
    def _unfilled(common: dict[str, str], *, worst_price: Decimal | None) -> VenueOrder:
        return VenueOrder(
            **common,
            status=VenueOrderStatus.REJECTED,
            reason="Kalshi could not fill the order within its limit price.",
            reject_code=PRICE_LIMIT if worst_price is not None else "",
        )
