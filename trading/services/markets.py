"""Whether a market may be traded now: the one check every order path makes."""

from portal.errors import Conflict, ErrorCode
from trading.models import Instrument


def instrument_check_tradable(instrument: Instrument) -> None:
    """Raise Conflict `market_closed` (409) unless `instrument` is open for trading.

    A halted market may reopen; a resolved one never trades again. Callers
    that place, modify or fill orders call this with the instrument they are
    about to trade (re-read under their locks where the status could change).
    """
    if instrument.status == Instrument.Status.HALTED:
        raise Conflict(
            f"The {instrument.symbol} market is halted: it cannot be traded now.",
            code=ErrorCode.MARKET_CLOSED,
        )
    if instrument.status == Instrument.Status.RESOLVED:
        raise Conflict(
            f"The {instrument.symbol} market has resolved "
            f"({instrument.get_resolution_display()}): it no longer trades.",
            code=ErrorCode.MARKET_CLOSED,
        )
