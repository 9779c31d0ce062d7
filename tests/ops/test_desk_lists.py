"""What the risk desk lists, built through the real services: worst health first,
open margin calls by time left, withdrawals oldest first with health after payout,
pending KYB, stuck work; and a fixed number of queries however many accounts."""

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import OutboxItem, User
from accounts.services.withdrawals import withdrawal_request
from portal import format as fmt
from tests.factories import UserFactory
from tests.trading.quoting import put_quote
from tests.web.dashboard_fixtures import FED, TRUMP, buy, trader
from trading.desk import desk_get
from trading.engine import MarginEngine
from trading.marketdata.store import TickBatch
from trading.models import MarginCall
from trading.selectors import margin_summary_get
from trading.services.margin_calls import margin_calls_sync

pytestmark = pytest.mark.django_db

D = Decimal


def section(desk: dict, key: str) -> dict:
    return next(item for item in desk["sections"] if item["key"] == key)


def counter(desk: dict, key: str) -> int:
    return next(item["value"] for item in desk["counters"] if item["key"] == key)


def keys(desk: dict, key: str) -> list[str]:
    return [row["key"] for row in section(desk, key)["rows"]]


def desk_json(ops_client) -> dict:
    response = ops_client.get("/ops/desk.json")
    assert response.status_code == 200
    return response.json()


def shown_health(account) -> str:
    health = margin_summary_get(account=account).health
    return fmt.ratio(health.quantize(D("0.01"), rounding=ROUND_HALF_UP))


def trump_falls(bid: str, ask: str) -> None:
    for venue in ("kalshi", "polymarket"):
        put_quote(f"{TRUMP}@{venue}", bid=bid, ask=ask)


def test_accounts_by_health_worst_first_with_their_bands(ops_client, markets):
    light = trader("1000")
    buy(light, TRUMP, "1100")  # borrows 100
    heavy = trader("1000")
    buy(heavy, TRUMP, "1500")  # borrows 500
    cash_only = trader("500")  # nothing held, no borrowing: not listed
    trump_falls("0.40", "0.41")
    desk = desk_json(ops_client)
    health = section(desk, "health")
    assert keys(desk, "health") == [heavy.public_id, light.public_id]
    assert cash_only.public_id not in keys(desk, "health")
    first, second = health["rows"]
    assert first["cells"][1] == shown_health(heavy)
    assert D(first["cells"][1]) < D(second["cells"][1])
    statuses = {heavy.public_id: margin_summary_get(account=heavy).status}
    band = {"caution": "Caution", "margin_call": "Margin call", "healthy": "Healthy"}
    assert first["cells"][2].startswith(band[statuses[heavy.public_id]])
    assert first["tone"] in ("warn", "danger")
    assert "Caution below" in health["note"]
    assert first["href"]  # its action: the account's ops page or admin page


def test_open_margin_calls_by_time_left_with_the_account_link(ops_client, markets):
    early, late = trader("1000"), trader("1000")
    buy(early, TRUMP, "1500")
    buy(late, TRUMP, "1500")
    trump_falls("0.20", "0.21")
    margin_calls_sync(account_ids=[early.pk], now=timezone.now() - timedelta(hours=5))
    margin_calls_sync(account_ids=[late.pk])
    assert MarginCall.objects.filter(status=MarginCall.Status.OPEN).count() == 2
    desk = desk_json(ops_client)
    calls = section(desk, "margin_calls")
    assert keys(desk, "margin_calls") == [early.public_id, late.public_id]
    assert counter(desk, "margin_calls") == 2
    assert counter(desk, "in_call") == 2
    first_left = calls["rows"][0]["cells"][5]
    assert "h" in first_left and not first_left.startswith("Overdue")
    page = ops_client.get("/ops/").content.decode()
    assert early.public_id in page and "Open margin calls" in page


