"""Who may open the risk desk (/ops/) and its JSON: verified staff only."""

import pytest
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

DESK, DESK_JSON = "/ops/", "/ops/desk.json"


def test_the_desk_has_its_url_names():
    assert reverse("ops_desk") == DESK
    assert reverse("ops_desk_json") == DESK_JSON


def test_an_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get(DESK)
    assert response.status_code == 302
    assert response.url == f"{reverse('admin:login')}?next={DESK}"


def test_the_json_answers_401_to_an_anonymous_visitor(client):
    response = client.get(DESK_JSON)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response.json()["message"].endswith(".")


def test_a_customer_is_refused(client):
    client.force_login(UserFactory())
    response = client.get(DESK)
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    followed = client.get(DESK, follow=True)
    assert "Risk desk" not in followed.content.decode()
    answer = client.get(DESK_JSON)
    assert answer.status_code == 403
    assert answer.json() == {"code": "forbidden", "message": "The ops area is for staff only."}


def test_an_inactive_staff_user_is_refused(ops_client, staff):
    staff.is_active = False
    staff.save(update_fields=["is_active"])
    response = ops_client.get(DESK)
    assert response.status_code == 302


def test_staff_without_a_verified_code_get_403_with_a_sentence(unverified_staff_client):
    response = unverified_staff_client.get(DESK)
    assert response.status_code == 403
    body = response.content.decode()
    assert "two-factor sign-in" in body
    assert "code from your authenticator app" in body
    answer = unverified_staff_client.get(DESK_JSON)
    assert answer.status_code == 403
    assert answer.json()["code"] == "two_factor_required"


def test_verified_staff_open_the_desk_in_the_admins_look(ops_client):
    response = ops_client.get(DESK)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Prime Portal ops console" in body  # the admin's header
    assert 'href="/admin/"' in body  # back to the admin
    assert 'id="ops-desk"' in body
    assert "js/ops-desk.js" in body
    assert "<script>" not in body  # CSP: no inline scripts
    answer = ops_client.get(DESK_JSON)
    assert answer.status_code == 200
    assert {"at", "counters", "sections"} <= set(answer.json())


def test_the_desk_only_answers_get(ops_client):
    assert ops_client.post(DESK).status_code == 405
