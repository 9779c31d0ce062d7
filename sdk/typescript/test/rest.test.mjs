// The REST client against the live server (tests/sdk/test_typescript_sdk.py serves it):
// the Quickstart as written, every operation's happy path and one error each, pagination
// across pages, 429 back-off, the execute retry after a dropped connection (exactly one
// order), signing, and several accounts on one key.

import { describe, test, before, after } from "node:test";
import net from "node:net";
import assert from "node:assert/strict";

import {
  Leviathan,
  OPERATIONS,
  ApiError,
  ApiConnectionError,
  ApiTimeoutError,
  InvalidParamsError,
  NotFoundError,
  ForbiddenError,
  UnauthorizedError,
  RateLimitedError,
  DuplicateOrderError,
  OrderNotActiveError,
  SlippageExceededError,
  InsufficientFundsError,
  WithdrawalNotPendingError,
  PagedList,
} from "@leviathan/sdk";
import { env, SKIP_LIVE, control, rejectsWith, recordOperations, startProxy, sleep } from "./helpers.mjs";

async function rejectsWithClass(promise, ErrorClass) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ErrorClass, `expected ${ErrorClass.name}, got ${error?.name}: ${error?.message}`);
    return true;
  });
}

const record = { ok: new Set(), failed: new Set() };
const ACCOUNT = env.LEVIATHAN_TEST_ACCOUNT_ID;

function sdk(options = {}) {
  return recordOperations(new Leviathan({ retryBaseDelayMs: 50, retryMaxDelayMs: 400, ...options }), record);
}