def test_withdrawals_oldest_first_with_health_after_payout(ops_client, markets):
    older, newer = trader("1000"), trader("2000")
    first = withdrawal_request(
        account=older, amount=D("300"), destination="Bank ••12", requested_by=older.owner
    )
    second = withdrawal_request(
        account=newer, amount=D("100"), destination="Bank ••34", requested_by=newer.owner
    )
    # After asking, `older` buys more than the cash the payout leaves: it borrows.
    buy(older, TRUMP, "1000")
    desk = desk_json(ops_client)
    rows = section(desk, "withdrawals")["rows"]
    assert [row["key"] for row in rows] == [first.public_id, second.public_id]
    older.refresh_from_db()
    assert rows[0]["cells"][2] == "300.00"
    assert rows[0]["cells"][4].startswith(shown_health(older))  # the engine's, net of payout
    assert rows[1]["cells"][4].startswith("∞")  # not borrowing
    assert counter(desk, "withdrawals") == 2


def test_pending_kyb_and_overdue_work_are_listed(ops_client):
    waiting = UserFactory(email="newco@example.test", kyb_status=User.KybStatus.PENDING)
    UserFactory(email="done@example.test")  # approved
    OutboxItem.objects.create(
        task="accounts.email_send",
        lease_seconds=60,
        due_at=timezone.now() - timedelta(minutes=10),
        last_error="smtp_timeout: the mail server did not answer",
    )
    desk = desk_json(ops_client)
    assert keys(desk, "kyb") == [waiting.email]
    outbox = section(desk, "outbox")["rows"]
    assert outbox[0]["cells"][0] == "accounts.email_send"
    assert outbox[0]["cells"][2] == "10 min"
    assert counter(desk, "kyb") == 1 and counter(desk, "outbox") == 1


def _desk_queries() -> int:
    with CaptureQueriesContext(connection) as captured:
        desk_get()
    return len(captured)


def test_the_desk_reads_in_a_fixed_number_of_queries(
    ops_client, markets, django_assert_max_num_queries
):
    def add_some() -> None:
        for _ in range(3):
            account = trader("1000")
            buy(account, TRUMP, "1500")
            buy(account, f"{FED}:NO", "100")
            payer = trader("500")
            withdrawal_request(
                account=payer, amount=D("50"), destination="Bank", requested_by=payer.owner
            )
        UserFactory(kyb_status=User.KybStatus.PENDING)

    add_some()
    trump_falls("0.30", "0.31")
    few = _desk_queries()
    add_some()
    add_some()
    margin_calls_sync(account_ids=list(MarginCall.objects.values_list("account_id", flat=True)))
    many = _desk_queries()
    assert many == few, (few, many)
    assert few <= 12  # one statement per list, plus the margin inputs and the policy
    # The JSON: those, plus the session, the user, their OTP device and the session's
    # save (in a savepoint).
    with django_assert_max_num_queries(few + 6):
        desk_json(ops_client)


def test_rows_link_to_their_actions(ops_client, markets):
    account = trader("1000")
    buy(account, TRUMP, "1500")
    payer = trader("300")
    withdrawal = withdrawal_request(
        account=payer, amount=D("10"), destination="Bank", requested_by=payer.owner
    )
    waiting = UserFactory(kyb_status=User.KybStatus.PENDING)
    desk = desk_json(ops_client)
    links = {row["key"]: row["href"] for item in desk["sections"] for row in item["rows"]}
    for key in (account.public_id, withdrawal.public_id, waiting.email):
        assert links[key], key
        assert ops_client.get(links[key]).status_code == 200, links[key]


def test_the_engine_hints_the_desk_when_an_account_changes_band(markets, monkeypatch):
    account = trader("1000")
    buy(account, TRUMP, "1500")
    hints: list[str] = []
    monkeypatch.setattr(  # the hint goes out in the engine's batch of margin updates
        "trading.engine.margin_updates_broadcast",
        lambda *, updates, desk_reason=None: desk_reason and hints.append(desk_reason),
    )
    engine = MarginEngine()
    engine.sweep()
    quote = put_quote(f"{TRUMP}@kalshi", bid="0.595", ask="0.605")  # a small move: same band
    engine.process_batch(TickBatch(ts=quote.ts, quotes=(quote,)))
    assert hints == []
    trump_falls("0.45", "0.46")  # into caution
    quote = put_quote(f"{TRUMP}@kalshi", bid="0.45", ask="0.46")
    engine.process_batch(TickBatch(ts=quote.ts, quotes=(quote,)))
    assert margin_summary_get(account=account).status == "caution"
    assert hints == ["health"]
