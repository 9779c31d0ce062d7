"""The API's operations, grouped as the API is (`client.intelligence.orders.list()`).

Each method describes its call (`Call`) and hands it to the client, which
performs it: `Leviathan` returns the result, `AsyncLeviathan` an awaitable
of it (and async iterators for lists). The code here is the same for both.
"""

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from . import _models as m
from ._core import Call, client_order_id, decimal_text

Money = Decimal | str | int


def _model(kind: type[m.Model]) -> Callable[[httpx.Response], Any]:
    return lambda response: kind.from_json(response.json())


def _segment(value: str) -> str:
    return quote(str(value), safe="")


class Positions(list):
    """The open positions (a list of `Position`), with the account and as-of time."""

    def __init__(self, page: m.PositionList):
        super().__init__(page.positions or [])
        self.account_id = page.account_id
        self.margin_utilization = page.margin_utilization
        self.as_of = page.as_of


class _Group:
    def __init__(self, client: Any):
        self._client = client

    def _account(self, account_id: str | None) -> str | None:
        return account_id or self._client.config.account_id

    def _run(self, call: Call) -> Any:
        return self._client._run(call)

    def _pages(
        self, path: str, key: str, kind: type[m.Model], params: dict[str, Any], limit: int | None
    ) -> Any:
        """Every item of a list endpoint, page after page (`limit` items a page)."""

        def page(offset: int) -> Call:
            return Call(
                "GET",
                path,
                _model(kind),
                params={**params, "limit": limit, "offset": offset},
                idempotent=True,
            )

        return self._client._paginate(page, key)


class Orders(_Group):
    """Orders: place, modify, cancel, read, list."""

    def create(
        self,
        *,
        symbol: str,
        side: str,
        quantity: Money,
        order_type: str | None = None,
        time_in_force: str | None = None,
        price: Money | None = None,
        take_profit: Money | None = None,
        stop_loss: Money | None = None,
        leverage: int | None = None,
        client_order_id: str | None = None,
        account_id: str | None = None,
    ) -> m.Order:
        """Place an order (limit by default). A client_order_id is generated when none is
        given; a retry reuses it, so the API places the order once. What crosses is sent
        to the venue at once: the order comes back `pending` (HTTP 202) when the venue has
        not confirmed yet; `get()` it later."""
        body = {
            "symbol": symbol,
            "side": side,
            "quantity": decimal_text(quantity),
            "order_type": order_type,
            "time_in_force": time_in_force,
            "price": _money(price),
            "take_profit": _money(take_profit),
            "stop_loss": _money(stop_loss),
            "leverage": leverage,
            "client_order_id": client_order_id or _new_id(),
        }
        return self._run(
            Call(
                "POST",
                "/intelligence/orders",
                _model(m.Order),
                params={"account_id": self._account(account_id)},
                body=body,
                idempotent=True,
            )
        )

    def get(self, order_id: str, *, account_id: str | None = None) -> m.Order:
        return self._run(
            Call(
                "GET",
                f"/intelligence/orders/{_segment(order_id)}",
                _model(m.Order),
                params={"account_id": self._account(account_id)},
                idempotent=True,
            )
        )

    def get_by_client_id(self, client_order_id: str, *, account_id: str | None = None) -> m.Order:
        return self._run(
            Call(
                "GET",
                f"/intelligence/orders/by-client-id/{_segment(client_order_id)}",
                _model(m.Order),
                params={"account_id": self._account(account_id)},
                idempotent=True,
            )
        )

    def modify(
        self,
        order_id: str,
        *,
        price: Money | None = None,
        quantity: Money | None = None,
        take_profit: Money | None = None,
        stop_loss: Money | None = None,
        account_id: str | None = None,
        by_client_id: bool = False,
    ) -> m.Order:
        """Change a resting order (`by_client_id`: `order_id` is its client_order_id)."""
        body = {
            "price": _money(price),
            "quantity": _money(quantity),
            "take_profit": _money(take_profit),
            "stop_loss": _money(stop_loss),
        }
        return self._run(
            Call(
                "PATCH",
                self._path(order_id, by_client_id),
                _model(m.Order),
                params={"account_id": self._account(account_id)},
                body=body,
            )
        )

    def cancel(
        self, order_id: str, *, account_id: str | None = None, by_client_id: bool = False
    ) -> m.Order:
        """Cancel a resting order (safe to repeat: a cancelled order stays cancelled)."""
        return self._run(
            Call(
                "DELETE",
                self._path(order_id, by_client_id),
                _model(m.Order),
                params={"account_id": self._account(account_id)},
                idempotent=True,
            )
        )

    def cancel_triggers(
        self,
        order_id: str,
        *,
        which: str | None = None,
        account_id: str | None = None,
        by_client_id: bool = False,
    ) -> m.Order:
        """Remove an order's take-profit, stop-loss (`which`: "take_profit" or "stop_loss")
        or both before they fire, on a resting or filled order (safe to repeat;
        OrderNotActiveError once a trigger has fired)."""
        return self._run(
            Call(
                "DELETE",
                f"{self._path(order_id, by_client_id)}/triggers",
                _model(m.Order),
                params={"account_id": self._account(account_id), "which": which},
                idempotent=True,
            )
        )

    def list(
        self,
        *,
        status: str | None = None,
        symbol: str | None = None,
        limit: int | None = None,
        account_id: str | None = None,
    ) -> Any:
        """Every order, newest first, fetched a page (`limit`, default 100) at a time."""
        params = {"account_id": self._account(account_id), "status": status, "symbol": symbol}
        return self._pages("/intelligence/orders", "orders", m.OrderPage, params, limit)

    def page(
        self,
        *,
        offset: int = 0,
        limit: int | None = None,
        status: str | None = None,
        symbol: str | None = None,
        account_id: str | None = None,
    ) -> m.OrderPage:
        """One page of orders, for callers that page themselves (`next_offset`)."""
        params = {
            "account_id": self._account(account_id),
            "status": status,
            "symbol": symbol,
            "limit": limit,
            "offset": offset,
        }
        return self._run(
            Call("GET", "/intelligence/orders", _model(m.OrderPage), params=params, idempotent=True)
        )

    @staticmethod
    def _path(order_id: str, by_client_id: bool) -> str:
        if by_client_id:
            return f"/intelligence/orders/by-client-id/{_segment(order_id)}"
        return f"/intelligence/orders/{_segment(order_id)}"


