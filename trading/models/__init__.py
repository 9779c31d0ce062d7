from .alerts import HealthAlert
from .instruments import EventGroup, Instrument, Listing, PriceTick, Venue
from .orders import FeePolicy, Fill, FundingPayment, LeverageSetting, Order, VenueFeeSchedule
from .positions import Position
from .reports import Report
from .risk import InstrumentHaircut, Liquidation, MarginCall, MarginSnapshot, RiskPolicy

__all__ = [
    "EventGroup",
    "FeePolicy",
    "Fill",
    "FundingPayment",
    "HealthAlert",
    "Instrument",
    "InstrumentHaircut",
    "LeverageSetting",
    "Liquidation",
    "Listing",
    "MarginCall",
    "MarginSnapshot",
    "Order",
    "Position",
    "PriceTick",
    "Report",
    "RiskPolicy",
    "Venue",
    "VenueFeeSchedule",
]
