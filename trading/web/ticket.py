"""The dashboard's order ticket, as JSON-ready dicts: reads only, no maths of its own.

- `ticket_markets`: the open markets a search matches, each with its live
  bid / ask (YES and NO for a prediction market) from the markets selector
  (`market_list`, the data GET /v1/intelligence/markets serves);
- `ticket_book`: the selected contract's depth (every venue's live book,
  `order_books_get`, merged by price), for the ticket's depth chart and its
  bid / ask;
- `ticket_projection`: an order's projection from the one check its path
  runs: execute's (`execute_preview`, via `figures.trade_projection`) for a
  market order by notional, `order_place`'s (`order_place_preview`) for a
  limit order or one sized in contracts, with the largest size that path
  accepts (`max_size`: USDC by notional, contracts in contracts; from
  `buying_power_get`, `binary_buy_quantity_max` (a binary buy in contracts, at
  the check's price), `selling_power_get`, `perp_power_get`);
- `confirm_get`: whether an order is large enough to ask for a confirmation
  (the risk policy's `ticket_confirm_fraction` of Adjusted Equity).

Every sentence here goes through `portal.format`.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.utils import timezone

from accounts.models import Account
from portal import format as fmt
from portal.errors import DomainError, InvalidParams, SlippageExceeded
from portal.money import ZERO, dec, money, price, qty, quantize_money
from trading.catalog import instrument_get, venue_name
from trading.marketdata.quotes import OrderBook
from trading.models import Instrument, Order
from trading.selectors import (
    contracts_get,
    margin_summary_get,
    market_list,
    price_max_age,
    risk_policy_get,
)
from trading.services.execute import execute_request_clean, order_execute
from trading.services.orders import (
    OrderPlacePreview,
    crossing_levels,
    order_place,
    order_place_preview,
)
from trading.services.perps import leverage_get, perp_power_get
from trading.services.routing import contract_from_symbol, order_books_get, route_or_refuse
from trading.services.simulation import (
    binary_buy_quantity_max,
    buying_power_get,
    selling_power_get,
)
from trading.web import figures

MARKETS_MAX = 40
DEPTH_LEVELS = 12
ONE = Decimal(1)
CENT = Decimal("0.01")
TIF_WORDS = {
    Order.TimeInForce.GTC: "good till cancelled",
    Order.TimeInForce.IOC: "immediate or cancel",
    Order.TimeInForce.FOK: "fill or kill",
}


def contract_label(symbol: str) -> str:
    """A contract as people read it ("TRUMP-WIN YES", "BTC-PERP"), its kind from the
    cached catalog."""
    base, _, suffix = symbol.partition(":")
    instrument = instrument_get(symbol=base)
    if instrument is None or not instrument.is_binary:
        return symbol
    return fmt.contract(base, suffix or "yes")


# ---------------------------------------------------------------------------
# Markets and books


def _quotes_of(market, *, now: datetime, max_age: float) -> dict[str, Any]:
    quotes = [listing.quote for listing in market.listings if listing.quote is not None]
    live = [q for q in quotes if (now - q.ts).total_seconds() <= max_age]
    bid = max((q.bid for q in live), default=None)
    ask = min((q.ask for q in live), default=None)
    if not market.instrument.is_binary:
        return {"perp": {"bid": price(bid), "ask": price(ask)}}
    return {
        "yes": {"bid": price(bid), "ask": price(ask)},
        # The NO contract is the complement: its bid is 1 − YES ask, its ask 1 − YES bid.
        "no": {
            "bid": price(None if ask is None else ONE - ask),
            "ask": price(None if bid is None else ONE - bid),
        },
    }


def _matches(instrument: Instrument, words: list[str]) -> bool:
    text = f"{instrument.symbol} {instrument.title} {instrument.kind}".lower()
    return all(word in text for word in words)


def ticket_markets(*, account: Account, query: str = "") -> dict[str, Any]:
    """The open markets whose symbol or title contain every word of `query`
    (at most MARKETS_MAX), each with its best live bid / ask across venues
    (None when no venue has a price fresher than the risk policy's stale
    age) and, for a perpetual, its leverage levels and the account's leverage."""
    words = [word for word in query.lower().split() if word]
    now, max_age = timezone.now(), price_max_age()
    markets = []
    for market in market_list(status=Instrument.Status.OPEN):
        instrument = market.instrument
        if words and not _matches(instrument, words):
            continue
        row = {
            "symbol": instrument.symbol,
            "title": instrument.title,
            "kind": instrument.kind,
            "binary": instrument.is_binary,
            "tick_size": dec(instrument.tick_size.normalize()),
            "quotes": _quotes_of(market, now=now, max_age=max_age),
        }
        if not instrument.is_binary:
            row |= {
                "max_leverage": instrument.max_leverage,
                "leverage": leverage_get(account=account, symbol=instrument.symbol).leverage,
            }
        markets.append(row)
        if len(markets) >= MARKETS_MAX:
            break
    return {"query": query, "markets": markets}


