from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"
    verbose_name = "Trading: instruments, venues and market data"

    def ready(self) -> None:
        # Imported here, not at the top: a module's models and services may load only
        # once the app registry is ready (an AppConfig.ready() registration).
        from accounts import hooks
        from portal.refdata import refdata_track
        from trading import models
        from trading.broadcasts import desk_changed_broadcast
        from trading.selectors import margin_summary_get
        from trading.services.margin_check import margin_check_withdrawal

        # Rows cached per process (trading.catalog, the policies): a change drops the cache.
        refdata_track(
            models.Venue,
            models.EventGroup,
            models.Instrument,
            models.Listing,
            models.InstrumentHaircut,
            models.RiskPolicy,
            models.FeePolicy,
            models.VenueFeeSchedule,
        )
        # What accounts asks of the margin engine (accounts does not import trading).
        hooks.withdrawal_check_register(margin_check_withdrawal)
        hooks.margin_summary_register(margin_summary_get)
        hooks.desk_changed_register(desk_changed_broadcast)
        # Four-eyes changes trading owns (accounts.services.approvals).
        from accounts.services.approvals import approval_kind_register
        from trading.services.force_close import FORCE_CLOSE_KIND

        approval_kind_register(FORCE_CLOSE_KIND)
        from trading.services.risk_policy import RISK_POLICY_KIND

        approval_kind_register(RISK_POLICY_KIND)
