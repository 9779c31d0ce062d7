"""A linked exchange account as we track it, whichever venue holds it.

Non-custodial users keep their funds on Kalshi or Polymarket and link the
account to us (SPEC §1). Each venue module offers a tracking client built
from the user's (decrypted) credential with two calls:

- `credential_check()` proves the credential works (a signed, read-only call)
  and reports what the venue says about it: its scopes and any warning
  (a Kalshi key with write scope where read would do);
- `account_fetch()` reads cash and every open position, all pages collected,
  numbers parsed to Decimal, each with its market's best YES bid and ask (what
  the sync publishes as the market's quote, so the positions are valued by the
  collateral-price rule of SPEC §4 like every other).

Both raise a VenueError subclass; nothing here touches the database: the sync
service maps what comes back onto our instruments and positions.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from portal.errors import DomainError, ErrorCode


@dataclass(frozen=True, slots=True)
class TrackedMarket:
    """A venue market as the venue describes it (enough to create or find ours)."""

    venue_market_id: str  # Kalshi market ticker; Polymarket condition id
    title: str
    event_code: str  # Kalshi event ticker; Polymarket event slug ("" when none)
    event_title: str
    expires_at: datetime | None
    is_open: bool  # False once closed for trading (settled, resolved, halted)
    # The YES contract's prices on the venue now: the best bid and ask (None: no
    # orders on that side), and the last trade (None: none known). The NO contract's
    # are their complements (its bid is 1 − the YES ask).
    yes_bid: Decimal | None = None
    yes_ask: Decimal | None = None
    last_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TrackedPosition:
    """One open position: `quantity` contracts (> 0) of the `outcome` ("yes"/"no")."""

    market: TrackedMarket
    outcome: str
    quantity: Decimal
    average_price: Decimal  # per contract, in [0, 1]
    realized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class TrackedAccount:
    """What the venue holds for the linked account right now."""

    cash: Decimal | None  # None when the venue does not tell us (a wallet without CLOB keys)
    positions: tuple[TrackedPosition, ...]


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    identity: str  # what the venue calls the credential (Kalshi key id, wallet address)
    scopes: tuple[str, ...]  # ("read",), ("read", "write"); () when the venue has none
    warnings: tuple[str, ...] = ()  # plain sentences for the user


class VenueError(DomainError):
    """A venue call failed. Messages never carry a credential or a signature."""

    error = ErrorCode.VENUE_UNAVAILABLE


class VenueAuthError(VenueError):
    """The venue refused the credential (wrong, revoked, or without the right scope)."""

    error = ErrorCode.VENUE_AUTH_FAILED


class VenueRateLimited(VenueError):
    """Still rate-limited after the retries the client allows itself."""

    error = ErrorCode.VENUE_RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class VenueUnavailable(VenueError):
    """Timeout, connection failure or 5xx: the venue could not answer."""


class VenueBadResponse(VenueError):
    """The venue answered with something we cannot read."""

    error = ErrorCode.VENUE_BAD_RESPONSE


class TrackingClient(Protocol):
    def credential_check(self) -> CredentialCheck: ...

    def account_fetch(self) -> TrackedAccount: ...
