"""A fake Polymarket: one loopback HTTP server speaking the Data API, Gamma and the CLOB.

`FakePolymarket` serves the three APIs under path prefixes of one server on
127.0.0.1 (`data_url`, `gamma_url`, `clob_url`), in the shapes Polymarket
sends (as recorded by its official bindings and documentation):

- Data API v2 `GET /v2/positions`: snake_case rows, decimals as JSON
  numbers, `{data, pagination: {limit, offset, has_more, next_cursor}}`
  with an opaque cursor (page size `limit`, capped like the real one).
- Gamma `GET /markets`, `GET /events`: camelCase, with `outcomes`,
  `outcomePrices` and `clobTokenIds` as JSON-encoded strings.
- CLOB `GET /book` (levels as {"price", "size"} strings, best level LAST on
  each side as on the live wire), `POST /books`, `/midpoint`, `/price`, the
  market parameters the official client reads (`/markets-by-token/{id}`,
  `/clob-markets/{condition}`, `/tick-size`, `/neg-risk`, `/version`), and
  the L2-authenticated `/auth/api-keys`, `/balance-allowance`, `POST /order`,
  `/data/order/{id}`, `/data/trades` and `POST /heartbeats`. A bad L2 HMAC,
  key or passphrase answers 401.

`POST /order` takes CLOB V2 orders only (examples/polymarket/post_order_v2.json):
the V1 fields `nonce`, `feeRateBps` and `taker`, any other field the V2 body
does not list, or a missing `timestamp`, `metadata` or `builder` answer 400
`{"error": ...}`; the EIP-712 signature is verified. FOK and FAK orders match
against the books all or nothing (FAK's partial fills are not modelled); a GTC
or GTD order that the book fills whole is matched, one that crosses nothing
rests `LIVE` (off the book: nothing matches against it), one that would fill in
part is refused. Each signer's order bucket (Standard tier: 40 a second, burst
60; one token per POST /order) sends `Poly-RateLimit-Remaining`, `-Reset` and
`-Tier`; an empty bucket answers 429 with `Retry-After`, or, with
`rate_limit_warning_mode` on, serves the order with `Poly-RateLimit-Warning: true`.

Heartbeats (the dead-man switch; examples/polymarket/heartbeats.json): `POST
/heartbeats` answers `{"status": "ok"}` and takes an optional JSON object body
(unknown keys ignored). Polymarket documents neither the timeout, nor whether
the switch is armed by the first heartbeat, nor whether it is per key or per
address; the fake assumes: once an address has sent a heartbeat, a gap longer
than `heartbeat_timeout_seconds` (default 10) cancels every open (`LIVE` or
`DELAYED`) order of that address, once; its next heartbeat arms it again.

Error injection: `fail_next(status, count, retry_after)`, `outage(True)`,
`lose_next_order_response()`, `delay_next_order()` (the order is accepted
`delayed` and stays open, as in a market with a matching delay); every request
is logged in `requests`. Time (heartbeats, buckets) comes from `clock`.
`seed_demo(fake)` loads a few realistic markets and a wallet's positions
(`manage.py run_fake_venues` serves it for `make run`).
"""

import base64
import hashlib
import hmac
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from trading.venues.fakes import LoopbackServer

USDC_UNITS = Decimal(10) ** 6
# CTF Exchange V2 on Polygon (as configured in py-clob-client-v2 1.2.1): the
# EIP-712 verifying contracts of ordinary and negative-risk markets.
EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
ORDER_V2_FIELDS = (
    ("salt", "uint256"),
    ("maker", "address"),
    ("signer", "address"),
    ("tokenId", "uint256"),
    ("makerAmount", "uint256"),
    ("takerAmount", "uint256"),
    ("side", "uint8"),
    ("signatureType", "uint8"),
    ("timestamp", "uint256"),
    ("metadata", "bytes32"),
    ("builder", "bytes32"),
)
SHARE_QUANTUM = Decimal("0.000001")
MAX_POSITIONS_PAGE = 500
DEFAULT_GAMMA_LIMIT = 20
L2_CLOCK_SKEW_SECONDS = 300
WALLET_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
FOK_KILLED = "order couldn't be fully filled. FOK orders are fully filled or killed."
INVALID_ORDER = "Invalid order payload"
# The POST /order body of CLOB V2 (post_order_v2.json): top-level fields, and the
# order's wire fields (the signed struct plus `expiration` and `signature`).
POST_ORDER_FIELDS = frozenset({"order", "owner", "orderType", "deferExec", "postOnly"})
ORDER_WIRE_FIELDS = (
    "salt",
    "maker",
    "signer",
    "tokenId",
    "makerAmount",
    "takerAmount",
    "side",
    "expiration",
    "signatureType",
    "timestamp",
    "metadata",
    "builder",
    "signature",
)
ORDER_V1_FIELDS = ("nonce", "feeRateBps", "taker")  # dropped by CLOB V2
ORDER_TYPES = ("GTC", "FOK", "GTD", "FAK")
RESTING_ORDER_TYPES = ("GTC", "GTD")
OPEN_ORDER_STATUSES = ("LIVE", "DELAYED")
# Per-signer order bucket of the Standard tier (trading-rate-limits page).
RATE_LIMIT_TIER = "Standard"
ORDER_RATE_PER_SECOND = 40.0
ORDER_BURST = 60.0
HEARTBEAT_TIMEOUT_SECONDS = 10.0  # an assumption: Polymarket states no timeout
HEARTBEAT_SWEEP_SECONDS = 0.05
_NUMBER = re.compile(r'"@@num:([-+0-9.eE]+)@@"')


class _Number:
    """A Decimal the fake sends as a JSON number (written exactly, never via float)."""

    def __init__(self, value: Decimal | str | int):
        self.text = str(Decimal(str(value)))


def _encode(value: Any) -> bytes:
    def default(obj: Any) -> Any:
        if isinstance(obj, _Number):
            return f"@@num:{obj.text}@@"
        if isinstance(obj, Decimal):
            return str(obj)
        raise TypeError(f"not JSON serializable: {type(obj).__name__}")

    return _NUMBER.sub(r"\1", json.dumps(value, default=default)).encode()


def token_id_for(slug: str, index: int) -> str:
    """A deterministic CLOB token id (a uint256 in decimal, like the real ones)."""
    return str(int(hashlib.sha256(f"{slug}:{index}".encode()).hexdigest(), 16))


def condition_id_for(slug: str) -> str:
    return "0x" + hashlib.sha256(f"condition:{slug}".encode()).hexdigest()


@dataclass
class RecordedRequest:
    service: str  # data / gamma / clob / ""
    method: str
    path: str  # relative to the service prefix, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: str
    at: float  # time.monotonic()


@dataclass
class FakeCredentials:
    api_key: str
    secret: str
    passphrase: str
    address: str
    balance: Decimal = Decimal(0)


