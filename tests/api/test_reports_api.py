"""Reports over /v1/intelligence/reports: request (202), generation by the Celery task
(eager in tests, fired on commit), status, and the signed download link."""

import csv
import io
import json
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import signing
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone as django_timezone

from accounts.models import Account, HouseAccount, Journal, OutboxItem
from accounts.outbox import outbox_dispatch
from accounts.services.ledger import Line, cash_ledger_account, house_ledger_account, journal_post
from tests.api.conftest import client_for, key_issue
from tests.factories import open_account
from tests.trading.conftest import quote_store  # noqa: F401 (a fixture)
from tests.trading.executing import market, no_commission
from trading.models import Report
from trading.services import reports as report_service
from trading.services.execute import order_execute
from trading.services.reports import ReportBusy, report_download_link
from trading.tasks import report_generate_task

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    """Each test's report files in a directory of its own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@contextmanager
def frozen(moment: datetime):
    """django.utils.timezone.now() returns `moment` (rows get that created_at)."""
    real = django_timezone.datetime

    class Frozen(real):
        @classmethod
        def now(cls, tz=None):
            return moment.astimezone(tz) if tz else moment.replace(tzinfo=None)

    django_timezone.datetime = Frozen
    try:
        yield
    finally:
        django_timezone.datetime = real


def post(account: Account, kind: str, amount: str, memo: str, at: datetime | None = None):
    """A balanced journal on the account's cash (the far side: a house account)."""
    house = {
        Journal.Kind.DEPOSIT: HouseAccount.PAYMENT_CLEARING,
        Journal.Kind.WITHDRAWAL: HouseAccount.PAYMENT_CLEARING,
        Journal.Kind.INTEREST: HouseAccount.INTEREST_INCOME,
        Journal.Kind.FUNDING: HouseAccount.FUNDING_POOL,
        Journal.Kind.SETTLEMENT: HouseAccount.MARKET_SETTLEMENT,
    }[kind]
    amount = D(amount)
    with frozen(at or django_timezone.now()), transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        return journal_post(
            kind=kind,
            account=locked,
            memo=memo,
            lines=[
                Line(cash_ledger_account(locked), amount),
                Line(house_ledger_account(house), -amount),
            ],
        )


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def request_report(api, capture, **body):
    """POST reports and let the on-commit task run; return (POST answer, GET status)."""
    with capture(execute=True):
        created = api.post("/v1/intelligence/reports", body, format="json")
    assert created.status_code == 202, created.content
    status = api.get(f"/v1/intelligence/reports/{created.json()['id']}")
    assert status.status_code == 200
    return created.json(), status.json()


def download(url: str):
    """Follow a download URL with no API key at all."""
    return client_for(None).get(url)


def content(response) -> str:
    return b"".join(response.streaming_content).decode()


# --- Request, status, download ------------------------------------------------------------


