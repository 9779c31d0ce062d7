"""The stream's channels over real sockets: order books (snapshot, then the levels that
changed, gapless), public trades, and the account and positions channels of a key's
own accounts only."""

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from accounts.models import Account
from tests.api.conftest import key_issue
from tests.conftest import credit_cash
from tests.factories import open_account
from tests.streams.conftest import connect, receive, run, silent
from tests.trading.conftest import binary_create
from tests.trading.quoting import put_quote
from trading.broadcasts import MarginUpdate, margin_updates_broadcast
from trading.marketdata import store
from trading.marketdata.quotes import Outcome, PublicTrade


def _levels(book: dict) -> dict[str, dict[str, str]]:
    return {
        side: {level["price"]: level["size"] for level in book[side]} for side in ("bids", "asks")
    }


def _apply(book: dict[str, dict[str, str]], update: dict) -> None:
    for side in ("bids", "asks"):
        for level in update[side]:
            if Decimal(level["size"]) == 0:
                book[side].pop(level["price"], None)
            else:
                book[side][level["price"]] = level["size"]


def test_orderbook_snapshot_then_gapless_updates_that_rebuild_the_rest_book(stream_server):
    binary_create("OB-MKT")
    account = open_account(kind=Account.Kind.CUSTODIAL)
    key = key_issue([account])
    put_quote("OB-MKT@kalshi", bid="0.50", ask="0.52")

    async def body():
        ws = await connect(stream_server, key)
        await ws.send(
            json.dumps({"op": "subscribe", "channel": "orderbook", "market_id": "OB-MKT:no"})
        )
        ack = await receive(ws)
        snapshot = await receive(ws)
        books = {b["venue"]: _levels(b) for b in snapshot["books"]}
        seqs = [snapshot["seq"]]
        for i in range(20):
            bid = Decimal("0.40") + Decimal(i % 7) / 100
            put_quote("OB-MKT@kalshi", bid=bid, ask=bid + Decimal("0.03"), size=1000 + i)
            update = await receive(ws)
            assert update["type"] == "update" and update["market_id"] == "OB-MKT:NO"
            seqs.append(update["seq"])
            for venue_book in update["books"]:
                _apply(books.setdefault(venue_book["venue"], {"bids": {}, "asks": {}}), venue_book)
        await ws.close()
        return ack, snapshot, books, seqs

    ack, snapshot, books, seqs = run(body())
    assert ack == {"type": "subscribed", "channel": "orderbook", "market_id": "OB-MKT:NO"}
    assert snapshot["channel"] == "orderbook" and snapshot["type"] == "snapshot"
    # The NO book is the complement of the YES book: best NO bid = 1 - best YES ask.
    assert snapshot["books"][0]["bids"][0]["price"] == "0.48000000"
    assert seqs == list(range(1, 22))
    rest = httpx.get(
        f"{stream_server}/v1/intelligence/markets/OB-MKT:NO/orderbook",
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    assert {b["venue"]: _levels(b) for b in rest["books"]} == books


def test_a_fresh_snapshot_on_request_is_numbered_in_sequence(stream_server):
    binary_create("GAP-MKT")
    account = open_account(kind=Account.Kind.CUSTODIAL)
    key = key_issue([account])
    put_quote("GAP-MKT@kalshi", bid="0.30", ask="0.32")

    async def body():
        ws = await connect(stream_server, key)
        target = {"channel": "orderbook", "market_id": "GAP-MKT"}
        await ws.send(json.dumps({"op": "subscribe", **target}))
        await receive(ws)
        first = await receive(ws)
        await ws.send(json.dumps({"op": "snapshot", **target}))
        again = await receive(ws)
        await ws.send(json.dumps({"op": "unsubscribe", **target}))
        bye = await receive(ws)
        put_quote("GAP-MKT@kalshi", bid="0.20", ask="0.22")
        after = await silent(ws, 1.0)
        await ws.close()
        return first, again, bye, after

    first, again, bye, after = run(body())
    assert (first["seq"], again["seq"]) == (1, 2)
    assert again["type"] == "snapshot" and again["books"] == first["books"]
    assert bye == {"type": "unsubscribed", "channel": "orderbook", "market_id": "GAP-MKT"}
    assert after == []


def test_trades_of_the_market_from_the_feed_and_from_fills(stream_server):
    binary_create("TRADE-MKT")
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "1000")
    key = key_issue([account])
    for venue in ("kalshi", "polymarket"):
        put_quote(f"TRADE-MKT@{venue}", bid="0.55", ask="0.56")

    async def body():
        ws = await connect(stream_server, key)
        await ws.send(
            json.dumps({"op": "subscribe", "channel": "trades", "market_id": "TRADE-MKT"})
        )
        ack = await receive(ws)
        now = datetime.now(UTC)
        store.trades_publish(
            [
                PublicTrade(
                    "t-1",
                    "TRADE-MKT@kalshi",
                    Outcome.NO,
                    "buy",
                    Decimal("0.45"),
                    Decimal("10"),
                    now,
                ),
                PublicTrade(
                    "t-2", "OTHER@kalshi", Outcome.YES, "buy", Decimal("0.5"), Decimal("1"), now
                ),
            ]
        )
        printed = await receive(ws)
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{stream_server}/v1/intelligence/execute",
                headers={"Authorization": f"Bearer {key}"},
                json={"symbol": "TRADE-MKT", "side": "buy", "notional_usdc": "56"},
            )
        filled = await receive(ws)
        await ws.close()
        return ack, printed, response.json(), filled

    ack, printed, order, filled = run(body())
    assert ack["type"] == "subscribed"
    assert printed["seq"] == 1 and printed["market_id"] == "TRADE-MKT"
    # A NO taker buy at 0.45 is a YES taker sell at 0.55; the other market's trade is not here.
    assert printed["trades"] == [
        {
            "id": "t-1",
            "venue": "kalshi",
            "side": "sell",
            "price": "0.55000000",
            "size": "10",
            "ts": printed["trades"][0]["ts"],
        }
    ]
    assert filled["seq"] == 2
    (trade,) = filled["trades"]
    assert trade["side"] == "buy" and trade["price"] == order["average_price"]
    assert Decimal(trade["size"]) == Decimal(order["filled_quantity"])
    assert account.public_id not in json.dumps(filled)  # anonymized