class Leverage(_Group):
    """Per-market leverage on perpetuals."""

    def get(self, *, symbol: str | None = None, account_id: str | None = None) -> m.Leverage:
        params = {"account_id": self._account(account_id), "symbol": symbol}
        return self._run(
            Call(
                "GET", "/intelligence/leverage", _model(m.Leverage), params=params, idempotent=True
            )
        )

    def set(self, *, symbol: str, leverage: int, account_id: str | None = None) -> m.LeverageResult:
        return self._run(
            Call(
                "POST",
                "/intelligence/leverage",
                _model(m.LeverageResult),
                params={"account_id": self._account(account_id)},
                body={"symbol": symbol, "leverage": leverage},
                idempotent=True,  # setting the same leverage twice is one change
            )
        )

    def levels(self, *, symbol: str | None = None) -> m.LeverageLevelsList:
        return self._run(
            Call(
                "GET",
                "/intelligence/leverage/levels",
                _model(m.LeverageLevelsList),
                params={"symbol": symbol},
                idempotent=True,
            )
        )


class Deposits(_Group):
    def create(
        self,
        *,
        amount: Money,
        method: str,
        card_number: str | None = None,
        account_id: str | None = None,
    ) -> m.DepositOutput:
        """Start a deposit (not retried after an unanswered send: check `list()` first)."""
        body = {
            "account_id": self._account(account_id),
            "amount": decimal_text(amount),
            "method": method,
            "card_number": card_number,
        }
        return self._run(Call("POST", "/intelligence/deposits", _model(m.DepositOutput), body=body))

    def get(self, deposit_id: str) -> m.DepositOutput:
        return self._run(
            Call(
                "GET",
                f"/intelligence/deposits/{_segment(deposit_id)}",
                _model(m.DepositOutput),
                idempotent=True,
            )
        )

    def list(
        self, *, status: str | None = None, limit: int | None = None, account_id: str | None = None
    ) -> Any:
        params = {"account_id": self._account(account_id), "status": status}
        return self._pages("/intelligence/deposits", "deposits", m.DepositListOutput, params, limit)


