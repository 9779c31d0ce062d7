// Unit tests (no server): key conversion by schema, canonical JSON and Ed25519 signing,
// decimals, the retry policy and paging on a scripted fetch, typed errors, and the
// stream's gap detection, reconnect, watchdog and order book on a scripted WebSocket.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  Leviathan,
  LeviathanStream,
  fromWire,
  toWire,
  canonicalJson,
  signingAction,
  signMessage,
  makeSigner,
  compareDecimal,
  addDecimal,
  ApiError,
  ServiceUnavailableError,
  RateLimitedError,
  InsufficientMarginError,
  UnexpectedResponseError,
  ApiConnectionError,
  UnauthorizedError,
  StreamClosedError,
  ERROR_CLASSES,
  API_ERROR_CODES,
  OPERATIONS,
  SCHEMAS,
  DEFAULT_BASE_URL,
  DEFAULT_STREAM_URL,
  OrderStatusEnumValues,
} from "@leviathan/sdk";

// --- helpers -------------------------------------------------------------------------------

function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

/** A fetch that answers from a script: each entry is a Response, an Error to throw, or a
 * function (url, init) → Response. Records every call. */
function scriptedFetch(script) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url: new URL(url), init, headers: new Headers(init.headers), body: init.body });
    const step = script.length > 1 ? script.shift() : script[0];
    if (step instanceof Error) throw step;
    return typeof step === "function" ? step(url, init) : step.clone();
  };
  return { fetch, calls };
}

function offline(options = {}) {
  return new Leviathan({ apiKey: "lev_test_unit", baseUrl: "https://api.example.test/v1", retryBaseDelayMs: 1, retryMaxDelayMs: 5, ...options });
}

const ORDER = {
  id: "ord_1",
  client_order_id: "c1",
  symbol: "BTC-PERP",
  side: "buy",
  order_type: "limit",
  time_in_force: "GTC",
  status: "open",
  venue: "leviathan",
  quantity: "0.01",
  notional: null,
  price: "60000",
  take_profit: null,
  stop_loss: null,
  leverage: 5,
  filled_quantity: "0",
  filled_notional: "0",
  average_price: null,
  fees: "0",
  reject_code: null,
  reject_reason: null,
  parent_id: null,
  created_at: "2026-04-22T14:30:00Z",
  updated_at: "2026-04-22T14:30:00Z",
};

// --- conversion -----------------------------------------------------------------------------

describe("conversion by schema", () => {
  test("wire → camelCase, nested by schema; unknown fields and enum values kept", () => {
    const margin = fromWire(
      {
        account_id: "acct_1",
        by_asset_class: { prediction: { unrealized_pnl: "1.5", isolated_margin: "0" }, perpetual: {} },
        by_venue: [{ venue: "kalshi", asset_class: "prediction", adjusted_value: "2" }],
        status: "brand_new_status",
        shiny_new_field: { keep_me: 1 },
      },
      "Margin",
    );
    assert.equal(margin.accountId, "acct_1");
    assert.equal(margin.byAssetClass.prediction.unrealizedPnl, "1.5");
    assert.equal(margin.byVenue[0].assetClass, "prediction");
    assert.equal(margin.byVenue[0].adjustedValue, "2");
    assert.equal(margin.status, "brand_new_status");
    assert.deepEqual(margin.shiny_new_field, { keep_me: 1 }); // extra field: kept as it came
  });

  test("a map's keys (e.g. symbols) are never rewritten", () => {
    const tables = {
      ...SCHEMAS,
      Book: { by_symbol: ["bySymbol", { map: "BookLevel" }] },
    };
    const value = fromWire({ by_symbol: { "TRUMP-WIN:NO": { price: "0.4", size: "1" }, btc_perp: { price: "1", size: "2" } } }, "Book", tables);
    assert.deepEqual(Object.keys(value.bySymbol), ["TRUMP-WIN:NO", "btc_perp"]);
    assert.deepEqual(toWire(value, "Book", tables), { by_symbol: { "TRUMP-WIN:NO": { price: "0.4", size: "1" }, btc_perp: { price: "1", size: "2" } } });
  });

  test("camelCase → wire: nested arrays, undefined dropped, unknown keys as given", () => {
    const body = toWire(
      {
        accountId: "acct_1",
        simulatedPositionChanges: [{ instrumentName: "TRUMP-WIN", amount: "10", entryPrice: undefined }],
        some_future_field: "x",
      },
      "MarginSimulateInputRequest",
    );
    assert.deepEqual(body, {
      account_id: "acct_1",
      simulated_position_changes: [{ instrument_name: "TRUMP-WIN", amount: "10" }],
      some_future_field: "x",
    });
  });

  test("names already camelCase on the wire stay (LeverageResult)", () => {
    const result = fromWire({ requestId: "r", oldLeverage: 2, rejectReason: "UNKNOWN_MARKET" }, "LeverageResult");
    assert.deepEqual(result, { requestId: "r", oldLeverage: 2, rejectReason: "UNKNOWN_MARKET" });
  });

  test("the generated models list every operation and code", () => {
    assert.ok(Object.keys(OPERATIONS).length >= 36);
    assert.equal(OPERATIONS.orders_list.items, "orders");
    assert.equal(OPERATIONS.execute.body, "ExecuteInputRequest");
    assert.ok(OrderStatusEnumValues.includes("partially_filled"));
    for (const [code, status] of Object.entries(API_ERROR_CODES)) {
      const ErrorClass = ERROR_CLASSES[code];
      assert.ok(ErrorClass && ErrorClass !== ApiError, `a class for ${code}`);
      const error = new ErrorClass({ code, message: "m", status });
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, status);
    }
  });
});

