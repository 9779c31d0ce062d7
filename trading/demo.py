"""Demo data for `make run` (`manage.py seed_demo`), idempotent.

An ops user with a TOTP device, two approved traders (one custodial with a
confirmed deposit, one non-custodial), one trader awaiting KYB, Kalshi- and
Polymarket-style markets across a few events, and BTC/ETH/SOL perpetuals.
Everything goes through the real services (account opening, KYB review,
deposit confirmed by a signed provider webhook).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Account, Deposit, LinkedCredential, User
from accounts.payments.simulated import SimulatedPaymentProvider
from accounts.services.accounts import account_open, user_kyb_set
from accounts.services.deposits import deposit_create, payment_webhook_handle
from portal.demo_logins import (
    DEMO_DEPOSIT,
    DEMO_LINKED_EMAIL,
    DEMO_OPS_EMAIL,
    DEMO_OPS_TOTP_KEY,
    DEMO_PASSWORD,
)
from trading.models import EventGroup, Instrument, Listing, PriceTick, Venue
from trading.services.eligibility import account_margin_override_set
from trading.services.linked_accounts import linked_account_link, linked_credential_rotate
from trading.services.positions import Side, binary_fill_apply

VENUES = [
    ("kalshi", "Kalshi", Venue.Kind.PREDICTION),
    ("polymarket", "Polymarket", Venue.Kind.PREDICTION),
    ("leviathan", "Leviathan Perps", Venue.Kind.PERPETUALS),
]


@dataclass(frozen=True)
class DemoMarket:
    symbol: str
    title: str
    event: str
    expires: datetime
    price: Decimal  # reference YES price the feed starts from
    kalshi: str = ""
    polymarket: str = ""


EVENTS = {
    "pres-2028": "US presidential election 2028",
    "fed-dec-2026": "Federal Reserve decision, December 2026",
    "btc-eoy-2026": "Bitcoin price at the end of 2026",
    "nba-finals-2027": "NBA Finals 2027",
}

MARKETS = [
    DemoMarket(
        "TRUMP-WIN",
        "Trump-endorsed candidate wins the 2028 presidency",
        "pres-2028",
        datetime(2028, 11, 8, tzinfo=UTC),
        Decimal("0.43"),
        kalshi="KXPRES-2028-TRUMPEND",
        polymarket="21742633143463906290569050155826241533067272736897614950488156847949938836455",
    ),
    DemoMarket(
        "PRES-2028-DEM",
        "A Democrat wins the 2028 presidency",
        "pres-2028",
        datetime(2028, 11, 8, tzinfo=UTC),
        Decimal("0.48"),
        kalshi="KXPRES-2028-DEM",
        polymarket="48331043336612883890938759509493159234755048973500640148014422747788308965732",
    ),
    DemoMarket(
        "FED-DEC26-CUT",
        "The Fed cuts rates at its December 2026 meeting",
        "fed-dec-2026",
        datetime(2026, 12, 9, 19, tzinfo=UTC),
        Decimal("0.62"),
        kalshi="KXFEDDECISION-26DEC-C25",
    ),
    DemoMarket(
        "FED-DEC26-HOLD",
        "The Fed holds rates at its December 2026 meeting",
        "fed-dec-2026",
        datetime(2026, 12, 9, 19, tzinfo=UTC),
        Decimal("0.36"),
        kalshi="KXFEDDECISION-26DEC-H0",
    ),
    DemoMarket(
        "BTC-150K-EOY26",
        "Bitcoin above $150,000 on 31 December 2026",
        "btc-eoy-2026",
        datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
        Decimal("0.12"),
        kalshi="KXBTCY-26DEC31-B150000",
        polymarket="93525418417315413325312384542355282431180221618734329437212440125307617283937",
    ),
    DemoMarket(
        "NBA27-OKC",
        "Oklahoma City wins the 2027 NBA Finals",
        "nba-finals-2027",
        datetime(2027, 6, 20, tzinfo=UTC),
        Decimal("0.31"),
        polymarket="60487116984468020978247225474488676749601001829886755968952521846780452448915",
    ),
    DemoMarket(
        "NBA27-BOS",
        "Boston wins the 2027 NBA Finals",
        "nba-finals-2027",
        datetime(2027, 6, 20, tzinfo=UTC),
        Decimal("0.18"),
        polymarket="11386256217358425389870233934040155384474372542466358618627290124418394566024",
    ),
]

# symbol, title, base asset, max leverage, default leverage, MMF, funding hours, price
PERPS = [
    ("BTC-PERP", "Bitcoin perpetual", "BTC", 20, 5, "0.03", 8, "95000"),
    ("ETH-PERP", "Ether perpetual", "ETH", 20, 5, "0.03", 8, "3400"),
    ("SOL-PERP", "Solana perpetual", "SOL", 10, 3, "0.05", 8, "180"),
]

# Alice's demo portfolio: (symbol, outcome, contracts), bought at reference prices.
# It costs more than her deposit, so she borrows (healthy Margin Health ≈ 3).
DEMO_POSITIONS = [
    ("TRUMP-WIN", "yes", Decimal("120000")),
    ("PRES-2028-DEM", "yes", Decimal("80000")),
    ("FED-DEC26-CUT", "yes", Decimal("150000")),
    ("BTC-150K-EOY26", "no", Decimal("100000")),
    ("NBA27-OKC", "yes", Decimal("90000")),
]


def _instruments() -> None:
    venues = {
        code: Venue.objects.get_or_create(code=code, defaults={"name": name, "kind": kind})[0]
        for code, name, kind in VENUES
    }
    events = {
        code: EventGroup.objects.get_or_create(code=code, defaults={"title": title})[0]
        for code, title in EVENTS.items()
    }
    for market in MARKETS:
        instrument, _ = Instrument.objects.get_or_create(
            symbol=market.symbol,
            defaults={
                "title": market.title,
                "kind": Instrument.Kind.BINARY,
                "tick_size": Decimal("0.01"),
                "event": events[market.event],
                "expires_at": market.expires,
            },
        )
        for venue_code, venue_symbol in (
            ("kalshi", market.kalshi),
            ("polymarket", market.polymarket),
        ):
            if venue_symbol:
                Listing.objects.get_or_create(
                    instrument=instrument,
                    venue=venues[venue_code],
                    defaults={"venue_symbol": venue_symbol},
                )
    for symbol, title, base, max_lev, default_lev, mmf, funding_hours, _ in PERPS:
        instrument, _ = Instrument.objects.get_or_create(
            symbol=symbol,
            defaults={
                "title": title,
                "kind": Instrument.Kind.PERPETUAL,
                "tick_size": Decimal("0.1") if base != "SOL" else Decimal("0.01"),
                "base_asset": base,
                "max_leverage": max_lev,
                "default_leverage": default_lev,
                "maintenance_margin_fraction": Decimal(mmf),
                "funding_interval_hours": funding_hours,
            },
        )
        Listing.objects.get_or_create(
            instrument=instrument, venue=venues["leviathan"], defaults={"venue_symbol": symbol}
        )


def _reference_prices() -> dict[str, Decimal]:
    """Reference prices by symbol (binary: YES price), as one stored tick per listing.

    The feed starts each market from its last stored tick, so the demo's
    positions and the live prices begin in the same place.
    """
    prices = {market.symbol: market.price for market in MARKETS}
    prices.update({perp[0]: Decimal(perp[-1]) for perp in PERPS})
    now = timezone.now()
    for listing in Listing.objects.select_related("instrument").filter(ticks__isnull=True):
        price = prices.get(listing.instrument.symbol)
        if price is None:
            continue
        half_spread = listing.instrument.tick_size
        PriceTick.objects.create(
            listing=listing,
            ts=now,
            is_binary=listing.instrument.is_binary,
            mark=price,
            bid=price - half_spread,
            ask=price + half_spread,
            twap=price,
        )
    return prices


def _demo_positions(account: Account, prices: dict[str, Decimal]) -> None:
    """Buy Alice's demo portfolio through the fill path, once."""
    if account.positions.exists():
        return
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        for symbol, outcome, quantity in DEMO_POSITIONS:
            yes_price = prices[symbol]
            binary_fill_apply(
                account=locked,
                instrument=Instrument.objects.get(symbol=symbol),
                outcome=outcome,
                side=Side.BUY,
                quantity=quantity,
                price=yes_price if outcome == "yes" else 1 - yes_price,
                memo=f"Demo portfolio: buy {quantity} {symbol} {outcome.upper()}",
            )