class Withdrawals(_Group):
    def create(
        self, *, amount: Money, destination: str, account_id: str | None = None
    ) -> m.WithdrawalOutput:
        """Request a withdrawal (not retried after an unanswered send: check `list()`)."""
        body = {
            "account_id": self._account(account_id),
            "amount": decimal_text(amount),
            "destination": destination,
        }
        return self._run(
            Call("POST", "/intelligence/withdrawals", _model(m.WithdrawalOutput), body=body)
        )

    def get(self, withdrawal_id: str) -> m.WithdrawalOutput:
        return self._run(
            Call(
                "GET",
                f"/intelligence/withdrawals/{_segment(withdrawal_id)}",
                _model(m.WithdrawalOutput),
                idempotent=True,
            )
        )

    def cancel(self, withdrawal_id: str) -> m.WithdrawalOutput:
        return self._run(
            Call(
                "POST",
                f"/intelligence/withdrawals/{_segment(withdrawal_id)}/cancel",
                _model(m.WithdrawalOutput),
                idempotent=True,  # cancelling a cancelled withdrawal changes nothing
            )
        )

    def list(
        self, *, status: str | None = None, limit: int | None = None, account_id: str | None = None
    ) -> Any:
        params = {"account_id": self._account(account_id), "status": status}
        return self._pages(
            "/intelligence/withdrawals", "withdrawals", m.WithdrawalListOutput, params, limit
        )


class Reports(_Group):
    def create(
        self,
        *,
        type: str,
        from_: date | str,
        to: date | str,
        format: str | None = None,
        account_id: str | None = None,
    ) -> m.ReportOutput:
        """Ask for a report; it is generated in the background (poll `get`)."""
        body = {
            "account_id": self._account(account_id),
            "type": type,
            "from": str(from_),
            "to": str(to),
            "format": format,
        }
        return self._run(Call("POST", "/intelligence/reports", _model(m.ReportOutput), body=body))

    def get(self, report_id: str) -> m.ReportOutput:
        return self._run(
            Call(
                "GET",
                f"/intelligence/reports/{_segment(report_id)}",
                _model(m.ReportOutput),
                idempotent=True,
            )
        )

    def download(self, report: m.ReportOutput | str, *, token: str | None = None) -> bytes:
        """A finished report's file, as bytes: pass the report as `get` returned it (its
        download link's token is used), or its id and the `token` of that link."""
        if isinstance(report, m.ReportOutput):
            if not report.download_url:
                raise ValueError(f"Report {report.id} is {report.status}: nothing to download.")
            query = parse_qs(urlsplit(report.download_url).query)
            report, token = report.id, token or query.get("token", [None])[0]
        return self._run(
            Call(
                "GET",
                f"/intelligence/reports/{_segment(report)}/download",
                lambda response: response.content,
                params={"token": token},
                idempotent=True,
            )
        )

    def list(self, *, limit: int | None = None, account_id: str | None = None) -> Any:
        params = {"account_id": self._account(account_id)}
        return self._pages("/intelligence/reports", "reports", m.ReportListOutput, params, limit)


class LinkedAccount(_Group):
    def get(self) -> m.LinkedAccountOutput:
        return self._run(
            Call(
                "GET",
                "/intelligence/linked-account",
                _model(m.LinkedAccountOutput),
                idempotent=True,
            )
        )

    def sync(self) -> m.LinkedAccountOutput:
        return self._run(
            Call(
                "POST",
                "/intelligence/linked-account/sync",
                _model(m.LinkedAccountOutput),
                idempotent=True,  # a sync already queued is not queued twice
            )
        )


