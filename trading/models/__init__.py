from .instruments import EventGroup, Instrument, Listing, PriceTick, Venue
from .positions import Position
from .risk import InstrumentHaircut, Liquidation, MarginCall, MarginSnapshot, RiskPolicy

__all__ = [
    "EventGroup",
    "Instrument",
    "InstrumentHaircut",
    "Liquidation",
    "Listing",
    "MarginCall",
    "MarginSnapshot",
    "Position",
    "PriceTick",
    "RiskPolicy",
    "Venue",
]