@dataclass
class _Market:
    condition_id: str
    question: str
    slug: str
    event_slug: str
    outcomes: list[str]
    prices: list[Decimal]
    tokens: list[str]
    end_date: str
    closed: bool
    active: bool
    neg_risk: bool
    tick_size: Decimal
    gamma_id: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Event:
    id: str
    slug: str
    title: str
    end_date: str
    closed: bool = False


@dataclass
class _Book:
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    last_trade_price: Decimal | None = None


class _Reply(Exception):
    """Raised inside a route to answer at once."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _error(status: int, message: str) -> _Reply:
    return _Reply(status, {"error": message})


class FakePolymarket(LoopbackServer):
    """The three Polymarket APIs on one loopback server; state lives in memory.

    Thread-safe: every route runs under one lock. Use `with FakePolymarket()
    as fake:` (or start()/stop()).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        chain_id: int = 137,
        exchange_version: int = 2,
        heartbeat_timeout_seconds: float = HEARTBEAT_TIMEOUT_SECONDS,
        rate_limit_warning_mode: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(port=port)
        self.chain_id = chain_id
        self.exchange_version = exchange_version
        self.heartbeat_timeout_seconds = heartbeat_timeout_seconds
        # On: an empty order bucket serves the order with Poly-RateLimit-Warning
        # (Polymarket's warning mode) instead of refusing it with a 429.
        self.rate_limit_warning_mode = rate_limit_warning_mode
        self.order_rate = ORDER_RATE_PER_SECOND
        self.order_burst = ORDER_BURST
        # (address, order ids) of each cancellation by a lapsed heartbeat.
        self.heartbeat_cancellations: list[tuple[str, list[str]]] = []
        self._clock = clock
        self._heartbeats: dict[str, float] = {}  # address -> last heartbeat (clock)
        self._order_buckets: dict[str, tuple[float, float]] = {}  # signer -> (tokens, at)
        self._delay_orders = 0
        self._sweeping = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: dict[str, dict[str, Any]] = {}
        self.rejected_orders: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._markets: dict[str, _Market] = {}
        self._events: dict[str, _Event] = {}
        self._token_market: dict[str, str] = {}
        self._books: dict[str, _Book] = {}
        self._positions: dict[str, list[dict[str, Any]]] = {}
        self._credentials: dict[str, FakeCredentials] = {}
        self._failures: list[tuple[int, float | None, str | None, bytes | None]] = []
        self._outage = False
        self._lose_order_responses = 0
        self._order_responses: dict[str, dict[str, Any]] = {}

    @property
    def base_url(self) -> str:
        return self.origin

    @property
    def data_url(self) -> str:
        return f"{self.base_url}/data"

    @property
    def gamma_url(self) -> str:
        return f"{self.base_url}/gamma"

    @property
    def clob_url(self) -> str:
        return f"{self.base_url}/clob"

    # -- error injection and the request log ---------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        *,
        path: str | None = None,
        body: bytes | None = None,
    ) -> None:
        """Answer the next `count` requests (whose path contains `path`, if given) with `status`.

        With `retry_after`, the answers carry a Retry-After header (seconds);
        with `body`, that raw body instead of `{"error": ...}`.
        """
        with self._lock:
            self._failures.extend([(status, retry_after, path, body)] * count)

    def outage(self, on: bool = True) -> None:
        """While on, every request is answered 503."""
        with self._lock:
            self._outage = on

    def lose_next_order_response(self, count: int = 1) -> None:
        """Process the next `count` POST /order normally, then answer 504 (the answer is lost)."""
        with self._lock:
            self._lose_order_responses += count

    def delay_next_order(self, count: int = 1) -> None:
        """Accept the next `count` valid POST /order as `delayed`: not matched, left open."""
        with self._lock:
            self._delay_orders += count

    # -- the dead-man switch -----------------------------------------------------------

    def start(self) -> Self:
        """Serve, and cancel the open orders of lapsed heartbeats in the background."""
        super().start()
        with self._lock:
            if self._sweeper is None:
                self._sweeping.clear()
                self._sweeper = threading.Thread(
                    target=self._sweep, name="FakePolymarket-heartbeats", daemon=True
                )
                self._sweeper.start()
        return self

    def stop(self) -> None:
        self._sweeping.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
            self._sweeper = None
        super().stop()

    def _sweep(self) -> None:
        while not self._sweeping.wait(HEARTBEAT_SWEEP_SECONDS):
            self.expire_heartbeats()

    def last_heartbeat(self, address: str) -> float | None:
        """When (`clock`) `address` last sent a heartbeat; None when its switch is not armed."""
        with self._lock:
            return self._heartbeats.get(address.lower())

    def expire_heartbeats(self) -> list[str]:
        """Cancel the open orders of every address whose heartbeat lapsed; their ids.

        Runs in the background and before every request; tests that move
        `clock` may call it to see the effect at once.
        """
        with self._lock:
            now = self._clock()
            lapsed = [
                address
                for address, at in self._heartbeats.items()
                if now - at > self.heartbeat_timeout_seconds
            ]
            cancelled: list[str] = []
            for address in lapsed:
                del self._heartbeats[address]  # disarmed until its next heartbeat
                ids = [
                    order_id
                    for order_id, order in self.orders.items()
                    if order["status"] in OPEN_ORDER_STATUSES
                    and self._credentials[order["owner"]].address == address
                ]
                for order_id in ids:
                    self.orders[order_id]["status"] = "CANCELED"
                self.heartbeat_cancellations.append((address, ids))
                cancelled += ids
            return cancelled

    def requests_to(
        self, service: str, path: str, method: str | None = None
    ) -> list[RecordedRequest]:
        """The logged requests to `service` whose path starts with `path`."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.service == service
                and r.path.startswith(path)
                and (method is None or r.method == method)
            ]

    # -- state -------------------------------------------------------------------------

    def add_market(
        self,
        *,
        slug: str,
        question: str,
        event_slug: str,
        event_title: str,
        outcomes: Sequence[str] = ("Yes", "No"),
        prices: Sequence[str | Decimal] = ("0.5", "0.5"),
        token_ids: Sequence[str] | None = None,
        condition_id: str | None = None,
        end_date: str = "2026-12-31T12:00:00Z",
        closed: bool = False,
        active: bool = True,
        neg_risk: bool = False,
        tick_size: str | Decimal = "0.01",
        **extra: Any,
    ) -> str:
        """Add a binary market (and its event, if new); returns its condition id.

        Token ids are derived from the slug unless given. `extra` are raw
        Gamma fields served as given, over the built ones (a way to send a
        malformed `outcomePrices`, say).
        """
        with self._lock:
            condition_id = condition_id or condition_id_for(slug)
            tokens = list(token_ids or [token_id_for(slug, i) for i in range(len(outcomes))])
            if event_slug not in self._events:
                self._events[event_slug] = _Event(
                    id=str(20000 + len(self._events)),
                    slug=event_slug,
                    title=event_title,
                    end_date=end_date,
                )
            market = _Market(
                condition_id=condition_id,
                question=question,
                slug=slug,
                event_slug=event_slug,
                outcomes=list(outcomes),
                prices=[Decimal(str(p)) for p in prices],
                tokens=tokens,
                end_date=end_date,
                closed=closed,
                active=active,
                neg_risk=neg_risk,
                tick_size=Decimal(str(tick_size)),
                gamma_id=str(500000 + len(self._markets)),
                extra=extra,
            )
            self._markets[condition_id] = market
            for token in tokens:
                self._token_market[token] = condition_id
                self._books.setdefault(token, _Book())
            return condition_id

    def market_tokens(self, condition_id: str) -> list[str]:
        with self._lock:
            return list(self._markets[condition_id].tokens)

    def close_market(self, condition_id: str) -> None:
        """Mark a market closed (Gamma says so; its books are gone)."""
        with self._lock:
            self._markets[condition_id].closed = True

    def set_book(
        self,
        token_id: str,
        *,
        bids: Iterable[tuple[str | Decimal, str | Decimal]] = (),
        asks: Iterable[tuple[str | Decimal, str | Decimal]] = (),
    ) -> None:
        """Replace the resting liquidity of one token: (price, size) levels."""
        with self._lock:
            book = self._books.setdefault(token_id, _Book())
            book.bids = {Decimal(str(p)): Decimal(str(s)) for p, s in bids}
            book.asks = {Decimal(str(p)): Decimal(str(s)) for p, s in asks}

    def book_levels(self, token_id: str) -> tuple[list[tuple[Decimal, Decimal]], ...]:
        """(bids best first, asks best first) as the fake holds them now."""
        with self._lock:
            book = self._books[token_id]
            return (
                sorted(book.bids.items(), reverse=True),
                sorted(book.asks.items()),
            )

    def add_position(
        self,
        wallet: str,
        *,
        condition_id: str,
        outcome_index: int = 0,
        size: str | Decimal = "100",
        avg_price: str | Decimal = "0.5",
        current_price: str | Decimal | None = None,
        realized_pnl: str | Decimal = "0",
        status: str = "OPEN",
        **overrides: Any,
    ) -> dict[str, Any]:
        """Add one Data API v2 position row for `wallet`; returns the row as served."""
        with self._lock:
            market = self._markets[condition_id]
            event = self._events[market.event_slug]
            size = Decimal(str(size))
            avg = Decimal(str(avg_price))
            price = (
                Decimal(str(current_price))
                if current_price is not None
                else market.prices[outcome_index]
            )
            realized = Decimal(str(realized_pnl))
            entry = size * avg
            value = size * price
            other = 1 - outcome_index if len(market.outcomes) == 2 else outcome_index
            row: dict[str, Any] = {
                "proxy_wallet": wallet.lower(),
                "token_id": market.tokens[outcome_index],
                "condition_id": market.condition_id,
                "current_size": _Number(size),
                "avg_price": _Number(avg),
                "entry_cost_usdc": _Number(entry),
                "entry_fees_usdc": _Number(0),
                "total_cost_usdc": _Number(entry),
                "current_price": _Number(price),
                "current_value": _Number(value),
                "total_size": _Number(size),
                "realized_pnl": _Number(realized),
                "unrealized_pnl": _Number(value - entry),
                "total_pnl": _Number(value - entry + realized),
                "percent_pnl": _Number(((value - entry) / entry * 100) if entry else 0),
                "percent_realized_pnl": _Number(0),
                "status": status,
                "redeemable": status == "REDEEMABLE",
                "mergeable": False,
                "negative_risk": market.neg_risk,
                "archived": False,
                "title": market.question,
                "slug": market.slug,
                "icon": f"https://polymarket-upload.s3.us-east-2.amazonaws.com/{market.slug}.png",
                "event_id": event.id,
                "event_slug": event.slug,
                "outcome": market.outcomes[outcome_index],
                "outcome_index": outcome_index,
                "opposite_outcome": market.outcomes[other],
                "opposite_token_id": market.tokens[other],
                "end_date": market.end_date[:10],
                "last_event_at": 1_790_000_000,
                "name": "",
                "profile_image": "",
                "verified": False,
            }
            row.update(overrides)
            self._positions.setdefault(wallet.lower(), []).append(row)
            return row

    def register_credentials(
        self,
        *,
        address: str,
        balance: str | Decimal = "0",
        api_key: str | None = None,
        secret: str | None = None,
        passphrase: str | None = None,
    ) -> FakeCredentials:
        """Register CLOB L2 credentials for `address` (generated unless given)."""
        with self._lock:
            seed = hashlib.sha256(f"{address}:{len(self._credentials)}".encode()).digest()
            credentials = FakeCredentials(
                api_key=api_key or _uuid_from(seed),
                secret=secret or base64.urlsafe_b64encode(seed).decode(),
                passphrase=passphrase or hashlib.sha256(seed).hexdigest(),
                address=address.lower(),
                balance=Decimal(str(balance)),
            )
            self._credentials[credentials.api_key] = credentials
            return credentials

    def credentials(self, api_key: str) -> FakeCredentials:
        with self._lock:
            return self._credentials[api_key]

    # -- dispatch ----------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        """Answer one request: (status, body, headers)."""
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        service, _, rest = parts.path.lstrip("/").partition("/")
        path = "/" + rest
        text = body.decode("utf-8", errors="replace")
        with self._lock:
            self.expire_heartbeats()  # the venue's own clock runs whether or not it is asked
            self.requests.append(
                RecordedRequest(service, method, path, query, headers, text, time.monotonic())
            )
            try:
                if self._outage:
                    raise _error(503, "service unavailable")
                for i, (status, retry_after, only, raw) in enumerate(self._failures):
                    if only is None or only in path:
                        del self._failures[i]
                        extra = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
                        if raw is not None:
                            return status, raw, extra
                        raise _Reply(status, {"error": f"injected HTTP {status}"}, extra)
                routes = {"data": self._data, "gamma": self._gamma, "clob": self._clob}
                route = routes.get(service)
                if route is None:
                    raise _error(404, "not found")
                result = route(method, path, query, headers, text)
                return 200, _encode(result), {}
            except _Reply as reply:
                return reply.status, _encode(reply.body), reply.headers

    # -- Data API ------------------------------------------------------------------------

    def _data(self, method: str, path: str, query: dict, headers: dict, body: str) -> Any:
        if method == "GET" and path == "/v2/positions":
            return self._positions_page(query)
        raise _error(404, "not found")

    def _positions_page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        user = _one(query, "user")
        if not user:
            raise _error(400, "at least one of user or condition is required")
        if not WALLET_RE.fullmatch(user):
            raise _error(400, f"invalid user address: {user}")
        status = (_one(query, "status") or "OPEN").upper()
        if status not in ("OPEN", "REDEEMABLE", "CLOSED"):
            raise _error(400, f"invalid status: {status}")
        try:
            limit = int(_one(query, "limit") or 100)
        except ValueError:
            raise _error(400, "invalid limit") from None
        offset = 0
        cursor = _one(query, "cursor")
        if cursor:
            try:
                state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            except (ValueError, TypeError):
                raise _error(400, "invalid cursor") from None
            if state.get("u") != user.lower():
                raise _error(400, "cursor does not belong to this user")
            if _one(query, "status") and state.get("s") != status:
                raise _error(400, "status contradicts the cursor")
            status, offset, limit = state["s"], int(state["o"]), int(state["l"])
        if not 1 <= limit <= MAX_POSITIONS_PAGE:
            raise _error(400, f"limit must be between 1 and {MAX_POSITIONS_PAGE}")
        wanted = {"OPEN": ("OPEN", "REDEEMABLE")}.get(status, (status,))
        rows = [r for r in self._positions.get(user.lower(), []) if r["status"] in wanted]
        page = rows[offset : offset + limit]
        has_more = offset + limit < len(rows)
        next_cursor = None
        if has_more:
            state = {"u": user.lower(), "s": status, "o": offset + limit, "l": limit}
            next_cursor = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
        return {
            "data": page,
            "pagination": {
                "limit": limit,
                "offset": offset,
                "has_more": has_more,
                "next_cursor": next_cursor,
            },
        }

    # -- Gamma ---------------------------------------------------------------------------

    def _gamma(self, method: str, path: str, query: dict, headers: dict, body: str) -> Any:
        if method != "GET":
            raise _error(405, "method not allowed")
        if path == "/markets":
            markets = self._filter_markets(query)
            return [self._gamma_market(m, with_event=True) for m in _window(markets, query)]
        if path == "/events":
            events = list(self._events.values())
            slugs = query.get("slug")
            if slugs:
                events = [e for e in events if e.slug in slugs]
            closed = _bool(query, "closed")
            if closed is not None:
                events = [e for e in events if self._event_closed(e) == closed]
            return [self._gamma_event(e) for e in _window(events, query)]
        raise _error(404, "not found")

    def _filter_markets(self, query: dict[str, list[str]]) -> list[_Market]:
        markets = list(self._markets.values())
        ids = [c.lower() for c in query.get("condition_ids", [])]
        if ids:
            markets = [m for m in markets if m.condition_id.lower() in ids]
        tokens = query.get("clob_token_ids")
        if tokens:
            markets = [m for m in markets if set(m.tokens) & set(tokens)]
        slugs = query.get("slug")
        if slugs:
            markets = [m for m in markets if m.slug in slugs]
        closed = _bool(query, "closed")
        if closed is not None:
            markets = [m for m in markets if m.closed == closed]
        return markets

    def _event_closed(self, event: _Event) -> bool:
        markets = [m for m in self._markets.values() if m.event_slug == event.slug]
        return event.closed or (bool(markets) and all(m.closed for m in markets))

    def _gamma_market(self, market: _Market, *, with_event: bool) -> dict[str, Any]:
        event = self._events[market.event_slug]
        book = self._books.get(market.tokens[0], _Book())
        best_bid = max(book.bids, default=None)
        best_ask = min(book.asks, default=None)
        data: dict[str, Any] = {
            "id": market.gamma_id,
            "question": market.question,
            "conditionId": market.condition_id,
            "slug": market.slug,
            "resolutionSource": "",
            "endDate": market.end_date,
            "startDate": "2026-01-05T16:00:00Z",
            "image": f"https://polymarket-upload.s3.us-east-2.amazonaws.com/{market.slug}.png",
            "icon": f"https://polymarket-upload.s3.us-east-2.amazonaws.com/{market.slug}.png",
            "description": f"This market resolves according to: {market.question}",
            # Polymarket sends these three lists JSON-encoded inside the JSON.
            "outcomes": json.dumps(market.outcomes),
            "outcomePrices": json.dumps([str(p) for p in market.prices]),
            "clobTokenIds": json.dumps(market.tokens),
            "volume": "1284503.224311",
            "volumeNum": _Number("1284503.224311"),
            "liquidity": "48211.0904",
            "liquidityNum": _Number("48211.0904"),
            "active": market.active,
            "closed": market.closed,
            "archived": False,
            "acceptingOrders": market.active and not market.closed,
            "enableOrderBook": True,
            "negRisk": market.neg_risk,
            "orderPriceMinTickSize": _Number(market.tick_size),
            "orderMinSize": _Number(5),
            "endDateIso": market.end_date[:10],
            "umaResolutionStatus": "resolved" if market.closed else "",
            "bestBid": None if best_bid is None else _Number(best_bid),
            "bestAsk": None if best_ask is None else _Number(best_ask),
            "lastTradePrice": _Number(book.last_trade_price or market.prices[0]),
            **market.extra,
        }
        if with_event:
            data["events"] = [
                {"id": event.id, "slug": event.slug, "title": event.title, "ticker": event.slug}
            ]
        return data

    def _gamma_event(self, event: _Event) -> dict[str, Any]:
        markets = [m for m in self._markets.values() if m.event_slug == event.slug]
        return {
            "id": event.id,
            "ticker": event.slug,
            "slug": event.slug,
            "title": event.title,
            "endDate": event.end_date,
            "active": True,
            "closed": self._event_closed(event),
            "negRisk": any(m.neg_risk for m in markets),
            "markets": [self._gamma_market(m, with_event=False) for m in markets],
        }

    # -- CLOB --------------------------------------------------------------------------------

    def _clob(self, method: str, path: str, query: dict, headers: dict, body: str) -> Any:
        public = {
            ("GET", "/book"): lambda: self._book_answer(_required_param(query, "token_id")),
            ("POST", "/books"): lambda: [
                self._book_answer(str(item.get("token_id"))) for item in _json_list(body)
            ],
            ("GET", "/midpoint"): lambda: self._midpoint(_required_param(query, "token_id")),
            ("GET", "/price"): lambda: self._price(query),
            ("GET", "/version"): lambda: {"version": self.exchange_version},
            ("GET", "/time"): lambda: int(time.time()),
            ("GET", "/tick-size"): lambda: {
                "minimum_tick_size": _Number(self._market_of(query).tick_size)
            },
            ("GET", "/neg-risk"): lambda: {"neg_risk": self._market_of(query).neg_risk},
            ("GET", "/fee-rate"): lambda: {"base_fee": 0},
        }
        route = public.get((method, path))
        if route is not None:
            return route()
        if method == "GET" and path.startswith("/markets-by-token/"):
            token = path.rsplit("/", 1)[1]
            market = self._market_for_token(token)
            return {
                "condition_id": market.condition_id,
                "primary_token_id": market.tokens[0],
                "secondary_token_id": market.tokens[1] if len(market.tokens) > 1 else "",
            }
        if method == "GET" and path.startswith("/clob-markets/"):
            market = self._markets.get(path.rsplit("/", 1)[1])
            if market is None:
                raise _error(404, "market not found")
            return {
                "c": market.condition_id,
                "t": [
                    {"t": t, "o": o} for t, o in zip(market.tokens, market.outcomes, strict=True)
                ],
                "mts": _Number(market.tick_size),
                "mos": _Number(5),
                "nr": market.neg_risk,
                "fd": {"r": _Number(0), "e": _Number(0), "to": True},
            }
        credentials = self._authenticate(method, path, headers, body)
        if method == "GET" and path == "/auth/api-keys":
            return {"apiKeys": [credentials.api_key]}
        if method == "GET" and path == "/balance-allowance":
            asset_type = _one(query, "asset_type") or "COLLATERAL"
            if asset_type != "COLLATERAL":
                raise _error(400, "the fake only keeps COLLATERAL balances")
            units = (credentials.balance * USDC_UNITS).to_integral_value(rounding=ROUND_DOWN)
            return {
                "balance": str(units),
                "allowances": {self._exchange_address(False): str(2**255)},
            }
        if method == "POST" and path == "/order":
            limits = self._order_bucket_take(credentials.address)
            try:
                answer = self._order_post(credentials, body)
            except _Reply as reply:
                reply.headers = {**limits, **reply.headers}
                raise
            raise _Reply(200, answer, limits)
        if method == "POST" and path == "/heartbeats":
            return self._heartbeat(credentials, body)
        if method == "GET" and path.startswith("/data/order/"):
            order = self.orders.get(path.rsplit("/", 1)[1])
            if order is None or order["owner"] != credentials.api_key:
                raise _error(404, "order not found")
            return {k: v for k, v in order.items() if not k.startswith("_")}
        if method == "GET" and path == "/data/trades":
            wanted = query.get("id")
            rows = [
                t
                for t in self.trades.values()
                if t["owner"] == credentials.api_key and (not wanted or t["id"] in wanted)
            ]
            return {"limit": 100, "count": len(rows), "next_cursor": "LTE=", "data": rows}
        raise _error(404, "not found")

    def _authenticate(
        self, method: str, path: str, headers: dict[str, str], body: str
    ) -> FakeCredentials:
        """The credentials of a valid L2-signed request; 401 otherwise (never says which part)."""
        get = {k.upper(): v for k, v in headers.items()}.get
        credentials = self._credentials.get(get("POLY_API_KEY") or "")
        timestamp = get("POLY_TIMESTAMP") or ""
        if (
            credentials is None
            or not hmac.compare_digest(get("POLY_PASSPHRASE") or "", credentials.passphrase)
            or (get("POLY_ADDRESS") or "").lower() != credentials.address
            or not timestamp.isdigit()
            or abs(time.time() - int(timestamp)) > L2_CLOCK_SKEW_SECONDS
        ):
            raise _error(401, "Unauthorized/Invalid api key")
        key = base64.urlsafe_b64decode(credentials.secret)
        message = f"{timestamp}{method}{path}{body}".encode()
        expected = base64.urlsafe_b64encode(
            hmac.new(key, message, hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(expected, get("POLY_SIGNATURE") or ""):
            raise _error(401, "Unauthorized/Invalid api key")
        return credentials

    def _market_for_token(self, token: str) -> _Market:
        condition_id = self._token_market.get(token)
        if condition_id is None:
            raise _error(404, "market not found")
        return self._markets[condition_id]

    def _market_of(self, query: dict[str, list[str]]) -> _Market:
        return self._market_for_token(_required_param(query, "token_id"))

    def _book_answer(self, token: str) -> dict[str, Any]:
        market = self._market_for_token(token)
        if market.closed:
            raise _error(404, "No orderbook exists for the requested token id")
        book = self._books[token]
        # The live wire lists both sides best-LAST (bids ascending, asks descending).
        bids = [{"price": str(p), "size": str(s)} for p, s in sorted(book.bids.items())]
        asks = [
            {"price": str(p), "size": str(s)} for p, s in sorted(book.asks.items(), reverse=True)
        ]
        digest = hashlib.sha1(json.dumps([bids, asks]).encode(), usedforsecurity=False)
        return {
            "market": market.condition_id,
            "asset_id": token,
            "timestamp": str(int(time.time() * 1000)),
            "hash": digest.hexdigest(),
            "bids": bids,
            "asks": asks,
            "min_order_size": "5",
            "tick_size": str(market.tick_size),
            "neg_risk": market.neg_risk,
            "last_trade_price": str(book.last_trade_price or market.prices[0]),
        }

    def _midpoint(self, token: str) -> dict[str, Any]:
        self._market_for_token(token)
        book = self._books[token]
        if not book.bids or not book.asks:
            raise _error(404, "No orderbook exists for the requested token id")
        return {"mid": str((max(book.bids) + min(book.asks)) / 2)}

    def _price(self, query: dict[str, list[str]]) -> dict[str, Any]:
        token = _required_param(query, "token_id")
        side = (_one(query, "side") or "").upper()
        if side not in ("BUY", "SELL"):
            raise _error(400, "Invalid side")
        self._market_for_token(token)
        book = self._books[token]
        # As documented: BUY answers the best bid, SELL the best ask.
        levels = book.bids if side == "BUY" else book.asks
        if not levels:
            raise _error(404, "No orderbook exists for the requested token id")
        return {"price": str(max(levels) if side == "BUY" else min(levels))}

    def _exchange_address(self, neg_risk: bool) -> str:
        """The V2 exchange contract that settles the fake's orders (the EIP-712 domain)."""
        return NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2

    # -- orders --------------------------------------------------------------------------------

    def _order_bucket_take(self, signer: str, cost: float = 1.0) -> dict[str, str]:
        """Charge `cost` to the signer's order bucket; its Poly-RateLimit-* headers.

        Raises a 429 (with Retry-After) when the bucket cannot pay, unless
        `rate_limit_warning_mode` is on: then the request is served, charged
        (the balance goes negative) and flagged `Poly-RateLimit-Warning: true`.
        """
        now = self._clock()
        tokens, at = self._order_buckets.get(signer, (self.order_burst, now))
        tokens = min(self.order_burst, tokens + max(0.0, now - at) * self.order_rate)
        headers = {"Poly-RateLimit-Tier": RATE_LIMIT_TIER}
        if tokens < cost and not self.rate_limit_warning_mode:
            self._order_buckets[signer] = (tokens, now)
            wait = (cost - tokens) / self.order_rate
            headers.update(
                {
                    "Retry-After": str(max(1, math.ceil(wait))),
                    "Poly-RateLimit-Remaining": str(math.floor(tokens)),
                    # When enough tokens are expected for the refused request.
                    "Poly-RateLimit-Reset": str(math.ceil(time.time() + wait)),
                }
            )
            raise _Reply(429, {"error": "Too Many Requests"}, headers)
        if tokens < cost:
            headers["Poly-RateLimit-Warning"] = "true"
        tokens -= cost
        self._order_buckets[signer] = (tokens, now)
        # The end of the current wait period: now, unless the balance is negative.
        wait = max(0.0, -tokens) / self.order_rate
        headers["Poly-RateLimit-Remaining"] = str(math.floor(tokens))
        headers["Poly-RateLimit-Reset"] = str(math.ceil(time.time() + wait))
        return headers

    def _heartbeat(self, credentials: FakeCredentials, body: str) -> dict[str, Any]:
        """Arm (or keep armed) the dead-man switch of the credentials' address."""
        if body.strip():
            try:
                payload = json.loads(body)
            except ValueError:
                raise _error(400, "invalid JSON body") from None
            if not isinstance(payload, dict):
                raise _error(400, "invalid JSON body")
        self._heartbeats[credentials.address] = self._clock()
        return {"status": "ok"}

    def _order_post(self, credentials: FakeCredentials, body: str) -> dict[str, Any]:
        try:
            request = json.loads(body)
        except ValueError:
            raise _error(400, INVALID_ORDER) from None
        order_type, post_only = post_order_check(request)
        order = request["order"]
        try:
            token = str(order["tokenId"])
            side = str(order["side"]).upper()
            maker_amount = Decimal(str(order["makerAmount"])) / USDC_UNITS
            taker_amount = Decimal(str(order["takerAmount"])) / USDC_UNITS
        except (ValueError, TypeError, InvalidOperation):
            raise _error(400, INVALID_ORDER) from None
        if request.get("owner") != credentials.api_key:
            raise _error(400, "the order owner has to be the owner of the API KEY")
        if side not in ("BUY", "SELL") or maker_amount <= 0 or taker_amount <= 0:
            raise _error(400, INVALID_ORDER)
        market = self._market_for_token(token)
        if market.closed:
            raise _error(400, "the market is not yet ready to process new orders")
        try:
            typed = order_typed_data(
                order,
                chain_id=self.chain_id,
                verifying_contract=self._exchange_address(market.neg_risk),
                version=self.exchange_version,
            )
            order_id = order_hash(typed)
        except (KeyError, ValueError, TypeError):
            raise _error(400, INVALID_ORDER) from None
        if str(order.get("signer", "")).lower() != credentials.address:
            raise _error(400, "the order signer address has to be the address of the API KEY")
        if not _signature_valid(typed, order):
            raise _error(400, "invalid signature")
        previous = self._order_responses.get(order_id)
        if previous is not None:
            # The same signed order again: its first answer, never a second fill.
            return previous
        if side == "BUY" and maker_amount > credentials.balance:
            raise _error(400, "not enough balance / allowance")
        if self._delay_orders:
            self._delay_orders -= 1
            return self._order_open(credentials, order, order_type, order_id, "DELAYED")
        crosses = self._crosses(token, side, maker_amount, taker_amount)
        if post_only and crosses:
            raise _error(400, "invalid post-only order: order crosses book")
        fill = self._match(token, side, maker_amount, taker_amount) if crosses else None
        if fill is None and order_type in RESTING_ORDER_TYPES:
            if crosses:
                raise _error(400, "the fake does not partially fill resting orders")
            return self._order_open(credentials, order, order_type, order_id, "LIVE")
        if fill is None:
            self.rejected_orders.append({"id": order_id, "order": order, "reason": FOK_KILLED})
            raise _error(400, FOK_KILLED)
        shares, usdc, levels = fill
        # The exchange settles in 6-decimal base units (shares and collateral alike).
        shares = shares.quantize(Decimal(1) / USDC_UNITS, rounding=ROUND_DOWN)
        usdc = usdc.quantize(Decimal(1) / USDC_UNITS, rounding=ROUND_DOWN)
        if side == "BUY" and usdc > credentials.balance:
            raise _error(400, "not enough balance / allowance")
        book = self._books[token]
        for price, size in levels:
            side_levels = book.asks if side == "BUY" else book.bids
            side_levels[price] -= size
            if side_levels[price] <= 0:
                del side_levels[price]
            book.last_trade_price = price
        credentials.balance += -usdc if side == "BUY" else usdc
        average = usdc / shares
        trade_id = _uuid_from(hashlib.sha256(f"trade:{order_id}".encode()).digest())
        tx_hash = "0x" + hashlib.sha256(f"tx:{order_id}".encode()).hexdigest()
        now = int(time.time())
        outcome = market.outcomes[market.tokens.index(token)]
        self.orders[order_id] = {
            "id": order_id,
            "status": "MATCHED",
            "owner": credentials.api_key,
            "maker_address": order.get("maker"),
            "market": market.condition_id,
            "asset_id": token,
            "side": side,
            "original_size": str(shares),
            "size_matched": str(shares),
            "price": str(_limit_price(side, maker_amount, taker_amount)),
            "outcome": outcome,
            "expiration": str(order.get("expiration") or "0"),
            "order_type": order_type,
            "associate_trades": [trade_id],
            "created_at": now,
            "_signed_order": order,
            "_metadata": order.get("metadata"),
        }
        self.trades[trade_id] = {
            "id": trade_id,
            "taker_order_id": order_id,
            "market": market.condition_id,
            "asset_id": token,
            "side": side,
            "size": str(shares),
            "fee_rate_bps": "0",
            "price": str(average),
            "status": "CONFIRMED",
            "match_time": str(now),
            "last_update": str(now),
            "outcome": outcome,
            "bucket_index": 0,
            "owner": credentials.api_key,
            "maker_address": order.get("maker"),
            "transaction_hash": tx_hash,
            "trader_side": "TAKER",
            "maker_orders": [],
        }
        making, taking = (usdc, shares) if side == "BUY" else (shares, usdc)
        answer = {
            "success": True,
            "errorMsg": "",
            "orderID": order_id,
            "status": "matched",
            # 6-decimal fixed math, as the docs' SendOrderResponse gives them.
            "makingAmount": str(int(making * USDC_UNITS)),
            "takingAmount": str(int(taking * USDC_UNITS)),
            "transactionsHashes": [tx_hash],
            "tradeIDs": [trade_id],
        }
        self._order_responses[order_id] = answer
        if self._lose_order_responses:
            self._lose_order_responses -= 1
            raise _error(504, "gateway timeout")
        return answer

    def _order_open(
        self,
        credentials: FakeCredentials,
        order: dict[str, Any],
        order_type: str,
        order_id: str,
        status: str,
    ) -> dict[str, Any]:
        """Record an accepted order that did not match (`LIVE` or `DELAYED`); its answer."""
        side = str(order["side"]).upper()
        maker_amount = Decimal(str(order["makerAmount"])) / USDC_UNITS
        taker_amount = Decimal(str(order["takerAmount"])) / USDC_UNITS
        token = str(order["tokenId"])
        market = self._market_for_token(token)
        self.orders[order_id] = {
            "id": order_id,
            "status": status,
            "owner": credentials.api_key,
            "maker_address": order.get("maker"),
            "market": market.condition_id,
            "asset_id": token,
            "side": side,
            "original_size": str(taker_amount if side == "BUY" else maker_amount),
            "size_matched": "0",
            "price": str(_limit_price(side, maker_amount, taker_amount)),
            "outcome": market.outcomes[market.tokens.index(token)],
            "expiration": str(order.get("expiration") or "0"),
            "order_type": order_type,
            "associate_trades": [],
            "created_at": int(time.time()),
            "_signed_order": order,
            "_metadata": order.get("metadata"),
        }
        answer = {
            "success": True,
            "errorMsg": "",
            "orderID": order_id,
            "status": status.lower(),
            "makingAmount": "0",
            "takingAmount": "0",
        }
        self._order_responses[order_id] = answer
        return answer

    def open_orders(self, address: str | None = None) -> list[dict[str, Any]]:
        """The orders still open (`LIVE` or `DELAYED`), of `address` if given."""
        with self._lock:
            return [
                dict(order)
                for order in self.orders.values()
                if order["status"] in OPEN_ORDER_STATUSES
                and (
                    address is None or self._credentials[order["owner"]].address == address.lower()
                )
            ]

    def _crosses(self, token: str, side: str, maker_amount: Decimal, taker_amount: Decimal) -> bool:
        """Whether any resting level is at or better than the order's limit."""
        book = self._books[token]
        limit = _limit_price(side, maker_amount, taker_amount)
        if side == "BUY":
            return bool(book.asks) and min(book.asks) <= limit
        return bool(book.bids) and max(book.bids) >= limit

    def _match(
        self, token: str, side: str, maker_amount: Decimal, taker_amount: Decimal
    ) -> tuple[Decimal, Decimal, list[tuple[Decimal, Decimal]]] | None:
        """Fill-or-kill against the book: (shares, usdc, levels taken) or None (killed).

        A buy spends all `maker_amount` USDC at asks no dearer than
        maker/taker; a sell sells all `maker_amount` shares at bids no
        cheaper than taker/maker.
        """
        book = self._books[token]
        limit = _limit_price(side, maker_amount, taker_amount)
        taken: list[tuple[Decimal, Decimal]] = []
        shares = usdc = Decimal(0)
        if side == "BUY":
            remaining = maker_amount
            for price, size in sorted(book.asks.items()):
                if price > limit or remaining <= 0:
                    break
                take = min(size, (remaining / price).quantize(SHARE_QUANTUM, rounding=ROUND_DOWN))
                if take <= 0:
                    break
                taken.append((price, take))
                shares += take
                usdc += take * price
                remaining -= take * price
            # Whatever is left is dust below one share quantum at the last price.
            if not taken or remaining > taken[-1][0] * SHARE_QUANTUM:
                return None
        else:
            remaining = maker_amount
            for price, size in sorted(book.bids.items(), reverse=True):
                if price < limit or remaining <= 0:
                    break
                take = min(size, remaining)
                taken.append((price, take))
                shares += take
                usdc += take * price
                remaining -= take
            if remaining > 0:
                return None
        return shares, usdc, taken