class Intelligence(_Group):
    """Everything under /v1/intelligence."""

    def __init__(self, client: Any):
        super().__init__(client)
        self.orders = Orders(client)
        self.leverage = Leverage(client)
        self.deposits = Deposits(client)
        self.withdrawals = Withdrawals(client)
        self.reports = Reports(client)
        self.linked_account = LinkedAccount(client)

    def positions(self, *, account_id: str | None = None) -> Positions:
        """The open positions: iterate them, or read `.margin_utilization`, `.as_of`."""
        return self._run(
            Call(
                "GET",
                "/intelligence/positions",
                lambda response: Positions(m.PositionList.from_json(response.json())),
                params={"account_id": self._account(account_id)},
                idempotent=True,
            )
        )

    def execute(
        self,
        *,
        symbol: str,
        side: str,
        notional_usdc: Money,
        venue: str | None = None,
        slippage_bps: int | None = None,
        client_order_id: str | None = None,
        account_id: str | None = None,
    ) -> m.Order:
        """A market order for `notional_usdc` USDC, routed to the best venue. A
        client_order_id is generated when none is given; retries reuse it, so the
        trade happens once."""
        body = {
            "symbol": symbol,
            "side": side,
            "notional_usdc": decimal_text(notional_usdc),
            "venue": venue,
            "slippage_bps": slippage_bps,
            "client_order_id": client_order_id or _new_id(),
        }
        return self._run(
            Call(
                "POST",
                "/intelligence/execute",
                _model(m.Order),
                params={"account_id": self._account(account_id)},
                body=body,
                idempotent=True,
            )
        )

    def close_position(
        self,
        symbol: str,
        *,
        quantity: Money | None = None,
        percent: Money | None = None,
        slippage_bps: int | None = None,
        client_order_id: str | None = None,
        account_id: str | None = None,
    ) -> m.Order:
        """Close (or reduce, by quantity or percent) a position at the book."""
        body = {
            "quantity": _money(quantity),
            "percent": _money(percent),
            "slippage_bps": slippage_bps,
            "client_order_id": client_order_id or _new_id(),
        }
        return self._run(
            Call(
                "POST",
                f"/intelligence/positions/{_segment(symbol)}/close",
                _model(m.Order),
                params={"account_id": self._account(account_id)},
                body=body,
                idempotent=True,
            )
        )

    def margin(self, *, account_id: str | None = None) -> m.Margin:
        return self._run(
            Call(
                "GET",
                "/intelligence/margin",
                _model(m.Margin),
                params={"account_id": self._account(account_id)},
                idempotent=True,
            )
        )

    def simulate(
        self,
        *,
        simulated_collateral_changes: list[dict[str, Any]] | None = None,
        simulated_position_changes: list[dict[str, Any]] | None = None,
        account_id: str | None = None,
    ) -> m.MarginSimulation:
        """What-if: the margin figures after the given changes (nothing is placed)."""
        body = {
            "simulated_collateral_changes": simulated_collateral_changes,
            "simulated_position_changes": simulated_position_changes,
        }
        return self._run(
            Call(
                "POST",
                "/intelligence/margin/simulate",
                _model(m.MarginSimulation),
                params={"account_id": self._account(account_id)},
                body=body,
                idempotent=True,  # it changes nothing
            )
        )

    def fills(
        self, *, symbol: str | None = None, limit: int | None = None, account_id: str | None = None
    ) -> Any:
        """Every fill, newest first, a page at a time."""
        params = {"account_id": self._account(account_id), "symbol": symbol}
        return self._pages("/intelligence/fills", "fills", m.FillPage, params, limit)

    def transactions(
        self,
        *,
        kind: str | None = None,
        from_: str | None = None,
        to: str | None = None,
        limit: int | None = None,
        account_id: str | None = None,
    ) -> Any:
        """Every ledger transaction (deposits, trades, fees, …), a page at a time."""
        params = {"account_id": self._account(account_id), "kind": kind, "from": from_, "to": to}
        return self._pages(
            "/intelligence/transactions", "transactions", m.TransactionListOutput, params, limit
        )

    def markets(self, *, kind: str | None = None, status: str | None = None) -> list[m.Market]:
        return self._run(
            Call(
                "GET",
                "/intelligence/markets",
                lambda response: m.MarketList.from_json(response.json()).markets,
                params={"kind": kind, "status": status},
                idempotent=True,
            )
        )

    def market(self, symbol: str) -> m.Market:
        return self._run(
            Call(
                "GET",
                f"/intelligence/markets/{_segment(symbol)}",
                _model(m.Market),
                idempotent=True,
            )
        )

    def orderbook(
        self, symbol: str, *, depth: int | None = None, venue: str | None = None
    ) -> m.OrderBook:
        return self._run(
            Call(
                "GET",
                f"/intelligence/markets/{_segment(symbol)}/orderbook",
                _model(m.OrderBook),
                params={"depth": depth, "venue": venue},
                idempotent=True,
            )
        )

    def account(self, *, account_id: str | None = None) -> m.AccountOutput:
        return self._run(
            Call(
                "GET",
                "/intelligence/account",
                _model(m.AccountOutput),
                params={"account_id": self._account(account_id)},
                idempotent=True,
            )
        )

    def balances(self, *, account_id: str | None = None) -> m.BalancesOutput:
        return self._run(
            Call(
                "GET",
                "/intelligence/balances",
                _model(m.BalancesOutput),
                params={"account_id": self._account(account_id)},
                idempotent=True,
            )
        )


def _money(value: Money | None) -> str | None:
    return None if value is None else decimal_text(value)


def _new_id() -> str:
    return client_order_id()
