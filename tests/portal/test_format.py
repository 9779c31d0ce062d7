"""The one formatting layer (portal.format): Python here, and static/js/format.js giving
the same text for the same inputs (run under Node)."""

import json
import shutil
import subprocess
import zoneinfo
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, ROUND_UP, Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.utils import timezone

from portal import format as fmt
from portal.middleware import TimeZoneMiddleware

CASES = [
    ("usdc", "12345.675"),
    ("usdc", "-0.001"),
    ("usdc", "-1250"),
    ("usdc_signed", "1000"),
    ("usdc_signed", "-25.5"),
    ("usdc_signed", "0"),
    ("cents", "0.89"),
    ("cents", "0.4536"),
    ("cents", "0.005"),
    ("cents", "0.45361234"),
    ("cents", "1"),
    ("perp_price", "67250.5"),
    ("perp_price", "0.123456"),
    ("quantity", "1086.956521"),
    ("quantity", "1000.000000"),
    ("quantity", "123374.714727"),
    ("quantity", "0.004"),
    ("quantity", "0.001999"),
    ("quantity", "-0.5"),
    ("ratio", "1.5349"),
    ("percent", "0.4251"),
    ("percent_signed", "0.05"),
    ("percent_signed", "-0.1234"),
    ("usdc_exact", "100.000000"),
    ("usdc_exact", "100.000001"),
    ("usdc_exact", "1234.5"),
    ("usdc_exact", "0"),
    ("sentence", "card_declined: the card issuer declined the payment."),
    ("sentence", "venue_auth_failed: Kalshi refused the API key: bad key.."),
    ("sentence", "venue_unavailable"),
    ("sentence", "insufficient_funds:"),
    ("sentence", "Wait... the venue is slow"),
    ("sentence", "Already a sentence."),
]
JS_NAMES = {
    "usdc": "money",
    "usdc_signed": "moneySigned",
    "perp_price": "perpPrice",
    "quantity": "qty",
    "percent_signed": "percentSigned",
    "usdc_exact": "moneyExact",
}


def test_rules():
    assert fmt.usdc(Decimal("12345.675")) == "12,345.68 USDC"
    assert fmt.usdc("-0.001") == "0.00 USDC"
    assert fmt.usdc_signed("0") == "0.00 USDC"
    assert fmt.cents("0.89") == "89¢"
    assert fmt.cents("0.4536") == "45.36¢"
    assert fmt.cents("0.005") == "0.5¢"
    assert fmt.perp_price("67250.5") == "67,250.50"
    assert fmt.quantity("1086.956521") == "1,086.96"
    assert fmt.quantity("1000.000000") == "1,000"
    assert fmt.price("0.46", binary=True) == "46¢"
    assert fmt.price("0.46", binary=False) == "0.4600"
    assert fmt.ratio(None) == "∞"
    assert fmt.percent_signed("-0.1234") == "-12.3%"
    assert fmt.usdc(None) == "—"
    assert fmt.usdc("n/a") == "n/a"


def test_exact_money_and_rounding_for_bounds():
    assert fmt.usdc_exact("100.000000") == "100.00 USDC"
    assert fmt.usdc_exact(Decimal("100.000001")) == "100.000001 USDC"
    assert fmt.usdc_exact("-1234.5") == "-1,234.50 USDC"
    assert fmt.usdc_exact(None) == "—"
    assert fmt.usdc("0.001", rounding=ROUND_UP) == "0.01 USDC"
    assert fmt.usdc("10.999", rounding=ROUND_FLOOR) == "10.99 USDC"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "card_declined: the card issuer declined the payment.",
            "The card issuer declined the payment.",
        ),
        (
            "venue_auth_failed: Kalshi refused the API key: bad key..",
            "Kalshi refused the API key: bad key.",
        ),
        ("credential_unreadable:", "Credential unreadable."),
        ("venue_unavailable", "Venue unavailable."),
        ("  Already   a sentence. ", "Already a sentence."),
        ("Wait... for it", "Wait... for it."),
        ("no stop at the end", "No stop at the end."),
        ("", ""),
        (None, ""),
        # a code in the middle of text is not a leading code: left alone
        ("Kalshi says order_rejected", "Kalshi says order_rejected."),
    ],
)
def test_sentence_drops_machine_codes(text, expected):
    assert fmt.sentence(text) == expected


def test_sentence_explains_known_codes():
    known = {"card_declined": "The card was declined."}
    assert fmt.sentence("card_declined: do_not_honor", known) == "The card was declined."
    assert fmt.sentence("card_declined", known) == "The card was declined."
    assert fmt.sentence("expired_card: the card expired", known) == "The card expired."


def test_trade_reads_as_people_say_it():
    assert (
        fmt.trade(
            "buy", "1086.956521", "TRUMP-WIN", "0.46", binary=True, outcome="yes", venue="Kalshi"
        )
        == "Buy 1,086.96 TRUMP-WIN YES at 46¢ on Kalshi"
    )
    assert fmt.trade("sell", "0.500000", "BTC-PERP", "67250.5", binary=False) == (
        "Sell 0.5 BTC-PERP at 67,250.50"
    )


def test_a_stored_time_can_name_its_own_zone():
    moment = datetime(2026, 12, 7, 9, 3, 40, tzinfo=UTC)
    with timezone.override(zoneinfo.ZoneInfo("America/New_York")):
        assert fmt.when(moment, UTC) == "7 Dec 2026, 09:03 UTC"


def test_times_show_the_readers_zone():
    moment = datetime(2026, 12, 7, 9, 3, 40, tzinfo=UTC)
    assert fmt.when(moment) == "7 Dec 2026, 09:03 UTC"
    assert fmt.when(moment.isoformat()) == "7 Dec 2026, 09:03 UTC"
    with timezone.override(zoneinfo.ZoneInfo("America/New_York")):
        assert fmt.when(moment) == "7 Dec 2026, 04:03 EST"
        assert fmt.day(moment) == "7 Dec 2026"
    assert fmt.when(None) == "—"


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        ("Europe/Paris", "Europe/Paris"),
        ("Mars/Olympus", "UTC"),
        ("../../etc/passwd", "UTC"),
        ("", "UTC"),
    ],
)
def test_the_tz_cookie_sets_the_zone_of_the_request(cookie, expected):
    seen = []

    def view(request):
        seen.append(timezone.get_current_timezone_name())
        return None

    request = RequestFactory().get("/")
    request.COOKIES["tz"] = cookie
    TimeZoneMiddleware(view)(request)
    assert seen == [expected]
    assert timezone.get_current_timezone_name() == "UTC"  # not leaked past the request


@pytest.mark.skipif(shutil.which("node") is None, reason="Node is not installed")
def test_the_pages_scripts_format_as_the_server_does():
    script = Path(settings.BASE_DIR) / "static" / "js" / "format.js"
    calls = [[JS_NAMES.get(name, name), value] for name, value in CASES]
    program = (
        "global.window = {}; global.document = {cookie: ''};"
        f"require({json.dumps(str(script))});"
        f"const calls = {json.dumps(calls)};"
        "console.log(JSON.stringify(calls.map(([f, v]) => window.PortalFormat[f](v))));"
    )
    node = shutil.which("node")
    out = subprocess.run(  # noqa: S603 (our own program, no shell)
        [node, "-e", program], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    expected = [getattr(fmt, name)(value) for name, value in CASES]
    assert json.loads(out) == expected
