from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Accounts, ledger and payments"

    def ready(self) -> None:
        from accounts import (
            credential_keys,  # noqa: F401  (registers its system checks)
            outbox,  # noqa: F401  (connects its Celery signals)
        )
        from accounts.models import ApiKey
        from portal.refdata import refdata_track

        # Keys are cached per process (accounts.services.api_keys): a change drops them.
        refdata_track(ApiKey)