def _merged(levels_by_venue, *, descending: bool) -> list[dict[str, str]]:
    sizes: dict[Decimal, Decimal] = {}
    for levels in levels_by_venue:
        for level in levels:
            sizes[level.price] = sizes.get(level.price, ZERO) + level.size
    rows, total = [], ZERO
    for level_price in sorted(sizes, reverse=descending)[:DEPTH_LEVELS]:
        total += sizes[level_price]
        rows.append(
            {"price": price(level_price), "size": qty(sizes[level_price]), "cumulative": qty(total)}
        )
    return rows


def ticket_book(*, symbol: object) -> dict[str, Any]:
    """The depth of one contract: every venue's live book, merged by price, best
    DEPTH_LEVELS levels a side with cumulative sizes; its best bid and ask.
    Raises NotFound / InvalidParams (symbol), MarketDataUnavailable / Stale."""
    contract = contract_from_symbol(symbol)
    books = order_books_get(instrument=contract.instrument, outcome=contract.book_outcome)
    bids = _merged((vb.book.bids for vb in books), descending=True)
    asks = _merged((vb.book.asks for vb in books), descending=False)
    return {
        "symbol": contract.symbol,
        "label": contract_label(contract.symbol),
        "binary": contract.instrument.is_binary,
        "venues": [vb.venue for vb in books],
        "venue_names": [venue_name(vb.venue) for vb in books],
        "bid": bids[0]["price"] if bids else None,
        "ask": asks[0]["price"] if asks else None,
        "bids": bids,
        "asks": asks,
    }


# ---------------------------------------------------------------------------
# Confirmation


@dataclass(frozen=True, slots=True)
class Confirm:
    fraction: Decimal
    adjusted_equity: Decimal
    threshold: Decimal  # USDC: orders above it ask for a confirmation


def confirm_get(*, account: Account) -> Confirm:
    """The size above which the ticket asks for a confirmation: the risk policy's
    `ticket_confirm_fraction` of the account's Adjusted Equity (0 when AE ≤ 0)."""
    fraction = risk_policy_get().ticket_confirm_fraction
    equity = margin_summary_get(account=account).adjusted_equity
    threshold = quantize_money(max(ZERO, equity) * fraction).quantize(CENT, rounding=ROUND_DOWN)
    return Confirm(fraction=fraction, adjusted_equity=equity, threshold=threshold)


def confirm_out(confirm: Confirm, notional: Decimal | None) -> dict[str, Any]:
    required = notional is not None and notional > confirm.threshold
    return {
        "required": required,
        "threshold": money(confirm.threshold),
        "fraction": dec(confirm.fraction),
        "message": (
            f"This order is about {fmt.usdc(notional)}, above {fmt.percent(confirm.fraction, 0)} "
            f"of your Adjusted Equity ({fmt.usdc(confirm.threshold)}): please confirm it."
            if required
            else ""
        ),
    }


def order_notional(data: dict[str, Any], *, reference: Decimal | None) -> Decimal | None:
    """An order's size in USDC: its notional, else contracts × the limit price (a
    market order sized in contracts: × `reference`, the price it would take)."""
    if data.get("size_mode") == "notional":
        return data.get("notional_usdc")
    quantity = data.get("quantity")
    at = data.get("price") if data.get("order_type") == "limit" else reference
    if quantity is None or at is None:
        return None
    return quantize_money(quantity * at)


def reference_price(symbol: str, side: str) -> Decimal | None:
    """The best price a market order in `symbol` would take now (None: no live book)."""
    try:
        book = ticket_book(symbol=symbol)
    except DomainError:
        return None
    value = book["ask"] if side == Order.Side.BUY else book["bid"]
    return None if value is None else Decimal(value)


# ---------------------------------------------------------------------------
# Projection


def _slippage_bps(average: Decimal | None, best: Decimal | None) -> Decimal | None:
    if average is None or not best:
        return None
    return (abs(average - best) / best * 10_000).quantize(CENT)


