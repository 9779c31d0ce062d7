from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Accounts, ledger and payments"

    def ready(self) -> None:
        from accounts import (
            credential_keys,  # noqa: F401  (registers its system checks)
            outbox,
        )
        from accounts.models import ApiKey
        from accounts.services.approvals import approval_kind_register
        from accounts.services.withdrawal_review import WITHDRAWAL_APPROVE_KIND
        from portal.metrics import scrape_source_register
        from portal.refdata import refdata_track

        # Keys are cached per process (accounts.services.api_keys): a change drops them.
        refdata_track(ApiKey)
        # Four-eyes kinds of accounts' data: withdrawals above the threshold.
        approval_kind_register(WITHDRAWAL_APPROVE_KIND)
        # /metrics reads the outbox backlog when scraped (three counts).
        scrape_source_register(
            "portal_outbox_items",
            "Outbox items by state: unfinished (not done yet), failing (an error on "
            "record), stuck (unfinished for over 10 minutes).",
            outbox.outbox_backlog,
        )