// --- signing ---------------------------------------------------------------------------------

describe("signing", () => {
  test("canonical JSON: keys sorted at every level, no whitespace, as the server reads it", () => {
    assert.equal(canonicalJson({ b: 1, a: { d: "é\n", c: [1, "x", { z: null, y: true }] } }), '{"a":{"c":[1,"x",{"y":true,"z":null}],"d":"é\\n"},"b":1}');
    assert.equal(canonicalJson(undefined), "");
    assert.equal(canonicalJson({ b: undefined, a: 1 }), '{"a":1}');
  });

  test("the action is the last path segment", () => {
    assert.equal(signingAction("/v1/intelligence/execute"), "execute");
    assert.equal(signingAction("/v1/intelligence/withdrawals/wd_1/cancel"), "cancel");
    assert.equal(signingAction("/v1/intelligence/orders/ord_1/"), "ord_1");
  });

  test("Ed25519 with WebCrypto matches a known signature (the server's library)", async () => {
    const signer = makeSigner("07".repeat(32));
    const { signature } = await signMessage(signer, "", "hello", "");
    // From Python's `cryptography`: Ed25519PrivateKey.from_private_bytes(b"\x07" * 32).sign(b"hello")
    assert.equal(
      signature,
      "359a315920d9541c3cc2a1dd1839f3e40bf23358a1d93a6ebd8303c0310ceb5025e679222ab016b4d822c5001e787e00c0ceaa6ac3c6e80248a944bd47104f0c",
    );
  });

  test("writes carry X-Timestamp (ns) and X-Signature, fresh on every attempt; reads none", async () => {
    const { fetch, calls } = scriptedFetch([json(503, { code: "service_unavailable", message: "x" }), json(201, ORDER)]);
    const client = offline({ fetch, signingKey: "07".repeat(32) });
    await client.intelligence.orders.create({ symbol: "BTC-PERP", side: "buy", quantity: "0.01", price: "60000", clientOrderId: "c1" });
    assert.equal(calls.length, 2);
    const [first, second] = calls.map((c) => c.headers);
    assert.match(first.get("X-Timestamp"), /^\d{19}$/);
    assert.notEqual(first.get("X-Timestamp"), second.get("X-Timestamp"));
    assert.notEqual(first.get("X-Signature"), second.get("X-Signature"));
    const body = calls[0].body;
    assert.equal(body, canonicalJson(JSON.parse(body)));
    // The signature verifies with the public key over timestamp + "orders" + body.
    const publicKey = await crypto.subtle.importKey(
      "raw",
      Buffer.from("ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c", "hex"),
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    const message = new TextEncoder().encode(`${first.get("X-Timestamp")}orders${body}`);
    assert.ok(await crypto.subtle.verify({ name: "Ed25519" }, publicKey, Buffer.from(first.get("X-Signature"), "hex"), message));
    const read = scriptedFetch([json(200, ORDER)]);
    await offline({ fetch: read.fetch, signingKey: "07".repeat(32) }).intelligence.orders.get("ord_1");
    assert.equal(read.calls[0].headers.get("X-Signature"), null);
  });
});

// --- decimals ----------------------------------------------------------------------------------

test("decimals compare and add exactly", () => {
  assert.equal(compareDecimal("1.50", "1.5"), 0);
  assert.equal(compareDecimal("0.10000000000000000001", "0.1"), 1);
  assert.equal(compareDecimal("-2", "1"), -1);
  assert.equal(addDecimal("0.1", "0.2"), "0.3");
  assert.equal(addDecimal("1000000.000001", "-0.000002"), "999999.999999");
});

// --- transport: headers, retries, errors, paging -------------------------------------------------

describe("the HTTP client", () => {
  test("headers, URL, account_id in the query for reads and in the body for writes", async () => {
    const { fetch, calls } = scriptedFetch([json(200, { account_id: "a", positions: [], margin_utilization: null, as_of: "t" }), json(201, ORDER)]);
    const client = offline({ fetch, accountId: "acct_9" });
    const positions = await client.intelligence.positions();
    assert.deepEqual([...positions], []);
    assert.equal(positions.accountId, "a");
    const { url, headers, init } = calls[0];
    assert.equal(url.origin + url.pathname, "https://api.example.test/v1/intelligence/positions");
    assert.equal(url.searchParams.get("account_id"), "acct_9");
    assert.equal(headers.get("Authorization"), "Bearer lev_test_unit");
    assert.equal(headers.get("Lev-Version"), "2026-04-01");
    assert.equal(init.method, "GET");
    await client.intelligence.execute({ symbol: "TRUMP-WIN", side: "buy", notionalUsdc: "10" });
    const sent = JSON.parse(calls[1].body);
    assert.equal(sent.account_id, "acct_9");
    assert.equal(sent.notional_usdc, "10");
    assert.match(sent.client_order_id, /^lev-[0-9a-f]{24}$/);
    assert.equal(calls[1].headers.get("Content-Type"), "application/json");
  });

  test("GETs are retried on 5xx, connection errors and non-JSON gateway pages", async () => {
    const { fetch, calls } = scriptedFetch([
      json(503, { code: "service_unavailable", message: "later" }, { "Retry-After": "0" }),
      new TypeError("fetch failed"),
      new Response("<html>bad gateway</html>", { status: 502, headers: { "Content-Type": "text/html" } }),
      json(200, ORDER),
    ]);
    const retries = [];
    const order = await offline({ fetch, onRetry: (i) => retries.push(i) }).intelligence.orders.get("ord_1");
    assert.equal(order.clientOrderId, "c1");
    assert.equal(calls.length, 4);
    assert.deepEqual(retries.map((r) => r.reason), ["status", "connection", "status"]);
  });

  test("writes without a client_order_id are not retried on 5xx or a dropped connection", async () => {
    const failing = scriptedFetch([json(503, { code: "service_unavailable", message: "later" })]);
    await assert.rejects(
      offline({ fetch: failing.fetch }).intelligence.withdrawals.create({ amount: "1", destination: "x" }),
      ServiceUnavailableError,
    );
    assert.equal(failing.calls.length, 1);
    const dropped = scriptedFetch([new TypeError("fetch failed")]);
    await assert.rejects(offline({ fetch: dropped.fetch }).intelligence.deposits.create({ amount: "1", method: "bank" }), ApiConnectionError);
    assert.equal(dropped.calls.length, 1);
  });

  test("execute is retried with the same client_order_id", async () => {
    const { fetch, calls } = scriptedFetch([new TypeError("socket hang up"), json(500, { code: "internal_error", message: "x" }), json(200, ORDER)]);
    await offline({ fetch }).intelligence.execute({ symbol: "TRUMP-WIN", side: "buy", notionalUsdc: "10" });
    const ids = calls.map((c) => JSON.parse(c.body).client_order_id);
    assert.equal(ids.length, 3);
    assert.equal(new Set(ids).size, 1);
  });

  test("429 honours Retry-After for any call; a Retry-After too long is thrown at once", async () => {
    const { fetch, calls } = scriptedFetch([json(429, { code: "rate_limited", message: "slow" }, { "Retry-After": "0.3" }), json(201, { id: "wd_1", amount: "1" })]);
    const retries = [];
    const started = Date.now();
    await offline({ fetch, onRetry: (i) => retries.push(i) }).intelligence.withdrawals.create({ amount: "1", destination: "x" });
    assert.ok(Date.now() - started >= 300);
    assert.equal(calls.length, 2);
    assert.ok(retries[0].delayMs >= 300);
    const long = scriptedFetch([json(429, { code: "rate_limited", message: "slow" }, { "Retry-After": "120" })]);
    const error = await offline({ fetch: long.fetch }).intelligence.account().catch((e) => e);
    assert.ok(error instanceof RateLimitedError);
    assert.equal(error.retryAfter, 120);
    assert.equal(long.calls.length, 1);
  });

  test("retries stop after maxRetries; typed errors carry code, message, status", async () => {
    const { fetch, calls } = scriptedFetch([json(500, { code: "internal_error", message: "boom" })]);
    await assert.rejects(offline({ fetch, maxRetries: 2 }).intelligence.margin(), (e) => e.code === "internal_error" && e.status === 500);
    assert.equal(calls.length, 3);
    const margin = scriptedFetch([json(422, { code: "insufficient_margin", message: "Margin Health would fall below 1.2" })]);
    const error = await offline({ fetch: margin.fetch }).intelligence.execute({ symbol: "X", side: "buy", notionalUsdc: "1" }).catch((e) => e);
    assert.ok(error instanceof InsufficientMarginError);
    assert.equal(error.message, "Margin Health would fall below 1.2");
    assert.equal(error.status, 422);
    const unknown = scriptedFetch([json(418, { code: "teapot_mode", message: "new code" })]);
    const other = await offline({ fetch: unknown.fetch }).intelligence.account().catch((e) => e);
    assert.equal(other.constructor, ApiError);
    assert.equal(other.code, "teapot_mode");
    const html = scriptedFetch([new Response("nope", { status: 404 })]);
    await assert.rejects(offline({ fetch: html.fetch }).intelligence.account(), UnexpectedResponseError);
  });

  test("a caller's AbortSignal cancels the call and its retries", async () => {
    const controller = new AbortController();
    const { fetch } = scriptedFetch([json(503, { code: "service_unavailable", message: "x" }, { "Retry-After": "10" })]);
    const pending = offline({ fetch, maxRetryAfterMs: 60_000 }).intelligence.account({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error("stop")), 50);
    await assert.rejects(pending, /stop/);
  });

  test("auto-paging follows next_offset across pages", async () => {
    const page = (offset, ids, next) => json(200, { account_id: "a", limit: 2, offset, next_offset: next, fills: ids.map((id) => ({ id, venue_fee: "0" })) });
    const { fetch, calls } = scriptedFetch([page(0, ["f1", "f2"], 2), page(2, ["f3", "f4"], 4), page(4, ["f5"], null)]);
    const ids = [];
    for await (const fill of offline({ fetch }).intelligence.fills({ limit: 2, symbol: "BTC-PERP" })) ids.push(fill.id);
    assert.deepEqual(ids, ["f1", "f2", "f3", "f4", "f5"]);
    assert.deepEqual(calls.map((c) => c.url.searchParams.get("offset")), [null, "2", "4"]);
    assert.ok(calls.every((c) => c.url.searchParams.get("limit") === "2" && c.url.searchParams.get("symbol") === "BTC-PERP"));
  });

  test("defaults: base and stream URLs from the environment, else the seed's", () => {
    const saved = { ...process.env };
    try {
      delete process.env.LEVIATHAN_BASE_URL;
      delete process.env.LEVIATHAN_STREAM_URL;
      delete process.env.LEVIATHAN_API_KEY;
      const client = new Leviathan({ apiKey: "lev_live_x" });
      assert.equal(client.baseUrl, DEFAULT_BASE_URL);
      assert.equal(client.streamUrl, DEFAULT_STREAM_URL);
      assert.equal(DEFAULT_BASE_URL, "https://api.leviathan.global/v1");
      assert.equal(DEFAULT_STREAM_URL, "wss://stream.leviathan.global/v1");
      process.env.LEVIATHAN_BASE_URL = "http://localhost:8000/v1";
      process.env.LEVIATHAN_STREAM_URL = "ws://localhost:8000/v1";
      const fromEnv = new Leviathan({ apiKey: "lev_live_x" });
      assert.equal(fromEnv.baseUrl, "http://localhost:8000/v1");
      assert.equal(fromEnv.streamUrl, "ws://localhost:8000/v1");
      assert.equal(new Leviathan({ apiKey: "k", baseUrl: "https://b/v1" }).baseUrl, "https://b/v1");
      assert.throws(() => new Leviathan(), /API key is required/);
    } finally {
      process.env = saved;
    }
  });
});

// --- the stream on a scripted WebSocket -----------------------------------------------------------

class FakeSocket {
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.instances.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 1);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code = 1000, reason = "") {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose?.({ code, reason }), 1);
  }
  // -- the test plays the server --
  push(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  last(match) {
    return [...this.sent].reverse().find(match);
  }
}

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