def _user(email: str, full_name: str, **flags) -> tuple[User, bool]:
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        return user, False
    user = User.objects.create_user(email=email, password=DEMO_PASSWORD, full_name=full_name)
    for name, value in flags.items():
        setattr(user, name, value)
    if flags:
        user.save(update_fields=list(flags))
    return user, True


def _ops() -> User:
    ops, _ = _user(
        DEMO_OPS_EMAIL, "Olivia Ops", is_staff=True, is_superuser=True, kyb_status="approved"
    )
    TOTPDevice.objects.get_or_create(
        user=ops, name="demo", defaults={"key": DEMO_OPS_TOTP_KEY, "confirmed": True}
    )
    return ops


def _confirmed_deposit(account: Account, amount: Decimal) -> None:
    """Deposit through the simulated provider, confirmed by its signed webhook."""
    if account.deposits.filter(status=Deposit.Status.CONFIRMED).exists():
        return
    deposit = deposit_create(account=account, amount=amount, method=Deposit.Method.BANK_TRANSFER)
    body, signature = SimulatedPaymentProvider.build_event(deposit, succeed=True)
    payment_webhook_handle(provider=deposit.provider, body=body, signature_header=signature)


def demo_seed() -> None:
    """Create (or leave in place) every piece of demo data."""
    with transaction.atomic():
        _instruments()
        ops = _ops()

        alice, created = _user("alice@prime.local", "Alice Trader")
        if created:
            user_kyb_set(user=alice, status=User.KybStatus.APPROVED, actor=ops)
        alice_account = alice.accounts.first() or account_open(
            owner=alice, kind=Account.Kind.CUSTODIAL, name="Main"
        )
        if alice_account.margin_override != Account.MarginOverride.GRANTED:
            account_margin_override_set(
                account=alice_account, override=Account.MarginOverride.GRANTED, actor=ops
            )

        # Bob's accounts are his linked exchanges: `run_fake_venues` links them.
        bob, created = _user(DEMO_LINKED_EMAIL, "Bob Holder")
        if created:
            user_kyb_set(user=bob, status=User.KybStatus.APPROVED, actor=ops)

        _user("carol@prime.local", "Carol Applicant")

    _confirmed_deposit(alice_account, DEMO_DEPOSIT)
    with transaction.atomic():
        prices = _reference_prices()
    _demo_positions(alice_account, prices)