def post_order_check(request: Any) -> tuple[str, bool]:
    """(orderType, postOnly) of a CLOB V2 POST /order body; 400 for anything else.

    Refused: the V1 order fields (`nonce`, `feeRateBps`, `taker`), fields the
    V2 body does not list, missing V2 fields, an unknown orderType and
    postOnly with FOK or FAK.
    """
    if not isinstance(request, dict) or not isinstance(request.get("order"), dict):
        raise _error(400, INVALID_ORDER)
    order = request["order"]
    v1 = [name for name in ORDER_V1_FIELDS if name in order]
    if v1:
        raise _error(
            400, f"{INVALID_ORDER}: {v1[0]} is a CLOB V1 order field; sign the order for V2"
        )
    unknown = sorted(set(order) - set(ORDER_WIRE_FIELDS)) + sorted(set(request) - POST_ORDER_FIELDS)
    if unknown:
        raise _error(400, f"{INVALID_ORDER}: unknown field {unknown[0]}")
    missing = [name for name in ORDER_WIRE_FIELDS if name not in order]
    if "owner" not in request:
        missing.append("owner")
    if missing:
        raise _error(400, f"{INVALID_ORDER}: {missing[0]} is required")
    order_type = request.get("orderType", "GTC")
    if order_type not in ORDER_TYPES:
        raise _error(400, f"{INVALID_ORDER}: unknown orderType {order_type}")
    post_only = request.get("postOnly", False)
    if not isinstance(post_only, bool) or not isinstance(request.get("deferExec", False), bool):
        raise _error(400, INVALID_ORDER)
    if post_only and order_type not in RESTING_ORDER_TYPES:
        raise _error(400, f"{INVALID_ORDER}: postOnly is only supported for GTC and GTD orders")
    return order_type, post_only