MAX_NOTES = {
    "buy": "The most you can buy keeping Margin Health at or above the initial requirement, "
    "fees included.",
    "buy_contracts": "The most contracts you can buy at this price keeping Margin Health at "
    "or above the initial requirement.",
    "sell": "A sale only reduces risk: the most you can sell is what the position holds "
    "(less what your other sell orders hold).",
    "perp": "The most the isolated margin at this leverage allows from your cash and margin, "
    "fees included.",
}


# What "fillable now" counts, by the order's path (the ticket's label says it).
DEPTHS = {
    "slippage": "at book depth, within your slippage limit",
    "limit": "at or better than your limit price",
    "market": "at book depth (a market order has no price limit)",
}


def _max_out(
    at_initial: str | None, at_book_depth: str | None, *, unit: str, note: str, depth: str
) -> dict[str, Any]:
    return {
        "at_initial": at_initial,
        "at_book_depth": at_book_depth,
        "unit": unit,
        "note": note,
        "depth": DEPTHS[depth],
    }


def _max_note(*, binary: bool, side: str) -> str:
    return MAX_NOTES["perp"] if not binary else MAX_NOTES[side]


def _max_size(
    *,
    account: Account,
    request: Any,
    leverage: int | None,
    slippage_bps: int,
    check_price: Decimal | None = None,
    book: OrderBook | None = None,
) -> dict[str, Any]:
    """The largest order `order_place` accepts, in the ticket's unit (a buy sized in
    contracts: the contracts at `check_price`, the limit or a market order's worst
    price, keeping health ≥ the initial threshold; a buy by notional, when there is no
    check price: that notional in USDC; a sale or a perp order: contracts at the order's
    price and leverage) and what the books fill of it now: in contracts, the one book
    walk's levels (`book`) at or better than the limit (a market order: any price);
    in USDC, within the slippage limit. None: no figure, e.g. no live book."""
    contract, side = request.contract, request.side
    instrument = contract.instrument
    note = _max_note(binary=instrument.is_binary, side=side)
    try:
        if instrument.is_binary and side == Order.Side.BUY and check_price is not None:
            key = (instrument.pk, contract.outcome)
            most = binary_buy_quantity_max(
                account=account, contract=contracts_get([key])[key], price=check_price
            )
            note = MAX_NOTES["buy_contracts"]
        elif instrument.is_binary and side == Order.Side.BUY:
            power = buying_power_get(
                account=account,
                symbol=instrument.symbol,
                outcome=contract.outcome,
                slippage_bps=slippage_bps,
            )
            return _max_out(
                money(power.notional),
                money(power.fillable),
                unit="usdc",
                note=note,
                depth="slippage",
            )
        elif instrument.is_binary:
            most = selling_power_get(
                account=account,
                symbol=instrument.symbol,
                outcome=contract.outcome,
                slippage_bps=slippage_bps,
            ).quantity
        else:
            most = perp_power_get(
                account=account,
                symbol=instrument.symbol,
                side=side,
                leverage=leverage,
                limit=request.limit,
                slippage_bps=slippage_bps,
            ).quantity
    except DomainError:
        return _max_out(
            None,
            None,
            unit="usdc" if side == Order.Side.BUY else "contracts",
            note="",
            depth="slippage",
        )
    levels = crossing_levels(book, side=side, limit=request.limit, quantity=most)
    fillable = None if book is None else sum((q for _, q in levels), ZERO)
    return _max_out(
        qty(most),
        qty(fillable),
        unit="contracts",
        note=note,
        depth="limit" if request.limit is not None else "market",
    )


def _execute_projection(*, account: Account, data: dict[str, Any]) -> dict[str, Any]:
    try:
        result = figures.trade_projection(
            account=account,
            symbol=data["contract"],
            side=data["side"],
            notional=data["notional_usdc"],
            slippage_bps=data["slippage_bps"],
        )
    except SlippageExceeded as exc:
        raise SlippageExceeded(_slippage_refusal(data) or exc.message) from exc
    binary = result["kind"] == Instrument.Kind.BINARY
    slippage = result["slippage_bps"]
    limit = data["slippage_bps"]
    verdict = (
        f"Fills at about {fmt.price(result['average_price'], binary=binary)}, "
        f"{fmt.quantity(slippage)} bps from the best price: within the {limit} bps allowed."
    )
    return result | {
        "path": "execute",
        "max_size": _max_out(
            result["buying_power"],
            result["buying_power_fillable"],
            unit="usdc",
            note=_max_note(binary=binary, side=result["side"]),
            depth="slippage",
        ),
        "slippage_verdict": verdict,
        "slippage_ok": True,
        "notional_estimate": money(data["notional_usdc"]),
    }


