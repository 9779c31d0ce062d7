"""Force-closing a customer's position: a four-eyes change.

One staff member proposes it from the ops account page (`force_close_propose`:
a pending `Approval` of kind "force_close" whose payload names the account's
public id, the contract's symbol and a quantity or "all"); another approves it
(`accounts.services.approvals.approval_approve`: nobody approves their own).
Applying it closes the position through the one order path, `position_close`
(an immediate-or-cancel limit at the protective price, no margin check: it
only lowers risk), with a client_order_id derived from the approval's public
id, so applying it twice places one order (the second run gets the first
order back).

The kind is registered in `trading.apps.TradingConfig.ready` (`FORCE_CLOSE_KIND`).
"""

from decimal import Decimal
from typing import Any

from django.http import HttpRequest

from accounts.models import Account, Approval, User
from accounts.services.approvals import ApprovalKind, approval_propose
from portal import format as fmt
from portal.errors import AccountNotActive, Forbidden, InvalidParams, NotFound
from portal.money import QUANTITY_DECIMAL_PLACES, ZERO
from trading.models import Order, Position
from trading.services.markets import instrument_check_tradable
from trading.services.orders import position_close
from trading.services.routing import Contract, contract_from_symbol
from trading.services.simulation import decimal_clean

KIND = "force_close"
LABEL = "Force-close a position"
ALL = "all"
CLIENT_ORDER_ID_PREFIX = "ops-close-"


def force_close_client_order_id(approval_public_id: str) -> str:
    """The closing order's client_order_id: one per approval ("ops-close-apr_…")."""
    return f"{CLIENT_ORDER_ID_PREFIX}{approval_public_id}"


def _payload_read(payload: dict[str, Any]) -> tuple[Account, Contract, Decimal | None]:
    """The account, the contract and the quantity (None: all) a payload names."""
    public_id = str(payload.get("account") or "")
    account = Account.objects.select_related("owner").filter(public_id=public_id).first()
    if account is None:
        raise NotFound(f"There is no account {public_id}.")
    contract = contract_from_symbol(payload.get("symbol"))
    raw = payload.get("quantity", ALL)
    quantity = (
        None
        if raw in (None, "", ALL)
        else decimal_clean(raw, name="The quantity", places=QUANTITY_DECIMAL_PLACES, positive=True)
    )
    return account, contract, quantity


def _held(account: Account, contract: Contract) -> Decimal:
    return (
        Position.objects.filter(
            account=account, instrument=contract.instrument, outcome=contract.outcome
        )
        .values_list("quantity", flat=True)
        .first()
        or ZERO
    )


def force_close_check(payload: dict[str, Any]) -> str:
    """The force-close as it would apply now, in one line; raises DomainError when the
    order path would refuse it (no such position, too large a quantity, a
    non-custodial or closed account). A frozen account is closed all the same:
    freezing stops the customer, not ops reducing its risk."""
    account, contract, quantity = _payload_read(payload)
    label = fmt.contract(contract.instrument.symbol, contract.outcome)
    if not account.is_custodial:
        raise Forbidden(
            f"Account {account.public_id} is non-custodial: its positions are held at the "
            "customer's own venue account, so the broker cannot close them."
        )
    if account.status == Account.Status.CLOSED:
        raise AccountNotActive(f"Account {account.public_id} is closed.")
    held = _held(account, contract)
    if held == 0 or (contract.instrument.is_binary and held < 0):
        raise NotFound(f"No open {label} position in account {account.public_id}.")
    instrument_check_tradable(contract.instrument)  # halted or resolved: no order
    if quantity is not None and quantity > abs(held):
        raise InvalidParams(
            f"The quantity {fmt.quantity(quantity)} is more than the position's "
            f"{fmt.quantity(abs(held))} {label}."
        )
    side = "long" if held > 0 else "short"
    size = (
        f"all {fmt.quantity(abs(held))}"
        if quantity is None
        else f"{fmt.quantity(quantity)} of {fmt.quantity(abs(held))}"
    )
    return f"Force-close {size} {label} ({side}) in account {account.public_id}"


def force_close_result(order: Order) -> str:
    """What the closing order did, in a sentence (the approval's result)."""
    instrument = order.instrument
    binary = instrument.is_binary
    label = f"{instrument.symbol} {order.outcome.upper()}" if binary else instrument.symbol
    filled, wanted = order.filled_quantity, order.quantity or ZERO
    verb = "Sold" if order.side == Order.Side.SELL else "Bought back"
    head = f"Order {order.public_id}"
    if filled > 0:
        done = (
            f"{head}: {verb.lower()} {fmt.quantity(filled)} of {fmt.quantity(wanted)} {label} "
            f"at {fmt.price(order.average_fill_price, binary=binary)} "
            f"({fmt.usdc(order.filled_notional)}, fees {fmt.usdc(order.fees)})"
        )
        if filled >= wanted:
            return f"{done}: the position is closed as proposed."
        return (
            f"{done}; the other {fmt.quantity(wanted - filled)} found no price within the "
            "protective limit and were cancelled. Propose another force-close for the rest."
        )
    if order.status == Order.Status.REJECTED:
        reason = fmt.sentence(order.reject_reason) or "No reason was given."
        return f"{head} for {fmt.quantity(wanted)} {label} was refused. {reason}"
    return (
        f"{head} for {fmt.quantity(wanted)} {label} filled nothing: no price within the "
        "protective limit, so it was cancelled. The position is unchanged."
    )


def force_close_apply(approval: Approval) -> str:
    """Close the position through `position_close`, idempotent by the approval's id."""
    account, contract, quantity = _payload_read(approval.payload)
    order = position_close(
        account=account,
        symbol=contract.symbol,
        quantity=quantity,
        client_order_id=force_close_client_order_id(approval.public_id),
        ops_close=True,
    )
    return force_close_result(order)


FORCE_CLOSE_KIND = ApprovalKind(
    name=KIND,
    label=LABEL,
    check=force_close_check,
    apply=force_close_apply,
    permission="accounts.change_account",
)


def force_close_propose(
    *,
    account: Account,
    symbol: str,
    quantity: Decimal | str | None,
    proposer: User,
    reason: str,
    request: HttpRequest | None = None,
) -> Approval:
    """Propose closing all (`quantity` None or "all") or part of `account`'s position in
    `symbol`: a pending approval that another staff member must approve."""
    contract = contract_from_symbol(symbol)
    if quantity in (None, "", ALL):
        amount = ALL
    else:
        amount = str(
            decimal_clean(
                quantity, name="The quantity", places=QUANTITY_DECIMAL_PLACES, positive=True
            )
        )
    payload = {"account": account.public_id, "symbol": contract.symbol, "quantity": amount}
    return approval_propose(
        kind=KIND,
        payload=payload,
        proposer=proposer,
        reason=reason,
        account=account,
        request=request,
    )
