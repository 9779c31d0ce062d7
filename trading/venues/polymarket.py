"""Polymarket: a thin client over its three APIs, the tracker and the broker's venue.

- `PolymarketClient` reads the Data API (`/v2/positions`, cursor-paged),
  Gamma (`/markets`, `/events`, whose `outcomes`, `outcomePrices` and
  `clobTokenIds` are JSON-encoded strings inside the JSON) and the CLOB
  (`/book`, `/books`, `/midpoint`, `/price`; with L2 credentials
  `/auth/api-keys`, `/balance-allowance`, `/order`, `/data/order/{id}`,
  `/heartbeats`).
  Paths are always joined onto the configured base URLs, so one loopback
  fake can stand in for all three hosts. Every request first takes a token
  from a bucket shared by all processes (trading.venues.ratelimit); 429s
  (Retry-After honoured), 5xx, timeouts and connection errors of reads are
  retried with backoff. Posting an order is never retried blindly.
- L2 authentication: HMAC-SHA256 keyed with the urlsafe-base64-decoded API
  secret over `timestamp + METHOD + requestPath + body` (requestPath without
  the query string), sent as POLY_ADDRESS, POLY_SIGNATURE, POLY_TIMESTAMP,
  POLY_API_KEY and POLY_PASSPHRASE.
- `PolymarketTracker` is the tracking client for a user's wallet (and
  optional CLOB keys), trading.venues.tracking.TrackingClient.
- `PolymarketVenue` is the custodial adapter: quotes from the CLOB book of
  the listing's YES token; market orders are built and EIP-712-signed by
  the official `py-clob-client-v2` package, posted by our own client.
- Dead-man switch: Polymarket cancels all of a user's open orders when its
  heartbeats (`POST /heartbeats`, L2-signed, answered `{"status": "ok"}`)
  stop. `BrokerHeartbeat` sends one for the broker's CLOB key every
  POLYMARKET_HEARTBEAT_SECONDS (default 5) from the one process holding the
  market-data feed's role (`manage.py run_marketdata`), and only where
  VENUE_ADAPTERS routes a venue to this adapter; a failure is logged and the
  next beat is the retry. Lost heartbeats get the broker's open orders
  cancelled by the venue; the orders reconciliation
  (trading.services.execute.orders_reconcile) reads them back `CANCELED` and
  books the cancellation. Our broker orders are fill-or-kill, so nothing of
  ours rests on the book: only an order the CLOB answers `delayed` (a market
  with a matching delay) stays open until matched, and is what the switch
  would cancel. Undocumented, hence assumed: the timeout (not stated; 5 s
  beats leave room for the fake's 10 s), the body (the reference defines
  none; we send the official client's `{"heartbeat_id": ...}`, echoing an id
  the answer names and starting again from "" after a 400), whether the
  first heartbeat arms the switch, and whether it is per key or per address
  (one key and one address here: either way it covers the broker).
  py-clob-client-v2 1.2.1 posts to `/v1/heartbeats`; we use the reference's
  `/heartbeats`. A feed failover (up to the role lock's TTL) can outlast the
  timeout: the broker wallet must hold no resting order meant to survive one.

Numbers are parsed to Decimal (JSON numbers included), never float; the one
exception is the amount and limit handed to the official client, which takes
floats (see _FLOAT_NUDGE). Nothing here logs or raises with a secret, a
passphrase, a private key or a signature.
"""

import base64
import functools
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from eth_utils import keccak

