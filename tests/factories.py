"""factory_boy factories. Accounts open through the real service."""

import factory

from accounts.models import Account, Notification, User
from accounts.services.accounts import account_open
from accounts.services.notifications import notification_create

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    kyb_status = User.KybStatus.APPROVED
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class StaffFactory(UserFactory):
    email = factory.Sequence(lambda n: f"ops{n}@example.test")
    is_staff = True
    is_superuser = True


def open_account(
    owner: User | None = None, kind: Account.Kind = Account.Kind.CUSTODIAL, **fields
) -> Account:
    """Open an account through account_open, then apply test-only field values."""
    account = account_open(owner=owner or UserFactory(), kind=kind)
    if fields:
        for name, value in fields.items():
            setattr(account, name, value)
        account.save(update_fields=list(fields))
    return account


def notifications_create(user: User, account: Account) -> Notification:
    """Two unread notifications: a margin call on `account` (returned) and a welcome."""
    margin_call, _ = notification_create(
        user_id=user.pk,
        account_id=account.pk,
        kind=Notification.Kind.MARGIN_CALL,
        title="Margin call on your account",
        body="Margin Health is 1.15.",
    )
    notification_create(
        user_id=user.pk, kind=Notification.Kind.SYSTEM, title="Welcome", body="Hello."
    )
    return margin_call
