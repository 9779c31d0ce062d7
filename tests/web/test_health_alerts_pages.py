"""The health alerts page: set an alert on one of your margin accounts, see it, delete it;
bad levels get a sentence on the form, other customers' alerts stay out of reach."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Account, Notification
from tests.factories import UserFactory, open_account
from tests.web.conftest import html, signed_in
from trading.models import HealthAlert
from trading.services.health_alerts import health_alert_create, health_alerts_act

pytestmark = pytest.mark.django_db
URL = reverse("health_alerts")


def post(client: Client, account: Account, level: str, channels: str = "email"):
    return client.post(URL, {"account": account.public_id, "level": level, "channels": channels})


def test_the_page_sets_lists_and_deletes_an_alert(customer_client, customer_account):
    page = customer_client.get(URL)
    assert page.status_code == 200
    assert "No health alerts yet." in html(page)
    assert f'value="{customer_account.public_id}"' in html(page)

    response = post(customer_client, customer_account, "1.3", channels="in_app")
    assert response.status_code == 302 and response.url == URL
    alert = HealthAlert.objects.get()
    assert (alert.account, alert.level, alert.email) == (customer_account, Decimal("1.30"), False)
    page = html(customer_client.get(URL))
    assert "Alert set: we will tell you when Margin Health of" in page
    assert f'data-alert="{alert.pk}"' in page and ">1.30<" in page and "Watching" in page

    response = customer_client.post(reverse("health_alert_delete", args=[alert.pk]))
    assert response.status_code == 302
    assert not HealthAlert.objects.exists()
    assert "deleted" in html(customer_client.get(URL))


def test_a_fired_alert_shows_when_and_when_it_is_ready_again(customer_client, customer_account):
    health_alert_create(
        user=customer_account.owner, account=customer_account, level=Decimal("1.50")
    )
    health_alerts_act(health={customer_account.pk: 1.42})
    page = html(customer_client.get(URL))
    assert "Fired" in page and "at 1.42." in page and "Ready again once health is 1.55" in page
    # and it is in the notifications, counted unread in the navigation
    notifications = html(customer_client.get(reverse("notification_list")))
    assert "fell below 1.50" in notifications and "Health alert" in notifications
    assert '<span class="count">1<' in notifications


@pytest.mark.parametrize(
    ("level", "message"),
    [
        ("", "This field is required."),
        ("abc", "Enter a number in ASCII digits"),
        ("0", "Enter a level greater than 0"),
        ("-2", "Enter a level greater than 0"),
        ("0.5", "Choose a level above 0.90"),
        ("25", "at most 10.00"),
        ("1.234", "at most 2 decimal places"),
    ],
)
def test_a_bad_level_is_a_form_message(customer_client, customer_account, level, message):
    response = post(customer_client, customer_account, level)
    assert response.status_code == 400
    assert message in html(response)
    assert "Error: Health alerts" in html(response)  # the title says so
    assert not HealthAlert.objects.exists()


def test_a_duplicate_level_is_a_form_message(customer_client, customer_account):
    post(customer_client, customer_account, "1.30")
    response = post(customer_client, customer_account, "1.3")
    assert response.status_code == 400
    assert "already has an alert at 1.30" in html(response)


def test_another_customers_account_and_alerts_are_out_of_reach(client, customer_account):
    intruder = UserFactory(email="intruder@example.test")
    open_account(owner=intruder, kind=Account.Kind.CUSTODIAL)
    alert = health_alert_create(
        user=customer_account.owner, account=customer_account, level=Decimal("1.30")
    )
    signed_in(client, intruder)
    page = html(client.get(URL))
    assert customer_account.public_id not in page and f'data-alert="{alert.pk}"' not in page
    response = post(client, customer_account, "1.40")
    assert response.status_code == 400  # not one of the choices
    assert HealthAlert.objects.count() == 1
    client.post(reverse("health_alert_delete", args=[alert.pk]))
    assert HealthAlert.objects.filter(pk=alert.pk).exists()
    assert "No such health alert." in html(client.get(URL))


def test_linked_accounts_only_get_an_explanation(client):
    user = UserFactory(email="linked@example.test")
    open_account(owner=user, kind=Account.Kind.NON_CUSTODIAL)
    signed_in(client, user)
    page = html(client.get(URL))
    assert "Health alerts are for margin accounts" in page
    assert 'id="health-alert-form"' not in page


def test_the_page_needs_a_sign_in_and_a_get_or_post(client, customer_client):
    assert Client().get(URL).status_code == 302
    assert customer_client.put(URL).status_code == 405
    assert customer_client.get(reverse("health_alert_delete", args=[1])).status_code == 405


def test_the_notifications_page_links_to_health_alerts(customer_client):
    page = html(customer_client.get(reverse("notification_list")))
    assert f'href="{URL}"' in page
    assert not Notification.objects.exists()
