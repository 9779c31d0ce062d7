"""Linked exchange accounts: link, rotate, unlink and sync (SPEC §1, non-custodial).

A user links a Kalshi API key (key id + RSA private key) or a Polymarket
wallet (+ optional CLOB keys). Linking verifies the credential with the venue
first (a signed read) and only then opens a non-custodial account holding it,
sealed (accounts.credential_keys). Syncing reads cash and positions from the
venue and mirrors them onto the account's Position rows, mapped to our
instruments (a market we do not list yet is created, as a halted instrument:
tracked, never routed to). Each synced market's best bid and ask are published
as its quote where no feed quotes it (`_market_quote`), so synced positions
are valued by the collateral-price rule of SPEC §4 like every other: min(best
bid, TWAP), a NO contract from the YES ask side. Credentials are never logged,
returned or put in an error: what a venue error says is kept in `last_error`,
sanitized by the adapters.

A failed sync keeps the last good positions, records the error and backs off
(LINKED_SYNC_INTERVAL_SECONDS doubling up to LINKED_SYNC_BACKOFF_MAX_SECONDS);
a sync run twice gives the same positions.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import slugify

from accounts.credential_keys import CredentialKeyError
from accounts.models import Account, LinkedCredential, User
from accounts.services.accounts import account_open
from accounts.services.audit import audit_record
from accounts.services.ledger import accounts_changed_mark
from portal import format as fmt
from portal.errors import Conflict, ErrorCode, Forbidden, InvalidParams
from portal.money import ZERO, quantize_money
from portal.redis import redis_client, redis_key
from trading.enqueue import linked_account_sync_enqueue
from trading.marketdata.quotes import OrderBook, Outcome, Quote, quantize_price
from trading.marketdata.store import quotes_get_many, quotes_publish
from trading.models import EventGroup, Instrument, Listing, Position, Venue
from trading.services.notices import linked_sync_failed_notify, linked_sync_recovered_notify
from trading.venues import kalshi, polymarket
from trading.venues.tracking import (
    CredentialCheck,
    TrackedAccount,
    TrackedMarket,
    TrackedPosition,
    TrackingClient,
    VenueError,
)

logger = logging.getLogger(__name__)

SYNC_LOCK_SECONDS = 120  # longer than a sync can take (client timeouts × retries)
# A synced price stands in for a quote only where the market-data feed has none this fresh.
FEED_QUOTE_FRESH_SECONDS = 30
PRICE_FLOOR, PRICE_CEILING = Decimal("0.0001"), Decimal("0.9999")
TICK_SIZE = Decimal("0.01")
KALSHI_KEY_ID = re.compile(r"^[A-Za-z0-9-]{8,100}$")


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    credential_id: int
    ok: bool
    skipped: str = ""  # why nothing was done: "unlinked", "running", "missing"
    positions: int = 0
    unmapped: int = 0
    error: str = ""


# --- Link, rotate, unlink -------------------------------------------------------------


def _tracking_client(*, venue: str, environment: str, identity: str, secrets: dict):
    if venue == LinkedCredential.Venue.KALSHI:
        return kalshi.tracking_client(
            key_id=identity,
            private_key_pem=secrets.get("private_key_pem", ""),
            environment=environment,
        )
    return polymarket.tracking_client(wallet=identity, clob_credentials=secrets or None)


def credential_tracking_client(credential: LinkedCredential) -> TrackingClient:
    """A venue client for `credential` (its secret opened only in memory)."""
    return _tracking_client(
        venue=credential.venue,
        environment=credential.environment,
        identity=credential.identity,
        secrets=credential.secrets(),
    )


def _credential_parse(
    *,
    venue: str,
    environment: str,
    key_id: str,
    private_key_pem: str,
    wallet: str,
    clob_api_key: str,
    clob_api_secret: str,
    clob_api_passphrase: str,
) -> tuple[str, str, dict[str, str]]:
    """(environment, identity, secret parts) from a form or API body; InvalidParams if bad."""
    if venue == LinkedCredential.Venue.KALSHI:
        if environment not in LinkedCredential.Environment.values:
            raise InvalidParams("Choose the Kalshi environment that issued the key.")
        key_id = key_id.strip()
        if not KALSHI_KEY_ID.match(key_id):
            raise InvalidParams("Enter the Kalshi API key id (letters, digits and dashes).")
        if "PRIVATE KEY-----" not in private_key_pem:
            raise InvalidParams("Paste the RSA private key in PEM format (-----BEGIN … KEY-----).")
        return environment, key_id, {"private_key_pem": private_key_pem.strip() + "\n"}
    if venue == LinkedCredential.Venue.POLYMARKET:
        wallet = polymarket.wallet_validate(wallet)
        clob = [clob_api_key.strip(), clob_api_secret.strip(), clob_api_passphrase.strip()]
        if any(clob) and not all(clob):
            raise InvalidParams("Give all three CLOB values (key, secret, passphrase), or none.")
        secrets = (
            dict(zip(("api_key", "api_secret", "api_passphrase"), clob, strict=True))
            if all(clob)
            else {}
        )
        return "", wallet, secrets
    raise InvalidParams("Choose Kalshi or Polymarket.")


def _verified(*, venue: str, environment: str, identity: str, secrets: dict) -> CredentialCheck:
    client = _tracking_client(
        venue=venue, environment=environment, identity=identity, secrets=secrets
    )
    return client.credential_check()


def linked_account_link(
    *,
    user: User,
    venue: str,
    environment: str = "",
    key_id: str = "",
    private_key_pem: str = "",
    wallet: str = "",
    clob_api_key: str = "",
    clob_api_secret: str = "",
    clob_api_passphrase: str = "",
    name: str = "",
    request: HttpRequest | None = None,
) -> LinkedCredential:
    """Verify a venue credential, then open a non-custodial account tracking it.

    The venue is asked first (a signed read-only call; nothing is stored when
    it refuses); then, in one transaction, the account is opened, the
    credential sealed and stored with the scopes and warning the venue
    reported, and the link audited; the first sync is queued after commit.
    Raises InvalidParams (bad input), Forbidden (KYB not approved), Conflict
    (this credential already tracks one of the user's accounts), or the
    venue's error (VenueAuthError: refused; VenueUnavailable / VenueRateLimited).
    """
    if not user.is_kyb_approved:
        raise Forbidden(
            "Linking an exchange account needs an approved KYB.", code=ErrorCode.KYB_REQUIRED
        )
    environment, identity, secrets = _credential_parse(
        venue=venue,
        environment=environment,
        key_id=key_id,
        private_key_pem=private_key_pem,
        wallet=wallet,
        clob_api_key=clob_api_key,
        clob_api_secret=clob_api_secret,
        clob_api_passphrase=clob_api_passphrase,
    )
    _refuse_duplicate(user=user, venue=venue, identity=identity)
    check = _verified(venue=venue, environment=environment, identity=identity, secrets=secrets)
    now = timezone.now()
    with transaction.atomic():
        credential = LinkedCredential(
            venue=venue,
            environment=environment,
            identity=identity,
            scopes=",".join(check.scopes),
            warning=" ".join(check.warnings)[:255],
            last_verified_at=now,
            next_sync_at=now,
        )
        default_name = f"{credential.get_venue_display()} {credential.identity_masked}"
        account = account_open(
            owner=user, kind=Account.Kind.NON_CUSTODIAL, name=(name.strip() or default_name)[:100]
        )
        credential.account = account
        credential.secrets_set(secrets)
        credential.save()
        audit_record(
            actor=user,
            action="linked_credential_link",
            obj=credential,
            changes={"venue": [None, venue], "scopes": [None, credential.scopes]},
            request=request,
        )
        _sync_enqueue(credential.pk)
    return credential


def _refuse_duplicate(*, user: User, venue: str, identity: str) -> None:
    taken = (
        LinkedCredential.objects.filter(account__owner=user, venue=venue, identity__iexact=identity)
        .exclude(status=LinkedCredential.Status.UNLINKED)
        .exists()
    )
    if taken:
        raise Conflict("This credential already tracks one of your accounts.")


def linked_credential_rotate(
    *,
    credential: LinkedCredential,
    actor: User,
    key_id: str = "",
    private_key_pem: str = "",
    wallet: str = "",
    clob_api_key: str = "",
    clob_api_secret: str = "",
    clob_api_passphrase: str = "",
    request: HttpRequest | None = None,
) -> LinkedCredential:
    """Replace the credential of a linked account (or re-link an unlinked one).

    Kalshi: a new key id and private key (same environment); Polymarket: the
    same wallet with new CLOB keys, or none. The new credential is verified
    with the venue before anything changes; then, under the credential's row
    lock, it is sealed in place of the old one, errors and back-off are
    cleared, the change is audited and a sync queued. Raises like
    `linked_account_link`; Forbidden if `actor` does not own the account.
    """
    if credential.account.owner_id != actor.pk:
        raise Forbidden("This is not your account.")
    environment, identity, secrets = _credential_parse(
        venue=credential.venue,
        environment=credential.environment or "",
        key_id=key_id,
        private_key_pem=private_key_pem,
        wallet=wallet or credential.identity,
        clob_api_key=clob_api_key,
        clob_api_secret=clob_api_secret,
        clob_api_passphrase=clob_api_passphrase,
    )
    wallet_changed = identity.lower() != credential.identity.lower()
    if credential.venue == LinkedCredential.Venue.POLYMARKET and wallet_changed:
        raise InvalidParams(
            "A linked wallet cannot change; link the other wallet as a new account."
        )
    check = _verified(
        venue=credential.venue, environment=environment, identity=identity, secrets=secrets
    )
    now = timezone.now()
    with transaction.atomic():
        locked = LinkedCredential.objects.select_for_update().get(pk=credential.pk)
        before = {"identity": locked.identity_masked, "status": locked.status}
        locked.identity = identity
        locked.secrets_set(secrets)
        locked.scopes = ",".join(check.scopes)
        locked.warning = " ".join(check.warnings)[:255]
        locked.status = LinkedCredential.Status.ACTIVE
        locked.last_error = ""
        locked.consecutive_failures = 0
        locked.last_verified_at = locked.rotated_at = locked.next_sync_at = now
        locked.save()
        audit_record(
            actor=actor,
            action="linked_credential_rotate",
            obj=locked,
            changes={
                "identity": [before["identity"], locked.identity_masked],
                "status": [before["status"], locked.status],
            },
            request=request,
        )
        _sync_enqueue(locked.pk)
    return locked


def linked_account_unlink(
    *, credential: LinkedCredential, actor: User, request: HttpRequest | None = None
) -> LinkedCredential:
    """Stop tracking: the sealed secret is erased and syncing stops, under the row lock.

    The account and its last synced positions stay (shown as of the last
    sync); linking again goes through `linked_credential_rotate`. Idempotent.
    Raises Forbidden if `actor` does not own the account.
    """
    if credential.account.owner_id != actor.pk:
        raise Forbidden("This is not your account.")
    with transaction.atomic():
        locked = LinkedCredential.objects.select_for_update().get(pk=credential.pk)
        if locked.status == LinkedCredential.Status.UNLINKED:
            return locked
        before = locked.status
        locked.secrets_set({})
        locked.status = LinkedCredential.Status.UNLINKED
        locked.next_sync_at = None
        locked.save(update_fields=["sealed_secret", "status", "next_sync_at"])
        audit_record(
            actor=actor,
            action="linked_credential_unlink",
            obj=locked,
            changes={"status": [before, locked.status]},
            request=request,
        )
    return locked


def _sync_enqueue(credential_id: int) -> None:
    """Queue a sync of the credential as an outbox item (in the caller's transaction, if any)."""
    linked_account_sync_enqueue(credential_id=credential_id)


def linked_account_sync_request(*, credential: LinkedCredential, actor: User) -> None:
    """ "Sync now": queue a sync of the user's linked account (after the current transaction)."""
    if credential.account.owner_id != actor.pk:
        raise Forbidden("This is not your account.")
    if credential.status == LinkedCredential.Status.UNLINKED:
        raise InvalidParams("This account is unlinked: link a credential again to sync it.")
    _sync_enqueue(credential.pk)


def linked_credentials_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of the linked credentials whose next sync is due (oldest due first)."""
    now = now or timezone.now()
    return list(
        LinkedCredential.objects.filter(next_sync_at__lte=now)
        .exclude(status=LinkedCredential.Status.UNLINKED)
        .order_by("next_sync_at")
        .values_list("pk", flat=True)[:limit]
    )


# --- Sync -----------------------------------------------------------------------------


def linked_account_sync(*, credential_id: int, now: datetime | None = None) -> SyncOutcome:
    """Mirror the venue's cash and positions onto the linked account.

    One sync per credential at a time (a Redis lock; a concurrent call
    returns skipped="running"). The venue is read outside any transaction;
    then, under the account's row lock, positions are upserted, the ones the
    venue no longer reports are closed (quantity 0), and the credential
    records cash and success. On a venue error nothing of the account
    changes: the error is recorded and the next attempt backs off. Idempotent.
    """
    now = now or timezone.now()
    lock = redis_client().lock(
        redis_key("linked-sync", str(credential_id)), timeout=SYNC_LOCK_SECONDS, blocking=False
    )
    if not lock.acquire():
        return SyncOutcome(credential_id, ok=False, skipped="running")
    try:
        credential = (
            LinkedCredential.objects.select_related("account").filter(pk=credential_id).first()
        )
        if credential is None:
            return SyncOutcome(credential_id, ok=False, skipped="missing")
        if credential.status == LinkedCredential.Status.UNLINKED:
            return SyncOutcome(credential_id, ok=False, skipped="unlinked")
        try:
            tracked = credential_tracking_client(credential).account_fetch()
        except (VenueError, CredentialKeyError) as exc:
            return _sync_failed(credential, exc, now=now)
        return _sync_apply(credential, tracked, now=now)
    finally:
        lock.release()


# What a failed sync tells the user, by the venue error's code: a plain sentence where the
# venue's own words are technical (an HTTP status, an endpoint); a refused credential keeps
# the venue's words (written for people by the adapters) and says what to do.
SYNC_ERRORS = {
    ErrorCode.VENUE_UNAVAILABLE.code: "The exchange did not answer. We will try again shortly.",
    ErrorCode.VENUE_RATE_LIMITED.code: (
        "The exchange asked us to slow down. We will try again shortly."
    ),
    ErrorCode.VENUE_BAD_RESPONSE.code: (
        "The exchange sent an answer we could not read. We will try again shortly."
    ),
}
CREDENTIAL_UNREADABLE = (
    "We could not read the stored credential on our side. Replace it, or contact support."
)
REFUSED_ADVICE = "Check that the key is still active and can read the account, or replace it."


def _error_text(exc: Exception) -> str:
    """The sync error as the Linked exchanges page and the API show it: sentences, no
    machine codes (the code and the venue's full text go to the log)."""
    if not isinstance(exc, VenueError):
        # CredentialKeyError: a server-side key problem; its message names no secret.
        return CREDENTIAL_UNREADABLE
    if exc.code in SYNC_ERRORS:
        return SYNC_ERRORS[exc.code]
    text = fmt.sentence(exc.message)
    if exc.code == ErrorCode.VENUE_AUTH_FAILED.code:
        text = f"{text} {REFUSED_ADVICE}"
    return text[:500]


def _sync_failed(credential: LinkedCredential, exc: Exception, *, now: datetime) -> SyncOutcome:
    # The outcome (tasks, logs) keeps the code and the venue's words; the user reads
    # `_error_text`.
    error = f"{getattr(exc, 'code', 'credential_unreadable')}: {getattr(exc, 'message', exc)}"
    logger.warning("linked account sync failed: credential %s: %s", credential.pk, error)
    with transaction.atomic():
        locked = LinkedCredential.objects.select_for_update().get(pk=credential.pk)
        if locked.status == LinkedCredential.Status.UNLINKED:
            return SyncOutcome(credential.pk, ok=False, skipped="unlinked")
        episode_starts = locked.consecutive_failures == 0
        locked.consecutive_failures += 1
        backoff = min(
            settings.LINKED_SYNC_INTERVAL_SECONDS * 2**locked.consecutive_failures,
            settings.LINKED_SYNC_BACKOFF_MAX_SECONDS,
        )
        retry_after = getattr(exc, "retry_after", None) or 0
        locked.status = LinkedCredential.Status.FAILING
        locked.last_error = _error_text(exc)
        locked.last_sync_attempt_at = now
        locked.next_sync_at = now + timedelta(seconds=max(backoff, retry_after))
        locked.save(
            update_fields=[
                "consecutive_failures",
                "status",
                "last_error",
                "last_sync_attempt_at",
                "next_sync_at",
            ]
        )
        if episode_starts:  # once per failing episode; `_sync_apply` tells its end
            linked_sync_failed_notify(credential=locked, exc=exc, now=now)
    return SyncOutcome(credential.pk, ok=False, error=error)


def _sync_apply(
    credential: LinkedCredential, tracked: TrackedAccount, *, now: datetime
) -> SyncOutcome:
    venue, _ = Venue.objects.get_or_create(
        code=credential.venue,
        defaults={"name": credential.get_venue_display(), "kind": Venue.Kind.PREDICTION},
    )
    instruments = _instruments_for(venue, [p.market for p in tracked.positions])
    unmapped = sum(p.market.venue_market_id not in instruments for p in tracked.positions)
    wanted = {
        (instruments[p.market.venue_market_id].pk, p.outcome): p
        for p in tracked.positions
        if p.market.venue_market_id in instruments
    }
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=credential.account_id)
        locked = LinkedCredential.objects.select_for_update().get(pk=credential.pk)
        if locked.status == LinkedCredential.Status.UNLINKED:  # unlinked while we read
            return SyncOutcome(credential.pk, ok=False, skipped="unlinked")
        held = {(p.instrument_id, p.outcome): p for p in Position.objects.filter(account=account)}
        for key, position in held.items():
            if key not in wanted and position.quantity != ZERO:
                position.quantity = ZERO
                position.updated_at = now
                position.save(update_fields=["quantity", "updated_at"])
        for (instrument_id, outcome), venue_position in wanted.items():
            _position_mirror(
                account=account,
                instrument_id=instrument_id,
                outcome=outcome,
                venue_position=venue_position,
                existing=held.get((instrument_id, outcome)),
                now=now,
            )
        failures = locked.consecutive_failures
        if failures:  # a failing episode ends
            linked_sync_recovered_notify(credential=locked, failures=failures, now=now)
        locked.cash_balance = None if tracked.cash is None else quantize_money(tracked.cash)
        locked.status = LinkedCredential.Status.ACTIVE
        locked.consecutive_failures = 0
        locked.last_error = (
            f"{unmapped} position(s) in markets we could not map (no expiry given)."
            if unmapped
            else ""
        )
        locked.last_synced_at = locked.last_sync_attempt_at = now
        locked.next_sync_at = now + timedelta(seconds=settings.LINKED_SYNC_INTERVAL_SECONDS)
        locked.save(
            update_fields=[
                "cash_balance",
                "status",
                "consecutive_failures",
                "last_error",
                "last_synced_at",
                "last_sync_attempt_at",
                "next_sync_at",
            ]
        )
        transaction.on_commit(lambda: accounts_changed_mark(account_ids=[account.pk]))
    _prices_publish(venue, instruments, tracked.positions, now=now)
    return SyncOutcome(credential.pk, ok=True, positions=len(wanted), unmapped=unmapped)


def _position_mirror(
    *,
    account: Account,
    instrument_id: int,
    outcome: str,
    venue_position: TrackedPosition,
    existing: Position | None,
    now: datetime,
) -> None:
    values = {
        "quantity": venue_position.quantity,
        "average_price": quantize_price(venue_position.average_price),
        "realized_pnl": quantize_money(venue_position.realized_pnl),
    }
    if existing is None:
        Position.objects.create(
            account=account,
            instrument_id=instrument_id,
            outcome=outcome,
            opened_at=now,
            updated_at=now,
            **values,
        )
        return
    if any(getattr(existing, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(existing, name, value)
        existing.updated_at = now
        existing.save(update_fields=[*values, "updated_at"])


def _instruments_for(venue: Venue, markets: list[TrackedMarket]) -> dict[str, Instrument]:
    """Our instruments listed on `venue` for these markets, by venue market id (one
    query for the known ones); a new market gets one created (`_instrument_create`),
    a market without an expiry none (its positions are counted as unmapped)."""
    wanted = {market.venue_market_id: market for market in markets}
    instruments = {
        listing.venue_symbol: listing.instrument
        for listing in Listing.objects.select_related("instrument").filter(
            venue=venue, venue_symbol__in=wanted
        )
    }
    for market_id, market in wanted.items():
        if market_id not in instruments and market.expires_at is not None:
            instruments[market_id] = _instrument_create(venue, market)
    return instruments


def _instrument_create(venue: Venue, market: TrackedMarket) -> Instrument:
    """A halted binary instrument (tracked, never routed to) listed on `venue` as
    `market.venue_market_id`, in an event group of the venue's event; the one
    another sync created meanwhile if it won the race."""
    try:
        with transaction.atomic():
            event_code = slugify(f"{venue.code}-{market.event_code or market.venue_market_id}")
            event, _ = EventGroup.objects.get_or_create(
                code=event_code[:64],
                defaults={"title": (market.event_title or market.title)[:200]},
            )
            instrument = Instrument.objects.create(
                symbol=_symbol_free(venue, market),
                title=market.title[:200] or market.venue_market_id,
                kind=Instrument.Kind.BINARY,
                status=Instrument.Status.HALTED,
                tick_size=TICK_SIZE,
                event=event,
                expires_at=market.expires_at,
            )
            Listing.objects.create(
                instrument=instrument, venue=venue, venue_symbol=market.venue_market_id
            )
    except IntegrityError:  # another sync created it first
        listing = Listing.objects.select_related("instrument").get(
            venue=venue, venue_symbol=market.venue_market_id
        )
        return listing.instrument
    logger.info(
        "linked sync: created %s for %s market %s", instrument.symbol, venue.code, market.title
    )
    return instrument


def _symbol_free(venue: Venue, market: TrackedMarket) -> str:
    base = re.sub(r"[^A-Z0-9.-]+", "-", market.venue_market_id.upper()).strip("-")
    if venue.code == LinkedCredential.Venue.POLYMARKET:
        # Condition ids are 66-character hashes: name the market by its event instead.
        base = "PM-" + (slugify(market.event_code).upper() or base[2:14])
    base = base[:56]
    symbol, n = base, 1
    while Instrument.objects.filter(symbol=symbol).exists():
        n += 1
        symbol = f"{base}-{n}"
    return symbol


def _prices_publish(
    venue: Venue,
    instruments: dict[str, Instrument],
    positions: tuple[TrackedPosition, ...],
    *,
    now: datetime,
) -> None:
    """Each synced market's quote (`_market_quote`) for the markets no feed quotes, so the
    engine, the API and the dashboard value the positions by the one collateral-price
    rule (SPEC §4): a feed quote (it has a book) fresher than FEED_QUOTE_FRESH_SECONDS
    is never overwritten. Published as one tick batch, which re-prices the engine."""
    quotes: dict[str, Quote] = {}
    for position in positions:
        instrument = instruments.get(position.market.venue_market_id)
        if instrument is None:
            continue
        key = f"{instrument.symbol}@{venue.code}"
        quote = _market_quote(key, position.market, now=now)
        if quote is not None:
            quotes[key] = quote
    if not quotes:
        return
    fresh_after = now - timedelta(seconds=FEED_QUOTE_FRESH_SECONDS)
    current = quotes_get_many(quotes)
    quotes_publish(
        [
            quote
            for key, quote in quotes.items()
            if key not in current
            or not (current[key].book.bids or current[key].book.asks)
            or current[key].ts < fresh_after
        ],
        ts=now,
    )


def _market_quote(listing_key: str, market: TrackedMarket, *, now: datetime) -> Quote | None:
    """A synced market's YES quote: the venue's best bid and ask, and their mid as mark
    and TWAP (one snapshot: the sync keeps no history), so the collateral price
    min(bid, TWAP) is the YES bid, and the NO contract's is 1 − the YES ask.

    A side without orders sits at the price floor (no bid) or ceiling (no ask), the
    mark at the other side: a contract nobody bids for is worth next to nothing. With
    no usable book (none, or crossed), the last trade stands for every price (SPEC
    §4's "else the last mark"); without that either, there is no quote (None). The
    quote has no depth: a synced market is valued on it, never traded against it.
    """
    bid, ask = market.yes_bid, market.yes_ask
    if bid is not None and ask is not None and bid > ask:
        bid = ask = None
    if bid is None and ask is None:
        if market.last_price is None:
            return None
        bid = ask = mark = market.last_price
    elif bid is None or ask is None:
        mark = bid if ask is None else ask
        bid = PRICE_FLOOR if bid is None else bid
        ask = PRICE_CEILING if ask is None else ask
    else:
        mark = (bid + ask) / 2
    bid, ask, mark = (
        quantize_price(min(max(p, PRICE_FLOOR), PRICE_CEILING)) for p in (bid, ask, mark)
    )
    return Quote(
        listing_key=listing_key,
        is_binary=True,
        ts=now,
        mark=mark,
        bid=bid,
        ask=ask,
        twap=mark,
        book=OrderBook(bids=(), asks=()),
        outcome=Outcome.YES,
    )