def test_account_and_positions_carry_only_the_keys_own_accounts(stream_server):
    binary_create("ISO-MKT")
    for venue in ("kalshi", "polymarket"):
        put_quote(f"ISO-MKT@{venue}", bid="0.55", ask="0.56")
    mine = open_account(kind=Account.Kind.CUSTODIAL)
    theirs = open_account(kind=Account.Kind.CUSTODIAL)
    for account in (mine, theirs):
        credit_cash(account, "1000")
    my_key, their_key = key_issue([mine]), key_issue([theirs])

    def update(account: Account) -> MarginUpdate:
        return MarginUpdate(
            account_id=account.pk,
            cash=Decimal("1"),
            used_margin=Decimal("0"),
            adjusted_equity=Decimal("1"),
            available_margin=Decimal("1"),
            health=None,
            utilization=Decimal("0"),
            status="healthy",
            at=datetime.now(UTC),
        )

    async def execute(key: str) -> dict:
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{stream_server}/v1/intelligence/execute",
                headers={"Authorization": f"Bearer {key}"},
                json={"symbol": "ISO-MKT", "side": "buy", "notional_usdc": "11.2"},
            )
        return response.json()

    async def body():
        ws = await connect(stream_server, my_key)
        await ws.send(json.dumps({"op": "subscribe", "channel": "account"}))
        await ws.send(json.dumps({"op": "subscribe", "channel": "positions"}))
        acks = [await receive(ws), await receive(ws), await receive(ws), await receive(ws)]
        await ws.send(
            json.dumps({"op": "subscribe", "channel": "account", "account_id": theirs.public_id})
        )
        foreign = await receive(ws)
        await execute(their_key)  # another customer's trade and margin: nothing here
        await asyncio.to_thread(margin_updates_broadcast, updates=[update(theirs)])
        leaked = await silent(ws, 1.5)
        order = await execute(my_key)
        await asyncio.to_thread(margin_updates_broadcast, updates=[update(mine)])
        mine_got = await silent(ws, 2.0)
        await ws.close()
        return acks, foreign, leaked, order, mine_got

    acks, foreign, leaked, order, got = run(body())
    snapshots = [m for m in acks if m.get("type") == "snapshot"]
    assert {m["channel"] for m in snapshots} == {"account", "positions"}
    assert all(s["accounts"][0]["account_id"] == mine.public_id for s in snapshots)
    assert foreign["type"] == "error" and foreign["code"] == "not_found"
    assert leaked == []
    account_msgs = [m for m in got if m["channel"] == "account"]
    position_msgs = [m for m in got if m["channel"] == "positions"]
    assert {m["account_id"] for m in got} == {mine.public_id}
    assert theirs.public_id not in json.dumps(got)
    assert [m["type"] for m in account_msgs] == ["fill", "position", "order"]
    assert account_msgs[-1]["id"] == order["id"] and account_msgs[-1]["status"] == "filled"
    assert [m["seq"] for m in account_msgs] == [2, 3, 4]  # 1 was the snapshot
    assert [m["type"] for m in position_msgs] == ["position", "margin"]
    assert [m["seq"] for m in position_msgs] == [2, 3]