def order_typed_data(
    order: dict[str, Any], *, chain_id: int, verifying_contract: str, version: int = 2
) -> dict[str, Any]:
    """The EIP-712 typed data of a CTF Exchange V2 order in its posted JSON form.

    Laid out here from the exchange's Order struct, independently of the
    adapter (which asks the official client), so the fake checks the wire
    contract rather than repeating the adapter's code. Raises KeyError or
    ValueError for a malformed order.
    """
    side = str(order["side"]).upper()
    if side not in ("BUY", "SELL"):
        raise ValueError("side")
    return {
        "primaryType": "Order",
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Order": [{"name": name, "type": kind} for name, kind in ORDER_V2_FIELDS],
        },
        "domain": {
            "name": "Polymarket CTF Exchange",
            "version": str(version),
            "chainId": chain_id,
            "verifyingContract": verifying_contract,
        },
        "message": {
            "salt": int(order["salt"]),
            "maker": str(order["maker"]),
            "signer": str(order["signer"]),
            "tokenId": int(order["tokenId"]),
            "makerAmount": int(order["makerAmount"]),
            "takerAmount": int(order["takerAmount"]),
            "side": 0 if side == "BUY" else 1,
            "signatureType": int(order["signatureType"]),
            "timestamp": int(order["timestamp"]),
            "metadata": bytes.fromhex(str(order["metadata"]).removeprefix("0x").zfill(64)),
            "builder": bytes.fromhex(str(order["builder"]).removeprefix("0x").zfill(64)),
        },
    }


