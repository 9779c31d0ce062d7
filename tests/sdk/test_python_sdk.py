"""The Python SDK (`leviathan-sdk`, sdk/python) against the real server: uvicorn in a
subprocess, on the test's database (tests.live_server). The seed's Quickstart as
written, every operation's happy path and one error, pagination, the idempotent
retry of execute after a dropped connection, 429 back-off, signing, and asyncio."""

import asyncio
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.test import Client
from leviathan import AsyncLeviathan, Leviathan, Positions, errors, models

from accounts.models import Account
from tests.api.conftest import key_issue
from tests.conftest import credit_cash
from tests.factories import UserFactory, open_account
from tests.trading.conftest import binary_create, perp_create
from tests.trading.quoting import put_quote
from trading.models import Order
from trading.services.linked_accounts import linked_account_link
from trading.venues.fakes.kalshi import FakeKalshi, seed_demo

SDK = Path(__file__).resolve().parents[2] / "sdk" / "python"
SEED_KEY = "lev_live_xxxxxxxxxxxxxxxx"
# Seed 000's Quickstart, as written there (one statement a line).
QUICKSTART = """
# pip install leviathan-sdk
from leviathan import Leviathan
client = Leviathan(api_key="lev_live_xxxxxxxxxxxxxxxx")
# View all open positions
positions = client.intelligence.positions()
for p in positions:
    print(f"{p.symbol} {p.side} — PnL: {p.pnl}")
# Execute a trade
trade = client.intelligence.execute(
    symbol="TRUMP-WIN",
    side="buy",
    notional_usdc="50000",
)
print(f"Trade executed: {trade.id}")
"""


@pytest.fixture
def funded(transactional_db):
    """A custodial account with 200k USDC, TRUMP-WIN and BTC-PERP quoted, and its key."""
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "200000")
    binary_create("TRUMP-WIN")
    perp_create("BTC-PERP", "BTC")
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRUMP-WIN@{venue}", bid="0.55", ask="0.56")
    put_quote("BTC-PERP@leviathan", bid="64000", ask="64010", binary=False)
    return account, key_issue([account])


@pytest.fixture
def client(live_api, funded):
    with Leviathan(api_key=funded[1], base_url=f"{live_api}/v1", backoff_base=0.01) as sdk:
        yield sdk