def test_transactions_csv_from_request_to_download(
    api, api_account, django_capture_on_commit_callbacks
):
    post(api_account, "deposit", "1000", "Opening deposit", utc(2026, 3, 31, 23, 59, 59))
    first = post(api_account, "deposit", "250.5", "Wire, ref A", utc(2026, 4, 1, 0, 0, 0))
    second = post(api_account, "interest", "-1.25", 'Interest "daily", 1 day', utc(2026, 4, 2, 13))
    post(api_account, "withdrawal", "-100", "After the range", utc(2026, 4, 3, 0, 0, 0))

    with django_capture_on_commit_callbacks() as callbacks:
        created = api.post(
            "/v1/intelligence/reports",
            {"type": "transactions", "from": "2026-04-01", "to": "2026-04-02"},
            format="json",
        )
    assert created.status_code == 202
    pending = created.json()
    assert pending["id"].startswith("rep_")
    assert pending["status"] == "pending"
    assert (pending["type"], pending["format"]) == ("transactions", "csv")
    assert (pending["from"], pending["to"]) == ("2026-04-01", "2026-04-02")
    assert pending["download_url"] is None and pending["rows"] is None
    assert created["X-RateLimit-Limit"] == "60"  # requests: the order-management group
    assert len(callbacks) == 1  # the task is queued after commit

    for callback in callbacks:  # the worker runs it
        callback()
    status = api.get(f"/v1/intelligence/reports/{pending['id']}")
    assert status["X-RateLimit-Limit"] == "300"
    ready = status.json()
    assert ready["status"] == "ready"
    assert ready["rows"] == 2
    assert ready["finished_at"] is not None and ready["error"] == ""
    assert ready["download_url"].startswith(
        f"http://testserver/v1/intelligence/reports/{pending['id']}/download?token="
    )
    expires = datetime.fromisoformat(ready["download_expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)

    response = download(ready["download_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert f"{pending['id']}-transactions-20260401-20260402.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(content(response))))
    assert rows == [
        ["time", "journal_id", "kind", "memo", "amount", "balance"],
        [
            "2026-04-01T00:00:00.000000+00:00",
            str(first.pk),
            "deposit",
            "Wire, ref A",
            "250.500000",
            "1250.500000",
        ],
        [
            "2026-04-02T13:00:00.000000+00:00",
            str(second.pk),
            "interest",
            'Interest "daily", 1 day',
            "-1.250000",
            "1249.250000",
        ],
    ]


def test_csv_cells_are_quoted_exactly_as_csv_writer_quotes_them(
    api, api_account, django_capture_on_commit_callbacks
):
    memos = [
        "plain memo",
        'a "quoted" word',
        "comma, inside",
        "two\nlines",
        "carriage\rreturn",
        "",
        "ünïcødé – €",
    ]
    journals = [
        post(api_account, "deposit", str(n + 1), memo, utc(2026, 4, 1, n))
        for n, memo in enumerate(memos)
    ]
    _, ready = request_report(
        api,
        django_capture_on_commit_callbacks,
        type="transactions",
        **{"from": "2026-04-01", "to": "2026-04-01"},
    )

    text = content(download(ready["download_url"]))

    balance = D(0)
    expected = [["time", "journal_id", "kind", "memo", "amount", "balance"]]
    for n, (journal, memo) in enumerate(zip(journals, memos, strict=True)):
        balance += n + 1
        expected.append(
            [
                f"2026-04-01T{n:02d}:00:00.000000+00:00",
                str(journal.pk),
                "deposit",
                memo,
                f"{n + 1}.000000",
                f"{balance}.000000",
            ]
        )
    assert list(csv.reader(io.StringIO(text, newline=""))) == expected
    # Quoted only where CSV needs it (RFC 4180: quotes, commas, CR or LF), quotes doubled.
    lines = text.split("\n")
    assert f",{journals[0].pk},deposit,plain memo,1.000000," in lines[1]
    assert ',"a ""quoted"" word",' in text
    assert ',"comma, inside",' in text
    assert ',"two\nlines",' in text and ',"carriage\rreturn",' in text
    assert f",{journals[5].pk},deposit,,6.000000," in text
    assert ",ünïcødé – €," in text


def test_json_format_is_an_array_of_objects(api, api_account, django_capture_on_commit_callbacks):
    journal = post(api_account, "deposit", "42", "Card", utc(2026, 4, 1, 12, 30))
    _, ready = request_report(
        api,
        django_capture_on_commit_callbacks,
        type="transactions",
        **{"from": "2026-04-01", "to": "2026-04-01"},
        format="json",
    )

    response = download(ready["download_url"])

    assert response["Content-Type"] == "application/json"
    assert json.loads(content(response)) == [
        {
            "time": "2026-04-01T12:30:00.000000+00:00",
            "journal_id": journal.pk,
            "kind": "deposit",
            "memo": "Card",
            "amount": "42.000000",
            "balance": "42.000000",
        }
    ]


def test_an_empty_range_is_a_ready_report_with_only_a_header(
    api, django_capture_on_commit_callbacks
):
    _, ready = request_report(
        api,
        django_capture_on_commit_callbacks,
        type="transactions",
        **{"from": "2020-01-01"},
        to="2020-01-31",
    )
    assert (ready["status"], ready["rows"]) == ("ready", 0)
    assert content(download(ready["download_url"])) == "time,journal_id,kind,memo,amount,balance\n"
    _, ready_json = request_report(
        api,
        django_capture_on_commit_callbacks,
        type="positions",
        format="json",
        **{"from": "2020-01-01", "to": "2020-01-31"},
    )
    assert json.loads(content(download(ready_json["download_url"]))) == []
    _, quiet_days = request_report(
        api,
        django_capture_on_commit_callbacks,
        type="performance",
        **{"from": "2020-01-30", "to": "2020-01-31"},
    )
    assert content(download(quiet_days["download_url"])).splitlines() == [
        "date,trades,volume,realized_pnl,fees,interest,funding,settlements,deposits,"
        "withdrawals,net_cash_flow,closing_cash",
        "2020-01-30,0" + ",0.000000" * 10,
        "2020-01-31,0" + ",0.000000" * 10,
    ]


@pytest.mark.usefixtures("quote_store")
def test_positions_report_lists_the_fills_of_the_range(
    api, api_account, django_capture_on_commit_callbacks
):
    no_commission()
    market("ELECT", kalshi_ask="0.60", poly_ask="0.62")
    post(api_account, "deposit", "1000", "Funding")
    buy = order_execute(account=api_account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    sell = order_execute(account=api_account, symbol="ELECT", side="sell", notional_usdc=D("30.5"))
    no = order_execute(account=api_account, symbol="ELECT:NO", side="buy", notional_usdc=D("41"))
    today = date.today().isoformat()

    _, ready = request_report(
        api, django_capture_on_commit_callbacks, type="positions", **{"from": today, "to": today}
    )

    text = content(download(ready["download_url"]))
    assert text.splitlines()[0] == (
        "id,order_id,client_order_id,symbol,side,quantity,price,notional,venue_fee,"
        "commission,realized_pnl,liquidity,venue,created_at"
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert ready["rows"] == 3
    assert [(r["order_id"], r["symbol"], r["side"]) for r in rows] == [
        (buy.public_id, "ELECT", "buy"),
        (sell.public_id, "ELECT", "sell"),
        (no.public_id, "ELECT:NO", "buy"),
    ]
    assert rows[0]["quantity"] == "100.000000" and rows[0]["price"] == "0.60000000"
    assert rows[0]["notional"] == "60.000000" and rows[0]["venue"] == "kalshi"
    assert rows[0]["realized_pnl"] == "0.000000"
    assert D(rows[1]["realized_pnl"]) == D(rows[1]["notional"]) - D(rows[1]["quantity"]) * D("0.6")
    assert rows[1]["id"] == sell.fills.get().public_id
    assert rows[2]["created_at"].startswith(today)
    assert rows[0]["client_order_id"] == ""  # none given: an empty cell (null in JSON)

    # The JSON report's rows are GET fills' objects, field for field (oldest first).
    _, ready_json = request_report(
        api,
        django_capture_on_commit_callbacks,
        type="positions",
        format="json",
        **{"from": today, "to": today},
    )
    fills = api.get("/v1/intelligence/fills").json()["fills"]
    assert json.loads(content(download(ready_json["download_url"]))) == fills[::-1]
    assert [fill["id"] for fill in fills[::-1]] == [row["id"] for row in rows]


@pytest.mark.usefixtures("quote_store")
def test_performance_report_has_one_row_per_day(
    api, api_account, django_capture_on_commit_callbacks
):
    no_commission()
    market("ELECT", kalshi_ask="0.60")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    before, day1, day2 = today - timedelta(days=3), today - timedelta(days=2), today - timedelta(1)
    post(api_account, "deposit", "100", "Before the range", before + timedelta(hours=5))
    post(api_account, "deposit", "1000", "Deposit", day1 + timedelta(hours=9))
    post(api_account, "withdrawal", "-200", "Withdrawal", day1 + timedelta(hours=10))
    post(api_account, "interest", "-0.5", "Interest", day1 + timedelta(hours=23))
    post(api_account, "funding", "2.25", "Funding received", day1 + timedelta(hours=23))
    buy = order_execute(account=api_account, symbol="ELECT", side="buy", notional_usdc=D("60"))
    sell = order_execute(account=api_account, symbol="ELECT", side="sell", notional_usdc=D("29"))

    _, ready = request_report(
        api,
        django_capture_on_commit_callbacks,
        type="performance",
        **{"from": day1.date().isoformat(), "to": today.date().isoformat()},
        format="json",
    )

    rows = json.loads(content(download(ready["download_url"])))
    assert ready["rows"] == 3 == len(rows)
    assert [row["date"] for row in rows] == [
        day1.date().isoformat(),
        day2.date().isoformat(),
        today.date().isoformat(),
    ]
    first, quiet, trading_day = rows
    assert first == {
        "date": day1.date().isoformat(),
        "trades": 0,
        "volume": "0.000000",
        "realized_pnl": "0.000000",
        "fees": "0.000000",
        "interest": "0.500000",
        "funding": "2.250000",
        "settlements": "0.000000",
        "deposits": "1000.000000",
        "withdrawals": "200.000000",
        "net_cash_flow": "801.750000",
        "closing_cash": "901.750000",
    }
    assert quiet["trades"] == 0 and quiet["net_cash_flow"] == "0.000000"
    assert quiet["interest"] == quiet["withdrawals"] == "0.000000"  # never "-0.000000"
    assert quiet["closing_cash"] == "901.750000"
    sell_fill = sell.fills.get()
    assert trading_day["trades"] == 2
    assert D(trading_day["volume"]) == buy.filled_notional + sell.filled_notional
    assert D(trading_day["realized_pnl"]) == sell_fill.realized_pnl
    assert D(trading_day["fees"]) == buy.fees + sell.fees
    api_account.refresh_from_db()
    assert D(trading_day["closing_cash"]) == api_account.cash_balance


# --- Input and permission errors -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"type": "pnl", "from": "2026-04-01", "to": "2026-04-02"},
        {"from": "2026-04-01", "to": "2026-04-02"},
        {"type": "positions", "from": "2026-04-31", "to": "2026-05-02"},
        {"type": "positions", "from": "04/01/2026", "to": "2026-05-02"},
        {"type": "positions", "from": "2026-04-01"},
        {"type": "positions", "from": "2026-04-02", "to": "2026-04-01"},
        {"type": "performance", "from": "2000-01-01", "to": "2026-01-01"},  # > 3660 days
        {"type": "positions", "from": "2026-04-01", "to": "2026-04-02", "format": "xlsx"},
    ],
)
def test_bad_requests_are_400_and_record_nothing(api, body):
    response = api.post("/v1/intelligence/reports", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_params"
    assert not Report.objects.exists()


def test_reports_need_the_reports_scope(api_account):
    no_reports = client_for(key_issue([api_account], scopes=("intelligence", "read", "trade")))
    body = {"type": "positions", "from": "2026-04-01", "to": "2026-04-02"}
    response = no_reports.post("/v1/intelligence/reports", body, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "code": "forbidden",
        "message": "This key lacks the reports scope.",
    }
    assert no_reports.get("/v1/intelligence/reports").status_code == 403
    assert not Report.objects.exists()

    reports_only = client_for(key_issue([api_account], scopes=("intelligence", "reports")))
    assert reports_only.post("/v1/intelligence/reports", body, format="json").status_code == 202


def test_another_accounts_report_is_404(api, django_capture_on_commit_callbacks):
    stranger = open_account(kind=Account.Kind.CUSTODIAL)
    theirs = client_for(key_issue([stranger]))
    with django_capture_on_commit_callbacks(execute=True):
        created = theirs.post(
            "/v1/intelligence/reports",
            {"type": "transactions", "from": "2026-04-01", "to": "2026-04-02"},
            format="json",
        ).json()

    response = api.get(f"/v1/intelligence/reports/{created['id']}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert api.get("/v1/intelligence/reports/rep_unknown").status_code == 404
    assert api.get("/v1/intelligence/reports").json()["reports"] == []


def test_the_list_shows_the_accounts_reports_newest_first(api):
    ids = [
        api.post(
            "/v1/intelligence/reports",
            {"type": kind, "from": "2026-04-01", "to": "2026-04-02"},
            format="json",
        ).json()["id"]
        for kind in ("positions", "performance")
    ]
    listed = api.get("/v1/intelligence/reports").json()
    assert [(r["id"], r["status"]) for r in listed["reports"]] == [
        (ids[1], "pending"),
        (ids[0], "pending"),
    ]


# --- Signed links -------------------------------------------------------------------------------


@pytest.fixture
def ready(api, api_account, django_capture_on_commit_callbacks) -> dict:
    post(api_account, "deposit", "10", "Deposit", utc(2026, 4, 1, 9))
    return request_report(
        api,
        django_capture_on_commit_callbacks,
        type="transactions",
        **{"from": "2026-04-01", "to": "2026-04-01"},
    )[1]


def _forbidden(response) -> None:
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "forbidden"


def test_a_tampered_link_is_403(ready):
    url = ready["download_url"]
    assert download(url).status_code == 200
    _forbidden(download(url[:-1] + ("A" if url[-1] != "A" else "B")))
    _forbidden(download(url.split("?")[0]))  # no token
    _forbidden(download(url.split("?")[0] + "?token=rep_x:1:abc"))


def test_a_link_for_another_report_is_403(api, ready):
    other = api.post(
        "/v1/intelligence/reports",
        {"type": "positions", "from": "2026-04-01", "to": "2026-04-02"},
        format="json",
    ).json()
    token = ready["download_url"].split("token=")[1]
    _forbidden(download(f"/v1/intelligence/reports/{other['id']}/download?token={token}"))


def test_a_link_older_than_15_minutes_is_403(api, ready, monkeypatch):
    sixteen_minutes_ago = int(datetime.now(UTC).timestamp()) - 16 * 60
    monkeypatch.setattr(
        signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(sixteen_minutes_ago)
    )
    stale = api.get(f"/v1/intelligence/reports/{ready['id']}").json()["download_url"]
    monkeypatch.undo()

    response = download(stale)
    _forbidden(response)
    assert "expired" in response.json()["message"]
    fresh = api.get(f"/v1/intelligence/reports/{ready['id']}").json()["download_url"]
    assert download(fresh).status_code == 200  # asking again signs a fresh link


def test_a_genuine_link_to_a_report_that_is_not_ready_is_404(api):
    created = api.post(
        "/v1/intelligence/reports",
        {"type": "positions", "from": "2026-04-01", "to": "2026-04-02"},
        format="json",
    ).json()
    token = report_download_link(report=Report.objects.get(public_id=created["id"])).token
    response = download(f"/v1/intelligence/reports/{created['id']}/download?token={token}")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


# --- The task ----------------------------------------------------------------------------


def test_the_task_is_safe_to_run_twice(ready):
    report = Report.objects.get(public_id=ready["id"])
    assert report_generate_task.delay(report_id=report.pk).get() == "ready"
    again = Report.objects.get(pk=report.pk)
    assert (again.file.name, again.finished_at, again.rows) == (
        report.file.name,
        report.finished_at,
        report.rows,
    )
    assert default_storage.listdir(f"reports/{again.account.public_id}")[1] == [
        report.file.name.rsplit("/", 1)[1]
    ]


def test_a_failure_marks_the_report_failed_without_details(
    api, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise RuntimeError("database exploded: secret detail")

    monkeypatch.setattr(report_service, "report_table", broken)
    _, failed = request_report(
        api,
        django_capture_on_commit_callbacks,
        type="positions",
        **{"from": "2026-04-01", "to": "2026-04-02"},
    )
    assert failed["status"] == "failed"
    assert failed["error"] == "The report could not be generated; please request it again."
    assert failed["download_url"] is None
    assert report_generate_task.delay(report_id=Report.objects.get().pk).get() == "failed"


def test_a_run_whose_worker_died_is_taken_over_but_a_live_one_is_not(api, settings):
    created = api.post(
        "/v1/intelligence/reports",
        {"type": "positions", "from": "2026-04-01", "to": "2026-04-02"},
        format="json",
    ).json()
    report = Report.objects.get(public_id=created["id"])
    stale = timedelta(seconds=settings.REPORT_STALE_SECONDS)
    long_ago = django_timezone.now() - timedelta(hours=1)
    Report.objects.filter(pk=report.pk).update(
        status=Report.Status.RUNNING,
        started_at=long_ago,
        heartbeat_at=django_timezone.now() - stale / 2,  # its worker still beats
    )
    with pytest.raises(ReportBusy, match="being generated by another run"):
        report_generate_task.delay(report_id=report.pk).get()
    assert Report.objects.get(pk=report.pk).started_at == long_ago

    Report.objects.filter(pk=report.pk).update(
        heartbeat_at=django_timezone.now() - stale - timedelta(seconds=1)  # silent: it died
    )
    assert report_generate_task.delay(report_id=report.pk).get() == "ready"
    assert api.get(f"/v1/intelligence/reports/{created['id']}").json()["rows"] == 0


def test_a_report_whose_task_was_lost_is_generated_by_the_outbox(api):
    created = api.post(  # on-commit callbacks do not run here: the task is never sent
        "/v1/intelligence/reports",
        {"type": "positions", "from": "2026-04-01", "to": "2026-04-02"},
        format="json",
    ).json()
    report = Report.objects.get(public_id=created["id"])
    assert report.status == Report.Status.PENDING
    item = OutboxItem.objects.get(task="trading.report_generate")
    assert item.kwargs == {"report_id": report.pk}
    assert outbox_dispatch(now=item.due_at) == 1
    report.refresh_from_db()
    assert report.status == Report.Status.READY
    item.refresh_from_db()
    assert item.done_at is not None