def order_hash(typed: dict[str, Any]) -> str:
    """The EIP-712 digest of typed data: the CLOB's order id."""
    message = encode_typed_data(full_message=typed)
    return "0x" + keccak(b"\x19" + message.version + message.header + message.body).hex()


def _limit_price(side: str, maker_amount: Decimal, taker_amount: Decimal) -> Decimal:
    return maker_amount / taker_amount if side == "BUY" else taker_amount / maker_amount


def _signature_valid(typed: dict[str, Any], order: dict[str, Any]) -> bool:
    """Whether an EOA order's EIP-712 signature recovers to its signer.

    Other signature types (proxy, safe, 1271 wallets) are accepted unchecked:
    their validity is an on-chain question the fake cannot answer.
    """
    if int(order.get("signatureType", 0)) != 0:
        return True
    try:
        recovered = Account.recover_message(
            encode_typed_data(full_message=typed), signature=order["signature"]
        )
    except (ValueError, TypeError, KeyError):
        return False
    return str(recovered).lower() == str(order.get("signer", "")).lower()


def _uuid_from(seed: bytes) -> str:
    h = seed.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _required_param(query: dict[str, list[str]], name: str) -> str:
    value = _one(query, name)
    if not value:
        raise _error(400, f"{name} is required")
    return value