def demo_linked_accounts(
    *, kalshi_key_id: str, kalshi_private_key_pem: str, polymarket_wallet: str
) -> list[str]:
    """Link the demo user's Kalshi key and Polymarket wallet (the local fake venues),
    verified through the venues as a user's link is; return the accounts' public ids.

    The fake Kalshi issues a fresh key on every start, so an existing link gets it
    by rotation; the wallet is fixed and is linked once.
    """
    bob = User.objects.get(email=DEMO_LINKED_EMAIL)
    kalshi = LinkedCredential.objects.filter(account__owner=bob, venue="kalshi").first()
    if kalshi is None:
        kalshi = linked_account_link(
            user=bob,
            venue="kalshi",
            environment="demo",
            key_id=kalshi_key_id,
            private_key_pem=kalshi_private_key_pem,
            name="Kalshi (demo)",
        )
    else:
        kalshi = linked_credential_rotate(
            credential=kalshi,
            actor=bob,
            key_id=kalshi_key_id,
            private_key_pem=kalshi_private_key_pem,
        )
    wallet = LinkedCredential.objects.filter(account__owner=bob, venue="polymarket").first()
    if wallet is None:
        wallet = linked_account_link(
            user=bob, venue="polymarket", wallet=polymarket_wallet, name="Polymarket wallet"
        )
    elif wallet.status == LinkedCredential.Status.UNLINKED:
        wallet = linked_credential_rotate(credential=wallet, actor=bob)
    return [kalshi.account.public_id, wallet.account.public_id]
