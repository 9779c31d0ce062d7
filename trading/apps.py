from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"
    verbose_name = "Trading: instruments, venues and market data"

    def ready(self) -> None:
        from portal.refdata import refdata_track
        from trading import models

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