describe("REST against the live server", { skip: SKIP_LIVE }, () => {
  let client;
  let I;
  before(() => {
    client = sdk();
    I = client.intelligence;
  });

  test("the seed's Quickstart runs as written (only the key replaced; base URL from the environment)", async () => {
    const lines = [];
    const log = console.log;
    console.log = (...args) => lines.push(args.join(" "));
    try {
      // ---- seed 000, "Quickstart", TypeScript ----
      // npm install @leviathan/sdk
      const client = new Leviathan({ apiKey: env.LEVIATHAN_API_KEY });
      // View all open positions
      const positions = await client.intelligence.positions();
      positions.forEach(p =>
        console.log(`${p.symbol} ${p.side} — PnL: ${p.pnl}`)
      );
      // Execute a trade
      const trade = await client.intelligence.execute({
        symbol: "TRUMP-WIN",
        side: "buy",
        notionalUsdc: "50000",
      });
      console.log(`Trade executed: ${trade.id}`);
      // ---- end of the seed's code ----
      assert.equal(trade.status, "filled");
      assert.equal(trade.notional, "50000.000000");
      assert.match(trade.clientOrderId, /^lev-[0-9a-f]{24}$/);
    } finally {
      console.log = log;
    }
    assert.match(lines.at(-1), /^Trade executed: ord_/);
    const positions = await I.positions();
    assert.ok(Array.isArray(positions));
    const [position] = positions;
    assert.equal(position.symbol, "TRUMP-WIN");
    assert.equal(position.side, "long");
    assert.equal(typeof position.pnl, "string");
    assert.equal(positions.accountId, ACCOUNT);
  });

  test("configuration: env base URL, constructor overrides, defaults", () => {
    assert.equal(client.baseUrl, env.LEVIATHAN_BASE_URL);
    assert.equal(client.streamUrl, env.LEVIATHAN_STREAM_URL);
    const other = new Leviathan({ apiKey: "lev_test_x", baseUrl: "https://example.test/v1/", streamUrl: "wss://example.test/v1" });
    assert.equal(other.baseUrl, "https://example.test/v1");
    assert.equal(other.streamUrl, "wss://example.test/v1");
  });

  test("positions: happy path and an unknown account (404)", async () => {
    const positions = await I.positions();
    assert.ok(positions.length >= 1);
    assert.equal(typeof positions.asOf, "string");
    await rejectsWith(I.positions({ accountId: "acct_nope" }), NotFoundError, "not_found");
  });

  test("execute: money as strings, a generated client_order_id; slippage_exceeded typed", async () => {
    const order = await I.execute({ symbol: "TRUMP-WIN", side: "buy", notionalUsdc: "250" });
    assert.equal(order.status, "filled");
    assert.equal(typeof order.filledQuantity, "string");
    assert.equal(typeof order.averagePrice, "string");
    const given = await I.execute({ symbol: "TRUMP-WIN", side: "buy", notionalUsdc: "100", clientOrderId: `mine-${Date.now()}`, slippageBps: 100 });
    assert.ok(given.clientOrderId.startsWith("mine-"));
    const error = await rejectsWith(I.execute({ symbol: "TRUMP-WIN", side: "buy", notionalUsdc: "1000000" }), SlippageExceededError, "slippage_exceeded");
    assert.equal(error.status, 422);
    assert.ok(error instanceof ApiError);
    assert.match(error.message, /bps/);
  });

  test("execute after a dropped connection: the retry reuses the client_order_id, one order", async () => {
    const proxy = await startProxy(env.LEVIATHAN_BASE_URL);
    try {
      const retries = [];
      const flaky = sdk({ baseUrl: `${proxy.url}/v1`, onRetry: (info) => retries.push(info) });
      proxy.dropAfterRequest(/^POST \/v1\/intelligence\/execute/);
      const order = await flaky.intelligence.execute({ symbol: "TRUMP-WIN", side: "buy", notionalUsdc: "300" });
      assert.equal(proxy.dropped, 1, "the first answer was cut off");
      assert.equal(retries.length, 1);
      assert.equal(retries[0].reason, "connection");
      assert.equal(order.status, "filled");
      const { count } = await control("/orders", { client_order_id: order.clientOrderId });
      assert.equal(count, 1, "exactly one order for the client_order_id");
      const same = await I.orders.getByClientId(order.clientOrderId);
      assert.equal(same.id, order.id);
      // A write without a client_order_id is not retried after a drop.
      proxy.dropAfterRequest(/^POST \/v1\/intelligence\/withdrawals /);
      await assert.rejects(flaky.intelligence.withdrawals.create({ amount: "1", destination: "bank 1" }), ApiConnectionError);
    } finally {
      await proxy.close();
    }
  });

  test("429: the client waits for Retry-After and retries; without retries it is a RateLimitedError", async () => {
    const key = env.LEVIATHAN_TEST_RATE_KEY;
    const retries = [];
    const limited = sdk({ apiKey: key, onRetry: (info) => retries.push(info) });
    await control("/ratelimit", { key, group: "market_data", retry_after: 1.5 });
    const started = Date.now();
    const account = await limited.intelligence.account();
    assert.equal(account.accountId, ACCOUNT);
    assert.equal(retries.length, 1);
    assert.equal(retries[0].status, 429);
    assert.ok(retries[0].delayMs >= 1000, `waited ${retries[0].delayMs} ms`);
    assert.ok(Date.now() - started >= 1000);
    await control("/ratelimit", { key, group: "market_data", retry_after: 30 });
    const error = await rejectsWith(limited.intelligence.account({ maxRetries: 0 }), RateLimitedError, "rate_limited");
    assert.equal(error.status, 429);
    assert.ok(error.retryAfter > 0 && error.retryAfter <= 31, `retryAfter ${error.retryAfter}`);
  });

  test("margin and simulate", async () => {
    const margin = await I.margin();
    assert.equal(margin.accountId, ACCOUNT);
    assert.equal(typeof margin.availableCredit, "string");
    assert.ok(Array.isArray(margin.byVenue));
    assert.ok("prediction" in margin.byAssetClass);
    await rejectsWith(I.margin({ accountId: "acct_nope" }), NotFoundError);
    const simulation = await I.simulate({
      simulatedPositionChanges: [{ instrumentName: "TRUMP-WIN", amount: "100" }],
      simulatedCollateralChanges: [{ assetName: "USDC", amount: "1000" }],
    });
    assert.equal(typeof simulation.result.isValidTrade, "boolean");
    assert.equal(typeof simulation.result.postCash, "string");
    assert.equal(simulation.result.positions[0].instrumentName, "TRUMP-WIN");
    await rejectsWith(I.simulate({ simulatedPositionChanges: [{ instrumentName: "NOPE", amount: "1" }] }), NotFoundError);
  });

  test("leverage: get, set (APPLIED and REJECTED), levels; errors", async () => {
    const leverage = await I.leverage.get("BTC-PERP");
    assert.equal(leverage.symbol, "BTC-PERP");
    assert.equal(typeof leverage.maxLeverage, "number");
    await rejectsWith(I.leverage.get({ symbol: "NOPE" }), NotFoundError);
    const applied = await I.leverage.set({ symbol: "BTC-PERP", leverage: 3 });
    assert.equal(applied.status, "APPLIED");
    assert.equal(applied.newLeverage, 3);
    const rejected = await I.leverage.set({ symbol: "BTC-PERP", leverage: 500 });
    assert.equal(rejected.status, "REJECTED");
    assert.equal(rejected.rejectReason, "INVALID_LEVERAGE");
    const reader = sdk({ apiKey: env.LEVIATHAN_TEST_READONLY_KEY });
    await rejectsWith(reader.intelligence.leverage.set({ symbol: "BTC-PERP", leverage: 2 }), ForbiddenError, "forbidden");
    const levels = await I.leverage.levels();
    assert.ok(levels.markets.some((m) => m.symbol === "BTC-PERP" && m.levels.includes(3)));
    assert.equal((await I.leverage.levels({ symbol: "BTC-PERP" })).markets.length, 1);
    await rejectsWith(I.leverage.levels({ symbol: "NOPE" }), NotFoundError);
  });

  test("orders: create, get, modify, cancel — by id and by client id; typed errors", async () => {
    const order = await I.orders.create({ symbol: "BTC-PERP", side: "buy", quantity: "0.01", price: "60000" });
    assert.equal(order.status, "open");
    assert.equal(order.orderType, "limit");
    assert.equal(order.timeInForce, "GTC");
    assert.equal(order.price, "60000.00000000");
    assert.equal((await I.orders.get(order.id)).id, order.id);
    await rejectsWith(I.orders.get("ord_nope"), NotFoundError);
    const modified = await I.orders.modify(order.id, { price: "60100" });
    assert.equal(modified.price, "60100.00000000");
    const cancelled = await I.orders.cancel(order.id);
    assert.equal(cancelled.status, "cancelled");
    await rejectsWith(I.orders.cancel(order.id), OrderNotActiveError, "order_not_active");
    await rejectsWith(I.orders.modify(order.id, { price: "60200" }), OrderNotActiveError);

    const clientOrderId = `cid-${Date.now()}`;
    const mine = await I.orders.create({ symbol: "BTC-PERP", side: "buy", quantity: "0.02", price: "59000", clientOrderId });
    assert.equal(mine.clientOrderId, clientOrderId);
    // The same client_order_id with the same body is the same order (a retry)...
    assert.equal((await I.orders.create({ symbol: "BTC-PERP", side: "buy", quantity: "0.02", price: "59000", clientOrderId })).id, mine.id);
    // ...with another body it is a duplicate_order.
    await rejectsWith(
      I.orders.create({ symbol: "BTC-PERP", side: "buy", quantity: "0.03", price: "59000", clientOrderId }),
      DuplicateOrderError,
      "duplicate_order",
    );
    assert.equal((await I.orders.getByClientId(clientOrderId)).id, mine.id);
    await rejectsWith(I.orders.getByClientId("cid-nope"), NotFoundError);
    assert.equal((await I.orders.modifyByClientId(clientOrderId, { quantity: "0.03" })).quantity, "0.030000");
    await rejectsWith(I.orders.modifyByClientId("cid-nope", { quantity: "0.03" }), NotFoundError);
    assert.equal((await I.orders.cancelByClientId(clientOrderId)).status, "cancelled");
    await rejectsWith(I.orders.cancelByClientId(clientOrderId), OrderNotActiveError);
    await rejectsWith(I.orders.list({ status: "bogus" }), InvalidParamsError, "invalid_params");
  });

  test("orders: a take-profit / stop-loss removed before it fires — by id and by client id", async () => {
    const clientOrderId = `cid-tpsl-${Date.now()}`;
    const armed = await I.orders.create({
      symbol: "BTC-PERP", side: "buy", quantity: "0.01", price: "58000", takeProfit: "70000", stopLoss: "50000", clientOrderId,
    });
    assert.equal(armed.stopLoss, "50000.00000000");
    const kept = await I.orders.cancelTriggers(armed.id, { which: "stop_loss" });
    assert.equal(kept.stopLoss, null);
    assert.equal(kept.takeProfit, "70000.00000000");
    const bare = await I.orders.cancelTriggersByClientId(clientOrderId);
    assert.deepEqual([bare.takeProfit, bare.stopLoss], [null, null]);
    assert.equal((await I.orders.cancelTriggersByClientId(clientOrderId)).id, armed.id); // safe to repeat
    await I.orders.cancel(armed.id);
    // Cancelled with nothing filled: nothing can fire, nothing to remove.
    await rejectsWith(I.orders.cancelTriggers(armed.id), OrderNotActiveError, "order_not_active");
    await rejectsWith(I.orders.cancelTriggersByClientId("cid-nope"), NotFoundError, "not_found");
  });

  test("pagination: for await walks every page; pages() and a single page", async () => {
    for (let i = 0; i < 5; i++) {
      await I.orders.create({ symbol: "BTC-PERP", side: "buy", quantity: "0.01", price: String(50000 + i) });
    }
    const all = await I.orders.list({ limit: 500 });
    assert.equal(all.nextOffset, null);
    const total = all.orders.length;
    assert.ok(total >= 7);
    const listing = I.orders.list({ limit: 2 });
    assert.ok(listing instanceof PagedList);
    const first = await listing;
    assert.equal(first.orders.length, 2);
    assert.equal(first.nextOffset, 2);
    const seen = [];
    for await (const order of I.orders.list({ limit: 2 })) seen.push(order.id);
    assert.equal(seen.length, total);
    assert.equal(new Set(seen).size, total);
    assert.deepEqual(seen, all.orders.map((o) => o.id));
    let pages = 0;
    for await (const page of I.orders.list({ limit: 3, status: "active" }).pages()) {
      pages += 1;
      assert.ok(page.orders.every((o) => ["open", "pending", "partially_filled"].includes(o.status)));
    }
    assert.ok(pages >= 2);
    const fromOffset = await I.orders.list({ limit: 2, offset: 2 });
    assert.equal(fromOffset.offset, 2);
    assert.equal(fromOffset.orders[0].id, all.orders[2].id);
    assert.equal((await I.orders.list({ limit: 1 }).toArray(3)).length, 3);
    // Clean up the resting orders.
    for await (const order of I.orders.list({ status: "active", limit: 100 })) await I.orders.cancel(order.id);
  });

  test("fills and transactions (paged)", async () => {
    const fills = [];
    for await (const fill of I.fills({ limit: 1 })) fills.push(fill);
    assert.ok(fills.length >= 2);
    assert.equal(typeof fills[0].venueFee, "string");
    assert.equal((await I.fills({ symbol: "TRUMP-WIN", limit: 500 })).fills.length, fills.length);
    await rejectsWith(I.fills({ limit: 0 }), InvalidParamsError);
    const transactions = await I.transactions({ limit: 2 }).toArray();
    assert.ok(transactions.length >= 3);
    assert.equal(typeof transactions[0].journalId, "number");
    assert.ok(transactions.some((t) => t.kind === "deposit"));
    await rejectsWith(I.transactions({ kind: "bogus" }), InvalidParamsError);
  });

  test("markets, market, orderbook", async () => {
    const { markets } = await I.markets();
    const symbols = markets.map((m) => m.symbol);
    assert.ok(symbols.includes("BTC-PERP") && symbols.includes("TRUMP-WIN"), symbols.join());
    assert.equal((await I.markets({ kind: "perpetual" })).markets.length, 1);
    await rejectsWith(I.markets({ status: "bogus" }), InvalidParamsError);
    const market = await I.market("TRUMP-WIN");
    assert.equal(market.kind, "binary");
    assert.equal(market.bestBid, "0.55000000");
    assert.equal(market.listings[0].venueSymbol !== undefined, true);
    await rejectsWith(I.market("NOPE"), NotFoundError);
    const book = await I.orderbook("BTC-PERP", { depth: 1 });
    assert.equal(book.books[0].bids.length, 1);
    assert.equal(book.books[0].bids[0].price, "64000.00000000");
    await rejectsWith(I.orderbook("BTC-PERP", { depth: 0 }), InvalidParamsError);
  });

  test("account, balances, account.balances; several accounts on one key", async () => {
    const account = await I.account();
    assert.equal(account.accountId, ACCOUNT);
    assert.equal(account.kind, "custodial");
    const balances = await I.balances();
    assert.equal(typeof balances.withdrawable, "string");
    assert.deepEqual(Object.keys(await I.account.balances()).sort(), Object.keys(balances).sort());
    await rejectsWith(I.balances({ accountId: "acct_nope" }), NotFoundError);
    const multi = sdk({ apiKey: env.LEVIATHAN_TEST_MULTI_KEY });
    await rejectsWith(multi.intelligence.account(), InvalidParamsError, "invalid_params");
    await rejectsWith(multi.intelligence.account.balances(), InvalidParamsError);
    const second = env.LEVIATHAN_TEST_SECOND_ACCOUNT_ID;
    assert.equal((await multi.intelligence.account({ accountId: second })).accountId, second);
    const scoped = sdk({ apiKey: env.LEVIATHAN_TEST_MULTI_KEY, accountId: second });
    assert.equal((await scoped.intelligence.balances()).accountId, second);
    assert.equal((await scoped.intelligence.account.balances()).accountId, second);
  });

  test("deposits: create, get, list; errors", async () => {
    const deposit = await I.deposits.create({ amount: "125.50", method: "card", cardNumber: "4242 4242 4242 4242" });
    assert.equal(deposit.status, "pending");
    assert.equal(deposit.amount, "125.500000");
    assert.equal((await I.deposits.get(deposit.id)).id, deposit.id);
    await rejectsWith(I.deposits.get("dep_nope"), NotFoundError);
    const bank = await I.deposits.create({ amount: "10", method: "bank_transfer" });
    const ids = [];
    for await (const item of I.deposits.list({ limit: 1 })) ids.push(item.id);
    assert.ok(ids.includes(deposit.id) && ids.includes(bank.id));
    await rejectsWith(I.deposits.list({ status: "bogus" }), InvalidParamsError);
    const reader = sdk({ apiKey: env.LEVIATHAN_TEST_READONLY_KEY });
    await rejectsWith(reader.intelligence.deposits.create({ amount: "1", method: "bank_transfer" }), ForbiddenError);
  });

  test("withdrawals: create, get, list, cancel; errors", async () => {
    const withdrawal = await I.withdrawals.create({ amount: "20", destination: "IBAN DE00 1234" });
    assert.equal(withdrawal.status, "pending");
    assert.equal((await I.withdrawals.get(withdrawal.id)).destination, "IBAN DE00 1234");
    await rejectsWith(I.withdrawals.get("wd_nope"), NotFoundError);
    const listed = await I.withdrawals.list({ status: "pending" }).toArray();
    assert.ok(listed.some((w) => w.id === withdrawal.id));
    await rejectsWith(I.withdrawals.list({ status: "bogus" }), InvalidParamsError);
    assert.equal((await I.withdrawals.cancel(withdrawal.id)).status, "cancelled");
    await rejectsWith(I.withdrawals.cancel(withdrawal.id), WithdrawalNotPendingError, "withdrawal_not_pending");
    await rejectsWith(I.withdrawals.create({ amount: "900000", destination: "IBAN" }), InsufficientFundsError, "insufficient_funds");
  });

  test("reports: create, wait, get, list, download (CSV and JSON); errors", async () => {
    const today = new Date().toISOString().slice(0, 10);
    const report = await I.reports.create({ type: "transactions", from: "2026-01-01", to: today });
    assert.ok(["pending", "running", "ready"].includes(report.status));
    const ready = await I.reports.waitUntilReady(report.id, { intervalMs: 100 });
    assert.equal(ready.status, "ready");
    assert.equal((await I.reports.get(report.id)).id, report.id);
    await rejectsWith(I.reports.get("rep_nope"), NotFoundError);
    const csv = await I.reports.download(ready);
    assert.match(csv.contentType, /csv/);
    assert.match(csv.text.split("\n")[0], /journal_id/);
    const json = await I.reports.create({ type: "positions", from: "2026-01-01", to: today, format: "json" });
    await I.reports.waitUntilReady(json.id, { intervalMs: 100 });
    const file = await I.reports.download(json.id);
    assert.ok(Array.isArray(file.json()) || typeof file.json() === "object");
    const reports = await I.reports.list({ limit: 1 }).toArray();
    assert.ok(reports.length >= 2);
    await rejectsWith(I.reports.list({ limit: 0 }), InvalidParamsError);
    await rejectsWith(I.reports.create({ type: "transactions", from: today, to: "2026-01-01" }), InvalidParamsError);
    await rejectsWith(
      client.transport.request("reports_download", { pathParams: { report_id: report.id }, query: { token: "forged" }, anonymous: true, noAccount: true }),
      ForbiddenError,
    );
  });

  test("linked account: status and sync; a custodial account is not linked (404)", async () => {
    const linked = sdk({ apiKey: env.LEVIATHAN_TEST_LINKED_KEY });
    const status = await linked.intelligence.linkedAccount.get();
    assert.equal(status.venue, "kalshi");
    assert.equal(status.cash, "1250.000000");
    const synced = await linked.intelligence.linkedAccount.sync();
    assert.equal(synced.accountId, status.accountId);
    await rejectsWith(I.linkedAccount.get(), NotFoundError);
    await rejectsWith(I.linkedAccount.sync(), NotFoundError);
  });

  test("positions.close: part of a position; nothing to close is a 404", async () => {
    const before = (await I.positions()).find((p) => p.symbol === "TRUMP-WIN");
    const order = await I.positions.close("TRUMP-WIN", { percent: "10" });
    assert.equal(order.side, "sell");
    assert.match(order.clientOrderId, /^lev-/);
    const after = (await I.positions()).find((p) => p.symbol === "TRUMP-WIN");
    assert.ok(Number(after.quantity) < Number(before.quantity));
    await rejectsWith(I.positions.close("BTC-PERP"), NotFoundError);
  });

  test("signing: a key with a public key must sign writes; the SDK signs them", async () => {
    const key = env.LEVIATHAN_TEST_SIGNED_KEY;
    const unsigned = sdk({ apiKey: key, maxRetries: 0 });
    await rejectsWith(unsigned.intelligence.execute({ symbol: "TRUMP-WIN", side: "buy", notionalUsdc: "10" }), UnauthorizedError, "unauthorized");
    const signed = sdk({ apiKey: key, signingKey: env.LEVIATHAN_TEST_SIGNING_SEED });
    const order = await signed.intelligence.execute({ symbol: "TRUMP-WIN", side: "buy", notionalUsdc: "10" });
    assert.equal(order.status, "filled");
    const resting = await signed.intelligence.orders.create({ symbol: "BTC-PERP", side: "buy", quantity: "0.01", price: "50000" });
    assert.equal((await signed.intelligence.orders.modify(resting.id, { price: "50001" })).price, "50001.00000000");
    assert.equal((await signed.intelligence.orders.cancel(resting.id)).status, "cancelled");
    // Reads need no signature.
    assert.equal((await unsigned.intelligence.positions()).length, 1);
    // A wrong key's signature is refused.
    const wrong = sdk({ apiKey: key, signingKey: "11".repeat(32), maxRetries: 0 });
    await rejectsWith(wrong.intelligence.orders.create({ symbol: "BTC-PERP", side: "buy", quantity: "0.01", price: "50000" }), UnauthorizedError);
  });

  test("timeouts: a call with no answer in time fails with ApiTimeoutError, after its retries", async () => {
    const sockets = [];
    const silent = net.createServer((socket) => sockets.push(socket)); // accepts, never answers
    await new Promise((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const retries = [];
      const slow = new Leviathan({
        baseUrl: `http://127.0.0.1:${silent.address().port}/v1`,
        timeoutMs: 200,
        maxRetries: 1,
        retryBaseDelayMs: 10,
        onRetry: (info) => retries.push(info),
      });
      const started = Date.now();
      await rejectsWithClass(slow.intelligence.account(), ApiTimeoutError);
      assert.equal(retries.length, 1);
      assert.equal(retries[0].reason, "timeout");
      assert.ok(Date.now() - started >= 400);
      // A per-call timeout overrides the client's.
      await rejectsWithClass(slow.intelligence.margin({ timeoutMs: 50, maxRetries: 0 }), ApiTimeoutError);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test("every operation of the document was exercised: a success and an API error each", async () => {
    // Give the report downloads' and others' records a moment (all awaited already).
    await sleep(0);
    const all = Object.keys(OPERATIONS).sort();
    assert.deepEqual(all.filter((op) => !record.ok.has(op)), [], "operations without a happy path");
    assert.deepEqual(all.filter((op) => !record.failed.has(op)), [], "operations without an error");
  });

  after(() => undefined);
});