def test_the_quickstart_runs_as_written(live_api, funded):
    _, key = funded
    env = {**os.environ, "LEVIATHAN_BASE_URL": f"{live_api}/v1"}
    code = QUICKSTART.replace(SEED_KEY, key)
    out = subprocess.run(  # noqa: S603 (our interpreter, the seed's code)
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    (executed,) = [line for line in out.stdout.splitlines() if line.startswith("Trade executed")]
    assert executed.removeprefix("Trade executed: ").startswith("ord_")
    assert Order.objects.filter(status=Order.Status.FILLED).count() == 1


def test_urls_come_from_the_arguments_then_the_environment(monkeypatch):
    monkeypatch.setenv("LEVIATHAN_BASE_URL", "http://env.invalid/v1")
    monkeypatch.setenv("LEVIATHAN_STREAM_URL", "ws://env.invalid/v1")
    assert Leviathan(api_key="k").config.base_url == "http://env.invalid/v1"
    assert Leviathan(api_key="k", base_url="http://arg.invalid/v1/").config.base_url == (
        "http://arg.invalid/v1"
    )
    monkeypatch.delenv("LEVIATHAN_BASE_URL")
    monkeypatch.delenv("LEVIATHAN_STREAM_URL")
    config = Leviathan(api_key="k").config
    assert config.base_url == "https://api.leviathan.global/v1"
    assert config.stream_url == "wss://stream.leviathan.global/v1"


def test_trading_operations_and_their_errors(client, funded):
    account, _ = funded
    intel = client.intelligence

    trade = intel.execute(symbol="TRUMP-WIN", side="buy", notional_usdc=Decimal("1000"))
    assert isinstance(trade, models.Order) and trade.status == "filled"
    assert isinstance(trade.filled_notional, Decimal)
    positions = intel.positions()
    assert isinstance(positions, Positions) and positions.account_id == account.public_id
    (position,) = positions
    assert position.symbol == "TRUMP-WIN" and position.side == models.PositionSide.LONG
    with pytest.raises(errors.InsufficientLiquidityError) as refused:
        intel.execute(symbol="TRUMP-WIN", side="buy", notional_usdc="10000000")
    assert refused.value.status == 400 and refused.value.code == "insufficient_liquidity"

    order = intel.orders.create(symbol="TRUMP-WIN", side="buy", quantity="10", price="0.40")
    assert order.status == "open" and order.client_order_id.startswith("sdk-")
    assert intel.orders.get(order.id).id == order.id
    assert intel.orders.get_by_client_id(order.client_order_id).id == order.id
    modified = intel.orders.modify(order.id, price="0.41")
    assert modified.price == Decimal("0.41")
    assert intel.orders.cancel(order.id).status == "cancelled"
    with pytest.raises(errors.NotFoundError):
        intel.orders.get("ord_0000000000000000")
    with pytest.raises(errors.InvalidParamsError):
        intel.orders.create(symbol="TRUMP-WIN", side="buy", quantity="-1", price="0.40")

    fills = list(intel.fills())
    assert len(fills) == 1 and fills[0].symbol == "TRUMP-WIN"
    closed = intel.close_position("TRUMP-WIN", percent="50")
    assert closed.side == "sell"
    with pytest.raises(errors.NotFoundError):
        intel.close_position("NOPE-WIN")

    margin = intel.margin()
    assert margin.account_id == account.public_id
    assert isinstance(margin.available_credit, Decimal)
    simulation = intel.simulate(
        simulated_position_changes=[{"instrument_name": "TRUMP-WIN", "amount": "100"}]
    )
    assert simulation.result is not None
    with pytest.raises(errors.InvalidParamsError):
        intel.simulate(simulated_position_changes=[{"amount": "1"}])


def test_markets_account_leverage_and_money(client, funded):
    account, _ = funded
    intel = client.intelligence

    markets = intel.markets()
    assert {market.symbol for market in markets} >= {"TRUMP-WIN", "BTC-PERP"}
    assert intel.market("TRUMP-WIN").symbol == "TRUMP-WIN"
    book = intel.orderbook("TRUMP-WIN", depth=5)
    assert book.symbol == "TRUMP-WIN" and book.books
    with pytest.raises(errors.NotFoundError):
        intel.market("NOPE")

    assert intel.account().account_id == account.public_id
    balances = intel.balances()
    assert isinstance(balances.cash, Decimal) and balances.account_id == account.public_id

    levels = intel.leverage.levels(symbol="BTC-PERP")
    assert levels.markets
    result = intel.leverage.set(symbol="BTC-PERP", leverage=5)
    assert result.new_leverage == 5
    assert intel.leverage.get(symbol="BTC-PERP").leverage == 5
    with pytest.raises(errors.ApiError) as refused:
        intel.leverage.set(symbol="BTC-PERP", leverage=1000)
    assert refused.value.status == 422

    withdrawal = intel.withdrawals.create(amount="10", destination="0x" + "ab" * 20)
    assert intel.withdrawals.get(withdrawal.id).id == withdrawal.id
    assert [w.id for w in intel.withdrawals.list()] == [withdrawal.id]
    assert intel.withdrawals.cancel(withdrawal.id).status == "cancelled"
    with pytest.raises(errors.InvalidParamsError):
        intel.withdrawals.create(amount="-5", destination="0x" + "ab" * 20)
    deposits = list(intel.deposits.list())
    with pytest.raises(errors.NotFoundError):
        intel.deposits.get("dep_0000000000000000")
    assert all(isinstance(d, models.DepositOutput) for d in deposits)
    assert list(intel.transactions())

    report = intel.reports.create(type="positions", from_=date(2026, 1, 1), to=date.today())
    ready = intel.reports.get(report.id)
    assert ready.id == report.id and ready.status == "ready"
    assert len(intel.reports.download(ready)) > 0
    assert [r.id for r in intel.reports.list()] == [report.id]
    with pytest.raises(errors.InvalidParamsError):
        intel.reports.create(type="positions", from_="2026-02-01", to="2026-01-01")
    with pytest.raises(errors.ApiError) as custodial:
        intel.linked_account.get()  # a custodial account links no venue account
    assert custodial.value.status in (403, 404)


def test_lists_page_through_every_item(client):
    placed = [
        client.intelligence.orders.create(
            symbol="TRUMP-WIN", side="buy", quantity="1", price=f"0.3{n}"
        ).id
        for n in range(5)
    ]

    listed = [order.id for order in client.intelligence.orders.list(limit=2)]
    page = client.intelligence.orders.page(limit=2)

    assert sorted(listed) == sorted(placed)
    assert len(page.orders) == 2 and page.next_offset == 2


class DropFirstAnswer(httpx.HTTPTransport):
    """Sends the request, then loses its answer once (the server did the work)."""

    def __init__(self):
        super().__init__()
        self.dropped = 0

    def handle_request(self, request):
        response = super().handle_request(request)
        if request.url.path.endswith("/execute") and not self.dropped:
            self.dropped += 1
            response.close()
            raise httpx.ReadError("connection dropped", request=request)
        return response


def test_execute_retried_after_a_dropped_connection_trades_once(live_api, funded):
    transport = DropFirstAnswer()
    with Leviathan(
        api_key=funded[1],
        base_url=f"{live_api}/v1",
        backoff_base=0.01,
        http_client=httpx.Client(transport=transport),
    ) as client:
        trade = client.intelligence.execute(symbol="TRUMP-WIN", side="buy", notional_usdc="500")

    assert transport.dropped == 1
    assert Order.objects.filter(client_order_id=trade.client_order_id).count() == 1
    assert Order.objects.count() == 1


class ThrottleOnce(httpx.HTTPTransport):
    """Answers the first request 429 with a Retry-After, then passes them on."""

    def __init__(self):
        super().__init__()
        self.throttled = 0

    def handle_request(self, request):
        if not self.throttled:
            self.throttled += 1
            body = b'{"code": "rate_limited", "message": "Slow down."}'
            return httpx.Response(429, headers={"Retry-After": "0.2"}, content=body)
        return super().handle_request(request)


def test_a_429_is_waited_out_then_retried(live_api, funded, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("leviathan._client.time.sleep", slept.append)
    transport = ThrottleOnce()
    with Leviathan(
        api_key=funded[1],
        base_url=f"{live_api}/v1",
        http_client=httpx.Client(transport=transport),
    ) as client:
        assert client.intelligence.balances()

    assert slept == [0.2]
    with (
        Leviathan(
            api_key=funded[1],
            base_url=f"{live_api}/v1",
            max_retries=0,
            http_client=httpx.Client(transport=ThrottleOnce()),
        ) as impatient,
        pytest.raises(errors.RateLimitedError) as limited,
    ):
        impatient.intelligence.balances()
    assert limited.value.retry_after == 0.2 and limited.value.status == 429


def test_a_signing_key_signs_every_write(live_api, transactional_db):
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "1000")
    binary_create("TRUMP-WIN")
    put_quote("TRUMP-WIN@kalshi", bid="0.55", ask="0.56")
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    key = key_issue([account], signing_public_key=public)
    base = f"{live_api}/v1"

    with Leviathan(api_key=key, base_url=base) as unsigned, pytest.raises(errors.UnauthorizedError):
        unsigned.intelligence.execute(symbol="TRUMP-WIN", side="buy", notional_usdc="10")
    with Leviathan(api_key=key, base_url=base, signing_key=private) as signed:
        assert (
            signed.intelligence.execute(symbol="TRUMP-WIN", side="buy", notional_usdc="10").status
            == "filled"
        )


def test_the_async_client_does_the_same(live_api, funded):
    async def scenario():
        async with AsyncLeviathan(api_key=funded[1], base_url=f"{live_api}/v1") as client:
            trade = await client.intelligence.execute(
                symbol="TRUMP-WIN", side="buy", notional_usdc="100"
            )
            positions = await client.intelligence.positions()
            orders = [order async for order in client.intelligence.orders.list(limit=1)]
            with pytest.raises(errors.NotFoundError):
                await client.intelligence.orders.get("ord_0000000000000000")
            return trade, positions, orders

    trade, positions, orders = asyncio.run(scenario())
    assert trade.status == "filled" and len(positions) == 1
    assert [order.id for order in orders] == [trade.id]


def test_unknown_enum_values_and_new_fields_are_kept():
    data = {"symbol": "X", "kind": "option", "side": "long", "brand_new": {"a": 1}}
    position = models.Position.from_json(data)
    assert position.kind == "option" and position.side == models.PositionSide.LONG
    assert position.extra == {"brand_new": {"a": 1}}
    assert position.to_json()["brand_new"] == {"a": 1}
    # Fields are converted when first read, optional ones included (not the class's None).
    request = models.ExecuteInputRequest.from_json(
        {"symbol": "X", "side": "buy", "notional_usdc": "5.10", "client_order_id": "c-1"}
    )
    assert request.client_order_id == "c-1" and request.notional_usdc == Decimal("5.10")
    assert request.venue is None
    built = models.ExecuteInputRequest(symbol="Y", side="sell", notional_usdc=Decimal(1))
    assert built.client_order_id is None and built.to_json()["notional_usdc"] == "1"


def test_money_is_never_a_float():
    client = Leviathan(api_key="k", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(TypeError, match="never float"):
        client.intelligence.execute(symbol="X", side="buy", notional_usdc=1.5)


def test_the_committed_models_are_the_served_schemas(tmp_path, db):
    served = tmp_path / "openapi.json"
    served.write_bytes(Client().get("/v1/openapi.json").content)
    check = subprocess.run(  # noqa: S603 (the project's generator)
        [sys.executable, str(SDK / "generate.py"), str(served), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_deposits_by_card_and_orders_by_client_id(client):
    intel = client.intelligence
    deposit = intel.deposits.create(amount="100", method="card", card_number="4242 4242 4242 4242")
    assert intel.deposits.get(deposit.id).id == deposit.id
    assert deposit.id in [d.id for d in intel.deposits.list()]
    with pytest.raises(errors.InvalidParamsError):  # fails the Luhn check
        intel.deposits.create(amount="100", method="card", card_number="4242 4242 4242 4241")

    order = intel.orders.create(
        symbol="TRUMP-WIN", side="buy", quantity="2", price="0.35", client_order_id="mine-1"
    )
    again = intel.orders.create(
        symbol="TRUMP-WIN", side="buy", quantity="2", price="0.35", client_order_id="mine-1"
    )
    assert again.id == order.id  # the same client_order_id and body: the original order
    with pytest.raises(errors.DuplicateOrderError):
        intel.orders.create(
            symbol="TRUMP-WIN", side="buy", quantity="3", price="0.35", client_order_id="mine-1"
        )
    modified = intel.orders.modify("mine-1", price="0.36", by_client_id=True)
    assert modified.id == order.id and modified.price == Decimal("0.36")
    assert intel.orders.cancel("mine-1", by_client_id=True).status == "cancelled"


def test_an_orders_take_profit_and_stop_loss_are_removed_before_they_fire(client):
    orders = client.intelligence.orders
    armed = orders.create(
        symbol="TRUMP-WIN",
        side="buy",
        quantity="2",
        price="0.35",
        take_profit="0.60",
        stop_loss="0.20",
        client_order_id="armed-1",
    )
    kept = orders.cancel_triggers(armed.id, which="stop_loss")
    assert (kept.take_profit, kept.stop_loss) == (Decimal("0.60"), None)
    for _ in range(2):  # safe to repeat
        bare = orders.cancel_triggers("armed-1", by_client_id=True)
        assert (bare.id, bare.take_profit, bare.stop_loss) == (armed.id, None, None)
    with pytest.raises(errors.InvalidParamsError):
        orders.cancel_triggers(armed.id, which="both")
    orders.cancel(armed.id)
    with pytest.raises(errors.OrderNotActiveError):  # cancelled with nothing filled
        orders.cancel_triggers(armed.id)
    with pytest.raises(errors.NotFoundError):
        orders.cancel_triggers("nope", by_client_id=True)


def test_a_bad_key_is_an_unauthorized_error(live_api, transactional_db):
    with (
        Leviathan(api_key="lev_live_not_a_key", base_url=f"{live_api}/v1") as client,
        pytest.raises(errors.UnauthorizedError) as refused,
    ):
        client.intelligence.positions()
    assert refused.value.status == 401


@pytest.fixture
def fake_kalshi(settings, monkeypatch):
    """The fake Kalshi, for this process and the live server started after it."""
    with FakeKalshi() as fake:
        settings.KALSHI_BASE_URLS = {"production": fake.base_url, "demo": fake.base_url}
        monkeypatch.setenv("KALSHI_DEMO_URL", fake.base_url)
        monkeypatch.setenv("KALSHI_PRODUCTION_URL", fake.base_url)
        yield fake


def test_a_linked_account_reads_and_syncs(fake_kalshi, live_api):
    binary_create("TRUMP-WIN")
    put_quote("TRUMP-WIN@kalshi", bid="0.55", ask="0.56")
    seeded = seed_demo(fake_kalshi, key_id="key-sdk-linked")
    credential = linked_account_link(
        user=UserFactory(),
        venue="kalshi",
        environment="demo",
        key_id=seeded.key_id,
        private_key_pem=seeded.private_key_pem,
    )
    key = key_issue([credential.account])
    with Leviathan(api_key=key, base_url=f"{live_api}/v1") as client:
        linked = client.intelligence.linked_account.get()
        synced = client.intelligence.linked_account.sync()
        with pytest.raises(errors.CustodialRequiredError):
            client.intelligence.execute(symbol="TRUMP-WIN", side="buy", notional_usdc="10")
    assert linked.account_id == credential.account.public_id
    assert synced.account_id == credential.account.public_id


OTHER_ACCOUNT = "acct_0000000000"


def test_an_account_the_key_does_not_hold_is_not_found_everywhere(client):
    """One error for every account-scoped operation: another account is a 404."""
    intel, other = client.intelligence, OTHER_ACCOUNT
    calls = {
        "positions": lambda: intel.positions(account_id=other),
        "margin": lambda: intel.margin(account_id=other),
        "simulate": lambda: intel.simulate(account_id=other),
        "account": lambda: intel.account(account_id=other),
        "balances": lambda: intel.balances(account_id=other),
        "fills": lambda: list(intel.fills(account_id=other)),
        "transactions": lambda: list(intel.transactions(account_id=other)),
        "orders.list": lambda: list(intel.orders.list(account_id=other)),
        "orders.page": lambda: intel.orders.page(account_id=other),
        "deposits.list": lambda: list(intel.deposits.list(account_id=other)),
        "withdrawals.list": lambda: list(intel.withdrawals.list(account_id=other)),
        "reports.list": lambda: list(intel.reports.list(account_id=other)),
        "leverage.get": lambda: intel.leverage.get(symbol="BTC-PERP", account_id=other),
        "execute": lambda: intel.execute(
            symbol="TRUMP-WIN", side="buy", notional_usdc="1", account_id=other
        ),
    }
    answered = {}
    for name, call in calls.items():
        try:
            call()
        except errors.NotFoundError as refused:
            answered[name] = (refused.status, other in refused.message)
    assert answered == {name: (404, True) for name in calls}