def _slippage_refusal(data: dict[str, Any]) -> str | None:
    """Execute's slippage refusal in words, from the route it walked (None: gone)."""
    try:
        request = execute_request_clean(
            symbol=data["contract"],
            side=data["side"],
            notional_usdc=data["notional_usdc"],
            slippage_bps=data["slippage_bps"],
        )
        contract = request.contract
        books = order_books_get(instrument=contract.instrument, outcome=contract.book_outcome)
        estimate = route_or_refuse(
            label=contract.symbol, books=books, side=request.side, notional=request.notional
        ).estimate
    except DomainError:
        return None
    binary = contract.instrument.is_binary
    return (
        f"Slippage too high: this order would fill at about "
        f"{fmt.price(estimate.average_price, binary=binary)}, "
        f"{fmt.quantity(estimate.slippage_bps)} bps from the best price of "
        f"{fmt.price(estimate.best_price, binary=binary)}, more than the "
        f"{request.slippage_bps} bps you allow. Trade a smaller size, use a limit order or "
        "allow more slippage."
    )


def _fill_text(preview: OrderPlacePreview, *, binary: bool) -> str:
    request = preview.request
    filled, left = preview.fill_quantity, request.quantity - preview.fill_quantity
    if preview.fok_rejected:
        return (
            f"Fill or kill: the book holds less than {fmt.quantity(request.quantity)} within "
            "your price now, so the order would be rejected with nothing filled."
        )
    if not filled:
        if preview.resting:
            return (
                f"Nothing crosses now: all {fmt.quantity(request.quantity)} would rest at "
                f"{fmt.price(request.limit, binary=binary)} on {venue_name(preview.venue)} "
                "until filled "
                "or cancelled."
            )
        return "Nothing crosses the book now: the order would be cancelled with nothing filled."
    text = (
        f"{fmt.quantity(filled)} would fill now at about "
        f"{fmt.price(preview.fill_average_price, binary=binary)} on {venue_name(preview.venue)}"
    )
    if preview.resting:
        return f"{text}; the other {fmt.quantity(left)} would rest at the limit."
    if preview.cancelled:
        return f"{text}; the other {fmt.quantity(left)} would be cancelled."
    return f"{text}."


