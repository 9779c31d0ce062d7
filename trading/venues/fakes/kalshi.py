"""A fake Kalshi Trade API v2 on loopback, for tests and local runs.

`FakeKalshi` is a real HTTP server (stdlib ThreadingHTTPServer in a daemon
thread) answering under `http://127.0.0.1:<port>/trade-api/v2` in the shapes
Kalshi documents: fixed-point strings (`*_dollars` with 4 decimals, `*_fp`
with 2), cursor pagination (`cursor` + `limit`, default 100, empty cursor on
the last page) and errors as `{"error": {"code", "message", "details"}}`.

It verifies the real signature of every private request (and of any public
request that carries one): RSA-PSS/SHA-256 with the registered public key
over `timestamp + METHOD + path` (path without the query string), with the
timestamp no more than `max_skew_seconds` from now; anything else is a 401.
Orders come through Create Order V2 only (`POST /portfolio/events/orders`:
single-book `bid`/`ask` on the YES leg, fixed-point strings, the shapes of
`trading/venues/fakes/examples/kalshi/`); the legacy `POST /portfolio/orders`
is refused as Kalshi refuses it since June 2026, and so is any field the
V2 schema does not list, a count finer than the market allows and a price
off the market's `price_ranges` grid (stricter than Kalshi may be, to catch
our bugs). They need a key with the `write` scope (403 otherwise), match
against the order book at once (fill-or-kill, immediate-or-cancel or
resting), settle cash, fees and positions, and are deduplicated on
client_order_id (409).

Tests drive it with plain methods (`key_add`, `market_add`, `book_set`,
`position_set`, `fail_next`, `outage`, …) and read `requests` to see what
the client sent. State is plain Python behind one lock.
"""

import base64
import binascii
import json
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from trading.venues.fakes import LoopbackServer

BASE_PATH = "/trade-api/v2"
DEFAULT_LIMIT = 100
ONE = Decimal(1)
ZERO = Decimal(0)
CENT = Decimal("0.01")
FEE_RATE = Decimal("0.07")  # general markets: ceil_to_cent(0.07 × C × P × (1 − P))
STATUS_FILTERS = {  # GET /markets `status` filter → market statuses
    "unopened": {"initialized", "inactive"},
    "open": {"active"},
    "closed": {"closed"},
    "settled": {"determined", "finalized", "amended"},
}

Value = Decimal | int | str
PriceRanges = tuple[tuple[Decimal, Decimal, Decimal], ...]  # (start, end, step), dollars
LINEAR_CENT: PriceRanges = ((ZERO, ONE, CENT),)
V2_ORDER_FIELDS = {  # CreateOrderV2Request (docs.kalshi.com, create-order-v2, 3.26.0)
    "ticker",
    "client_order_id",
    "side",
    "count",
    "price",
    "time_in_force",
    "expiration_time",
    "self_trade_prevention_type",
    "post_only",
    "cancel_order_on_pause",
    "reduce_only",
    "subaccount",
    "order_group_id",
    "exchange_index",
}
V2_REQUIRED = (
    "ticker",
    "client_order_id",
    "side",
    "count",
    "price",
    "time_in_force",
    "self_trade_prevention_type",
)
TIMES_IN_FORCE = ("fill_or_kill", "immediate_or_cancel", "good_till_canceled")
SELF_TRADE_PREVENTION = ("taker_at_cross", "maker")
LEGACY_ORDERS_ANSWER = "Please switch to the V2 endpoints"
DEFAULT_COST = 10  # tokens (getting_started/rate_limits)
ENDPOINT_COSTS = (  # the non-default costs, as GET /account/endpoint_costs lists them
    ("GET", "/trade-api/v2/portfolio/orders/{order_id}", 2),
    ("DELETE", "/trade-api/v2/portfolio/events/orders/{order_id}", 2),
    ("DELETE", "/trade-api/v2/portfolio/events/orders/batched", 2),
)


def _d(value: Value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def dollars(value: Value) -> str:
    """A fixed-point dollar string as Kalshi sends it ("0.5600")."""
    return f"{_d(value):.4f}"


def fp(value: Value) -> str:
    """A fixed-point contract count as Kalshi sends it ("10.00")."""
    return f"{_d(value):.2f}"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rsa_key_pair() -> tuple[str, rsa.RSAPublicKey]:
    """A fresh 2048-bit RSA key: (private key as unencrypted PKCS#8 PEM, public key)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, private_key.public_key()


class _Reply(Exception):
    """An answer decided mid-request (an error, usually)."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _error(status: int, code: str, message: str, details: str = "") -> _Reply:
    return _Reply(status, {"error": {"code": code, "message": message, "details": details}})


@dataclass
class FakeKey:
    key_id: str
    public_key: rsa.RSAPublicKey
    scopes: tuple[str, ...]
    account: str
    name: str


@dataclass
class FakePosition:
    position: Decimal = ZERO  # > 0 YES contracts, < 0 NO contracts
    exposure: Decimal = ZERO  # cost of the contracts held
    realized_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    total_traded: Decimal = ZERO
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class FakeAccount:
    name: str
    balance: Decimal = ZERO
    positions: dict[str, FakePosition] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)  # newest first, wire shape
    settlements: list[dict[str, Any]] = field(default_factory=list)  # newest first, wire shape
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by client_order_id


@dataclass
class FakeMarket:
    ticker: str
    event_ticker: str
    title: str
    status: str = "active"
    close_time: datetime | None = None
    expiration_time: datetime | None = None
    yes_bid: Decimal | None = None
    yes_ask: Decimal | None = None
    last_price: Decimal | None = None
    yes_sub_title: str = ""
    result: str = ""
    price_level_structure: str = "linear_cent"
    price_ranges: PriceRanges = LINEAR_CENT
    fractional: bool = False  # accepts counts in 0.01 steps


