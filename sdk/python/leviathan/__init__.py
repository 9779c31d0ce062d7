"""The Leviathan partner SDK: `Leviathan` (blocking) and `AsyncLeviathan` (asyncio).

from leviathan import Leviathan
client = Leviathan(api_key="lev_live_…")
positions = client.intelligence.positions()
"""

from . import _models as models
from . import errors
from ._client import AsyncLeviathan, Leviathan
from ._core import VERSION as __version__
from ._errors import APIConnectionError, ApiError, APITimeoutError, LeviathanError
from ._resources import Positions
from ._stream import OrderBook, Stream, StreamClosed, StreamEvent

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "ApiError",
    "AsyncLeviathan",
    "Leviathan",
    "LeviathanError",
    "OrderBook",
    "Positions",
    "Stream",
    "StreamClosed",
    "StreamEvent",
    "__version__",
    "errors",
    "models",
]
