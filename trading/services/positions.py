"""The one path by which a fill changes a binary position and the ledger.

Execute, resting orders, liquidation and settlement all record fills through
`binary_fill_apply`: position quantity and average price, realized P&L, the
balanced trade journal (cash against the venue's settlement account, the
venue's fee with it, the broker's commission to fee income), lifetime volume
and margin eligibility, in the caller's transaction under the caller's
account lock.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from django.utils import timezone

from accounts.models import Account, HouseAccount, Journal
from accounts.services.ledger import Line, cash_ledger_account, house_ledger_account, journal_post
from portal import format as fmt
from portal.errors import InvalidParams
from portal.money import ZERO, quantize_money
from trading.marketdata.quotes import quantize_price
from trading.models import Instrument, Position
from trading.services.eligibility import account_margin_eligibility_refresh


class Side:
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True)
class FillResult:
    position: Position
    journal: Journal
    notional: Decimal  # cash paid (buy) or received (sell), before fees
    realized_pnl: Decimal  # of this fill (sells only)


def sale_proceeds(*, quantity: Decimal, price: Decimal, symbol: str) -> Decimal:
    """A binary sale's proceeds as the ledger books them: rounded down to the
    micro-dollar. InvalidParams when that is nothing (a sale too small to book):
    the order paths refuse it before any venue call, a resting order is cancelled."""
    proceeds = quantize_money(quantity * price, rounding=ROUND_DOWN)
    if proceeds <= ZERO:
        raise InvalidParams(
            f"Too small to sell: {fmt.quantity(quantity, 6)} {symbol} at "
            f"{fmt.cents(price)} raises less than 0.000001 USDC."
        )
    return proceeds


def binary_fill_apply(
    *,
    account: Account,
    instrument: Instrument,
    outcome: str,
    side: str,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal = ZERO,
    venue_fee: Decimal = ZERO,
    commission: Decimal = ZERO,
    journal_kind: Journal.Kind = Journal.Kind.TRADE,
    memo: str = "",
    idempotency_key: str | None = None,
    notional_cap: Decimal | None = None,
    account_deltas: Mapping[str, Decimal] | None = None,
) -> FillResult:
    """Record a filled buy or sell of `quantity` contracts at `price`.

    The caller holds `account` locked (select_for_update) inside
    transaction.atomic() and has done its checks (margin, funds, market
    open); this function only refuses what would corrupt state: a
    non-binary instrument, a non-positive quantity, a price outside (0, 1],
    or selling more than the position holds (InvalidParams). Cash paid is
    rounded up to the micro-dollar, cash received down (never in the
    customer's favour by a rounding), and never more than `notional_cap`
    (a notional order's budget: the venue's rounded average price must not
    make a buy cost more than was asked for). `account_deltas`: other
    columns of the account's row the caller changes with this fill (an
    order's reservation released), written in the journal's one UPDATE of
    the row with the cash and the lifetime volume. Fees come off the customer's cash:
    `venue_fee` is paid to the venue (its settlement account line),
    `commission` and any other broker `fee` go to fee income, each as its
    own journal line. Returns the position and the journal.
    """
    if instrument.kind != Instrument.Kind.BINARY:
        raise InvalidParams(f"{instrument.symbol} is not a binary contract.")
    if outcome not in (Position.Outcome.YES, Position.Outcome.NO):
        raise InvalidParams("A binary fill is for the YES or the NO contract.")
    if quantity <= 0:
        raise InvalidParams("A fill needs a positive quantity.")
    if not ZERO < price <= 1:
        raise InvalidParams("A binary contract's price lies in (0, 1].")
    now = timezone.now()
    position, _ = Position.objects.select_for_update().get_or_create(
        account=account, instrument=instrument, outcome=outcome
    )
    realized = ZERO
    if side == Side.BUY:
        notional = quantize_money(quantity * price, rounding=ROUND_UP)
        if notional_cap is not None:
            notional = min(notional, notional_cap)
        held_cost = position.quantity * position.average_price
        if position.quantity == 0:
            position.opened_at = now
        position.quantity += quantity
        position.average_price = quantize_price((held_cost + quantity * price) / position.quantity)
        cash_delta = -notional
    elif side == Side.SELL:
        if quantity > position.quantity:
            raise InvalidParams(
                f"Cannot sell {fmt.quantity(quantity, 6)} {instrument.symbol} {outcome.upper()}: "
                f"the position holds {fmt.quantity(position.quantity, 6)}."
            )
        notional = sale_proceeds(quantity=quantity, price=price, symbol=instrument.symbol)
        realized = quantize_money(notional - quantity * position.average_price)
        position.quantity -= quantity
        position.realized_pnl += realized
        cash_delta = notional
    else:
        raise InvalidParams("side must be 'buy' or 'sell'.")
    position.updated_at = now
    position.save(
        update_fields=["quantity", "average_price", "realized_pnl", "opened_at", "updated_at"]
    )

    venue_fee = quantize_money(venue_fee, rounding=ROUND_UP)
    fee_income = quantize_money(fee, rounding=ROUND_UP) + quantize_money(
        commission, rounding=ROUND_UP
    )
    amounts = [
        (cash_ledger_account(account), cash_delta - venue_fee - fee_income),
        (house_ledger_account(HouseAccount.VENUE_SETTLEMENT), -cash_delta + venue_fee),
        (house_ledger_account(HouseAccount.FEE_INCOME), fee_income),
    ]
    lines = [Line(ledger_account, amount) for ledger_account, amount in amounts if amount]
    journal = journal_post(
        kind=journal_kind,
        account=account,
        memo=memo
        or fmt.trade(side, quantity, instrument.symbol, price, binary=True, outcome=outcome),
        idempotency_key=idempotency_key,
        lines=lines,
        account_deltas={"lifetime_volume": notional, **(account_deltas or {})},
    )
    account_margin_eligibility_refresh(account=account)
    return FillResult(position=position, journal=journal, notional=notional, realized_pnl=realized)