from portal.errors import ErrorCode, InvalidParams
from portal.money import ZERO
from portal.redis import Leadership, redis_client, redis_key
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
    book_walk,
    order_size_check,
)
from trading.venues.http import (
    MAX_PAGES,
    backoff_seconds,
    decimal_parse,
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


POSITIONS_PAGE_SIZE = 100  # the Data API's default page; it accepts up to 500
GAMMA_BATCH = 50  # condition ids per Gamma /markets lookup
USDC_UNITS = Decimal(10) ** 6  # the CLOB reports collateral in 6-decimal base units
CENT = Decimal("0.01")  # the official client rounds market-order amounts to 2 decimals
ORDER_TTL_SECONDS = 7 * 86400
DEFAULT_CHAIN_ID = 137  # Polygon mainnet
HEARTBEAT_PATH = "/heartbeats"  # the API reference's path (the official client: /v1/heartbeats)
HEARTBEAT_TIMEOUT_SECONDS = 5.0  # a heartbeat slower than this is as good as lost
HEARTBEAT_FAILURE_LOG_SECONDS = 60.0  # a run of failed heartbeats is logged this often

STATUS_OPEN = "OPEN"
STATUS_REDEEMABLE = "REDEEMABLE"
STATUS_CLOSED = "CLOSED"
UNKNOWN_OUTCOME_INDEX = 999  # the Data API's "no outcome index" sentinel

TRADE_SCOPE_WARNING = "These CLOB keys can place orders; a wallet address is enough for tracking."

WALLET_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
L2_HEADERS = ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP", "POLY_API_KEY", "POLY_PASSPHRASE")


class PolymarketNotFound(VenueBadResponse):
    """404: no such market, order book or order on Polymarket."""

    error = ErrorCode.VENUE_NOT_FOUND


class PolymarketRefused(VenueBadResponse):
    """Another 4xx: Polymarket refused the request itself (bad parameters, an order it kills)."""

    def __init__(self, message: str, *, http_status: int, venue_message: str = ""):
        super().__init__(message)
        self.http_status = http_status
        self.venue_message = venue_message


# ---------------------------------------------------------------------------
# Wallets (EIP-55)


def wallet_checksum(wallet: str) -> str:
    """The EIP-55 mixed-case form of a `0x` + 40 hex address.

    Keccak-256 (eth-utils), not hashlib.sha3_256: SHA-3 pads differently from
    the Keccak Ethereum uses.
    """
    hex_part = wallet[2:].lower()
    digest = keccak(hex_part.encode("ascii")).hex()
    return "0x" + "".join(
        char.upper() if char.isalpha() and int(digest[i], 16) >= 8 else char
        for i, char in enumerate(hex_part)
    )


def wallet_validate(wallet: str) -> str:
    """The wallet as we store and send it: `0x` + 40 lowercase hex digits.

    All-lowercase and all-uppercase addresses carry no checksum and are
    accepted as they are; a mixed-case address must match its EIP-55
    checksum (a typo in a checksummed address is caught here, not by an
    empty portfolio later). Raises InvalidParams with the reason.
    """
    candidate = (wallet or "").strip()
    if not WALLET_RE.fullmatch(candidate):
        raise InvalidParams(
            "A Polymarket wallet address is 0x followed by 40 hexadecimal characters."
        )
    hex_part = candidate[2:]
    mixed_case = hex_part != hex_part.lower() and hex_part != hex_part.upper()
    if mixed_case and wallet_checksum(candidate) != candidate:
        raise InvalidParams("This wallet address fails its checksum (EIP-55): check it for a typo.")
    return "0x" + hex_part.lower()


# ---------------------------------------------------------------------------
# L2 (API key) authentication


def _b64decode_secret(secret: str) -> bytes:
    """The raw HMAC key from the urlsafe-base64 API secret (padding restored if dropped).

    Strict: a character outside the base64 alphabets raises ValueError
    (binascii.Error), where the lenient decoder would silently drop it and
    sign with another key.
    """
    text = secret.strip()
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def l2_signature(
    secret: str, timestamp: str, method: str, request_path: str, body: str = ""
) -> str:
    """POLY_SIGNATURE: urlsafe-base64 HMAC-SHA256 over timestamp + METHOD + path + body.

    `request_path` is the path relative to the CLOB host, without the query
    string; `body` the exact JSON text sent ("" for none). Raises
    InvalidParams for a secret that is not base64.
    """
    try:
        key = _b64decode_secret(secret)
    except (ValueError, TypeError):
        raise InvalidParams("The CLOB API secret is not valid base64.") from None
    message = f"{timestamp}{method.upper()}{request_path}{body}".encode()
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


@dataclass(frozen=True, slots=True)
class SignerBucket:
    """A signer's order bucket, shared by every process (POLYMARKET_ORDER_BUCKET)."""

    key: str  # names the signer by a digest of its address
    rate: float
    burst: float

    @classmethod
    def orders_of(cls, credentials: "ClobCredentials") -> "SignerBucket":
        digest = hashlib.sha256(credentials.address.lower().encode()).hexdigest()[:16]
        rate, burst = settings.POLYMARKET_ORDER_BUCKET
        return cls(key=f"polymarket:{digest}:order", rate=float(rate), burst=float(burst))


@dataclass(frozen=True, slots=True)
class ClobCredentials:
    """A CLOB API key (L2). `address` is the wallet that owns the key (POLY_ADDRESS).

    The secret and passphrase never appear in repr().
    """

    api_key: str
    api_secret: str = field(repr=False)
    api_passphrase: str = field(repr=False)
    address: str
    signature_type: int | None = None  # 0 EOA, 1 POLY_PROXY, 2 GNOSIS_SAFE, 3 deposit wallet

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, default_address: str) -> "ClobCredentials":
        """Credentials from a stored dict.

        Accepts our names (api_key, api_secret, api_passphrase) or the ones
        Polymarket returns when it creates a key (apiKey, secret,
        passphrase); `address` defaults to `default_address` and
        `signature_type` is optional. Raises InvalidParams for a missing
        part, a secret that is not base64 or a bad address.
        """

        def part(*names: str) -> str:
            for name in names:
                value = data.get(name)
                if isinstance(value, str) and value.strip():
                    return value.strip()
            raise InvalidParams(f"The CLOB credentials need {names[0]}.")

        secret = part("api_secret", "secret")
        try:
            _b64decode_secret(secret)
        except (ValueError, TypeError):
            raise InvalidParams("The CLOB API secret is not valid base64.") from None
        raw_type = data.get("signature_type")
        if raw_type in (None, ""):
            signature_type = None
        else:
            try:
                signature_type = int(raw_type)
            except (TypeError, ValueError):
                raise InvalidParams("The CLOB signature_type must be 0, 1, 2 or 3.") from None
            if signature_type not in (0, 1, 2, 3):
                raise InvalidParams("The CLOB signature_type must be 0, 1, 2 or 3.")
        return cls(
            api_key=part("api_key", "apiKey", "key"),
            api_secret=secret,
            api_passphrase=part("api_passphrase", "passphrase"),
            address=wallet_validate(str(data.get("address") or default_address)),
            signature_type=signature_type,
        )

    def headers(
        self, method: str, request_path: str, body: str = "", *, timestamp: int | None = None
    ) -> dict[str, str]:
        """The five L2 headers for one request (see `l2_signature`)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        return {
            "POLY_ADDRESS": self.address,
            "POLY_SIGNATURE": l2_signature(self.api_secret, ts, method, request_path, body),
            "POLY_TIMESTAMP": ts,
            "POLY_API_KEY": self.api_key,
            "POLY_PASSPHRASE": self.api_passphrase,
        }

    def redact(self, text: str) -> str:
        """`text` with the secret and passphrase blanked out (for venue error messages)."""
        for secret in (self.api_secret, self.api_passphrase):
            if secret:
                text = text.replace(secret, "***")
        return text


# ---------------------------------------------------------------------------
# Parsing helpers


def _json_loads(content: bytes | str) -> Any:
    """JSON with every fractional number as Decimal (floats never touch money)."""
    return json.loads(content, parse_float=Decimal)


parse_decimal = functools.partial(decimal_parse, venue="Polymarket")


def _optional_decimal(value: Any, field_name: str) -> Decimal | None:
    """None for an absent value (the Data API sends "" for absence)."""
    if value is None or value == "":
        return None
    return parse_decimal(value, field_name)


def _required(data: Mapping[str, Any], name: str, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise VenueBadResponse(f"Polymarket's {where} is not an object.")
    value = data.get(name)
    if value is None or value == "":
        raise VenueBadResponse(f"Polymarket's {where} has no {name}.")
    return value


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _parse_datetime(value: Any, field_name: str) -> datetime | None:
    """An ISO date-time (or a calendar date, read as midnight UTC) as an aware datetime."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise VenueBadResponse(f"Polymarket sent an unreadable {field_name}.")
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise VenueBadResponse(
            f"Polymarket sent an unreadable {field_name}: {text[:40]!r}."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def decode_json_list(value: Any, field_name: str) -> list[Any]:
    """A Gamma list field, which arrives as a JSON-encoded string (or, tolerated, a list).

    None and "" are an empty list. Raises VenueBadResponse for a string that
    is not a JSON array, or any other type.
    """
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            decoded = _json_loads(value)
        except ValueError:
            raise VenueBadResponse(f"Polymarket's {field_name} is not valid JSON.") from None
        if isinstance(decoded, list):
            return decoded
    raise VenueBadResponse(f"Polymarket's {field_name} is not a JSON-encoded list.")


def _error_text(response: httpx.Response) -> str:
    """The venue's own short error text (`{"error": "..."}`), if any, at most 200 characters."""
    try:
        body = _json_loads(response.content)
    except ValueError:
        return ""
    if isinstance(body, Mapping):
        body = body.get("error") or body.get("errorMsg") or body.get("message") or ""
    return str(body)[:200] if isinstance(body, str | int | Decimal) else ""


# ---------------------------------------------------------------------------
# What the client returns


@dataclass(frozen=True, slots=True)
class PolymarketPosition:
    """One row of Data API v2 `/v2/positions` (sizes in shares, money in USDC)."""

    wallet: str
    token_id: str
    condition_id: str
    size: Decimal  # current_size: shares held now
    avg_price: Decimal
    entry_cost: Decimal | None
    current_price: Decimal | None
    current_value: Decimal | None
    realized_pnl: Decimal
    unrealized_pnl: Decimal | None
    status: str  # OPEN / REDEEMABLE / CLOSED (the row's own state)
    title: str
    slug: str
    event_slug: str
    outcome: str
    outcome_index: int | None
    end_date: datetime | None


@dataclass(frozen=True, slots=True)
class PolymarketMarket:
    """A Gamma market with its JSON-encoded list fields decoded (index i aligned across them)."""

    id: str
    condition_id: str
    question: str
    slug: str
    outcomes: tuple[str, ...]
    outcome_prices: tuple[Decimal, ...]
    clob_token_ids: tuple[str, ...]
    end_date: datetime | None
    active: bool
    closed: bool
    accepting_orders: bool | None
    neg_risk: bool
    event_slug: str
    event_title: str
    # The first outcome's (our YES) CLOB prices as Gamma reports them: best bid and
    # ask (None: not given, or no orders on that side) and last trade.
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    last_trade_price: Decimal | None = None

    @property
    def is_open(self) -> bool:
        """Open for trading: active, not closed, and not refusing orders."""
        return self.active and not self.closed and self.accepting_orders is not False


@dataclass(frozen=True, slots=True)
class PolymarketEvent:
    id: str
    slug: str
    title: str
    end_date: datetime | None
    closed: bool
    markets: tuple[PolymarketMarket, ...]


def _position_from(row: Any) -> PolymarketPosition:
    where = "position"
    raw_index = row.get("outcome_index") if isinstance(row, Mapping) else None
    if raw_index in (None, "", UNKNOWN_OUTCOME_INDEX) or isinstance(raw_index, bool):
        outcome_index = None
    else:
        try:
            outcome_index = int(raw_index)
        except (TypeError, ValueError):
            raise VenueBadResponse("Polymarket sent an unreadable outcome_index.") from None
    return PolymarketPosition(
        wallet=str(_required(row, "proxy_wallet", where)).lower(),
        token_id=str(_required(row, "token_id", where)),
        condition_id=str(_required(row, "condition_id", where)),
        size=parse_decimal(_required(row, "current_size", where), "current_size"),
        avg_price=parse_decimal(_required(row, "avg_price", where), "avg_price"),
        entry_cost=_optional_decimal(row.get("entry_cost_usdc"), "entry_cost_usdc"),
        current_price=_optional_decimal(row.get("current_price"), "current_price"),
        current_value=_optional_decimal(row.get("current_value"), "current_value"),
        realized_pnl=_optional_decimal(row.get("realized_pnl"), "realized_pnl") or ZERO,
        unrealized_pnl=_optional_decimal(row.get("unrealized_pnl"), "unrealized_pnl"),
        status=str(_required(row, "status", where)).upper(),
        title=_text(row.get("title")),
        slug=_text(row.get("slug")),
        event_slug=_text(row.get("event_slug")),
        outcome=_text(row.get("outcome")),
        outcome_index=outcome_index,
        end_date=_parse_datetime(row.get("end_date"), "end_date"),
    )


def market_from(data: Any) -> PolymarketMarket:
    """A Gamma market object, its JSON-encoded strings decoded.

    Raises VenueBadResponse for a missing conditionId, an undecodable list
    field, a price that is not a number, or list fields of different lengths.
    """
    where = "Gamma market"
    condition_id = str(_required(data, "conditionId", where))
    outcomes = tuple(str(o) for o in decode_json_list(data.get("outcomes"), "outcomes"))
    prices = tuple(
        parse_decimal(p, "outcomePrices")
        for p in decode_json_list(data.get("outcomePrices"), "outcomePrices")
    )
    token_ids = tuple(str(t) for t in decode_json_list(data.get("clobTokenIds"), "clobTokenIds"))
    lengths = {len(x) for x in (outcomes, prices, token_ids) if x}
    if len(lengths) > 1:
        raise VenueBadResponse(
            f"Polymarket's market {condition_id[:12]}… has outcomes, prices and token ids "
            "of different lengths."
        )
    events = data.get("events") or []
    first_event = events[0] if isinstance(events, list) and events else {}
    if not isinstance(first_event, Mapping):
        first_event = {}
    return PolymarketMarket(
        id=str(data.get("id") or ""),
        condition_id=condition_id,
        question=_text(data.get("question")),
        slug=_text(data.get("slug")),
        outcomes=outcomes,
        outcome_prices=prices,
        clob_token_ids=token_ids,
        end_date=_parse_datetime(data.get("endDate"), "endDate"),
        active=data.get("active") is not False,
        closed=data.get("closed") is True,
        accepting_orders=data.get("acceptingOrders")
        if isinstance(data.get("acceptingOrders"), bool)
        else None,
        neg_risk=data.get("negRisk") is True,
        event_slug=_text(first_event.get("slug")),
        event_title=_text(first_event.get("title")),
        best_bid=_inside(_optional_decimal(data.get("bestBid"), "bestBid")),
        best_ask=_inside(_optional_decimal(data.get("bestAsk"), "bestAsk")),
        last_trade_price=_inside(_optional_decimal(data.get("lastTradePrice"), "lastTradePrice")),
    )


def _inside(price: Decimal | None) -> Decimal | None:
    """A price strictly inside (0, 1), else None (Gamma sends 0 or 1 for an empty side)."""
    return price if price is not None and ZERO < price < ONE else None


def _event_from(data: Any) -> PolymarketEvent:
    where = "Gamma event"
    markets = data.get("markets") if isinstance(data, Mapping) else None
    slug = str(_required(data, "slug", where))
    title = _text(data.get("title"))
    parsed = []
    for market in markets if isinstance(markets, list) else []:
        item = market_from(market)
        if not item.event_slug:
            # Markets nested in an event do not repeat their event: fill it in.
            item = replace(item, event_slug=slug, event_title=title)
        parsed.append(item)
    return PolymarketEvent(
        id=str(data.get("id") or ""),
        slug=slug,
        title=title,
        end_date=_parse_datetime(data.get("endDate"), "endDate"),
        closed=data.get("closed") is True,
        markets=tuple(parsed),
    )


def _book_side(levels: Any, field_name: str) -> list[BookLevel]:
    """One side of a CLOB book; equal prices merged, empty levels dropped."""
    if levels is None:
        return []
    if not isinstance(levels, list):
        raise VenueBadResponse(f"Polymarket's order book {field_name} is not a list.")
    merged: dict[Decimal, Decimal] = {}
    for level in levels:
        if not isinstance(level, Mapping):
            raise VenueBadResponse(f"Polymarket's order book {field_name} has a malformed level.")
        price = parse_decimal(level.get("price"), f"order book {field_name} price")
        size = parse_decimal(level.get("size"), f"order book {field_name} size")
        if not ZERO < price < ONE or size < ZERO:
            raise VenueBadResponse(
                f"Polymarket's order book {field_name} has a level outside (0, 1)."
            )
        if size > ZERO:
            merged[price] = merged.get(price, ZERO) + size
    return [BookLevel(price, size) for price, size in merged.items()]


def order_book_from(payload: Any) -> OrderBook:
    """An OrderBook from a CLOB `/book` answer, best level first on each side.

    The docs list bids descending and asks ascending, but the live wire
    sends both best-last; we sort rather than rely on either. Raises
    VenueBadResponse for malformed levels or a crossed book.
    """
    if not isinstance(payload, Mapping):
        raise VenueBadResponse("Polymarket's order book is not an object.")
    bids = sorted(_book_side(payload.get("bids"), "bids"), key=lambda lv: lv.price, reverse=True)
    asks = sorted(_book_side(payload.get("asks"), "asks"), key=lambda lv: lv.price)
    if bids and asks and bids[0].price >= asks[0].price:
        raise VenueBadResponse("Polymarket's order book is crossed (best bid ≥ best ask).")
    return OrderBook(bids=tuple(bids), asks=tuple(asks))


# ---------------------------------------------------------------------------
# The client


class _RawJson(str):
    """A body already serialized: sent (and signed) byte for byte as it is."""


def _serialize_body(body: Any) -> str:
    """The exact JSON text to send and sign for `body`."""
    if isinstance(body, _RawJson):
        return str(body)
    return json.dumps(body, separators=(",", ":"), default=str)


class PolymarketClient:
    """Polymarket's Data API, Gamma and CLOB over one pooled HTTP client.

    Thread-safe: httpx.Client is, and the client holds no other mutable state.
    """

    def __init__(
        self,
        *,
        data_url: str,
        gamma_url: str,
        clob_url: str,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        rate_limit: bool = True,
    ):
        self.urls = {
            "data": data_url.rstrip("/"),
            "gamma": gamma_url.rstrip("/"),
            "clob": clob_url.rstrip("/"),
        }
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep
        self._rate_limit = rate_limit
        self._http = httpx.Client(timeout=timeout, headers={"Accept": "application/json"})

    def __repr__(self) -> str:
        return f"<PolymarketClient {self.urls['clob']}>"

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    # -- the request loop ------------------------------------------------------

    def _rate_wait(self, service: str, signer: SignerBucket | None = None) -> None:
        """Sleep until this request's slot in the service's shared bucket comes (and,
        for an order, in its signer's order bucket)."""
        if not self._rate_limit:
            return
        rate = float(settings.POLYMARKET_RATES[service])
        # Polymarket limits per IP and host: one bucket per service and base URL.
        host = hashlib.sha256(self.urls[service].encode()).hexdigest()[:12]
        wait = token_bucket_take(f"polymarket:{service}:{host}", rate, max(rate, 1.0))
        if signer is not None:
            wait = max(wait, token_bucket_take(signer.key, signer.rate, signer.burst))
        if wait > 0:
            self._sleep(wait)

    def _signer_note(self, response: httpx.Response, signer: SignerBucket | None) -> None:
        """Slow the signer's bucket when Polymarket warns it would have refused the request
        (`Poly-RateLimit-Warning: true`) or refuses it (429), until its reset time."""
        if signer is None or not self._rate_limit:
            return
        warned = response.headers.get("Poly-RateLimit-Warning", "").lower() == "true"
        if not warned and response.status_code != 429:
            return
        try:
            reset = float(response.headers.get("Poly-RateLimit-Reset", "0"))
        except ValueError:
            reset = 0.0
        seconds = max(reset - time.time(), 1 / signer.rate)
        event = "429" if response.status_code == 429 else "warning"
        token_bucket_penalize(signer.key, signer.rate, signer.burst, seconds=seconds, event=event)
        logger.warning(
            "polymarket: %s rate limit %s; slowing for %.2fs", signer.key, event, seconds
        )

    def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        body: Any = None,
        credentials: ClobCredentials | None = None,
        retry_failures: bool | None = None,
        timeout: float | None = None,
        signer: SignerBucket | None = None,
    ) -> Any:
        """One call to `service` ("data", "gamma" or "clob"); its decoded JSON.

        `signer`: the per-signer bucket an order or cancel also spends
        (Polymarket meters those per signer); its warnings and 429s slow it.

        `path` is joined onto that service's base URL. With `credentials`
        the request carries fresh L2 headers on every attempt (signed over
        `path` and the exact body text sent). A 429 is retried after its
        Retry-After (or backoff) up to max_retries, for any method: a
        throttled request was not processed. 5xx, timeouts and connection
        errors are retried only when `retry_failures` (default: for GETs).
        `timeout` (seconds) overrides the client's for this call. Raises
        VenueRateLimited, VenueUnavailable, VenueAuthError (401/403),
        PolymarketNotFound (404), PolymarketRefused (other 4xx) or
        VenueBadResponse (unreadable JSON).
        """
        method = method.upper()
        if retry_failures is None:
            retry_failures = method == "GET"
        url = f"{self.urls[service]}{path}"
        what = f"Polymarket {method} {path}"
        content = None if body is None else _serialize_body(body)
        for attempt in range(self.max_retries + 1):
            self._rate_wait(service, signer)
            headers = {"Content-Type": "application/json"} if content is not None else {}
            if credentials is not None:
                headers.update(credentials.headers(method, path, content or ""))
            try:
                response = self._http.request(
                    method,
                    url,
                    params=params,
                    content=content,
                    headers=headers,
                    timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
                )
            except httpx.TimeoutException:
                failure = VenueUnavailable(f"{what} timed out.")
            except httpx.TransportError as exc:
                failure = VenueUnavailable(f"{what} failed to connect ({type(exc).__name__}).")
            else:
                self._signer_note(response, signer)
                if response.status_code == 429:
                    self._sleep(
                        throttled_wait(
                            response,
                            what=what,
                            attempt=attempt,
                            max_retries=self.max_retries,
                            base_backoff=self.backoff_seconds,
                        )
                    )
                    continue
                if response.status_code >= 500:
                    failure = VenueUnavailable(f"{what} answered HTTP {response.status_code}.")
                else:
                    return self._decode(response, what, credentials)
            if not retry_failures or attempt >= self.max_retries:
                raise failure
            self._sleep(backoff_seconds(self.backoff_seconds, attempt))
        raise AssertionError("unreachable")  # the loop always returns or raises

    @staticmethod
    def _decode(response: httpx.Response, what: str, credentials: ClobCredentials | None) -> Any:
        status = response.status_code
        if status >= 400:
            detail = _error_text(response)
            if credentials is not None:
                detail = credentials.redact(detail)
            suffix = f": {detail}" if detail else "."
            if status in (401, 403):
                raise VenueAuthError(f"Polymarket refused the credentials (HTTP {status}){suffix}")
            if status == 404:
                raise PolymarketNotFound(f"{what}: not found{suffix}")
            raise PolymarketRefused(
                f"{what} was refused (HTTP {status}){suffix}",
                http_status=status,
                venue_message=detail,
            )
        try:
            return _json_loads(response.content)
        except ValueError:
            raise VenueBadResponse(f"{what} answered with unreadable JSON.") from None

    # -- Data API ------------------------------------------------------------------

    def positions_page(
        self,
        wallet: str,
        *,
        status: str = STATUS_OPEN,
        limit: int = POSITIONS_PAGE_SIZE,
        cursor: str | None = None,
    ) -> tuple[list[PolymarketPosition], str | None]:
        """One page of `/v2/positions` for `wallet`: (rows, next cursor or None).

        Raises VenueBadResponse for a malformed envelope or row, or another VenueError.
        """
        params: dict[str, Any] = {"user": wallet, "status": status, "limit": limit}
        if cursor:
            # The cursor binds status and sort; restating them (and the anchor) is allowed.
            params["cursor"] = cursor
        body = self.request("data", "GET", "/v2/positions", params=params)
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
            raise VenueBadResponse("Polymarket's positions answer has no data list.")
        pagination = body.get("pagination")
        if not isinstance(pagination, Mapping):
            raise VenueBadResponse("Polymarket's positions answer has no pagination.")
        rows = [_position_from(row) for row in body["data"]]
        next_cursor = pagination.get("next_cursor")
        if pagination.get("has_more") is True:
            if not isinstance(next_cursor, str) or not next_cursor:
                raise VenueBadResponse("Polymarket says more positions follow but sent no cursor.")
            return rows, next_cursor
        return rows, None

    def positions(
        self, wallet: str, *, status: str = STATUS_OPEN, page_size: int = POSITIONS_PAGE_SIZE
    ) -> list[PolymarketPosition]:
        """Every position of `wallet` in `status`, all cursor pages collected.

        `status` OPEN (the default) is the Data API's superset: it includes
        REDEEMABLE rows, each row echoing its own status. Raises
        VenueBadResponse when the cursor repeats or never ends, or another VenueError.
        """
        wallet = wallet_validate(wallet)
        collected: list[PolymarketPosition] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            rows, cursor = self.positions_page(
                wallet, status=status, limit=page_size, cursor=cursor
            )
            collected.extend(rows)
            if cursor is None:
                return collected
            if cursor in seen:
                raise VenueBadResponse("Polymarket's positions cursor went round in a loop.")
            seen.add(cursor)
        raise VenueBadResponse(f"Polymarket's positions did not end after {MAX_PAGES} pages.")

    # -- Gamma ---------------------------------------------------------------------

    def markets(
        self,
        *,
        condition_ids: Iterable[str] = (),
        clob_token_ids: Iterable[str] = (),
        slug: str | None = None,
        closed: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[PolymarketMarket]:
        """Gamma `/markets` with the given filters (list filters sent as repeated params).

        Raises VenueBadResponse for an answer that is not a list of markets
        (or a market whose encoded fields cannot be decoded), or another VenueError.
        """
        params: list[tuple[str, Any]] = [("condition_ids", c) for c in condition_ids]
        params += [("clob_token_ids", t) for t in clob_token_ids]
        if slug is not None:
            params.append(("slug", slug))
        if closed is not None:
            params.append(("closed", "true" if closed else "false"))
        if limit is not None:
            params.append(("limit", limit))
        if offset is not None:
            params.append(("offset", offset))
        body = self.request("gamma", "GET", "/markets", params=params)
        if not isinstance(body, list):
            raise VenueBadResponse("Polymarket's Gamma markets answer is not a list.")
        return [market_from(item) for item in body]

    def market(self, condition_id: str) -> PolymarketMarket:
        """The Gamma market with this condition id, open or closed.

        Raises PolymarketNotFound when Gamma does not know it, or another VenueError.
        """
        found = self.markets_by_condition([condition_id])
        try:
            return found[condition_id.lower()]
        except KeyError:
            raise PolymarketNotFound(f"Polymarket has no market {condition_id}.") from None

    def markets_by_condition(self, condition_ids: Iterable[str]) -> dict[str, PolymarketMarket]:
        """Gamma markets by condition id (lowercase keys), looked up in batches.

        Ids Gamma does not return on the first ask are asked again with
        `closed=true`, since some Gamma listings leave closed markets out
        unless asked. Ids unknown to Gamma are simply absent. Raises a VenueError.
        """
        wanted = list(dict.fromkeys(c.lower() for c in condition_ids))
        found: dict[str, PolymarketMarket] = {}
        for closed in (None, True):
            missing = [c for c in wanted if c not in found]
            for start in range(0, len(missing), GAMMA_BATCH):
                batch = missing[start : start + GAMMA_BATCH]
                for market in self.markets(condition_ids=batch, closed=closed, limit=len(batch)):
                    found.setdefault(market.condition_id.lower(), market)
        return found

    def events(
        self,
        *,
        slug: str | Iterable[str] | None = None,
        closed: bool | None = None,
        limit: int | None = None,
    ) -> list[PolymarketEvent]:
        """Gamma `/events` (each with its markets decoded). Raises a VenueError."""
        params: list[tuple[str, Any]] = []
        if isinstance(slug, str):
            params.append(("slug", slug))
        elif slug is not None:
            params += [("slug", s) for s in slug]
        if closed is not None:
            params.append(("closed", "true" if closed else "false"))
        if limit is not None:
            params.append(("limit", limit))
        body = self.request("gamma", "GET", "/events", params=params)
        if not isinstance(body, list):
            raise VenueBadResponse("Polymarket's Gamma events answer is not a list.")
        return [_event_from(item) for item in body]

    # -- CLOB (public) -------------------------------------------------------------

    def book(self, token_id: str) -> OrderBook:
        """The CLOB order book of one outcome token, best level first, as Decimal.

        Raises PolymarketNotFound when the token has no book (closed market),
        VenueBadResponse for a malformed or crossed book, or another VenueError.
        """
        return order_book_from(self.request("clob", "GET", "/book", params={"token_id": token_id}))

    def books(self, token_ids: Iterable[str]) -> dict[str, OrderBook]:
        """Several books in one POST `/books`, keyed by token id. Raises a VenueError."""
        wanted = list(token_ids)
        body = self.request(
            "clob", "POST", "/books", body=[{"token_id": t} for t in wanted], retry_failures=True
        )
        if not isinstance(body, list):
            raise VenueBadResponse("Polymarket's books answer is not a list.")
        return {
            str(_required(item, "asset_id", "order book")): order_book_from(item) for item in body
        }

    def midpoint(self, token_id: str) -> Decimal:
        """The CLOB midpoint (mean of best bid and best ask). Raises a VenueError."""
        body = self.request("clob", "GET", "/midpoint", params={"token_id": token_id})
        return parse_decimal(_required(body, "mid", "midpoint answer"), "mid")

    def price(self, token_id: str, side: str) -> Decimal:
        """The CLOB `/price` for `side` "BUY" (the best bid) or "SELL" (the best ask).

        Polymarket's reference documents BUY → best bid, SELL → best ask.
        Raises InvalidParams for another side, or a VenueError.
        """
        side = side.upper()
        if side not in ("BUY", "SELL"):
            raise InvalidParams("The price side must be BUY or SELL.")
        body = self.request("clob", "GET", "/price", params={"token_id": token_id, "side": side})
        return parse_decimal(_required(body, "price", "price answer"), "price")

    def market_tokens(self, token_id: str) -> tuple[str, tuple[str, ...]]:
        """(condition id, every outcome token id) of the market `token_id` belongs to.

        Reads CLOB `/markets-by-token/{token}` then `/clob-markets/{condition}`.
        Raises a VenueError.
        """
        by_token = self.request("clob", "GET", f"/markets-by-token/{token_id}")
        condition_id = str(_required(by_token, "condition_id", "market-by-token answer"))
        info = self.request("clob", "GET", f"/clob-markets/{condition_id}")
        tokens = _required(info, "t", "CLOB market")
        if not isinstance(tokens, list):
            raise VenueBadResponse("Polymarket's CLOB market tokens are not a list.")
        return condition_id, tuple(str(_required(t, "t", "CLOB market token")) for t in tokens)

    # -- CLOB (L2) -----------------------------------------------------------------

    def api_keys(self, credentials: ClobCredentials) -> list[str]:
        """The API keys of the credentials' wallet (`GET /auth/api-keys`).

        Raises VenueAuthError when the credentials are refused, or another VenueError.
        """
        body = self.request("clob", "GET", "/auth/api-keys", credentials=credentials)
        keys = body.get("apiKeys") if isinstance(body, Mapping) else body
        if not isinstance(keys, list):
            raise VenueBadResponse("Polymarket's API keys answer has no apiKeys list.")
        return [str(k.get("apiKey") if isinstance(k, Mapping) else k) for k in keys]

    def balance(self, credentials: ClobCredentials) -> Decimal:
        """The collateral (USDC/pUSD) the CLOB counts for the credentials' account.

        `GET /balance-allowance?asset_type=COLLATERAL`; the balance arrives
        in 6-decimal base units. Raises VenueAuthError or another VenueError.
        """
        params: dict[str, Any] = {"asset_type": "COLLATERAL"}
        if credentials.signature_type is not None:
            params["signature_type"] = credentials.signature_type
        body = self.request(
            "clob", "GET", "/balance-allowance", params=params, credentials=credentials
        )
        units = parse_decimal(_required(body, "balance", "balance answer"), "balance")
        return units / USDC_UNITS

    def order_post(self, credentials: ClobCredentials, payload: str) -> dict[str, Any]:
        """POST `/order` with a signed order's exact JSON text; never retried on failure.

        Returns the venue's answer; an HTTP 400 refusal is returned as
        `{"success": False, "errorMsg": ...}` like a refused-in-body answer.
        Raises VenueUnavailable when the outcome is unknown (timeout, 5xx,
        dropped connection), VenueRateLimited (not processed),
        VenueAuthError, or VenueBadResponse.
        """
        try:
            body = self.request(
                "clob",
                "POST",
                "/order",
                body=_RawJson(payload),
                credentials=credentials,
                retry_failures=False,
                signer=SignerBucket.orders_of(credentials),
            )
        except PolymarketRefused as exc:
            if exc.http_status == 400:
                return {"success": False, "errorMsg": exc.venue_message}
            raise
        if not isinstance(body, Mapping):
            raise VenueBadResponse("Polymarket's order answer is not an object.")
        return dict(body)

    def heartbeat(
        self, credentials: ClobCredentials, *, heartbeat_id: str = "", timeout: float | None = None
    ) -> str:
        """POST `/heartbeats` for the credentials (see the module docstring's dead-man switch).

        Sends `{"heartbeat_id": heartbeat_id}` as the official client does (""
        starts a chain); returns the heartbeat id the answer names, "" when it
        names none (the reference documents only `{"status": "ok"}`). Not
        retried on failure: the next heartbeat is the retry. Raises
        VenueAuthError, PolymarketRefused (e.g. a 400 for a heartbeat id it no
        longer takes), VenueUnavailable, VenueRateLimited or VenueBadResponse
        (an answer that is not `status: ok`).
        """
        body = self.request(
            "clob",
            "POST",
            HEARTBEAT_PATH,
            body={"heartbeat_id": heartbeat_id},
            credentials=credentials,
            retry_failures=False,
            timeout=timeout,
        )
        if not isinstance(body, Mapping) or body.get("status") != "ok":
            raise VenueBadResponse("Polymarket did not acknowledge the heartbeat.")
        next_id = body.get("heartbeat_id")
        return next_id if isinstance(next_id, str) else ""

    def order_get(self, credentials: ClobCredentials, order_id: str) -> dict[str, Any] | None:
        """The CLOB's record of one order (`GET /data/order/{id}`); None when it has none."""
        try:
            body = self.request("clob", "GET", f"/data/order/{order_id}", credentials=credentials)
        except PolymarketNotFound:
            return None
        if not body or not isinstance(body, Mapping):
            return None
        return dict(body)

    def trades(self, credentials: ClobCredentials, *, trade_id: str) -> list[dict[str, Any]]:
        """The account's trades with this id (`GET /data/trades?id=`). Raises a VenueError."""
        body = self.request(
            "clob", "GET", "/data/trades", params={"id": trade_id}, credentials=credentials
        )
        rows = body.get("data") if isinstance(body, Mapping) else body
        if not isinstance(rows, list):
            raise VenueBadResponse("Polymarket's trades answer has no data list.")
        return [dict(row) for row in rows if isinstance(row, Mapping)]


# ---------------------------------------------------------------------------
# Tracking a user's wallet


def _outcome_of(position: PolymarketPosition) -> Outcome | None:
    """Our "yes"/"no" for a position's outcome (None when it cannot be told)."""
    label = position.outcome.lower()
    if label in (Outcome.YES.value, Outcome.NO.value):
        return Outcome(label)
    # Not a Yes/No market (team names, Over/Under, …). Every Polymarket market
    # is binary at the CLOB, and our listings quote its first outcome
    # (clobTokenIds[0]) as YES: outcome index 0 is our "yes", index 1 our "no".
    if position.outcome_index == 0:
        return Outcome.YES
    if position.outcome_index == 1:
        return Outcome.NO
    return None


def tracked_position(
    position: PolymarketPosition, market: PolymarketMarket | None
) -> TrackedPosition | None:
    """Our view of one open Data API position (None when its outcome cannot be told).

    The market comes from Gamma when it knows it (question, event title,
    end date, whether it still trades, the first outcome's best bid and ask
    and last trade: our YES); otherwise from the position row, counted as
    open (an OPEN row is an unresolved market). Without a last trade from
    Gamma, the row's current price stands in for it (in YES terms).
    """
    outcome = _outcome_of(position)
    if outcome is None:
        logger.warning(
            "polymarket: skipped a position in %s with outcome %r (index %s)",
            position.condition_id,
            position.outcome,
            position.outcome_index,
        )
        return None
    average = position.avg_price
    if not ZERO <= average <= ONE:
        # Not a price a binary contract can have: keep the sync going, clamped, and say so.
        logger.warning("polymarket: %s average price %s outside [0, 1]", position.token_id, average)
        average = min(max(average, ZERO), ONE)
    price = position.current_price
    last = _inside(price if price is None or outcome == Outcome.YES else ONE - price)
    yes_bid = yes_ask = None
    if market is not None:
        yes_bid, yes_ask = market.best_bid, market.best_ask
        last = market.last_trade_price or last
    return TrackedPosition(
        market=TrackedMarket(
            venue_market_id=position.condition_id,
            title=(market.question if market else "") or position.title,
            event_code=position.event_slug or (market.event_slug if market else ""),
            event_title=market.event_title if market else "",
            expires_at=(market.end_date if market else None) or position.end_date,
            is_open=market.is_open if market else True,
            yes_bid=yes_bid,
            yes_ask=yes_ask,
            last_price=last,
        ),
        outcome=outcome.value,
        quantity=position.size,
        average_price=average,
        realized_pnl=position.realized_pnl,
    )


class PolymarketTracker:
    """A user's Polymarket wallet, read through public data (and CLOB keys, if given).

    Implements trading.venues.tracking.TrackingClient.
    """

    def __init__(
        self,
        client: PolymarketClient,
        *,
        wallet: str,
        clob_credentials: ClobCredentials | None = None,
    ):
        """Raises InvalidParams for a malformed wallet address."""
        self.client = client
        self.wallet = wallet_validate(wallet)
        self.clob_credentials = clob_credentials

    def credential_check(self) -> CredentialCheck:
        """Prove the wallet (and the CLOB keys, when given) and report the scopes.

        The Data API must answer for the wallet (one position page); with
        CLOB keys, an L2-authenticated `GET /auth/api-keys` must succeed.
        Scopes: ("read",) for a wallet alone, ("read", "trade") with keys,
        which also earns a warning (keys can place orders). Raises
        VenueAuthError when the keys are refused, or another VenueError.
        """
        self.client.positions_page(self.wallet, limit=1)
        if self.clob_credentials is None:
            return CredentialCheck(identity=self.wallet, scopes=("read",))
        self.client.api_keys(self.clob_credentials)
        return CredentialCheck(
            identity=self.wallet, scopes=("read", "trade"), warnings=(TRADE_SCOPE_WARNING,)
        )

    def account_fetch(self) -> TrackedAccount:
        """Cash (with CLOB keys) and every open position, all pages collected.

        Positions are the Data API's OPEN rows with shares held (REDEEMABLE
        and CLOSED rows are settled or gone); their markets are read from
        Gamma in batches. Cash is the CLOB collateral balance when keys are
        given, else None (a wallet alone does not show it). Raises a VenueError.
        """
        rows = [
            p
            for p in self.client.positions(self.wallet)
            if p.status == STATUS_OPEN and p.size > ZERO
        ]
        markets = self.client.markets_by_condition(p.condition_id for p in rows) if rows else {}
        cash = None
        if self.clob_credentials is not None:
            cash = self.client.balance(self.clob_credentials)
        positions = []
        for row in rows:
            tracked = tracked_position(row, markets.get(row.condition_id.lower()))
            if tracked is not None:
                positions.append(tracked)
        return TrackedAccount(cash=cash, positions=tuple(positions))


def client_from_settings(**kwargs: Any) -> PolymarketClient:
    """A client for the hosts in settings POLYMARKET_DATA_URL, _GAMMA_URL and _CLOB_URL."""
    return PolymarketClient(
        data_url=settings.POLYMARKET_DATA_URL,
        gamma_url=settings.POLYMARKET_GAMMA_URL,
        clob_url=settings.POLYMARKET_CLOB_URL,
        **kwargs,
    )


def tracking_client(
    *, wallet: str, clob_credentials: Mapping[str, Any] | None
) -> PolymarketTracker:
    """The tracker for a user's wallet, with their CLOB API keys when given.

    `clob_credentials`: api_key, api_secret, api_passphrase (or Polymarket's
    apiKey/secret/passphrase), optional address (the key's wallet; default
    `wallet`) and signature_type. Raises InvalidParams for a bad wallet or
    incomplete keys. Sends nothing yet.
    """
    wallet = wallet_validate(wallet)
    credentials = (
        ClobCredentials.from_dict(clob_credentials, default_address=wallet)
        if clob_credentials
        else None
    )
    return PolymarketTracker(client_from_settings(), wallet=wallet, clob_credentials=credentials)


# ---------------------------------------------------------------------------
# Signing orders with the official client (py-clob-client-v2)


def _clob_order_v2(order: Mapping[str, Any]) -> Any:
    """The official client's OrderV2 for an order in its posted JSON form."""
    from py_clob_client_v2.order_utils import OrderV2, SignatureTypeV2
    from py_clob_client_v2.order_utils import Side as ClobSide

    return OrderV2(
        salt=str(order["salt"]),
        maker=str(order["maker"]),
        signer=str(order["signer"]),
        tokenId=str(order["tokenId"]),
        makerAmount=str(order["makerAmount"]),
        takerAmount=str(order["takerAmount"]),
        side=ClobSide.BUY if str(order["side"]).upper() == "BUY" else ClobSide.SELL,
        signatureType=SignatureTypeV2(int(order["signatureType"])),
        timestamp=str(order["timestamp"]),
        metadata=str(order["metadata"]),
        builder=str(order["builder"]),
        expiration=str(order.get("expiration") or "0"),
    )


def _exchange_builder(*, chain_id: int, neg_risk: bool, version: int) -> Any:
    """The official client's V2 order builder for the exchange contract that settles the order."""
    from py_clob_client_v2.config import get_contract_config
    from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2

    config = get_contract_config(chain_id)
    if version == 3:
        exchange = config.exchange_v3
    else:
        exchange = config.neg_risk_exchange_v2 if neg_risk else config.exchange_v2
    # No signer: the builder only lays out and hashes the typed data here.
    return ExchangeOrderBuilderV2(exchange, chain_id, None, domain_version=str(version))


def clob_order_typed_data(
    order: Mapping[str, Any], *, chain_id: int, neg_risk: bool, version: int = 2
) -> dict[str, Any]:
    """The EIP-712 typed data a V2 order (in its posted JSON form) was signed over.

    Needs py-clob-client-v2 (ImportError otherwise); raises KeyError or
    ValueError for an order missing fields.
    """
    builder = _exchange_builder(chain_id=chain_id, neg_risk=neg_risk, version=version)
    return builder.build_order_typed_data(_clob_order_v2(order))


def clob_order_hash(
    order: Mapping[str, Any], *, chain_id: int, neg_risk: bool, version: int = 2
) -> str:
    """The EIP-712 hash of a V2 order, which the CLOB uses as its order id.

    See clob_order_typed_data for what it needs and raises.
    """
    builder = _exchange_builder(chain_id=chain_id, neg_risk=neg_risk, version=version)
    return builder.build_order_hash(builder.build_order_typed_data(_clob_order_v2(order)))


# The official client rounds with float arithmetic (floor(x * 100) / 100), so
# an exact 0.57 becomes 0.56: nudging by far less than a cent before it
# rounds keeps every value we pass (already on cents) where it is.
_FLOAT_NUDGE = 1e-9


@dataclass(frozen=True, slots=True)
class SignedMarketOrder:
    order_id: str  # the order's EIP-712 hash, which the CLOB uses as its id
    payload: str  # the exact JSON text to POST /order


class ClobOrderSigner:
    """Builds and EIP-712-signs fill-or-kill market orders with py-clob-client-v2.

    The official client reads the market's tick size, neg-risk flag and the
    exchange version from the CLOB URL it is given (and nothing else); it
    posts nothing here: `PolymarketVenue` posts the signed order itself.
    """

    def __init__(
        self,
        *,
        clob_url: str,
        private_key: str,
        credentials: ClobCredentials,
        chain_id: int = DEFAULT_CHAIN_ID,
        signature_type: int = 0,
        funder: str | None = None,
    ):
        """`credentials` are the wallet's CLOB API keys (their address is set to the signer's).

        Sends nothing. Raises ImproperlyConfigured when py-clob-client-v2 is
        not installed or the private key cannot be read.
        """
        try:
            from py_clob_client_v2 import ClobClient
            from py_clob_client_v2.clob_types import ApiCreds
        except ImportError:
            raise ImproperlyConfigured(
                "Placing Polymarket orders needs the py-clob-client-v2 package."
            ) from None
        self.chain_id = chain_id
        try:
            self._clob = ClobClient(
                clob_url,
                chain_id=chain_id,
                key=private_key,
                creds=ApiCreds(
                    api_key=credentials.api_key,
                    api_secret=credentials.api_secret,
                    api_passphrase=credentials.api_passphrase,
                ),
                signature_type=signature_type,
                funder=funder,
            )
        except (ValueError, TypeError) as exc:
            # `from None`, and no message of its own: the key must not reach a log.
            raise ImproperlyConfigured(
                f"The Polymarket private key could not be read ({type(exc).__name__})."
            ) from None
        self.address = str(self._clob.get_address())
        # The L2 key belongs to the signing wallet: POLY_ADDRESS is the signer's address.
        self.credentials = replace(
            credentials, address=self.address.lower(), signature_type=signature_type
        )
        self._version: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<ClobOrderSigner {self.address}>"

    def sign_market_order(
        self,
        *,
        token_id: str,
        side: Side,
        amount: Decimal,
        limit_price: Decimal,
        metadata: str,
    ) -> SignedMarketOrder:
        """A signed FOK market order: `amount` USDC to spend (buy) or shares to sell.

        `limit_price` is the worst price any level may fill at. Raises
        VenueUnavailable when the CLOB cannot be read for the market's
        parameters, VenueAuthError, or VenueBadResponse when the official
        client refuses the order (a price off the market's tick range, …).
        """
        from py_clob_client_v2.clob_types import (
            MarketOrderArgsV2,
            OrderType,
            PartialCreateOrderOptions,
        )
        from py_clob_client_v2.exceptions import PolyApiException, PolyException
        from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2

        args = MarketOrderArgsV2(
            token_id=token_id,
            # The official client takes floats; see _FLOAT_NUDGE for why the nudge.
            amount=float(amount) + _FLOAT_NUDGE,
            side="BUY" if side == Side.BUY else "SELL",
            price=float(limit_price) + _FLOAT_NUDGE,
            order_type=OrderType.FOK,
            metadata=metadata,
        )
        try:
            with self._lock:  # the official client's caches are plain dicts
                version = self._exchange_version()
                signed = self._clob.create_market_order(
                    args, PartialCreateOrderOptions(version=version)
                )
                neg_risk = bool(self._clob.get_neg_risk(token_id))
        except PolyApiException as exc:
            status = exc.status_code
            if status in (401, 403):
                raise VenueAuthError("Polymarket refused the broker's CLOB keys.") from None
            if status is None or status >= 500 or status == 429:
                raise VenueUnavailable("Polymarket could not be read to build the order.") from None
            raise VenueBadResponse(
                f"Polymarket refused a read needed to build the order (HTTP {status})."
            ) from None
        except PolyException as exc:
            raise VenueBadResponse(f"The order could not be built: {exc.msg}") from None
        body = order_to_json_v2(signed, self.credentials.api_key, OrderType.FOK)
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        order_id = clob_order_hash(
            body["order"], chain_id=self.chain_id, neg_risk=neg_risk, version=version
        )
        return SignedMarketOrder(order_id=order_id, payload=payload)

    def _exchange_version(self) -> int:
        if self._version is None:
            # get_version answers 2 when the CLOB does not say (the official default).
            self._version = int(self._clob.get_version())
        return self._version


# ---------------------------------------------------------------------------
# The broker's own (custodial) trading on Polymarket


def polymarket_order_key(code: str, client_order_id: str) -> str:
    """Redis key of our record of one order sent (or about to be sent) to the CLOB."""
    return redis_key("venue", code, "clob-orders", client_order_id)


def order_metadata(client_order_id: str) -> str:
    """The bytes32 `metadata` signed into the order: a digest of our client order id."""
    return "0x" + hashlib.sha256(client_order_id.encode()).hexdigest()


def _order_to_dict(order: VenueOrder) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "venue_order_id": order.venue_order_id,
        "status": order.status.value,
        "quantity": str(order.quantity),
        "average_price": None if order.average_price is None else str(order.average_price),
        "venue_fill_id": order.venue_fill_id,
        "reason": order.reason,
        "reject_code": order.reject_code,
    }