def tick_of(ranges: PriceRanges, price: Decimal) -> Decimal | None:
    """The step of the band holding `price` (a band's end belongs to the next band)."""
    for start, end, step in ranges:
        if start <= price < end or (price == end == ranges[-1][1]):
            return step
    return None


@dataclass
class _Failure:
    status: int  # 0: drop the connection without answering
    remaining: int
    retry_after: float | None
    path: str | None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx pools connections
    fake: "FakeKalshi"

    def do_GET(self) -> None:
        self.fake._handle(self, "GET")

    def do_POST(self) -> None:
        self.fake._handle(self, "POST")

    def do_DELETE(self) -> None:
        self.fake._handle(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `FakeKalshi.requests` instead."""


class FakeKalshi(LoopbackServer):
    """A loopback Kalshi. `start()` it (or use it as a context manager), then use `base_url`."""

    handler_class = _Handler

    def __init__(self, *, port: int = 0, max_skew_seconds: float = 5.0):
        super().__init__(port=port)
        self.max_skew_seconds = max_skew_seconds
        self.requests: list[tuple[str, str, dict[str, str], str | None]] = []
        self.request_times: list[float] = []  # time.monotonic() of each entry in `requests`
        self._lock = threading.RLock()
        self._keys: dict[str, FakeKey] = {}
        self._accounts: dict[str, FakeAccount] = {}
        self._markets: dict[str, FakeMarket] = {}
        self._events: dict[str, dict[str, Any]] = {}
        self._books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
        self._failures: list[_Failure] = []
        self._outage = False
        # GET /account/limits and /account/endpoint_costs; enforced only when a test asks.
        self._tier = "basic"
        self._bucket_limits = {
            "read": (Decimal(200), Decimal(400)),
            "write": (Decimal(100), Decimal(100)),
        }
        self._enforce_limits = False
        self._buckets: dict[tuple[str, str], list[float]] = {}  # (key, kind) → [tokens, time]

    @property
    def base_url(self) -> str:
        return f"{self.origin}{BASE_PATH}"

    # -- state the tests set up ------------------------------------------------

    def key_add(
        self,
        key_id: str,
        public_key: rsa.RSAPublicKey,
        *,
        scopes: Iterable[str] = ("read",),
        account: str | None = None,
        name: str = "",
    ) -> FakeAccount:
        """Register an API key; return its account (created, or shared when `account` names one)."""
        account_name = account or key_id
        with self._lock:
            self._keys[key_id] = FakeKey(
                key_id=key_id,
                public_key=public_key,
                scopes=tuple(scopes),
                account=account_name,
                name=name or key_id,
            )
            return self._accounts.setdefault(account_name, FakeAccount(name=account_name))

    def key_remove(self, key_id: str) -> None:
        """Revoke a key: its requests are refused from now on."""
        with self._lock:
            self._keys.pop(key_id, None)

    def account(self, key_id: str) -> FakeAccount:
        """The account a key belongs to (mutate it under `with fake.lock:` from other threads)."""
        with self._lock:
            return self._accounts[self._keys[key_id].account]

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def balance_set(self, key_id: str, balance: Value) -> None:
        with self._lock:
            self.account(key_id).balance = _d(balance)

    def position_set(
        self,
        key_id: str,
        ticker: str,
        position: Value,
        exposure: Value,
        *,
        realized_pnl: Value = ZERO,
        fees_paid: Value = ZERO,
        total_traded: Value | None = None,
    ) -> None:
        """Set one market position: `position` > 0 YES contracts, < 0 NO; `exposure` its cost."""
        with self._lock:
            self.account(key_id).positions[ticker] = FakePosition(
                position=_d(position),
                exposure=_d(exposure),
                realized_pnl=_d(realized_pnl),
                fees_paid=_d(fees_paid),
                total_traded=_d(exposure if total_traded is None else total_traded),
            )

    def fill_add(self, key_id: str, fill: dict[str, Any]) -> None:
        """Record a fill (wire shape) as the newest of the account's fills."""
        with self._lock:
            self.account(key_id).fills.insert(0, fill)

    def settlement_add(
        self,
        key_id: str,
        ticker: str,
        *,
        market_result: str,
        yes_count: Value = ZERO,
        yes_total_cost: Value = ZERO,
        no_count: Value = ZERO,
        no_total_cost: Value = ZERO,
        fee_cost: Value = ZERO,
    ) -> None:
        """Record a settlement (revenue: $1 per winning contract) as the newest one."""
        winning = {"yes": _d(yes_count), "no": _d(no_count)}.get(market_result, ZERO)
        market = self._markets.get(ticker)
        with self._lock:
            self.account(key_id).settlements.insert(
                0,
                {
                    "ticker": ticker,
                    "event_ticker": market.event_ticker if market else "",
                    "market_result": market_result,
                    "yes_count": int(_d(yes_count)),
                    "yes_count_fp": fp(yes_count),
                    "yes_total_cost": int(_d(yes_total_cost) * 100),
                    "yes_total_cost_dollars": dollars(yes_total_cost),
                    "no_count": int(_d(no_count)),
                    "no_count_fp": fp(no_count),
                    "no_total_cost": int(_d(no_total_cost) * 100),
                    "no_total_cost_dollars": dollars(no_total_cost),
                    "revenue": int(winning * 100),
                    "settled_time": _iso(datetime.now(UTC)),
                    "fee_cost": dollars(fee_cost),
                    "value": 100 if market_result == "yes" else 0,
                },
            )

    def market_add(
        self,
        ticker: str,
        *,
        event_ticker: str,
        title: str,
        status: str = "active",
        close_time: datetime | None = None,
        expiration_time: datetime | None = None,
        yes_bid: Value | None = None,
        yes_ask: Value | None = None,
        last_price: Value | None = None,
        event_title: str | None = None,
        yes_sub_title: str = "",
        price_level_structure: str = "linear_cent",
        price_ranges: Iterable[tuple[Value, Value, Value]] | None = None,
        fractional: bool = False,
    ) -> FakeMarket:
        """Add (or replace) a market, and its event when `event_title` is given or new.

        `price_ranges`: the market's tick bands as (start, end, step) in dollars
        (default: one cent from 0 to 1); `fractional`: counts in 0.01 steps."""
        close = close_time or datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        market = FakeMarket(
            ticker=ticker,
            event_ticker=event_ticker,
            title=title,
            status=status,
            close_time=close,
            expiration_time=expiration_time or close,
            yes_bid=None if yes_bid is None else _d(yes_bid),
            yes_ask=None if yes_ask is None else _d(yes_ask),
            last_price=None if last_price is None else _d(last_price),
            yes_sub_title=yes_sub_title,
            price_level_structure=price_level_structure,
            price_ranges=LINEAR_CENT
            if price_ranges is None
            else tuple((_d(a), _d(b), _d(c)) for a, b, c in price_ranges),
            fractional=fractional,
        )
        with self._lock:
            self._markets[ticker] = market
            if event_title is not None or event_ticker not in self._events:
                self._events[event_ticker] = {
                    "event_ticker": event_ticker,
                    "series_ticker": event_ticker.split("-")[0],
                    "title": event_title or title,
                    "sub_title": "",
                    "category": "",
                    "mutually_exclusive": False,
                }
        return market

    def book_set(
        self,
        ticker: str,
        *,
        yes: Iterable[tuple[Value, Value]] = (),
        no: Iterable[tuple[Value, Value]] = (),
    ) -> None:
        """Replace a market's resting bids: `yes` and `no` as (price, contracts) pairs."""
        with self._lock:
            self._books[ticker] = {
                "yes": {_d(price): _d(size) for price, size in yes},
                "no": {_d(price): _d(size) for price, size in no},
            }

    def limits_set(
        self,
        *,
        read: tuple[Value, Value],
        write: tuple[Value, Value],
        tier: str = "basic",
        enforce: bool = True,
    ) -> None:
        """The token buckets (refill per second, capacity) every key gets, as
        GET /account/limits reports them; `enforce`: answer 429 once a bucket cannot
        cover a request's cost (Kalshi's body, no Retry-After)."""
        with self._lock:
            self._tier = tier
            self._bucket_limits = {
                "read": (_d(read[0]), _d(read[1])),
                "write": (_d(write[0]), _d(write[1])),
            }
            self._enforce_limits = enforce
            self._buckets.clear()

    def order_get(self, key_id: str, client_order_id: str) -> dict[str, Any] | None:
        """The order (wire shape) this key's account placed as `client_order_id`."""
        with self._lock:
            return self.account(key_id).orders.get(client_order_id)

    # -- error injection and the request log ---------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        *,
        path: str | None = None,
    ) -> None:
        """Answer the next `count` requests (to `path` below the base path, if given) with `status`.

        429 carries Retry-After when `retry_after` is given; 0 drops the
        connection without any answer (a lost response).
        """
        with self._lock:
            self._failures.append(_Failure(status, count, retry_after, path))

    def outage(self, on: bool = True) -> None:
        """While on, every request is answered 503."""
        with self._lock:
            self._outage = on

    def requests_clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.request_times.clear()

    def requests_to(self, path: str, method: str | None = None) -> list[tuple]:
        """Logged requests for `path` (below the base path), optionally of one method."""
        full = f"{BASE_PATH}{path}"
        with self._lock:
            return [
                entry
                for entry in self.requests
                if entry[1] == full and (method is None or entry[0] == method)
            ]

    # -- the HTTP side ---------------------------------------------------------------

    def _handle(self, handler: _Handler, method: str) -> None:
        split = urlsplit(handler.path)
        path = split.path
        query = {name: values[0] for name, values in parse_qs(split.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw_body = handler.rfile.read(length) if length else b""
        key_id = handler.headers.get("KALSHI-ACCESS-KEY")
        with self._lock:
            self.requests.append((method, path, query, key_id))
            self.request_times.append(time.monotonic())
            failure = self._failure_for(path)
            outage = self._outage
        try:
            if outage:
                raise _error(503, "service_unavailable", "Service temporarily unavailable")
            if failure is not None:
                if failure.status == 0:
                    handler.close_connection = True
                    return
                headers = {}
                if failure.retry_after is not None:
                    headers["Retry-After"] = f"{failure.retry_after:g}"
                if failure.status == 429:  # Kalshi's documented 429 body
                    raise _Reply(429, {"error": "too many requests"}, headers)
                raise _Reply(
                    failure.status,
                    {"error": {"code": f"http_{failure.status}", "message": "injected failure"}},
                    headers,
                )
            if not path.startswith(BASE_PATH + "/"):
                raise _error(404, "not_found", "not found")
            route = path[len(BASE_PATH) :]
            key = self._authenticate(handler, method, path, route)
            if key is not None:
                self._spend(key.key_id, method, route)
            body = self._json_body(raw_body) if method == "POST" else {}
            status, payload = self._route(method, route, query, body, key)
            self._send(handler, status, payload, {})
        except _Reply as reply:
            self._send(handler, reply.status, reply.body, reply.headers)
        except Exception as exc:
            # A bug in the fake answers 500 (with its name) rather than dropping the connection.
            body = {"error": {"code": "internal_server_error", "message": type(exc).__name__}}
            self._send(handler, 500, body, {})
            raise

    @staticmethod
    def _cost(method: str, route: str) -> int:
        """Tokens a request costs (GET /account/endpoint_costs; the default 10)."""
        parts = route.strip("/").split("/")
        for cost_method, template, cost in ENDPOINT_COSTS:
            pattern = template.removeprefix(BASE_PATH).strip("/").split("/")
            if (
                cost_method == method
                and len(pattern) == len(parts)
                and all(p == q or p.startswith("{") for p, q in zip(pattern, parts, strict=True))
            ):
                return cost
        return DEFAULT_COST

    def _spend(self, key_id: str, method: str, route: str) -> None:
        """Take the request's tokens from the key's bucket, or answer 429 (enforced only)."""
        with self._lock:
            if not self._enforce_limits:
                return
            kind = "read" if method == "GET" else "write"
            rate, capacity = (float(v) for v in self._bucket_limits[kind])
            now = time.monotonic()
            tokens, then = self._buckets.get((key_id, kind), [capacity, now])
            tokens = min(capacity, tokens + (now - then) * rate)
            cost = self._cost(method, route)
            if tokens < cost:
                self._buckets[(key_id, kind)] = [tokens, now]
                raise _Reply(429, {"error": "too many requests"}, {})
            self._buckets[(key_id, kind)] = [tokens - cost, now]

    def _failure_for(self, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.path is None or f"{BASE_PATH}{failure.path}" == path:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    @staticmethod
    def _send(
        handler: _Handler, status: int, payload: dict[str, Any], headers: dict[str, str]
    ) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _json_body(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise _error(400, "invalid_parameters", "The body is not JSON.") from None
        if not isinstance(body, dict):
            raise _error(400, "invalid_parameters", "The body is not a JSON object.")
        return body

    def _authenticate(
        self, handler: _Handler, method: str, path: str, route: str
    ) -> FakeKey | None:
        """The verified key, None for an unsigned public request; 401 otherwise."""
        key_id = handler.headers.get("KALSHI-ACCESS-KEY")
        timestamp = handler.headers.get("KALSHI-ACCESS-TIMESTAMP")
        signature = handler.headers.get("KALSHI-ACCESS-SIGNATURE")
        private = route.startswith(("/portfolio", "/api_keys", "/account"))
        if not private and not (key_id or timestamp or signature):
            return None
        if not (key_id and timestamp and signature):
            raise _error(401, "authentication_error", "Missing authentication headers.")
        with self._lock:
            key = self._keys.get(key_id)
        if key is None:
            raise _error(401, "authentication_error", "Unknown API key.")
        try:
            sent_ms = int(timestamp)
        except ValueError:
            raise _error(401, "authentication_error", "Malformed timestamp.") from None
        if abs(time.time() * 1000 - sent_ms) > self.max_skew_seconds * 1000:
            raise _error(401, "authentication_error", "Timestamp outside the allowed window.")
        try:
            raw_signature = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise _error(401, "authentication_error", "Malformed signature.") from None
        try:
            key.public_key.verify(
                raw_signature,
                f"{timestamp}{method}{path}".encode(),
                padding.PSS(
                    mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH
                ),
                hashes.SHA256(),
            )
        except InvalidSignature:
            raise _error(401, "authentication_error", "Invalid signature.") from None
        return key

    def _route(
        self,
        method: str,
        route: str,
        query: dict[str, str],
        body: dict[str, Any],
        key: FakeKey | None,
    ) -> tuple[int, dict[str, Any]]:
        parts = route.strip("/").split("/")
        with self._lock:
            if method == "GET":
                if route == "/api_keys":
                    return 200, self._api_keys(key)
                if route == "/portfolio/balance":
                    return 200, self._balance(key)
                if route == "/portfolio/positions":
                    return 200, self._positions(key, query)
                if route == "/portfolio/fills":
                    return 200, self._listing(key, query, "fills")
                if route == "/portfolio/settlements":
                    return 200, self._listing(key, query, "settlements")
                if route == "/portfolio/orders":
                    return 200, self._orders(key, query)
                if len(parts) == 3 and parts[:2] == ["portfolio", "orders"]:
                    return 200, self._order_by_id(key, parts[2])
                if route == "/markets":
                    return 200, self._markets_list(query)
                if len(parts) == 2 and parts[0] == "markets":
                    return 200, {"market": self._market_json(self._market(parts[1]))}
                if len(parts) == 3 and parts[0] == "markets" and parts[2] == "orderbook":
                    return 200, self._orderbook(parts[1])
                if len(parts) == 2 and parts[0] == "events":
                    event = self._events.get(parts[1])
                    if event is None:
                        raise _error(404, "not_found", "Event not found.")
                    return 200, {"event": event, "markets": []}
            if method == "GET" and route == "/account/limits":
                return 200, self._account_limits()
            if method == "GET" and route == "/account/endpoint_costs":
                return 200, {
                    "default_cost": DEFAULT_COST,
                    "endpoint_costs": [
                        {"method": m, "path": p, "cost": c} for m, p, c in ENDPOINT_COSTS
                    ],
                }
            if method == "POST" and route == "/portfolio/events/orders":
                return 201, self._order_create_v2(key, body)
            if method == "POST" and route == "/portfolio/orders":
                # Kalshi turned the legacy order writes off in June 2026 (changelog);
                # the status it answers with is not documented: 400 is assumed.
                raise _error(400, "endpoint_deprecated", LEGACY_ORDERS_ANSWER)
        raise _error(404, "not_found", f"No route for {method} {route}.")

    @staticmethod
    def _page(
        rows: list[dict[str, Any]], query: dict[str, str], *, max_limit: int
    ) -> tuple[list[dict[str, Any]], str]:
        """One page of `rows` and the cursor of the next ("" on the last page)."""
        try:
            limit = int(query.get("limit") or DEFAULT_LIMIT)
            start = (
                int(base64.urlsafe_b64decode(query["cursor"]).decode())
                if query.get("cursor")
                else 0
            )
        except (ValueError, binascii.Error):
            raise _error(400, "invalid_parameters", "Bad limit or cursor.") from None
        if not 1 <= limit <= max_limit or start < 0:
            raise _error(400, "invalid_parameters", f"limit must be within 1..{max_limit}.")
        end = start + limit
        cursor = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(rows) else ""
        return rows[start:end], cursor

    # -- endpoints -----------------------------------------------------------------

    def _account_of(self, key: FakeKey | None) -> FakeAccount:
        if key is None:  # private routes always authenticate; kept for type narrowing
            raise _error(401, "authentication_error", "Missing authentication headers.")
        return self._accounts[key.account]

    def _api_keys(self, key: FakeKey | None) -> dict[str, Any]:
        account = self._account_of(key)
        return {
            "api_keys": [
                {"api_key_id": other.key_id, "name": other.name, "scopes": list(other.scopes)}
                for other in self._keys.values()
                if other.account == account.name
            ]
        }

    def _balance(self, key: FakeKey | None) -> dict[str, Any]:
        account = self._account_of(key)
        value = ZERO
        for ticker, position in account.positions.items():
            market = self._markets.get(ticker)
            price = self._yes_value(market) if market else None
            if price is not None and position.position:
                held = price if position.position > 0 else ONE - price
                value += abs(position.position) * held
        return {
            "balance": int((account.balance * 100).to_integral_value(rounding=ROUND_FLOOR)),
            "balance_dollars": dollars(account.balance),
            "portfolio_value": int((value * 100).to_integral_value(rounding=ROUND_FLOOR)),
            "updated_ts": int(time.time()),
        }

    def _positions(self, key: FakeKey | None, query: dict[str, str]) -> dict[str, Any]:
        account = self._account_of(key)
        filters = {name for name in query.get("count_filter", "").split(",") if name}
        rows = []
        for ticker in sorted(account.positions):
            position = account.positions[ticker]
            if query.get("ticker") and ticker != query["ticker"]:
                continue
            market = self._markets.get(ticker)
            if query.get("event_ticker") and (
                market is None or market.event_ticker != query["event_ticker"]
            ):
                continue
            if filters and not (
                ("position" in filters and position.position != ZERO)
                or ("total_traded" in filters and position.total_traded != ZERO)
            ):
                continue
            rows.append(
                {
                    "ticker": ticker,
                    "exchange_index": 0,
                    "total_traded_dollars": dollars(position.total_traded),
                    "position_fp": fp(position.position),
                    "market_exposure_dollars": dollars(position.exposure),
                    "realized_pnl_dollars": dollars(position.realized_pnl),
                    "fees_paid_dollars": dollars(position.fees_paid),
                    "last_updated_ts": _iso(position.updated),
                }
            )
        page, cursor = self._page(rows, query, max_limit=1000)
        return {"market_positions": page, "event_positions": [], "cursor": cursor}

    def _listing(self, key: FakeKey | None, query: dict[str, str], kind: str) -> dict[str, Any]:
        account = self._account_of(key)
        rows = [
            row
            for row in getattr(account, kind)
            if not query.get("ticker") or row.get("ticker") == query["ticker"]
        ]
        if kind == "fills" and query.get("order_id"):
            rows = [row for row in rows if row.get("order_id") == query["order_id"]]
        page, cursor = self._page(rows, query, max_limit=200)
        return {kind: page, "cursor": cursor}

    def _orders(self, key: FakeKey | None, query: dict[str, str]) -> dict[str, Any]:
        account = self._account_of(key)
        rows = sorted(account.orders.values(), key=lambda row: row["created_time"], reverse=True)
        if query.get("ticker"):
            rows = [row for row in rows if row["ticker"] == query["ticker"]]
        if query.get("status"):
            rows = [row for row in rows if row["status"] == query["status"]]
        page, cursor = self._page(rows, query, max_limit=200)
        return {"orders": page, "cursor": cursor}

    def _order_by_id(self, key: FakeKey | None, order_id: str) -> dict[str, Any]:
        account = self._account_of(key)
        for order in account.orders.values():
            if order["order_id"] == order_id:
                return {"order": order}
        raise _error(404, "not_found", "Order not found.")

    def _market(self, ticker: str) -> FakeMarket:
        market = self._markets.get(ticker)
        if market is None:
            raise _error(404, "not_found", "Market not found.")
        return market

    def _markets_list(self, query: dict[str, str]) -> dict[str, Any]:
        markets = [self._markets[ticker] for ticker in sorted(self._markets)]
        if query.get("status"):
            wanted = STATUS_FILTERS.get(query["status"])
            if wanted is None:
                raise _error(400, "invalid_parameters", "Unknown status filter.")
            markets = [market for market in markets if market.status in wanted]
        if query.get("event_ticker"):
            events = set(query["event_ticker"].split(","))
            markets = [market for market in markets if market.event_ticker in events]
        if query.get("series_ticker"):
            markets = [
                market
                for market in markets
                if market.event_ticker.split("-")[0] == query["series_ticker"]
            ]
        if query.get("tickers"):
            tickers = set(query["tickers"].split(","))
            markets = [market for market in markets if market.ticker in tickers]
        page, cursor = self._page(
            [self._market_json(market) for market in markets], query, max_limit=1000
        )
        return {"markets": page, "cursor": cursor}

    def _best(self, ticker: str) -> tuple[Decimal | None, Decimal | None]:
        """(best YES bid, best YES ask) from the book, None where a side is empty."""
        book = self._books.get(ticker)
        if not book:
            return None, None
        yes_bid = max((p for p, s in book["yes"].items() if s > 0), default=None)
        no_bid = max((p for p, s in book["no"].items() if s > 0), default=None)
        return yes_bid, None if no_bid is None else ONE - no_bid

    def _yes_value(self, market: FakeMarket) -> Decimal | None:
        yes_bid, yes_ask = self._quoted(market)
        if yes_bid and yes_ask:
            return (yes_bid + yes_ask) / 2
        return market.last_price

    def _quoted(self, market: FakeMarket) -> tuple[Decimal | None, Decimal | None]:
        yes_bid, yes_ask = self._best(market.ticker)
        if market.ticker not in self._books:
            yes_bid, yes_ask = market.yes_bid, market.yes_ask
        return yes_bid, yes_ask

    def _market_json(self, market: FakeMarket) -> dict[str, Any]:
        yes_bid, yes_ask = self._quoted(market)
        bid = yes_bid or ZERO
        ask = yes_ask or ONE
        return {
            "ticker": market.ticker,
            "event_ticker": market.event_ticker,
            "market_type": "binary",
            "title": market.title,
            "subtitle": "",
            "yes_sub_title": market.yes_sub_title or market.title,
            "no_sub_title": market.yes_sub_title or market.title,
            "open_time": _iso(datetime(2026, 1, 1, tzinfo=UTC)),
            "close_time": _iso(market.close_time),
            "expected_expiration_time": _iso(market.expiration_time),
            "expiration_time": _iso(market.expiration_time),
            "latest_expiration_time": _iso(market.expiration_time),
            "status": market.status,
            "yes_bid_dollars": dollars(bid),
            "yes_ask_dollars": dollars(ask),
            "no_bid_dollars": dollars(ONE - ask),
            "no_ask_dollars": dollars(ONE - bid),
            "last_price_dollars": dollars(market.last_price or ZERO),
            "volume_fp": fp(0),
            "volume_24h_fp": fp(0),
            "open_interest_fp": fp(0),
            "liquidity_dollars": dollars(0),
            "notional_value_dollars": dollars(1),
            "result": market.result,
            "can_close_early": True,
            "rules_primary": "",
            "rules_secondary": "",
            "price_level_structure": market.price_level_structure,
            "price_ranges": [
                {"start": dollars(start), "end": dollars(end), "step": dollars(step)}
                for start, end, step in market.price_ranges
            ],
        }

    def _orderbook(self, ticker: str) -> dict[str, Any]:
        self._market(ticker)
        book = self._books.get(ticker, {"yes": {}, "no": {}})

        def levels(side: dict[Decimal, Decimal]) -> list[list[str]]:
            # Kalshi lists each side ascending: the best bid is the last level.
            return [[dollars(price), fp(size)] for price, size in sorted(side.items()) if size > 0]

        return {
            "orderbook_fp": {"yes_dollars": levels(book["yes"]), "no_dollars": levels(book["no"])}
        }

    # -- orders --------------------------------------------------------------------

    def _account_limits(self) -> dict[str, Any]:
        def bucket(kind: str) -> dict[str, int]:
            rate, capacity = self._bucket_limits[kind]
            return {"refill_rate": int(rate), "bucket_capacity": int(capacity)}

        return {
            "usage_tier": self._tier,
            "read": bucket("read"),
            "write": bucket("write"),
            "grants": [],
        }

    def _order_create_v2(self, key: FakeKey | None, body: dict[str, Any]) -> dict[str, Any]:
        """Create Order V2: validate as strictly as the documented schema allows, match at
        once, store the Order (V2 shape) and answer CreateOrderV2Response."""
        account = self._account_of(key)
        assert key is not None
        if "write" not in key.scopes:
            raise _error(403, "forbidden", "This API key does not have the write scope.")
        unknown = sorted(set(body) - V2_ORDER_FIELDS)
        if unknown:
            raise _error(400, "invalid_parameters", f"Unknown field(s): {', '.join(unknown)}.")
        missing = [name for name in V2_REQUIRED if body.get(name) in (None, "")]
        if missing:
            raise _error(400, "invalid_parameters", f"Missing field(s): {', '.join(missing)}.")
        client_order_id = str(body["client_order_id"])
        if client_order_id in account.orders:
            raise _error(
                409, "order_already_exists", "An order with this client_order_id already exists."
            )
        market = self._market(str(body["ticker"]))
        book_side = body["side"]
        if book_side not in ("bid", "ask"):
            raise _error(400, "invalid_parameters", "side must be bid or ask (the YES leg).")
        count = self._fixed_point(body, "count", places=2)
        price = self._fixed_point(body, "price", places=4)
        if count <= 0 or (count != count.to_integral_value() and not market.fractional):
            raise _error(
                400,
                "invalid_parameters",
                "count must be a positive whole number"
                + ("" if market.fractional else ": this market takes no fractional contracts."),
            )
        step = tick_of(market.price_ranges, price) if ZERO < price < ONE else None
        if step is None or price % step:
            raise _error(
                400, "invalid_parameters", f"price {price} is not on the market's tick grid."
            )
        tif = body["time_in_force"]
        if tif not in TIMES_IN_FORCE:
            raise _error(400, "invalid_parameters", "Unknown time_in_force.")
        if body["self_trade_prevention_type"] not in SELF_TRADE_PREVENTION:
            raise _error(400, "invalid_parameters", "Unknown self_trade_prevention_type.")
        subaccount = body.get("subaccount", 0)
        if isinstance(subaccount, bool) or not isinstance(subaccount, int) or subaccount < 0:
            raise _error(400, "invalid_parameters", "subaccount must be an integer ≥ 0.")
        if market.status != "active":
            raise _error(400, "market_closed", "The market is not open for trading.")
        # The YES book: a bid buys YES; an ask sells YES held, else buys NO at 1 − price.
        held = account.positions.get(market.ticker, FakePosition()).position
        if book_side == "bid":
            side, action, own_price = "yes", "buy", price
        elif held >= count:
            side, action, own_price = "yes", "sell", price
        else:
            side, action, own_price = "no", "buy", ONE - price
        order, fills = self._order_execute(
            account,
            market,
            side=side,
            action=action,
            count=count,
            price=own_price,
            tif=tif,
            client_order_id=client_order_id,
            book_side=book_side,
            body=body,
        )
        answer = {
            "order_id": order["order_id"],
            "client_order_id": client_order_id,
            "fill_count": order["fill_count_fp"],
            "remaining_count": order["remaining_count_fp"],
            "ts_ms": int(time.time() * 1000),
        }
        filled = sum((q for _, q in fills), ZERO)
        if filled:
            yes_cost = sum(((p if side == "yes" else ONE - p) * q for p, q in fills), ZERO)
            fees = Decimal(order["taker_fees_dollars"])
            answer["average_fill_price"] = dollars(yes_cost / filled)
            answer["average_fee_paid"] = dollars(fees / filled)
        return answer

    @staticmethod
    def _fixed_point(body: dict[str, Any], name: str, *, places: int) -> Decimal:
        """A FixedPoint string field with at most `places` decimals (400 otherwise)."""
        raw = body.get(name)
        if not isinstance(raw, str):
            raise _error(400, "invalid_parameters", f"{name} must be a fixed-point string.")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise _error(400, "invalid_parameters", f"Unreadable {name}.") from None
        if not value.is_finite() or -value.as_tuple().exponent > places:
            raise _error(400, "invalid_parameters", f"{name} takes at most {places} decimals.")
        return value

    def _order_execute(
        self,
        account: FakeAccount,
        market: FakeMarket,
        *,
        side: str,
        action: str,
        count: Decimal,
        price: Decimal,
        tif: str,
        client_order_id: str,
        book_side: str,
        body: dict[str, Any],
    ) -> tuple[dict[str, Any], list[tuple[Decimal, Decimal]]]:
        """Match an order (`price` in `side`'s terms) against the book, settle it and store
        it in the V2 Order shape; (the order, its fills as (price, contracts))."""
        ticker = market.ticker
        levels = self._matchable(ticker, side, action, price)
        available = sum(size for _, size, _ in levels)
        to_fill = ZERO if tif == "fill_or_kill" and available < count else min(count, available)
        fills: list[tuple[Decimal, Decimal]] = []
        remaining = to_fill
        for level_price, size, _ in levels:
            if remaining <= 0:
                break
            take = min(size, remaining)
            fills.append((level_price, take))
            remaining -= take
        cost = sum((p * q for p, q in fills), ZERO)
        fee = (
            FEE_RATE * sum((q * p * (ONE - p) for p, q in fills), ZERO) / CENT
        ).to_integral_value(rounding=ROUND_CEILING) * CENT
        if action == "buy" and cost + fee > account.balance:
            raise _error(400, "insufficient_balance", "Insufficient balance.")
        for (_, take), (_, _, consume) in zip(fills, levels, strict=False):
            consume(take)
        filled = sum((q for _, q in fills), ZERO)
        if filled:
            self._position_apply(account, ticker, side, action, filled, cost, fee)
            market.last_price = fills[-1][0] if side == "yes" else ONE - fills[-1][0]
        now = _iso(datetime.now(UTC))
        left = count - filled
        status = (
            "executed" if left == 0 else "resting" if tif == "good_till_canceled" else "canceled"
        )
        yes_price = price if side == "yes" else ONE - price
        outcome_side = "yes" if book_side == "bid" else "no"
        order = {
            "order_id": str(uuid.uuid4()),
            "user_id": account.name,
            "client_order_id": client_order_id,
            "ticker": ticker,
            "outcome_side": outcome_side,
            "book_side": book_side,
            "type": "limit",
            "status": status,
            "yes_price_dollars": dollars(yes_price),
            "no_price_dollars": dollars(ONE - yes_price),
            "fill_count_fp": fp(filled),
            "remaining_count_fp": fp(left if status == "resting" else 0),
            "initial_count_fp": fp(count),
            "taker_fill_cost_dollars": dollars(cost),
            "maker_fill_cost_dollars": dollars(0),
            "taker_fees_dollars": dollars(fee),
            "maker_fees_dollars": dollars(0),
            "expiration_time": None,
            "created_time": now,
            "last_update_time": now,
            "self_trade_prevention_type": body["self_trade_prevention_type"],
            "order_group_id": body.get("order_group_id"),
            "cancel_order_on_pause": bool(body.get("cancel_order_on_pause", False)),
            "subaccount_number": body.get("subaccount", 0),
            "exchange_index": 0,
        }
        account.orders[client_order_id] = order
        for fill_price, take in fills:
            fill_yes = fill_price if side == "yes" else ONE - fill_price
            account.fills.insert(
                0,
                {
                    "fill_id": str(uuid.uuid4()),
                    "trade_id": str(uuid.uuid4()),
                    "order_id": order["order_id"],
                    "client_order_id": client_order_id,
                    "ticker": ticker,
                    "market_ticker": ticker,
                    "outcome_side": outcome_side,
                    "book_side": book_side,
                    "count_fp": fp(take),
                    "yes_price_dollars": dollars(fill_yes),
                    "no_price_dollars": dollars(ONE - fill_yes),
                    "is_taker": True,
                    "created_time": now,
                    "fee_cost": dollars(0),
                    "subaccount_number": body.get("subaccount", 0),
                    "ts": int(time.time()),
                },
            )
        if account.fills and fills:
            account.fills[0]["fee_cost"] = dollars(fee)
        return order, fills

    def _matchable(
        self, ticker: str, side: str, action: str, limit: Decimal
    ) -> list[tuple[Decimal, Decimal, Any]]:
        """Levels the order may take, best first: (price in the order's side, size, consume)."""
        book = self._books.get(ticker)
        if book is None:
            return []
        other = "no" if side == "yes" else "yes"
        levels = []
        if action == "buy":
            # Buying YES at p takes a NO bid at 1 − p (and vice versa).
            for bid, size in sorted(book[other].items(), reverse=True):
                if size > 0 and ONE - bid <= limit:
                    levels.append((ONE - bid, size, self._consumer(book[other], bid)))
        else:
            for bid, size in sorted(book[side].items(), reverse=True):
                if size > 0 and bid >= limit:
                    levels.append((bid, size, self._consumer(book[side], bid)))
        return levels

    @staticmethod
    def _consumer(levels: dict[Decimal, Decimal], price: Decimal) -> Any:
        def consume(quantity: Decimal) -> None:
            levels[price] -= quantity
            if levels[price] <= 0:
                del levels[price]

        return consume

    @staticmethod
    def _position_apply(
        account: FakeAccount,
        ticker: str,
        side: str,
        action: str,
        quantity: Decimal,
        cost: Decimal,
        fee: Decimal,
    ) -> None:
        """Book a fill: cash, fees, and the netted position (YES and NO pairs redeem at $1)."""
        position = account.positions.setdefault(ticker, FakePosition())
        sign = ONE if side == "yes" else -ONE
        held = position.position * sign  # contracts of `side` held (< 0: the other side)
        position.fees_paid += fee
        position.total_traded += cost
        position.updated = datetime.now(UTC)
        account.balance -= fee
        if action == "sell":
            removed = position.exposure * quantity / held
            account.balance += cost
            position.realized_pnl += cost - removed
            position.exposure -= removed
            position.position -= sign * quantity
            return
        account.balance -= cost
        if held >= 0:
            position.exposure += cost
            position.position += sign * quantity
            return
        # Buying the other side of what is held: pairs net out and pay $1 each.
        opposite = -held
        netted = min(quantity, opposite)
        unit = cost / quantity
        removed = position.exposure * netted / opposite
        account.balance += netted
        position.realized_pnl += netted * (ONE - unit) - removed
        position.exposure -= removed
        position.position += sign * netted
        rest = quantity - netted
        if rest:
            position.exposure = rest * unit
            position.position += sign * rest


@dataclass(frozen=True, slots=True)
class DemoSeed:
    key_id: str
    private_key_pem: str


def seed_demo(
    fake: FakeKalshi, *, key_id: str = "demo-kalshi-key", scopes: Iterable[str] = ("read", "write")
) -> DemoSeed:
    """Load a few realistic markets, books and positions; return the key that sees them.

    The key (a fresh RSA pair) holds $1,250.00 cash, YES on the Fed market
    and NO on the CPI market, with one settlement in its history.
    """
    pem, public_key = rsa_key_pair()
    fake.key_add(key_id, public_key, scopes=scopes, name="Demo key")
    now = datetime.now(UTC).replace(microsecond=0)
    markets = [
        (
            "KXFEDDECISION-26DEC-H0",
            "KXFEDDECISION-26DEC",
            "Fed holds rates in December 2026?",
            "Fed decision in December 2026",
            "0.6100",
            "0.6300",
            timedelta(days=40),
        ),
        (
            "KXCPIYOY-26NOV-T3.0",
            "KXCPIYOY-26NOV",
            "CPI year over year above 3.0% in November 2026?",
            "CPI year over year, November 2026",
            "0.3400",
            "0.3600",
            timedelta(days=20),
        ),
        (
            "KXHIGHNY-26DEC01-B45.5",
            "KXHIGHNY-26DEC01",
            "NYC high temperature 45-46°F on Dec 1, 2026?",
            "Highest temperature in NYC on Dec 1, 2026",
            "0.2100",
            "0.2400",
            timedelta(days=5),
        ),
    ]
    for ticker, event_ticker, title, event_title, bid, ask, closes_in in markets:
        fake.market_add(
            ticker,
            event_ticker=event_ticker,
            title=title,
            event_title=event_title,
            close_time=now + closes_in,
            last_price=bid,
        )
        bid_d, ask_d = Decimal(bid), Decimal(ask)
        fake.book_set(
            ticker,
            yes=[(bid_d, 250), (bid_d - CENT, 600), (bid_d - 2 * CENT, 1200)],
            no=[(ONE - ask_d, 300), (ONE - ask_d - CENT, 700), (ONE - ask_d - 2 * CENT, 1500)],
        )
    fake.balance_set(key_id, "1250.00")
    fake.position_set(key_id, "KXFEDDECISION-26DEC-H0", 120, "70.80", realized_pnl="4.20")
    fake.position_set(key_id, "KXCPIYOY-26NOV-T3.0", -80, "51.20", fees_paid="1.12")
    fake.settlement_add(
        key_id,
        "KXHIGHNY-26DEC01-B45.5",
        market_result="no",
        no_count=50,
        no_total_cost="38.50",
        fee_cost="0.85",
    )
    return DemoSeed(key_id=key_id, private_key_pem=pem)
