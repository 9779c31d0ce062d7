// The stream client against the live server: authentication, subscriptions and typed
// messages per channel, the order-book helper, seed 002 commands and subscriptions,
// signing, the staleness watchdog (a connection gone silent), and the reconnect after a
// server restart that restores every subscription.

import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";

import {
  Leviathan,
  LeviathanStream,
  LiveOrderBook,
  ApiError,
  NotFoundError,
  UnauthorizedError,
  OrderNotActiveError,
  InvalidParamsError,
} from "@leviathan/sdk";
import { env, SKIP_LIVE, control, rejectsWith, startProxy, until } from "./helpers.mjs";

const ACCOUNT = env.LEVIATHAN_TEST_ACCOUNT_ID;
const open = new Set();

function client(options = {}) {
  return new Leviathan({ apiKey: env.LEVIATHAN_TEST_STREAM_KEY, WebSocket, ...options });
}

function stream(options = {}, clientOptions = {}) {
  const s = client(clientOptions).stream({ reconnectBaseDelayMs: 100, reconnectMaxDelayMs: 1000, ...options });
  open.add(s);
  return s;
}

/** The next message a subscription delivers that `match` accepts. */
function next(subscription, match = () => true, timeoutMs = 15_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching ${subscription.channel} message in ${timeoutMs} ms`));
    }, timeoutMs);
    const off = subscription.on((message) => {
      if (!match(message)) return;
      clearTimeout(timer);
      off();
      resolve(message);
    });
  });
}

function event(s, name, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} event in ${timeoutMs} ms`)), timeoutMs);
    const off = s.on(name, (value) => {
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

describe("the stream against the live server", { skip: SKIP_LIVE }, () => {
  after(() => {
    for (const s of open) s.close();
  });

  test("connects and authenticates; the URL comes from LEVIATHAN_STREAM_URL", async () => {
    const s = stream();
    assert.equal(s.url, `${env.LEVIATHAN_STREAM_URL}/stream`);
    const opened = event(s, "open");
    await s.connect();
    assert.equal(s.state, "open");
    assert.deepEqual(s.accounts, [ACCOUNT]);
    assert.ok(s.scopes.includes("intelligence"));
    assert.equal((await opened).connectionId, s.connectionId);
    assert.ok((await s.ping()) >= 0);
    s.close();
    assert.equal(s.state, "closed");
  });

  test("a bad key is refused for good: UnauthorizedError, no reconnect", async () => {
    const s = stream({}, { apiKey: "lev_live_not_a_real_key_000000000000000000" });
    const closed = event(s, "close");
    await rejectsWith(s.connect(), UnauthorizedError, "unauthorized");
    const { code } = await closed;
    assert.equal(code, 4401);
    assert.equal(s.state, "closed");
  });

  test("the order-book helper: a snapshot, then updates applied in sequence", async () => {
    const s = stream();
    const book = await s.orderBook("BTC-PERP");
    assert.ok(book instanceof LiveOrderBook);
    assert.ok(book.synced);
    assert.deepEqual(book.venues(), ["leviathan"]);
    assert.equal(book.bestBid().price, "64000.00000000");
    assert.equal(book.bestAsk().price, "64010.00000000");
    assert.equal(book.bids()[0].price, "64000.00000000");
    assert.ok(book.bids().length >= 2);
    // The feed moves the top sizes every second: updates arrive and keep the book exact.
    const sizes = new Set();
    await until(() => {
      sizes.add(book.bestBid().size);
      return sizes.size >= 2;
    }, 10_000, "an order-book update");
    assert.ok(book.subscription.lastSeq >= 2);
    const rest = await client().intelligence.orderbook("BTC-PERP");
    assert.equal(rest.books[0].bids.length, book.bids("leviathan").length);
    await book.close();
    assert.equal(s.list().length, 0);
    s.close();
  });

  test("trades, account and positions channels: typed messages in camelCase", async () => {
    const s = stream();
    // A listener given to subscribe() sees every message, the snapshot first.
    const accountMessages = [];
    const positionsMessages = [];
    const trades = await s.subscribe({ channel: "trades", marketId: "TRUMP-WIN" });
    const account = await s.subscribe({ channel: "account" }, (m) => accountMessages.push(m));
    const positions = await s.subscribe({ channel: "positions", accountId: ACCOUNT }, (m) => positionsMessages.push(m));
    const accountSnapshot = await until(() => accountMessages.find((m) => m.type === "snapshot"), 10_000, "account snapshot");
    const positionsSnapshot = await until(() => positionsMessages.find((m) => m.type === "snapshot"), 10_000, "positions snapshot");
    assert.equal(accountSnapshot.seq, 1);
    assert.equal(accountSnapshot.accounts[0].accountId, ACCOUNT);
    assert.ok(Array.isArray(accountSnapshot.accounts[0].openOrders));
    assert.equal(typeof positionsSnapshot.accounts[0].margin.availableCredit, "string");
    const trade = next(trades, (m) => m.type === "trades");
    const order = next(account, (m) => m.type === "order" && m.status === "filled");
    const fill = next(account, (m) => m.type === "fill");
    const position = next(account, (m) => m.type === "position" && m.symbol === "TRUMP-WIN");
    const executed = await client().intelligence.execute({ symbol: "TRUMP-WIN", side: "buy", notionalUsdc: "150" });
    const orderEvent = await order;
    assert.equal(orderEvent.id, executed.id);
    assert.equal(orderEvent.accountId, ACCOUNT);
    assert.equal(orderEvent.clientOrderId, executed.clientOrderId);
    assert.equal(typeof orderEvent.filledNotional, "string");
    const fillEvent = await fill;
    assert.equal(fillEvent.orderId, executed.id);
    assert.equal(typeof fillEvent.venueFee, "string");
    assert.equal(typeof (await position).quantity, "string");
    const tradesMessage = await trade;
    assert.equal(tradesMessage.marketId, "TRUMP-WIN");
    assert.equal(tradesMessage.trades[0].side, "buy");
    assert.equal(typeof tradesMessage.trades[0].price, "string");
    await trades.unsubscribe();
    await account.unsubscribe();
    await positions.unsubscribe();
    assert.equal(s.list().length, 0);
    await rejectsWith(s.subscribe({ channel: "positions", accountId: "acct_nope" }), NotFoundError);
    await assert.rejects(s.subscribe({ channel: "orderbook", marketId: "NOPE" }), ApiError);
    s.close();
  });

  test("seed 002 commands answer as their REST twins, with typed errors", async () => {
    const s = stream();
    const leverage = await s.getLeverage({ symbol: "BTC-PERP" });
    assert.equal(leverage.symbol, "BTC-PERP");
    assert.equal(typeof leverage.maxLeverage, "number");
    await rejectsWith(s.getLeverage({ symbol: "NOPE" }), NotFoundError, "not_found");
    assert.equal((await s.setLeverage({ symbol: "BTC-PERP", leverage: 4 })).status, "APPLIED");
    const rejected = await s.setLeverage({ symbol: "BTC-PERP", leverage: 999 });
    assert.equal(rejected.status, "REJECTED");
    assert.equal(rejected.rejectReason, "INVALID_LEVERAGE");
    const levels = await s.getLeverageLevels({ symbol: "BTC-PERP" });
    assert.equal(levels.markets[0].maxLeverage, 20);
    const order = await s.addOrder({ symbol: "BTC-PERP", side: "buy", quantity: "0.01", price: "61000", timeInForce: "GTC" });
    assert.equal(order.status, "open");
    assert.match(order.clientOrderId, /^lev-/);
    assert.equal((await s.modifyOrder({ orderId: order.id, price: "61001" })).price, "61001.00000000");
    assert.equal((await s.modifyOrder({ clientOrderId: order.clientOrderId, quantity: "0.02" })).quantity, "0.020000");
    assert.equal((await s.cancelOrder({ clientOrderId: order.clientOrderId })).status, "cancelled");
    const error = await rejectsWith(s.cancelOrder({ orderId: order.id }), OrderNotActiveError, "order_not_active");
    assert.equal(error.status, 409);
    await rejectsWith(s.addOrder({ symbol: "BTC-PERP", side: "buy", quantity: "abc", price: "1" }), InvalidParamsError);
    const raw = await s.command("get_leverage", { symbol: "BTC-PERP" });
    assert.equal(raw.isDefault, false);
    s.close();
  });

  test("seed 002 subscriptions: v4_balances pulses, v4_orders follows orders", async () => {
    const s = stream();
    const balances = await s.subscribe({ channel: "v4_balances" });
    const pulse = await next(balances, (m) => m.type === "channel_data", 5000);
    assert.equal(pulse.id, ACCOUNT);
    assert.equal(typeof pulse.contents[0].withdrawable, "string");
    assert.ok(pulse.messageId >= 2);
    await balances.unsubscribe();
    const orders = await s.subscribe({ channel: "v4_orders" });
    const changed = next(orders, (m) => m.type === "channel_data");
    const order = await s.addOrder({ symbol: "BTC-PERP", side: "buy", quantity: "0.01", price: "61500" });
    const message = await changed;
    assert.equal(message.contents[0].id, order.id);
    await s.cancelOrder({ orderId: order.id });
    await orders.unsubscribe();
    s.close();
  });

  test("signed commands: a key with a public key must sign them; the SDK does", async () => {
    const key = env.LEVIATHAN_TEST_SIGNED_KEY;
    const unsigned = stream({}, { apiKey: key });
    await rejectsWith(unsigned.addOrder({ symbol: "BTC-PERP", side: "buy", quantity: "0.01", price: "50000" }), UnauthorizedError);
    unsigned.close();
    const signed = stream({}, { apiKey: key, signingKey: env.LEVIATHAN_TEST_SIGNING_SEED });
    const order = await signed.addOrder({ symbol: "BTC-PERP", side: "buy", quantity: "0.01", price: "50000" });
    assert.equal(order.status, "open");
    assert.equal((await signed.cancelOrder({ orderId: order.id })).status, "cancelled");
    signed.close();
  });

  test("the watchdog: a connection gone silent is replaced, subscriptions restored", async () => {
    const proxy = await startProxy(env.LEVIATHAN_BASE_URL);
    try {
      const s = stream(
        { url: proxy.url.replace("http://", "ws://") + "/v1", pingIntervalMs: 300, staleAfterMs: 1200 },
      );
      const book = await s.orderBook("BTC-PERP");
      const stale = event(s, "stale", 10_000);
      const reconnected = event(s, "reconnected", 15_000);
      proxy.blackhole();
      assert.ok((await stale).idleMs >= 1200);
      await reconnected;
      await until(() => book.synced && s.state === "open", 10_000, "the book re-synced");
      assert.equal(s.list().length, 1);
      s.close();
    } finally {
      await proxy.close();
    }
  });

  test("reconnect after a server restart: back-off, re-authentication, subscriptions restored", async () => {
    const s = stream();
    const book = await s.orderBook("BTC-PERP");
    const account = await s.subscribe({ channel: "account" });
    const seen = [];
    account.on((message) => seen.push(message));
    let mark = -1;
    const reconnecting = [];
    s.on("reconnecting", (info) => reconnecting.push(info));
    s.on("reconnected", () => (mark = seen.length));
    const reconnected = event(s, "reconnected", 60_000);
    const connectionId = s.connectionId;
    await control("/restart");
    await reconnected;
    assert.ok(reconnecting.length >= 1);
    assert.ok(reconnecting.every((r, i) => r.attempt === i + 1));
    assert.notEqual(s.connectionId, connectionId);
    // Restored: a fresh snapshot of the book and of the account, numbered from 1 again.
    await until(() => book.synced, 15_000, "the book re-synced");
    const snapshot = await until(() => seen.slice(mark).find((m) => m.type === "snapshot"), 15_000, "the account snapshot");
    assert.equal(snapshot.seq, 1);
    const executed = next(account, (m) => m.type === "order" && m.status === "filled");
    const order = await client().intelligence.execute({ symbol: "TRUMP-WIN", side: "buy", notionalUsdc: "50" });
    assert.equal((await executed).id, order.id);
    assert.equal(s.list().length, 2);
    assert.equal(s.state, "open");
    s.close();
  });
});

export { LeviathanStream };