def _order_from_dict(data: Mapping[str, Any]) -> VenueOrder:
    price = data.get("average_price")
    return VenueOrder(
        client_order_id=data["client_order_id"],
        venue_order_id=data["venue_order_id"],
        status=VenueOrderStatus(data["status"]),
        quantity=Decimal(data["quantity"]),
        average_price=None if price is None else Decimal(price),
        venue_fill_id=data.get("venue_fill_id", ""),
        reason=data.get("reason", ""),
        reject_code=data.get("reject_code", ""),
    )


def broker_signer(clob_url: str) -> ClobOrderSigner:
    """The signer for the broker's wallet from settings (POLYMARKET_PRIVATE_KEY, …).

    Raises ImproperlyConfigured when the key or the CLOB API keys are missing.
    """
    private_key = settings.POLYMARKET_PRIVATE_KEY
    parts = {
        "api_key": settings.POLYMARKET_CLOB_API_KEY,
        "api_secret": settings.POLYMARKET_CLOB_API_SECRET,
        "api_passphrase": settings.POLYMARKET_CLOB_API_PASSPHRASE,
    }
    if not private_key or not all(parts.values()):
        raise ImproperlyConfigured(
            "Polymarket trading needs POLYMARKET_PRIVATE_KEY and POLYMARKET_CLOB_API_KEY, "
            "_SECRET and _PASSPHRASE."
        )
    funder = settings.POLYMARKET_FUNDER or None
    signature_type = settings.POLYMARKET_SIGNATURE_TYPE
    chain_id = settings.POLYMARKET_CHAIN_ID
    # The address is replaced by the signer's own once its key is read.
    credentials = ClobCredentials.from_dict(parts, default_address="0x" + "0" * 40)
    return ClobOrderSigner(
        clob_url=clob_url,
        private_key=private_key,
        credentials=credentials,
        chain_id=chain_id,
        signature_type=signature_type,
        funder=funder,
    )