async function fakeStream(options = {}) {
  FakeSocket.instances = [];
  const stream = new LeviathanStream({ apiKey: "lev_test_k", url: "ws://fake/v1", WebSocket: FakeSocket, reconnectBaseDelayMs: 5, reconnectMaxDelayMs: 20, ...options });
  const connected = stream.connect();
  await tick();
  const socket = FakeSocket.instances.at(-1);
  assert.deepEqual(socket.sent[0], { op: "auth", key: "lev_test_k" });
  socket.push({ type: "authenticated", connection_id: "c1", key_prefix: "lev_test_k", scopes: ["intelligence", "read"], accounts: ["acct_1"] });
  await connected;
  return { stream, socket };
}

const book = (seq, type, bids, asks = []) => ({
  channel: "orderbook",
  seq,
  type,
  market_id: "BTC-PERP",
  ts: `t${seq}`,
  books: [{ venue: "leviathan", ts: `t${seq}`, bids: bids.map(([price, size]) => ({ price, size })), asks: asks.map(([price, size]) => ({ price, size })) }],
});

describe("the stream client (scripted socket)", () => {
  test("a sequence gap asks for a snapshot; the book waits for it", async () => {
    const { stream, socket } = await fakeStream();
    const pending = stream.orderBook("BTC-PERP");
    await tick();
    assert.deepEqual(socket.last((m) => m.op === "subscribe"), { op: "subscribe", channel: "orderbook", market_id: "BTC-PERP" });
    socket.push({ type: "subscribed", channel: "orderbook", market_id: "BTC-PERP" });
    socket.push(book(1, "snapshot", [["100", "5"], ["99", "1"]], [["101", "2"]]));
    const live = await pending;
    assert.deepEqual(live.bids(), [{ price: "100", size: "5" }, { price: "99", size: "1" }]);
    socket.push(book(2, "update", [["100", "0"], ["98", "3"]]));
    assert.deepEqual(live.bids().map((l) => l.price), ["99", "98"]);
    const gaps = [];
    stream.on("gap", (g) => gaps.push(g));
    socket.push(book(4, "update", [["97", "1"]])); // 3 was lost
    assert.deepEqual(gaps.map((g) => [g.expected, g.received]), [[3, 4]]);
    assert.deepEqual(socket.last((m) => m.op === "snapshot"), { op: "snapshot", channel: "orderbook", market_id: "BTC-PERP" });
    assert.equal(live.synced, false);
    assert.ok(!live.bids().some((l) => l.price === "97"), "updates wait for the snapshot");
    socket.push(book(5, "snapshot", [["96", "1"]]));
    assert.equal(live.synced, true);
    assert.deepEqual(live.bids(), [{ price: "96", size: "1" }]);
    socket.push(book(6, "update", [["95", "2"]]));
    assert.equal(live.bids().length, 2);
    stream.close();
  });

  test("the helper merges venues and finds the best prices", async () => {
    const { stream, socket } = await fakeStream();
    const pending = stream.orderBook("TRUMP-WIN:yes");
    await tick();
    assert.equal(socket.last((m) => m.op === "subscribe").market_id, "TRUMP-WIN");
    socket.push({ type: "subscribed", channel: "orderbook", market_id: "TRUMP-WIN" });
    socket.push({
      channel: "orderbook",
      seq: 1,
      type: "snapshot",
      market_id: "TRUMP-WIN",
      ts: "t",
      books: [
        { venue: "kalshi", bids: [{ price: "0.55", size: "10" }], asks: [{ price: "0.57", size: "1" }] },
        { venue: "polymarket", bids: [{ price: "0.550", size: "2.5" }, { price: "0.56", size: "1" }], asks: [{ price: "0.56", size: "4" }] },
      ],
    });
    const live = await pending;
    assert.deepEqual(live.bestBid(), { venue: "polymarket", price: "0.56", size: "1" });
    assert.deepEqual(live.bestAsk(), { venue: "polymarket", price: "0.56", size: "4" });
    assert.deepEqual(live.bids("kalshi"), [{ price: "0.55", size: "10" }]);
    assert.equal(live.bids().length, 3); // "0.55" and "0.550" are kept as the venues wrote them
    stream.close();
  });

  test("a drop reconnects with back-off, re-authenticates and restores subscriptions", async () => {
    const { stream, socket } = await fakeStream();
    const subscribed = stream.subscribe({ channel: "account" });
    await tick();
    socket.push({ type: "subscribed", channel: "account", account_id: "*" });
    const account = await subscribed;
    const messages = [];
    account.on((m) => messages.push(m));
    socket.push({ channel: "account", seq: 1, type: "snapshot", ts: "t", accounts: [{ account_id: "acct_1", positions: [], open_orders: [ORDER] }] });
    assert.equal(messages[0].accounts[0].openOrders[0].clientOrderId, "c1");
    const reconnecting = [];
    stream.on("reconnecting", (r) => reconnecting.push(r));
    const reconnected = new Promise((resolve) => stream.on("reconnected", resolve));
    socket.drop(1012, "service restart");
    assert.equal(stream.state, "reconnecting");
    assert.equal(reconnecting[0].code, 1012);
    await tick(40);
    const second = FakeSocket.instances.at(-1);
    assert.notEqual(second, socket);
    assert.equal(second.sent[0].op, "auth");
    second.push({ type: "authenticated", connection_id: "c2", scopes: [], accounts: ["acct_1"] });
    await reconnected;
    assert.deepEqual(second.last((m) => m.op === "subscribe"), { op: "subscribe", channel: "account" });
    second.push({ type: "subscribed", channel: "account", account_id: "*" });
    second.push({ channel: "account", seq: 1, type: "snapshot", ts: "t", accounts: [] });
    second.push({ channel: "account", seq: 2, account_id: "acct_1", type: "order", ...ORDER, brand_new: 1 });
    assert.equal(messages.length, 3);
    assert.equal(messages[2].accountId, "acct_1");
    assert.equal(messages[2].timeInForce, "GTC");
    assert.equal(messages[2].brand_new, 1);
    stream.close();
  });

  test("a subscription is an async iterable of its messages", async () => {
    const { stream, socket } = await fakeStream();
    const pending = stream.subscribe({ channel: "trades", marketId: "BTC-PERP" });
    await tick();
    socket.push({ type: "subscribed", channel: "trades", market_id: "BTC-PERP" });
    const trades = await pending;
    const got = [];
    const reading = (async () => {
      for await (const message of trades) {
        got.push(message.trades[0].id);
        if (got.length === 2) break;
      }
    })();
    for (const seq of [1, 2, 3]) {
      socket.push({ channel: "trades", seq, type: "trades", market_id: "BTC-PERP", trades: [{ id: `t${seq}`, venue: "leviathan", side: "buy", price: "1", size: "1", ts: "t" }] });
      await tick(1);
    }
    await reading;
    assert.deepEqual(got, ["t1", "t2"]);
    const unsubscribed = trades.unsubscribe();
    await tick();
    assert.deepEqual(socket.last((m) => m.op === "unsubscribe"), { op: "unsubscribe", channel: "trades", market_id: "BTC-PERP" });
    socket.push({ type: "unsubscribed", channel: "trades", market_id: "BTC-PERP" });
    await unsubscribed;
    assert.equal(stream.list().length, 0);
    stream.close();
  });

  test("a refused key (4401) is final: no reconnect", async () => {
    const { stream, socket } = await fakeStream();
    const closed = new Promise((resolve) => stream.on("close", resolve));
    socket.push({ type: "error", code: "unauthorized", message: "This API key was revoked." });
    socket.drop(4401, "revoked");
    const { code, error } = await closed;
    assert.equal(code, 4401);
    assert.ok(error instanceof UnauthorizedError);
    await tick(40);
    assert.equal(FakeSocket.instances.length, 1);
    await assert.rejects(stream.ping(), StreamClosedError);
  });

  test("the watchdog pings when idle and reconnects when nothing comes back", async () => {
    const { stream, socket } = await fakeStream({ pingIntervalMs: 40, staleAfterMs: 120 });
    const stale = new Promise((resolve) => stream.on("stale", resolve));
    await tick(80);
    assert.ok(socket.sent.some((m) => m.op === "ping"), "a ping when idle");
    const { idleMs } = await stale;
    assert.ok(idleMs >= 120);
    await tick(40);
    assert.ok(FakeSocket.instances.length >= 2, "a new connection");
    stream.close();
  });

  test("commands are matched to their answers by id; errors are typed; pending ones fail on a drop", async () => {
    const { stream, socket } = await fakeStream({ accountId: "acct_1" });
    const added = stream.addOrder({ symbol: "BTC-PERP", side: "buy", quantity: "1", price: "2", timeInForce: "IOC" });
    const levels = stream.getLeverageLevels();
    await tick();
    const [add, lev] = socket.sent.filter((m) => m.type === "add_order" || m.type === "get_leverage_levels");
    assert.equal(add.params.time_in_force, "IOC");
    assert.equal(add.params.account_id, "acct_1");
    assert.match(add.params.client_order_id, /^lev-/);
    socket.push({ type: "result", command: "get_leverage_levels", id: lev.id, status: 200, data: { markets: [{ symbol: "BTC-PERP", levels: [1], default_leverage: 1, max_leverage: 1 }] } });
    socket.push({ type: "error", command: "add_order", id: add.id, status: 422, code: "insufficient_margin", message: "no" });
    assert.equal((await levels).markets[0].defaultLeverage, 1);
    const error = await added.catch((e) => e);
    assert.ok(error instanceof InsufficientMarginError);
    assert.equal(error.status, 422);
    const lost = stream.getLeverage({ symbol: "BTC-PERP" });
    await tick();
    socket.drop(1006);
    await assert.rejects(lost, StreamClosedError);
    stream.close();
  });

  test("signed commands carry timestamp and signature", async () => {
    const { stream, socket } = await fakeStream({ signingKey: "07".repeat(32) });
    const pending = stream.cancelOrder({ orderId: "ord_1" });
    await tick(20);
    const sent = socket.last((m) => m.type === "cancel_order");
    assert.match(sent.timestamp, /^\d{19}$/);
    assert.match(sent.signature, /^[0-9a-f]{128}$/);
    assert.deepEqual(sent.params, { order_id: "ord_1", cancel_order_id_type: "order_id" });
    socket.push({ type: "result", command: "cancel_order", id: sent.id, status: 200, data: { ...ORDER, status: "cancelled" } });
    assert.equal((await pending).status, "cancelled");
    stream.close();
  });
});
