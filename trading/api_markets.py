"""The trading API's markets and order books (/v1/intelligence/markets).

Public market data, still behind a key (scopes intelligence + read). Binary
prices are the YES contract's; a book for `SYMBOL:NO` is the NO contract's
(the complement of the YES book).
"""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.views import READ_SCOPES as READ
from portal.api.views import ApiView, validated
from portal.errors import NO_LIVE_PRICES, ErrorCode, NotFound
from portal.money import dec, price
from trading import api_examples as examples
from trading import api_serializers as s
from trading.api import TAGS
from trading.marketdata.quotes import OrderBook
from trading.selectors import MarketView, contract_symbol, market_list
from trading.services.routing import contract_from_symbol, order_books_get

SYMBOL_PARAM = OpenApiParameter("symbol", str, OpenApiParameter.PATH, description=s.SYMBOL_HELP)
INSTRUMENT_PARAM = OpenApiParameter(
    "symbol", str, OpenApiParameter.PATH, description="An instrument: TRUMP-WIN, BTC-PERP."
)


def market_out(market: MarketView) -> dict[str, Any]:
    instrument = market.instrument
    quotes = [listing.quote for listing in market.listings if listing.quote is not None]
    return {
        "symbol": instrument.symbol,
        "title": instrument.title,
        "kind": instrument.kind,
        "status": instrument.status,
        "event": instrument.event.code if instrument.event_id else None,
        "expires_at": instrument.expires_at,
        "resolution": instrument.resolution or None,
        "tick_size": dec(instrument.tick_size.normalize()),
        "max_leverage": instrument.max_leverage,
        "default_leverage": instrument.default_leverage,
        "maintenance_margin_fraction": dec(instrument.maintenance_margin_fraction),
        "best_bid": price(max((q.bid for q in quotes), default=None)),
        "best_ask": price(min((q.ask for q in quotes), default=None)),
        "listings": [
            {
                "venue": listing.venue,
                "venue_symbol": listing.venue_symbol,
                "bid": price(listing.quote.bid) if listing.quote else None,
                "ask": price(listing.quote.ask) if listing.quote else None,
                "mark": price(listing.quote.mark) if listing.quote else None,
                "quoted_at": listing.quote.ts if listing.quote else None,
            }
            for listing in market.listings
        ],
    }


class MarketListApi(ApiView):
    required_scopes = READ
    throttle_group = "market_data"

    @extend_schema(
        operation_id="markets_list",
        examples=examples.MARKETS_LIST,
        summary="Markets",
        description="Instruments with their status, kind, venues (listings) and the latest "
        "best bid / ask across venues (binaries: the YES contract).",
        tags=TAGS,
        parameters=[s.MarketListQuerySerializer],
        responses={200: s.MarketListSerializer},
    )
    def get(self, request: Request) -> Response:
        query = validated(s.MarketListQuerySerializer, request.query_params)
        markets = market_list(kind=query.get("kind"), status=query.get("status"))
        return Response({"markets": [market_out(market) for market in markets]})


class MarketDetailApi(ApiView):
    required_scopes = READ
    throttle_group = "market_data"
    error_codes = (ErrorCode.NOT_FOUND,)

    @extend_schema(
        operation_id="markets_get",
        examples=examples.MARKETS_GET,
        summary="One market",
        tags=TAGS,
        parameters=[INSTRUMENT_PARAM],
        responses={200: s.MarketSerializer},
    )
    def get(self, request: Request, symbol: str) -> Response:
        markets = market_list(symbol=symbol)
        if not markets:
            raise NotFound(f"Unknown instrument {symbol!r}.")
        return Response(market_out(markets[0]))


def book_out(book: OrderBook) -> dict[str, list[dict[str, str | None]]]:
    return {
        side: [{"price": price(level.price), "size": dec(level.size)} for level in levels]
        for side, levels in (("bids", book.bids), ("asks", book.asks))
    }


class OrderBookApi(ApiView):
    required_scopes = READ
    throttle_group = "market_data"
    error_codes = (ErrorCode.NOT_FOUND, *NO_LIVE_PRICES)

    @extend_schema(
        operation_id="markets_orderbook",
        examples=examples.MARKETS_ORDERBOOK,
        summary="Order book",
        description="Each venue's live order book for a contract (`TRUMP-WIN` YES, "
        "`TRUMP-WIN:NO`, `BTC-PERP`), best level first; or one venue's with `venue`. Venues "
        "without a live quote are left out; 503 `market_data_unavailable` when none has one "
        "(or the named venue has none); 404 for an unknown symbol or a venue that does not "
        "list it.",
        tags=TAGS,
        parameters=[SYMBOL_PARAM, s.OrderBookQuerySerializer],
        responses={200: s.OrderBookSerializer},
    )
    def get(self, request: Request, symbol: str) -> Response:
        query = validated(s.OrderBookQuerySerializer, request.query_params)
        contract = contract_from_symbol(symbol)
        books = order_books_get(
            instrument=contract.instrument,
            outcome=contract.book_outcome,
            venue=query.get("venue"),
        )
        depth = query.get("depth")
        return Response(
            {
                "symbol": contract_symbol(contract.instrument.symbol, contract.outcome),
                "books": [
                    {"venue": venue_book.venue} | book_out(venue_book.book.top(depth))
                    for venue_book in books
                ],
            }
        )