def _bool(query: dict[str, list[str]], name: str) -> bool | None:
    value = _one(query, name)
    if value is None or value == "":
        return None
    return value.lower() == "true"


def _window(items: list[Any], query: dict[str, list[str]]) -> list[Any]:
    try:
        limit = int(_one(query, "limit") or DEFAULT_GAMMA_LIMIT)
        offset = int(_one(query, "offset") or 0)
    except ValueError:
        raise _error(422, "invalid limit or offset") from None
    return items[offset : offset + limit]


def _json_list(body: str) -> list[dict[str, Any]]:
    try:
        items = json.loads(body)
    except ValueError:
        raise _error(400, "invalid JSON body") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _error(400, "expected a list of objects")
    return items


class _Handler(BaseHTTPRequestHandler):
    fake: FakePolymarket
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: without TCP_NODELAY each
    # keep-alive answer waits out the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, extra = self.fake.handle(
            self.command, self.path, dict(self.headers.items()), body
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `fake.requests` instead of stderr."""


FakePolymarket.handler_class = _Handler  # defined after the fake it serves


# ---------------------------------------------------------------------------
# Demo data (`make run`)

DEMO_WALLET = "0x56687bf447db6ffa42ffe2204a05edaa20f55839"


@dataclass(frozen=True)
class DemoSeed:
    wallet: str
    credentials: FakeCredentials
    condition_ids: dict[str, str]  # market slug -> condition id


def seed_demo(fake: FakePolymarket) -> DemoSeed:
    """Load a few realistic markets with books, and a demo wallet's positions and CLOB keys.

    The wallet holds OPEN positions on both sides of Yes/No markets and on a
    team-named market, plus a REDEEMABLE and a CLOSED row (which tracking
    leaves out); its CLOB keys hold 2,500 USDC.
    """
    markets = [
        {
            "slug": "fed-cuts-rates-in-december-2026",
            "question": "Will the Fed cut interest rates at the December 2026 meeting?",
            "event_slug": "fed-decision-in-december-2026",
            "event_title": "Fed decision in December 2026",
            "prices": ("0.62", "0.38"),
            "end_date": "2026-12-09T19:00:00Z",
            "book": (("0.61", "0.60", "0.58"), ("0.63", "0.64", "0.66")),
        },
        {
            "slug": "bitcoin-above-150k-on-december-31-2026",
            "question": "Will Bitcoin be above $150,000 on December 31, 2026?",
            "event_slug": "bitcoin-above-on-december-31-2026",
            "event_title": "Bitcoin above ___ on December 31, 2026?",
            "prices": ("0.235", "0.765"),
            "end_date": "2026-12-31T17:00:00Z",
            "tick_size": "0.001",
            "book": (("0.234", "0.232", "0.229"), ("0.236", "0.238", "0.241")),
        },
        {
            "slug": "nba-lal-bos-2026-12-25",
            "question": "Lakers vs. Celtics",
            "event_slug": "nba-lal-bos-2026-12-25",
            "event_title": "Lakers vs. Celtics",
            "outcomes": ("Lakers", "Celtics"),
            "prices": ("0.44", "0.56"),
            "end_date": "2026-12-26T04:00:00Z",
            "book": (("0.43", "0.42", "0.40"), ("0.45", "0.46", "0.48")),
        },
        {
            "slug": "us-recession-in-2026",
            "question": "US recession in 2026?",
            "event_slug": "us-recession-in-2026",
            "event_title": "US recession in 2026?",
            "prices": ("0.07", "0.93"),
            "end_date": "2027-02-28T12:00:00Z",
            "book": (("0.06", "0.05"), ("0.08", "0.09")),
        },
        {
            "slug": "ecb-cuts-rates-in-october-2026",
            "question": "Will the ECB cut rates in October 2026?",
            "event_slug": "ecb-decision-in-october-2026",
            "event_title": "ECB decision in October 2026",
            "prices": ("0", "1"),
            "end_date": "2026-10-29T13:15:00Z",
            "closed": True,
        },
    ]
    ids: dict[str, str] = {}
    for spec in markets:
        spec = dict(spec)
        book = spec.pop("book", None)
        condition_id = fake.add_market(**spec)
        ids[spec["slug"]] = condition_id
        if book is not None:
            yes, no = fake.market_tokens(condition_id)
            bids, asks = book
            size = ("1500", "4200", "9000")
            fake.set_book(
                yes,
                bids=list(zip(bids, size, strict=False)),
                asks=list(zip(asks, size, strict=False)),
            )
            # The NO book mirrors YES: a NO bid at 1 − p is a YES ask at p.
            fake.set_book(
                no,
                bids=[(1 - Decimal(p), s) for p, s in zip(asks, size, strict=False)],
                asks=[(1 - Decimal(p), s) for p, s in zip(bids, size, strict=False)],
            )
    wallet = DEMO_WALLET
    fed, btc, nba, recession, ecb = (ids[m["slug"]] for m in markets)
    fake.add_position(wallet, condition_id=fed, outcome_index=0, size="1250", avg_price="0.54")
    fake.add_position(
        wallet,
        condition_id=btc,
        outcome_index=1,
        size="3000",
        avg_price="0.71",
        realized_pnl="42.5",
    )
    fake.add_position(wallet, condition_id=nba, outcome_index=1, size="400", avg_price="0.52")
    fake.add_position(wallet, condition_id=recession, outcome_index=1, size="5000", avg_price="0.9")
    fake.add_position(
        wallet, condition_id=ecb, outcome_index=1, size="800", avg_price="0.81", status="REDEEMABLE"
    )
    fake.add_position(
        wallet,
        condition_id=fed,
        outcome_index=1,
        size="0",
        avg_price="0.40",
        realized_pnl="-12.25",
        status="CLOSED",
    )
    credentials = fake.register_credentials(address=wallet, balance="2500")
    return DemoSeed(wallet=wallet, credentials=credentials, condition_ids=ids)