def _order_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The ticket's order (sized in contracts) as `order_place`'s keyword arguments,
    but the account and the client_order_id."""
    return {
        "symbol": data["contract"],
        "side": data["side"],
        "order_type": data["order_type"],
        "time_in_force": data["time_in_force"],
        "quantity": data["quantity"],
        "price": None if data["order_type"] == "market" else data["price"],
        "take_profit": data.get("take_profit"),
        "stop_loss": data.get("stop_loss"),
        "leverage": data.get("leverage"),
    }


def _place_projection(*, account: Account, data: dict[str, Any]) -> dict[str, Any]:
    market = data["order_type"] == "market"
    preview = order_place_preview(account=account, **_order_fields(data))
    request = preview.request
    binary = request.contract.instrument.is_binary
    book = preview.book
    best = None
    if book is not None:
        side = book.asks if request.side == Order.Side.BUY else book.bids
        best = side[0].price if side else None
    average = preview.fill_average_price
    slippage = _slippage_bps(average, best)
    if slippage is None:
        verdict = "Nothing would fill now, so no slippage."
    elif market:
        verdict = (
            f"About {fmt.quantity(slippage)} bps from the best price. A market order in "
            "contracts has no price limit: use a limit order to cap the price."
        )
    else:
        verdict = (
            f"About {fmt.quantity(slippage)} bps from the best price, never beyond your limit "
            f"of {fmt.price(request.limit, binary=binary)}."
        )
    projection = None if preview.projection is None else figures.projection_out(preview.projection)
    if projection is not None and preview.refusal is not None:
        projection |= {"refusal": preview.refusal.message, "refusal_code": preview.refusal.code}
    notional = order_notional(data, reference=preview.check_price)
    isolated = None
    if not binary and preview.check_price is not None and preview.projection is not None:
        isolated = -preview.projection.change.cash
    return {
        "path": "order",
        "symbol": request.contract.symbol,
        "kind": request.contract.instrument.kind,
        "side": request.side,
        "order_type": request.order_type,
        "time_in_force": request.time_in_force,
        "venue": preview.venue,
        "quantity": qty(preview.fill_quantity),
        "average_price": price(average),
        "worst_price": price(preview.check_price),
        "fees": money(preview.fees),
        "fees_max": money(preview.fees),
        "resting": qty(preview.resting),
        "cancelled": qty(preview.cancelled),
        "fok_rejected": preview.fok_rejected,
        "fill_text": _fill_text(preview, binary=binary),
        "slippage_bps": dec(slippage),
        "slippage_verdict": verdict,
        "slippage_ok": True,
        "notional_estimate": money(notional),
        "leverage": preview.leverage,
        "isolated_margin": money(isolated),
        "liquidation_price": None,
        "projection": projection,
        "reduces_risk": preview.projection is None and preview.check_price is not None,
        "max_size": _max_size(
            account=account,
            request=request,
            leverage=preview.leverage,
            slippage_bps=data["slippage_bps"],
            check_price=preview.check_price,
            book=book,
        ),
    }


def ticket_projection(*, account: Account, data: dict[str, Any]) -> dict[str, Any]:
    """The projection of the ticket's order (`data`: TicketForm's cleaned data) from
    the one check its path runs, with the confirmation it needs. Refusals that
    come before the check are raised as the order would raise them."""
    if data["order_type"] == "market" and data["size_mode"] == "notional":
        result = _execute_projection(account=account, data=data)
        notional = data["notional_usdc"]
    else:
        result = _place_projection(account=account, data=data)
        notional = (
            None if result["notional_estimate"] is None else Decimal(result["notional_estimate"])
        )
    result["label"] = contract_label(result["symbol"])
    result["venue_name"] = venue_name(result["venue"])
    result["confirm"] = confirm_out(confirm_get(account=account), notional)
    return result


# ---------------------------------------------------------------------------
# Placing the order


def confirmation_refusal(*, account: Account, data: dict[str, Any]) -> str | None:
    """Why a large order posted without `confirmed` is refused (None: it may go).
    Large: above the risk policy's `ticket_confirm_fraction` of Adjusted Equity,
    sized as the ticket sizes it (`order_notional`)."""
    if data.get("confirmed"):
        return None
    reference = None
    if data["size_mode"] == "quantity" and data["order_type"] == "market":
        reference = reference_price(data["contract"], data["side"])
    notional = order_notional(data, reference=reference)
    confirm = confirm_get(account=account)
    if notional is None or notional <= confirm.threshold:
        return None
    return (
        f"Not placed: this order is about {fmt.usdc(notional)}, above "
        f"{fmt.percent(confirm.fraction, 0)} of your Adjusted Equity "
        f"({fmt.usdc(confirm.threshold)}). Confirm it to place it."
    )


def ticket_retry(*, account: Account, data: dict[str, Any]) -> bool:
    """True when the ticket's client_order_id already names one of the account's
    orders: a retry, which the order path answers (the original, or 409
    `duplicate_order`) before any other check, as the REST API does."""
    client_order_id = data.get("client_order_id")
    return bool(client_order_id) and (
        Order.objects.filter(account=account, client_order_id=client_order_id).exists()
    )


def ticket_order_place(*, account: Account, data: dict[str, Any]) -> Order:
    """The ticket's order through the one order path: execute (`order_execute`) for
    a market order by notional, `order_place` for a limit order or one sized in
    contracts (time in force, take-profit / stop-loss, a perp's leverage)."""
    if data["order_type"] == "market" and data["size_mode"] == "notional":
        leverage = data.get("leverage")
        if leverage is not None and not data["binary"]:
            in_force = leverage_get(account=account, symbol=data["contract"]).leverage
            if leverage != in_force:
                raise InvalidParams(
                    f"A market order by notional uses the leverage in force ({in_force}x). "
                    "Size it in contracts to choose another leverage, or change the "
                    "market's leverage first."
                )
        return order_execute(
            account=account,
            symbol=data["contract"],
            side=data["side"],
            notional_usdc=data["notional_usdc"],
            slippage_bps=data["slippage_bps"],
            client_order_id=data["client_order_id"],
        )
    return order_place(
        account=account, client_order_id=data["client_order_id"], **_order_fields(data)
    )


FIELD_WORDS = {
    "take_profit": "the take-profit",
    "stop_loss": "the stop-loss",
    "notional_usdc": "the notional",
    "time_in_force": "the time in force",
    "order_type": "the order type",
    "client_order_id": "the order's id",
    "slippage_bps": "the slippage limit",
}
_FIELD = re.compile(r"\b(" + "|".join(sorted(FIELD_WORDS, key=len, reverse=True)) + r")\b")


def readable(message: str) -> str:
    """A service's refusal as the ticket shows it: field names in words, a capital."""
    text = _FIELD.sub(lambda match: FIELD_WORDS[match.group(1)], message).strip()
    return fmt.sentence(text) or "The order was not placed."
