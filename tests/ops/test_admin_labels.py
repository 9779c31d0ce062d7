"""The staff area reads in words: no raw codes (api_key_issued, accounts.ApiKey, AXES,
OTP_STATIC) and no 6-decimal numbers in the visible text of the admin's lists."""

import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from accounts.audit_labels import action_label, object_type_label
from accounts.models import AuditLog
from accounts.services.api_keys import api_key_issue
from accounts.services.withdrawals import withdrawal_request
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.ops.conftest import ops_signed_in
from trading.selectors import risk_policy_get

pytestmark = pytest.mark.django_db

RAW_CODES = (
    "api_key_issued",
    "api_key_revoked",
    "accounts.ApiKey",
    "accounts.User",
    "otp_static",
    "otp_totp",
    "OTP_STATIC",
    "OTP_TOTP",
    "Otp_Static",
    "Otp_Totp",
    "AXES",
    "Axes",
    "margin_call",
)
SIX_DECIMALS = re.compile(r"\d\.\d{6}\b")


class _VisibleText(HTMLParser):
    """The text a person sees: no tags, attributes, scripts or styles."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template"):
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


@pytest.fixture
def staff_area(client, staff):
    ops_signed_in(client, staff)
    account = open_account()
    credit_cash(account, "1234.5")
    withdrawal_request(
        account=account, amount=Decimal("100.25"), destination="bank", requested_by=account.owner
    )
    api_key_issue(
        owner=account.owner,
        accounts=[account],
        scopes=["intelligence", "read"],
        name="risk desk",
        environment="live",
        ip_allowlist=[],
        signing_public_key="",
        actor=staff,
    )
    risk_policy_get()
    return client


@pytest.mark.parametrize(
    "changelist",
    [
        "admin:accounts_auditlog_changelist",
        "admin:accounts_apikey_changelist",
        "admin:accounts_account_changelist",
        "admin:accounts_withdrawalrequest_changelist",
        "admin:trading_riskpolicy_changelist",
        "admin:index",
    ],
)
def test_lists_show_words_and_formatted_numbers(staff_area, changelist):
    response = staff_area.get(reverse(changelist), follow=True)
    assert response.status_code == 200
    text = visible_text(response.content.decode())
    for code in RAW_CODES:
        assert code not in text, f"{code!r} shown on {changelist}"
    assert not SIX_DECIMALS.search(text), SIX_DECIMALS.search(text).group(0)


def test_the_audit_log_and_lists_in_words(staff_area):
    text = visible_text(
        staff_area.get(reverse("admin:accounts_auditlog_changelist")).content.decode()
    )
    assert "API key issued" in text
    assert "API key" in text
    assert "Signed in to the admin" in text
    index = visible_text(staff_area.get(reverse("admin:index")).content.decode())
    assert "Sign-in lockouts" in index
    assert "Backup codes" in index
    accounts = visible_text(
        staff_area.get(reverse("admin:accounts_account_changelist")).content.decode()
    )
    assert "1,234.50" in accounts
    withdrawals = visible_text(
        staff_area.get(reverse("admin:accounts_withdrawalrequest_changelist")).content.decode()
    )
    assert "100.25" in withdrawals


def test_codes_in_words():
    assert action_label("api_key_issued") == "API key issued"
    assert action_label("margin_auto_enabled") == "Margin turned on by volume"
    assert action_label("something_new") == "Something new"
    assert action_label("action:approve_kyb") == "Admin action: approve kyb"
    assert object_type_label("accounts.ApiKey") == "API key"
    assert object_type_label("trading.RiskPolicy") == "Risk policy"
    assert object_type_label("nowhere.Gone") == "Gone"
    assert AuditLog  # the model whose codes these are


def test_change_pages_show_numbers_and_times_as_people_write_them(staff_area):
    """Read-only values on change pages (and every list cell) go through portal.format:
    no "1234.500000" or "0.46000000", and times with their zone."""
    from accounts.models import Account, WithdrawalRequest
    from trading.models import RiskPolicy

    account = Account.objects.exclude(cash_balance=0).first() or Account.objects.first()
    withdrawal = WithdrawalRequest.objects.first()
    pages = [
        reverse("admin:accounts_account_change", args=[account.pk]),
        reverse("admin:accounts_withdrawalrequest_change", args=[withdrawal.pk]),
        reverse("admin:trading_riskpolicy_change", args=[RiskPolicy.objects.get().pk]),
    ]
    for url in pages:
        response = staff_area.get(url, follow=True)
        assert response.status_code == 200, url
        text = visible_text(response.content.decode())
        assert not SIX_DECIMALS.search(text), (url, SIX_DECIMALS.search(text).group(0))
    text = visible_text(staff_area.get(pages[1]).content.decode())
    assert "100.25" in text and "UTC" in text