class PolymarketVenue(VenueAdapter):
    """Polymarket as the broker trades on it (binary markets; the YES token is quoted).

    `listing.venue_symbol` is the CLOB token id of the market's first
    outcome (clobTokenIds[0], "Yes" on Yes/No markets).
    """

    def __init__(
        self,
        code: str,
        *,
        client: PolymarketClient | None = None,
        signer: ClobOrderSigner | None = None,
    ):
        super().__init__(code)
        self._client = client
        self._signer = signer

    @property
    def client(self) -> PolymarketClient:
        if self._client is None:
            self._client = client_from_settings()
        return self._client

    @property
    def signer(self) -> ClobOrderSigner:
        if self._signer is None:
            self._signer = broker_signer(self.client.urls["clob"])
        return self._signer

    def quote(self, listing: Listing) -> Quote:
        """The listing's YES quote from the CLOB book of its YES token.

        The mark is the mid; the CLOB publishes no TWAP, so one book snapshot
        gives twap = mark (the feed keeps the time-weighted history).
        Raises MarketDataUnavailable when Polymarket cannot be read or either
        side of the book is empty, ValueError for another venue's listing.
        """
        token = self.venue_symbol(listing)
        try:
            book = self.client.book(token)
        except VenueError as exc:
            raise MarketDataUnavailable(f"No Polymarket quote for {listing.key}: {exc}") from exc
        return book_quote(listing, book, venue_name="Polymarket")

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
        fill_or_kill: bool = True,
    ) -> VenueOrder:
        """Send a fill-or-kill market order for `notional` USDC or `quantity` shares;
        return the CLOB's answer.

        Always fill-or-kill (`fill_or_kill` is accepted for the interface). The
        outcome's own token is traded on its own book (NO is the market's
        second token). The book is walked first: an order the book cannot
        fill (a `quantity` order: at levels at or better than `worst_price`),
        or a `notional` order only at an average worse than `worst_price`, is
        REJECTED without being sent (PRICE_LIMIT for the latter). Otherwise
        the official client signs a FOK order limited at the walk's deepest
        level, so it never fills worse than estimated: a buy spends
        `notional`, or what the walk says `quantity` costs, rounded down to
        the cent (the CLOB's market buys are sized in USDC, so a buy by
        quantity may get a hair less); a sell gives `quantity`, or the
        shares the walk says raise `notional`, rounded down to the cent.
        Idempotent by `client_order_id`: the signed order is
        recorded in Redis before it is sent; a repeat returns the recorded
        answer, or asks the CLOB for the order and re-sends the same signed
        order (same hash: it cannot fill twice) only if the CLOB never got
        it. Raises VenueTimeout when the outcome is unknown, InvalidParams,
        ImproperlyConfigured without broker keys, or a VenueError when
        nothing was accepted.
        """
        try:
            side = Side(side)
        except ValueError as exc:
            raise InvalidParams(f"Side must be 'buy' or 'sell', not {side!r}.") from exc
        order_size_check(notional, quantity)
        outcome = outcome or Outcome.YES
        yes_token = self.venue_symbol(listing)
        key = polymarket_order_key(self.code, client_order_id)
        store = redis_client()
        raw = store.get(key)
        if raw is not None:
            return self._resume(json.loads(raw), key)
        record = self._prepare(
            yes_token, side, (notional, quantity), outcome, worst_price, client_order_id
        )
        if not store.set(key, json.dumps(record), nx=True, ex=ORDER_TTL_SECONDS):
            # Another process placed this id first: follow its order, not ours.
            return self._resume(json.loads(store.get(key)), key)
        if record["result"] is not None:
            return _order_from_dict(record["result"])
        return self._send(record, key)

    def order_status(
        self, listing: Listing, *, client_order_id: str, outcome: Outcome | None = None
    ) -> VenueOrder | None:
        """The CLOB's record of the order sent as `client_order_id` (None: never received).

        Raises VenueTimeout when Polymarket cannot answer.
        """
        self.venue_symbol(listing)
        raw = redis_client().get(polymarket_order_key(self.code, client_order_id))
        if raw is None:
            return None
        record = json.loads(raw)
        if record["result"] is not None:
            return _order_from_dict(record["result"])
        try:
            order = self._venue_record(record)
        except (VenueUnavailable, VenueRateLimited) as exc:
            raise VenueTimeout(f"Polymarket did not answer for {client_order_id}.") from exc
        if order is not None:
            self._save(record, order, polymarket_order_key(self.code, client_order_id))
        return order

    def heartbeat(self, *, heartbeat_id: str = "", timeout: float | None = None) -> str:
        """One heartbeat for the broker's CLOB key; the id to send next (see
        `PolymarketClient.heartbeat`). Raises ImproperlyConfigured without
        broker keys, or a VenueError."""
        return self.client.heartbeat(
            self.signer.credentials, heartbeat_id=heartbeat_id, timeout=timeout
        )

    # -- the steps -------------------------------------------------------------

    def _prepare(
        self,
        yes_token: str,
        side: Side,
        size: tuple[Decimal | None, Decimal | None],
        outcome: Outcome,
        worst_price: Decimal | None,
        client_order_id: str,
    ) -> dict[str, Any]:
        """The record of the order to send: signed, or already rejected (never sent).
        `size`: (notional, quantity), one of them given."""
        token = yes_token if outcome == Outcome.YES else self._other_token(yes_token)
        record: dict[str, Any] = {
            "client_order_id": client_order_id,
            "token_id": token,
            "side": side.value,
            "outcome": outcome.value,
            "order_id": "",
            "payload": None,
            "result": None,
        }
        notional, quantity = (
            None if value is None else value.quantize(CENT, rounding=ROUND_DOWN) for value in size
        )

        def rejected(reason: str, reject_code: str = "") -> dict[str, Any]:
            record["result"] = _order_to_dict(
                VenueOrder(
                    client_order_id=client_order_id,
                    venue_order_id="",
                    status=VenueOrderStatus.REJECTED,
                    reason=reason,
                    reject_code=reject_code,
                )
            )
            return record

        if (notional or quantity or ZERO) <= ZERO:
            return rejected("The order is below the smallest size the CLOB takes.")
        limit = worst_price if quantity is not None else None
        estimate = book_walk(
            self.client.book(token), side, notional=notional, quantity=quantity, limit=limit
        )
        if not estimate.complete or estimate.worst_price is None:
            return rejected(
                "Not enough liquidity in the book"
                + (" at or better than the limit." if limit is not None else ".")
            )
        average = estimate.average_price
        if notional is not None and worst_price is not None and average is not None:
            beyond = average > worst_price if side == Side.BUY else average < worst_price
            if beyond:
                return rejected(
                    f"The fill would average {average}, beyond the order's worst acceptable "
                    f"price {worst_price}.",
                    PRICE_LIMIT,
                )
        if side == Side.SELL:
            amount = estimate.quantity.quantize(CENT, ROUND_DOWN)
        else:
            amount = notional or estimate.notional.quantize(CENT, ROUND_DOWN)
        if amount <= ZERO:
            return rejected("The order is below the smallest size the CLOB takes.")
        signed = self.signer.sign_market_order(
            token_id=token,
            side=side,
            amount=amount,
            limit_price=estimate.worst_price,
            metadata=order_metadata(client_order_id),
        )
        record.update(order_id=signed.order_id, payload=signed.payload)
        return record

    def _other_token(self, yes_token: str) -> str:
        _, tokens = self.client.market_tokens(yes_token)
        others = [t for t in tokens if t != yes_token]
        if len(tokens) != 2 or len(others) != 1:
            raise VenueBadResponse(
                f"Polymarket's market for token {yes_token[:12]}… is not binary."
            )
        return others[0]

    def _send(self, record: dict[str, Any], key: str) -> VenueOrder:
        """POST the recorded signed order; record and return the CLOB's answer."""
        client_order_id = record["client_order_id"]
        try:
            answer = self.client.order_post(self.signer.credentials, record["payload"])
        except VenueUnavailable as exc:
            raise VenueTimeout(
                f"Polymarket did not confirm order {client_order_id}: the outcome is unknown."
            ) from exc
        venue_id = str(answer.get("orderID") or "")
        if venue_id and venue_id != record["order_id"]:
            logger.warning("polymarket: CLOB order id differs from the signed order's hash")
            record["order_id"] = venue_id
        order = self._from_answer(record, answer)
        self._save(record, order, key)
        return order

    def _resume(self, record: dict[str, Any], key: str) -> VenueOrder:
        """A repeat of a recorded order: its answer, the CLOB's record, or a re-send."""
        if record["result"] is not None:
            return _order_from_dict(record["result"])
        try:
            order = self._venue_record(record)
        except (VenueUnavailable, VenueRateLimited) as exc:
            raise VenueTimeout(
                f"Polymarket did not answer for order {record['client_order_id']}."
            ) from exc
        if order is not None:
            self._save(record, order, key)
            return order
        # The CLOB never got it: the same signed order again (same hash, one fill at most).
        return self._send(record, key)

    @staticmethod
    def _save(record: dict[str, Any], order: VenueOrder, key: str) -> None:
        if order.status != VenueOrderStatus.PENDING:
            record["result"] = _order_to_dict(order)
        redis_client().set(key, json.dumps(record), xx=True, keepttl=True)

    def _from_answer(self, record: dict[str, Any], answer: Mapping[str, Any]) -> VenueOrder:
        """Map POST /order's answer onto VenueOrder."""
        common = {
            "client_order_id": record["client_order_id"],
            "venue_order_id": record["order_id"],
        }
        status = str(answer.get("status") or "").lower()
        error = str(answer.get("errorMsg") or "")
        if answer.get("success") is not True or error or status == "unmatched":
            return VenueOrder(
                **common,
                status=VenueOrderStatus.REJECTED,
                reason=error[:200] or "Polymarket did not fill the order.",
            )
        if status != "matched":
            # "delayed": the market imposes a matching delay; ask order_status later.
            return VenueOrder(**common, status=VenueOrderStatus.PENDING)
        # "6-decimal fixed-math strings" (post-a-new-order, SendOrderResponse): base units.
        making = parse_decimal(answer.get("makingAmount"), "makingAmount") / USDC_UNITS
        taking = parse_decimal(answer.get("takingAmount"), "takingAmount") / USDC_UNITS
        signed = json.loads(record["payload"])["order"] if record.get("payload") else {}
        if "makerAmount" in signed and making > Decimal(str(signed["makerAmount"])) / USDC_UNITS:
            # Never book more than the signed order could give: a unit mix-up, not a fill.
            raise VenueBadResponse("Polymarket reported a match larger than the order.")
        # A buy gives USDC (making) for shares (taking); a sell the reverse.
        shares, usdc = (taking, making) if record["side"] == Side.BUY.value else (making, taking)
        if shares <= ZERO:
            raise VenueBadResponse("Polymarket reported a match of no shares.")
        fill_ids = list(answer.get("tradeIDs") or []) + list(answer.get("transactionsHashes") or [])
        return VenueOrder(
            **common,
            status=VenueOrderStatus.FILLED,
            quantity=shares,
            average_price=quantize_price(usdc / shares),
            venue_fill_id=str(fill_ids[0]) if fill_ids else record["order_id"],
        )

    def _venue_record(self, record: dict[str, Any]) -> VenueOrder | None:
        """The CLOB's own record of a sent order (`GET /data/order/{id}`); None if absent."""
        if not record.get("order_id"):
            return None
        credentials = self.signer.credentials
        data = self.client.order_get(credentials, record["order_id"])
        if data is None:
            return None
        common = {
            "client_order_id": record["client_order_id"],
            "venue_order_id": record["order_id"],
        }
        status = str(data.get("status") or "").upper()
        matched = _optional_decimal(data.get("size_matched"), "size_matched") or ZERO
        if matched > ZERO:
            trades = [str(t) for t in data.get("associate_trades") or []]
            return VenueOrder(
                **common,
                status=VenueOrderStatus.FILLED,
                quantity=matched,
                average_price=self._average_price(credentials, trades),
                venue_fill_id=trades[0] if trades else record["order_id"],
            )
        if status.startswith("CANCELED"):
            return VenueOrder(**common, status=VenueOrderStatus.CANCELLED)
        if status in ("INVALID", "UNMATCHED"):
            return VenueOrder(**common, status=VenueOrderStatus.REJECTED, reason=status.lower())
        return VenueOrder(**common, status=VenueOrderStatus.PENDING)

    def _average_price(self, credentials: ClobCredentials, trade_ids: list[str]) -> Decimal | None:
        """The size-weighted price of the order's trades (None when none can be read)."""
        spent = shares = ZERO
        for trade_id in trade_ids:
            for trade in self.client.trades(credentials, trade_id=trade_id):
                size = parse_decimal(trade.get("size"), "trade size")
                spent += size * parse_decimal(trade.get("price"), "trade price")
                shares += size
        return quantize_price(spent / shares) if shares > ZERO else None


