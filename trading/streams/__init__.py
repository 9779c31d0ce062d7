"""The partner stream: `/v1/stream`, one WebSocket for seed 000's live streams and
seed 002's trading commands (SPEC §8). The README's "Partner stream" section is
the client's guide; this is the contract.

Connect (no Origin needed: the key is the credential, not a cookie), then
authenticate with the first message, within settings.STREAM_AUTH_TIMEOUT_SECONDS:

    {"op": "auth", "key": "lev_live_…"}      (seed 002's {"type": "auth",
                                              "params": {"api_key": …}} works too)
    → {"type": "authenticated", "connection_id": …, "key_prefix": …,
       "scopes": [...], "accounts": ["acc_…", …]}

Anything else first, a bad or revoked key, a key without the intelligence
scope or used from outside its IP allowlist, and the sixth connection of a
key (settings.STREAM_MAX_CONNECTIONS_PER_KEY) get {"type": "error", "code",
"message"} and the socket is closed: 4401 unauthorized, 4403 forbidden,
4429 rate_limited. An address whose failed key authentications (REST and
stream together) reached settings.API_KEY_FAILURE_LIMIT within
API_KEY_FAILURE_WINDOW_SECONDS gets 4429 rate_limited with "retry_after" for
any key until the oldest failure leaves the window. A key revoked while
connected closes its sockets (4401) within settings.STREAM_KEY_RECHECK_SECONDS.

Seed 000 subscriptions (need the intelligence and read scopes):

    {"op": "subscribe", "channel": "orderbook", "market_id": "BTC-PERP"}
    {"op": "subscribe", "channel": "trades", "market_id": "TRUMP-WIN:NO"}
    {"op": "subscribe", "channel": "account"}                 every account of the key
    {"op": "subscribe", "channel": "positions", "account_id": "acc_…"}   or one
    {"op": "unsubscribe", …same fields}
    {"op": "snapshot", …same fields}          a fresh snapshot (orderbook, account, positions)
    {"op": "ping"}                            → {"type": "pong", "ts": …}

Each is acknowledged ({"type": "subscribed"|"unsubscribed", "channel", …}). Every
message of a subscription carries "channel" and "seq": 1, 2, 3, … with no gap
unless the client fell STREAM_SEND_QUEUE messages behind (the dropped ones keep
their numbers): on a gap, send {"op": "snapshot", …}.

- orderbook: {"type": "snapshot", "market_id", "ts", "books": [{"venue", "ts",
  "bids": [{"price", "size"}], "asks": […]}]} (the REST order book's levels,
  every venue that quotes the contract), then {"type": "update", …, "books":
  [{"venue", "ts", "bids", "asks"}]} with the levels that changed; size "0"
  removes a level. A NO contract's book is the complement of the YES book.
- trades: {"type": "trades", "market_id", "trades": [{"id", "venue", "side"
  (the taker's), "price", "size", "ts"}]}: the venues' public trades and the
  broker's fills, anonymized. No snapshot: trades are events.
- account: {"type": "snapshot", "accounts": [{"account_id", "positions",
  "open_orders"}]}, then {"account_id", "type": "order"|"fill"|"position"|
  "margin_call"|"leverage", …}.
- positions: {"type": "snapshot", "accounts": [{"account_id", "positions",
  "margin"}]}, then {"account_id", "type": "position"|"margin", …}.

An account event's fields after "account_id" and "type" are the REST object,
field for field (`trading.presenters`, `trading.broadcasts`): "order" is GET
orders/{id}'s body, "fill" a GET fills item, "position" a GET positions item
(quantity "0.000000" once closed), "margin" GET margin's headline figures
(cash, used_margin, adjusted_equity, available_margin, health,
margin_utilization, status, available_credit, as_of, stale, stale_since),
"leverage" POST leverage's APPLIED body (symbol, leverage, oldLeverage,
newLeverage, status, cancelledOrderIds).

Seed 002 commands, as {"type": <command>, "params": {…}, "id": <yours, echoed>}
(`trading.streams.commands` lists them with their REST twins):

    → {"type": "result", "command", "id", "status": 201, "data": <the REST body>}
    → {"type": "error", "command", "id", "status": 422, "code", "message"
       [, "retry_after"]}

Keys that sign their writes add "timestamp" (ns) and "signature" (hex Ed25519
of timestamp + command + canonicalJSON(params)) to write commands. Seed 002
subscriptions: {"type": "subscribe", "channel": "v4_positions"|"v4_balances"
(pulsed every STREAM_PULSE_SECONDS) | "v4_orders" (live), "account_id"?} →
{"type": "subscribed", "connection_id", "message_id": 1, "id": <account>,
"channel", "contents": [...]}, then {"type": "channel_data", …,
"message_id": 2, 3, …}. v4_orders' contents are order objects (as GET orders).
"""