# ---------------------------------------------------------------------------
# The dead-man switch (module docstring)


class BrokerHeartbeat:
    """Keeps Polymarket's dead-man switch alive for the broker's CLOB key.

    A daemon thread sends `venue.heartbeat()` every `every` seconds while
    `leadership` is held (always, without one), so one process of the
    deployment keeps one heartbeat chain. Use it as a context manager around
    the feed's run. A failed heartbeat never stops the thread: the first of a
    run of failures is logged as an error, then one line every
    HEARTBEAT_FAILURE_LOG_SECONDS, and the recovery once.
    """

    def __init__(
        self,
        venue: PolymarketVenue,
        *,
        every: float,
        leadership: Leadership | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if every <= 0:
            raise ValueError("The heartbeat interval must be positive.")
        self.venue = venue
        self.every = every
        self.leadership = leadership
        self.sent = 0
        self.failed_in_a_row = 0
        self._clock = clock
        self._heartbeat_id = ""
        self._next_failure_log = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> bool:
        """Send one heartbeat; whether Polymarket acknowledged it. Never raises."""
        try:
            self._heartbeat_id = self.venue.heartbeat(
                heartbeat_id=self._heartbeat_id, timeout=HEARTBEAT_TIMEOUT_SECONDS
            )
        except Exception as exc:  # a heartbeat failure must never end the loop
            if isinstance(exc, PolymarketRefused) and exc.http_status == 400:
                self._heartbeat_id = ""  # an id it no longer takes: start a new chain
            self._failed(exc)
            return False
        if self.failed_in_a_row:
            logger.info(
                "polymarket: heartbeats acknowledged again after %d failures", self.failed_in_a_row
            )
        self.failed_in_a_row = 0
        self.sent += 1
        return True

    def _failed(self, exc: Exception) -> None:
        self.failed_in_a_row += 1
        now = self._clock()
        if self.failed_in_a_row == 1:
            self._next_failure_log = now + HEARTBEAT_FAILURE_LOG_SECONDS
            if isinstance(exc, VenueError | ImproperlyConfigured):
                # Our venue errors carry no secret (messages are redacted).
                logger.error(
                    "polymarket: heartbeat failed (%s); Polymarket cancels the broker's open "
                    "orders if this lasts",
                    exc,
                )
            else:
                logger.exception("polymarket: heartbeat failed")
        elif now >= self._next_failure_log:
            self._next_failure_log = now + HEARTBEAT_FAILURE_LOG_SECONDS
            logger.warning(
                "polymarket: heartbeats still failing (%d in a row; last: %s)",
                self.failed_in_a_row,
                type(exc).__name__,
            )

    def run(self) -> None:
        """Beat every `every` seconds (while the role is held) until stopped."""
        next_at = self._clock()
        while not self._stop.is_set():
            if self.leadership is None or self.leadership.held:
                self.beat()
            next_at += self.every
            delay = next_at - self._clock()
            if delay < 0:
                next_at, delay = self._clock(), 0.0
            self._stop.wait(delay)

    def stop(self) -> None:
        self._stop.set()

    def __enter__(self) -> "BrokerHeartbeat":
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="polymarket-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_TIMEOUT_SECONDS + 1)
            self._thread = None


def broker_heartbeat(
    venue: PolymarketVenue, *, leadership: Leadership | None = None
) -> BrokerHeartbeat:
    """The broker's heartbeat through `venue`, every POLYMARKET_HEARTBEAT_SECONDS (default 5)."""
    every = float(settings.POLYMARKET_HEARTBEAT_SECONDS)
    return BrokerHeartbeat(venue, every=every, leadership=leadership)
