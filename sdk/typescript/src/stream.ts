// The partner stream (`/v1/stream`): seed 000's channels and seed 002's commands on one
// WebSocket, with the resilience a long-lived connection needs:
//
// - authentication (`{"op":"auth","key"}`) on every (re)connect;
// - subscribe / unsubscribe, typed messages per channel (camelCase, decimals as strings);
// - sequence numbers checked per subscription: on a gap, a fresh snapshot is asked for
//   (`{"op":"snapshot"}`) and the order-book helper waits for it before applying updates;
// - reconnect with exponential back-off and jitter, restoring every subscription (each
//   starts again with a snapshot); a refused key (4401/4403) is final;
// - a staleness watchdog: pings when idle, and reconnects when nothing (not even a pong)
//   arrived within `staleAfterMs`;
// - seed 002 commands (get/set leverage, levels, add/modify/cancel order) answered as
//   their REST twins, with typed errors;
// - `orderBook(marketId)`: a local book kept from snapshot + updates.
//
// Only the standard WebSocket API is used (`onopen`, `onmessage`, …): pass a constructor
// (`WebSocket` option) where there is no global one (Node 20: the `ws` package).

import { fromWire, toWire } from "./convert.js";
import { addDecimal, compareDecimal, isZeroDecimal } from "./decimal.js";
import { ApiError, StreamClosedError, apiErrorFor, LeviathanError } from "./errors.js";
import {
  SCHEMAS,
  type BookLevel,
  type DateTime,
  type Decimal,
  type Fill,
  type Leverage,
  type LeverageLevelsList,
  type LeverageResult,
  type Margin,
  type Order,
  type OrderPlaceInputRequest,
  type Position,
  type BalancesOutput,
  type FieldShape,
  type SchemaTable,
} from "./models.js";
import { canonicalJson, makeSigner, signMessage, type Signer, type SigningKey } from "./signing.js";
import { backoffDelay, envVar, newClientOrderId, DEFAULT_STREAM_URL } from "./transport.js";

/** The standard WebSocket surface this client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type WebSocketConstructor = new (url: string, ...rest: any[]) => any;

export interface StreamOptions {
  apiKey: string;
  /** Default: env LEVIATHAN_STREAM_URL, else wss://stream.leviathan.global/v1. A URL that
   * does not end in /stream gets it appended (`wss://…/v1` → `wss://…/v1/stream`). */
  url?: string;
  /** Default: the global WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Signs write commands (keys registered with a public key must). */
  signingKey?: SigningKey;
  /** Default account for commands and seed 002 subscriptions. */
  accountId?: string;
  /** Reconnect after a drop (default true). */
  reconnect?: boolean;
  reconnectBaseDelayMs?: number;
  reconnectMaxDelayMs?: number;
  /** Give up after this many failed reconnects in a row (default: never). */
  maxReconnectAttempts?: number;
  /** Send a ping after this long without a message (default 10,000 ms). */
  pingIntervalMs?: number;
  /** Reconnect when nothing, not even a pong, arrived for this long (default 30,000 ms). */
  staleAfterMs?: number;
  /** Open + authenticate within this long (default 15,000 ms). */
  connectTimeoutMs?: number;
  /** A command or subscription not answered within this long is rejected (default 30,000 ms). */
  requestTimeoutMs?: number;
}

// --- typed messages ---------------------------------------------------------------------

export type MarketChannel = "orderbook" | "trades";
export type AccountChannel = "account" | "positions";
export type SeedChannel = "v4_positions" | "v4_balances" | "v4_orders";
export type Channel = MarketChannel | AccountChannel | SeedChannel;

export interface StreamVenueBook {
  venue: string;
  ts?: DateTime;
  bids: BookLevel[];
  asks: BookLevel[];
}

interface Sequenced {
  channel: string;
  seq: number;
}

export interface OrderBookSnapshotMessage extends Sequenced {
  channel: "orderbook";
  type: "snapshot";
  marketId: string;
  ts: DateTime;
  books: StreamVenueBook[];
}

export interface OrderBookUpdateMessage extends Sequenced {
  channel: "orderbook";
  type: "update";
  marketId: string;
  ts?: DateTime;
  /** Only the levels that changed; size "0": the level is gone. */
  books: StreamVenueBook[];
}

export interface PublicTrade {
  id: string;
  venue: string;
  /** The taker's side. */
  side: "buy" | "sell" | (string & {});
  price: Decimal;
  size: Decimal;
  ts: DateTime;
}

export interface TradesMessage extends Sequenced {
  channel: "trades";
  type: "trades";
  marketId: string;
  trades: PublicTrade[];
}

export interface AccountState {
  accountId: string;
  positions: Position[];
  /** `account` snapshots. */
  openOrders?: Order[];
  /** `positions` snapshots. */
  margin?: Margin;
}

export interface AccountSnapshotMessage extends Sequenced {
  channel: "account" | "positions";
  type: "snapshot";
  ts: DateTime;
  accounts: AccountState[];
}

interface AccountEventBase extends Sequenced {
  channel: "account" | "positions";
  accountId: string;
}

export type OrderEvent = AccountEventBase & { type: "order" } & Order;
export type FillEvent = AccountEventBase & { type: "fill" } & Fill;
export type PositionEvent = AccountEventBase & { type: "position" } & Position;
/** GET margin's headline figures. */
export type MarginEvent = AccountEventBase & { type: "margin" } & Pick<
  Margin,
  "cash" | "usedMargin" | "adjustedEquity" | "availableMargin" | "health" | "marginUtilization" | "status" | "availableCredit" | "asOf" | "stale" | "staleSince"
>;
export type LeverageEvent = AccountEventBase & { type: "leverage" } & Omit<LeverageResult, "requestId" | "accountId" | "message">;
export type MarginCallEvent = AccountEventBase & {
  type: "margin_call";
  marginCallId: string;
  status: string;
  health: Decimal | null;
  openedAt: DateTime;
  resolvedAt: DateTime | null;
};

/** Seed 002's framing: `subscribed` (first) then `channel_data`, numbered by messageId. */
export interface SeedChannelMessage {
  type: "subscribed" | "channel_data";
  channel: SeedChannel;
  connectionId: string;
  messageId: number;
  /** The account. */
  id: string;
  contents: Position[] | BalancesOutput[] | Order[];
}

export type AccountEventMessage = OrderEvent | FillEvent | PositionEvent | MarginEvent | LeverageEvent | MarginCallEvent;

export type StreamMessage =
  | OrderBookSnapshotMessage
  | OrderBookUpdateMessage
  | TradesMessage
  | AccountSnapshotMessage
  | AccountEventMessage
  | SeedChannelMessage;

// Conversion tables for the stream's own shapes (the REST objects reuse SCHEMAS).
const same = (...names: string[]): SchemaTable =>
  Object.fromEntries(names.map((name) => [name, [name, null] as const]));
const FRAME: SchemaTable = { ...same("channel", "seq", "type", "ts"), market_id: ["marketId", null], account_id: ["accountId", null] };
const STREAM_TABLES: Record<string, SchemaTable> = {
  ...SCHEMAS,
  StreamVenueBook: { ...same("venue", "ts"), bids: ["bids", { array: "BookLevel" }], asks: ["asks", { array: "BookLevel" }] },
  StreamOrderBook: { ...FRAME, books: ["books", { array: "StreamVenueBook" }] },
  StreamTrade: same("id", "venue", "side", "price", "size", "ts"),
  StreamTrades: { ...FRAME, trades: ["trades", { array: "StreamTrade" }] },
  StreamAccountState: {
    account_id: ["accountId", null],
    positions: ["positions", { array: "Position" }],
    open_orders: ["openOrders", { array: "Order" }],
    margin: ["margin", "Margin"],
  },
  StreamAccountSnapshot: { ...FRAME, accounts: ["accounts", { array: "StreamAccountState" }] },
  StreamOrderEvent: { ...SCHEMAS.Order, ...FRAME },
  StreamFillEvent: { ...SCHEMAS.Fill, ...FRAME },
  StreamPositionEvent: { ...SCHEMAS.Position, ...FRAME },
  StreamMarginEvent: { ...SCHEMAS.Margin, ...FRAME },
  StreamLeverageEvent: { ...SCHEMAS.LeverageResult, ...FRAME },
  StreamMarginCallEvent: {
    ...FRAME,
    margin_call_id: ["marginCallId", null],
    status: ["status", null],
    health: ["health", null],
    opened_at: ["openedAt", null],
    resolved_at: ["resolvedAt", null],
  },
  SeedFrame: { ...same("type", "channel", "id"), connection_id: ["connectionId", null], message_id: ["messageId", null] },
};
const ACCOUNT_EVENT_TABLE: Record<string, string> = {
  order: "StreamOrderEvent",
  fill: "StreamFillEvent",
  position: "StreamPositionEvent",
  margin: "StreamMarginEvent",
  leverage: "StreamLeverageEvent",
  margin_call: "StreamMarginCallEvent",
};
const SEED_CONTENTS: Record<string, string> = { v4_positions: "Position", v4_balances: "BalancesOutput", v4_orders: "Order" };

function convertMessage(raw: Record<string, unknown>): StreamMessage {
  const channel = raw.channel;
  const type = raw.type;
  let table: string | null = null;
  if (channel === "orderbook") table = "StreamOrderBook";
  else if (channel === "trades") table = "StreamTrades";
  else if (channel === "account" || channel === "positions") {
    table = type === "snapshot" ? "StreamAccountSnapshot" : ACCOUNT_EVENT_TABLE[String(type)] ?? null;
    if (table === null) return fromWire(raw, "StreamMarginCallEvent", { ...STREAM_TABLES, StreamMarginCallEvent: FRAME }); // unknown event: frame converted, rest kept
  } else if (typeof channel === "string" && channel in SEED_CONTENTS) {
    const frame = fromWire<Record<string, unknown>>(raw, "SeedFrame", STREAM_TABLES);
    frame.contents = fromWire(raw.contents, { array: SEED_CONTENTS[channel] } as FieldShape, STREAM_TABLES);
    return frame as unknown as SeedChannelMessage;
  }
  return fromWire(raw, table, STREAM_TABLES);
}

// --- subscriptions ------------------------------------------------------------------------

export interface SubscribeSpec {
  channel: Channel;
  /** orderbook / trades: `TRUMP-WIN`, `TRUMP-WIN:NO`, `BTC-PERP`. */
  marketId?: string;
  /** account / positions: one account (default: every account of the key); seed 002
   * channels: the account (default: the client's, or the key's only one). */
  accountId?: string;
}

type Listener<T> = (value: T) => void;

/** `TRUMP-WIN:yes` → `TRUMP-WIN`, `trump-win:no` keeps its base: `trump-win:NO` (as the server keys it). */
export function canonicalMarketId(marketId: string): string {
  const trimmed = marketId.trim();
  const at = trimmed.indexOf(":");
  if (at < 0) return trimmed;
  const base = trimmed.slice(0, at);
  const outcome = trimmed.slice(at + 1).toUpperCase();
  return outcome === "" || outcome === "YES" ? base : `${base}:${outcome}`;
}

const MARKET_CHANNELS = new Set(["orderbook", "trades"]);
const SEED_CHANNELS = new Set(["v4_positions", "v4_balances", "v4_orders"]);

/** One subscription: its messages, in order, with gaps detected. */
export class Subscription<M = StreamMessage> {
  readonly channel: Channel;
  readonly marketId: string | undefined;
  readonly accountId: string | undefined;
  /** The last sequence number seen (messageId for seed 002 channels). */
  lastSeq: number | undefined;
  /** False from a detected gap until the fresh snapshot arrives. */
  synced = true;
  private readonly listeners = new Set<Listener<M>>();
  private readonly gapListeners = new Set<Listener<{ expected: number; received: number }>>();

  constructor(
    private readonly stream: LeviathanStream,
    spec: SubscribeSpec,
  ) {
    this.channel = spec.channel;
    this.marketId = spec.marketId === undefined ? undefined : canonicalMarketId(spec.marketId);
    this.accountId = spec.accountId;
  }

  get key(): string {
    return subscriptionKey(this.channel, this.marketId ?? this.accountId);
  }

  /** Calls `listener` with each message; returns a function that stops it. */
  on(listener: Listener<M>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onGap(listener: Listener<{ expected: number; received: number }>): () => void {
    this.gapListeners.add(listener);
    return () => this.gapListeners.delete(listener);
  }

  /** Async iteration over the messages (until the stream closes or `break`). */
  async *[Symbol.asyncIterator](): AsyncGenerator<M, void, undefined> {
    const queue: M[] = [];
    let wake: (() => void) | undefined;
    const off = this.on((message) => {
      queue.push(message);
      wake?.();
    });
    const offClose = this.stream.on("close", () => wake?.());
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        if (this.stream.state === "closed") return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      off();
      offClose();
    }
  }

  unsubscribe(): Promise<void> {
    return this.stream.unsubscribe(this);
  }

  /** @internal */
  deliver(message: M): void {
    for (const listener of this.listeners) listener(message);
  }

  /** @internal */
  gap(expected: number, received: number): void {
    for (const listener of this.gapListeners) listener({ expected, received });
  }
}

function subscriptionKey(channel: string, target: string | undefined): string {
  return `${channel}|${target ?? "*"}`;
}

// --- the order-book helper --------------------------------------------------------------------

export interface VenueLevel extends BookLevel {
  venue: string;
}

/** A local order book kept from the `orderbook` channel: a snapshot, then updates (size
 * "0" removes a level). After a sequence gap it ignores updates until the fresh snapshot
 * (`synced` false meanwhile). Prices and sizes stay decimal strings. */
export class LiveOrderBook {
  readonly marketId: string;
  /** Time of the last snapshot or update applied. */
  ts: DateTime | undefined;
  private readonly venueBooks = new Map<string, { bids: Map<string, string>; asks: Map<string, string>; ts?: DateTime }>();
  private readonly listeners = new Set<Listener<LiveOrderBook>>();
  private hasSnapshot = false;
  private readonly off: () => void;

  constructor(readonly subscription: Subscription) {
    this.marketId = subscription.marketId ?? "";
    this.off = subscription.on((message) => this.apply(message as OrderBookSnapshotMessage | OrderBookUpdateMessage));
  }

  /** Whether the book is a true copy (a snapshot applied and no gap since). */
  get synced(): boolean {
    return this.hasSnapshot && this.subscription.synced;
  }

  /** @internal */
  apply(message: OrderBookSnapshotMessage | OrderBookUpdateMessage): void {
    if (message.type === "snapshot") {
      this.venueBooks.clear();
      for (const book of message.books) {
        const entry = { bids: new Map<string, string>(), asks: new Map<string, string>(), ts: book.ts };
        for (const level of book.bids) if (!isZeroDecimal(level.size)) entry.bids.set(level.price, level.size);
        for (const level of book.asks) if (!isZeroDecimal(level.size)) entry.asks.set(level.price, level.size);
        this.venueBooks.set(book.venue, entry);
      }
      this.hasSnapshot = true;
    } else if (message.type === "update") {
      if (!this.synced) return; // after a gap: wait for the snapshot
      for (const book of message.books) {
        let entry = this.venueBooks.get(book.venue);
        if (entry === undefined) {
          entry = { bids: new Map(), asks: new Map() };
          this.venueBooks.set(book.venue, entry);
        }
        entry.ts = book.ts ?? entry.ts;
        for (const [levels, side] of [
          [book.bids, entry.bids],
          [book.asks, entry.asks],
        ] as const) {
          for (const level of levels) {
            if (isZeroDecimal(level.size)) side.delete(level.price);
            else side.set(level.price, level.size);
          }
        }
      }
    } else {
      return;
    }
    this.ts = message.ts ?? this.ts;
    for (const listener of this.listeners) listener(this);
  }

  /** The venues with a book. */
  venues(): string[] {
    return [...this.venueBooks.keys()];
  }

  /** Bids best (highest) first: one venue's, or every venue's merged (sizes added). */
  bids(venue?: string): BookLevel[] {
    return this.side("bids", venue).sort((a, b) => compareDecimal(b.price, a.price));
  }

  /** Asks best (lowest) first: one venue's, or every venue's merged (sizes added). */
  asks(venue?: string): BookLevel[] {
    return this.side("asks", venue).sort((a, b) => compareDecimal(a.price, b.price));
  }

  /** The best bid across venues (with its venue), or null. */
  bestBid(): VenueLevel | null {
    return this.best("bids", (a, b) => compareDecimal(a, b) > 0);
  }

  /** The best ask across venues (with its venue), or null. */
  bestAsk(): VenueLevel | null {
    return this.best("asks", (a, b) => compareDecimal(a, b) < 0);
  }

  /** Calls `listener` after each snapshot or update applied. */
  onUpdate(listener: Listener<LiveOrderBook>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops following the market (unsubscribes). */
  async close(): Promise<void> {
    this.off();
    await this.subscription.unsubscribe();
  }

  private side(name: "bids" | "asks", venue?: string): BookLevel[] {
    const merged = new Map<string, string>();
    for (const [key, book] of this.venueBooks) {
      if (venue !== undefined && key !== venue) continue;
      for (const [price, size] of book[name]) {
        const before = merged.get(price);
        merged.set(price, before === undefined ? size : addDecimal(before, size));
      }
    }
    return [...merged].map(([price, size]) => ({ price, size }));
  }

  private best(name: "bids" | "asks", better: (a: string, b: string) => boolean): VenueLevel | null {
    let found: VenueLevel | null = null;
    for (const [venue, book] of this.venueBooks) {
      for (const [price, size] of book[name]) {
        if (found === null || better(price, found.price)) found = { venue, price, size };
      }
    }
    return found;
  }
}

// --- the stream client ----------------------------------------------------------------------

export type StreamState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface StreamEvents {
  /** Authenticated (first connect). */
  open: { connectionId: string; accounts: string[]; scopes: string[] };
  /** Authenticated again after a drop; subscriptions are being restored. */
  reconnected: { connectionId: string; attempt: number };
  /** A drop; the next attempt comes after `delayMs`. */
  reconnecting: { attempt: number; delayMs: number; code?: number; reason?: string };
  /** Closed for good (`close()`, a refused key, or reconnects exhausted). */
  close: { code?: number; reason?: string; error?: Error };
  /** Every subscription message (typed, camelCase). */
  message: StreamMessage;
  /** A sequence gap on a subscription (a snapshot has been asked for). */
  gap: { subscription: Subscription; expected: number; received: number };
  /** Nothing arrived for `staleAfterMs`: reconnecting. */
  stale: { idleMs: number };
  /** An error the server sent that answers no pending request, or a socket error. */
  error: Error;
  /** Every raw message as received (parsed JSON, wire names). */
  raw: Record<string, unknown>;
}

interface Pending<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

const FATAL_CLOSE_CODES = new Set([4401, 4403]);
const WRITE_COMMANDS = new Set(["set_leverage", "add_order", "cancel_order", "modify_order"]);

/** Command params: the REST body's camelCase model (plus account/order addressing). */
export type OrderRef = { orderId: string } | { clientOrderId: string };

export class LeviathanStream {
  readonly url: string;
  state: StreamState = "idle";
  connectionId: string | undefined;
  /** The key's accounts (from the auth reply). */
  accounts: string[] = [];
  scopes: string[] = [];
  private readonly options: Required<Pick<StreamOptions, "reconnect" | "reconnectBaseDelayMs" | "reconnectMaxDelayMs" | "maxReconnectAttempts" | "pingIntervalMs" | "staleAfterMs" | "connectTimeoutMs" | "requestTimeoutMs">> & StreamOptions;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly signer: Signer | undefined;
  private socket: WebSocketLike | undefined;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly pendingAcks = new Map<string, Pending<void>>();
  private readonly pendingCommands = new Map<string, Pending<unknown> & { command: string }>();
  private readonly pendingPings = new Map<string, Pending<number>>();
  private readonly listeners = new Map<keyof StreamEvents, Set<Listener<never>>>();
  private connecting: Promise<void> | undefined;
  private connectSettle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private everOpened = false;
  private attempt = 0;
  private lastMessageAt = 0;
  private lastPingAt = 0;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private authTimer: ReturnType<typeof setTimeout> | undefined;
  private counter = 0;
  private retryAfterMs: number | undefined;
  private closeError: Error | undefined;

  constructor(options: StreamOptions) {
    this.options = {
      reconnect: true,
      reconnectBaseDelayMs: 500,
      reconnectMaxDelayMs: 15_000,
      maxReconnectAttempts: Number.POSITIVE_INFINITY,
      pingIntervalMs: 10_000,
      staleAfterMs: 30_000,
      connectTimeoutMs: 15_000,
      requestTimeoutMs: 30_000,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    } as LeviathanStream["options"];
    let url = options.url ?? envVar("LEVIATHAN_STREAM_URL") ?? DEFAULT_STREAM_URL;
    url = url.replace(/\/+$/, "");
    if (!/\/stream$/.test(url)) url += "/stream";
    this.url = url;
    const impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (impl === undefined) {
      throw new LeviathanError(
        "This runtime has no global WebSocket: pass one, e.g. new Leviathan({ …, WebSocket }) with `import { WebSocket } from \"ws\"` on Node 20.",
      );
    }
    this.WebSocketImpl = impl;
    this.signer = options.signingKey === undefined ? undefined : makeSigner(options.signingKey);
  }

  // -- events ------------------------------------------------------------------------------

  /** Listens to an event; returns a function that stops listening. */
  on<E extends keyof StreamEvents>(event: E, listener: Listener<StreamEvents[E]>): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as Listener<never>);
    return () => set!.delete(listener as Listener<never>);
  }

  private emit<E extends keyof StreamEvents>(event: E, value: StreamEvents[E]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        (listener as Listener<StreamEvents[E]>)(value);
      } catch (error) {
        if (event !== "error") this.emit("error", error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  // -- connection ----------------------------------------------------------------------------

  /** Opens the socket and authenticates (resolves when authenticated). A refused key
   * rejects with its ApiError (UnauthorizedError, ForbiddenError, RateLimitedError). */
  connect(): Promise<void> {
    if (this.state === "open") return Promise.resolve();
    if (this.state === "closed") return Promise.reject(new StreamClosedError("The stream is closed.", undefined));
    if (this.connecting === undefined) {
      this.connecting = new Promise<void>((resolve, reject) => {
        this.connectSettle = { resolve, reject };
      });
      this.connecting.catch(() => undefined);
      if (this.state === "idle") this.open();
    }
    return this.connecting;
  }

  /** Closes the socket for good (no reconnect); pending requests are rejected. */
  close(code = 1000, reason = "client closed"): void {
    if (this.state === "closed") return;
    const error = new StreamClosedError("The stream was closed by the client.", code);
    this.shutdown(error, code, reason);
    try {
      this.socket?.close(code, reason);
    } catch {
      // already closing
    }
  }

  private open(): void {
    this.state = this.everOpened ? "reconnecting" : "connecting";
    this.retryAfterMs = undefined;
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketImpl(this.url) as WebSocketLike;
    } catch (error) {
      this.dropped(undefined, undefined, error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.socket = socket;
    this.authTimer = setTimeout(() => {
      if (this.socket === socket && this.state !== "open") {
        this.detach(socket);
        this.dropped(undefined, "no authentication reply in time", new StreamClosedError("Timed out connecting."));
      }
    }, this.options.connectTimeoutMs);
    socket.onopen = () => {
      if (this.socket !== socket) return;
      socket.send(JSON.stringify({ op: "auth", key: this.options.apiKey }));
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.received(event.data);
    };
    socket.onerror = (event) => {
      if (this.socket !== socket) return;
      const message = (event as { message?: string })?.message;
      this.emit("error", new StreamClosedError(`WebSocket error${message ? `: ${message}` : ""}`));
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.detach(socket);
      this.dropped(event.code, event.reason, undefined);
    };
  }

  private detach(socket: WebSocketLike): void {
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
    if (this.socket === socket) this.socket = undefined;
    clearTimeout(this.authTimer);
    try {
      socket.close(4000, "dropped by the client");
    } catch {
      // nothing to do
    }
  }

  private dropped(code: number | undefined, reason: string | undefined, error: Error | undefined): void {
    if (this.state === "closed") return;
    this.stopWatchdog();
    const lost = new StreamClosedError(`The stream connection was lost${code ? ` (${code}${reason ? `: ${reason}` : ""})` : ""}.`, code);
    this.rejectPending(lost);
    const fatal = (code !== undefined && FATAL_CLOSE_CODES.has(code)) || this.closeError !== undefined;
    if (fatal) {
      this.shutdown(this.closeError ?? error ?? lost, code, reason);
      return;
    }
    if (!this.everOpened && this.attempt === 0 && this.connectSettle !== undefined && !this.options.reconnect) {
      this.shutdown(error ?? lost, code, reason);
      return;
    }
    if (!this.options.reconnect || this.attempt >= this.options.maxReconnectAttempts) {
      this.shutdown(error ?? lost, code, reason);
      return;
    }
    if (!this.everOpened && this.attempt >= 2) {
      // The first connect gives up after three tries: a wrong URL or key should fail fast.
      this.shutdown(error ?? lost, code, reason);
      return;
    }
    const delayMs = Math.max(this.retryAfterMs ?? 0, backoffDelay(this.attempt, this.options.reconnectBaseDelayMs, this.options.reconnectMaxDelayMs));
    this.attempt += 1;
    this.state = "reconnecting";
    for (const subscription of this.subscriptions.values()) {
      subscription.synced = false;
      subscription.lastSeq = undefined;
    }
    this.emit("reconnecting", { attempt: this.attempt, delayMs, code, reason });
    this.reconnectTimer = setTimeout(() => this.open(), delayMs);
  }

  private shutdown(error: Error, code?: number, reason?: string): void {
    this.state = "closed";
    this.stopWatchdog();
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.authTimer);
    if (this.socket !== undefined) this.detach(this.socket);
    this.rejectPending(error);
    this.connectSettle?.reject(error);
    this.connectSettle = undefined;
    this.emit("close", { code, reason, error });
  }

  private rejectPending(error: Error): void {
    for (const map of [this.pendingAcks, this.pendingCommands, this.pendingPings] as Map<string, Pending<never>>[]) {
      for (const pending of map.values()) {
        clearTimeout(pending.timer);
        pending.reject(error);
      }
      map.clear();
    }
  }

  private authenticated(message: Record<string, unknown>): void {
    clearTimeout(this.authTimer);
    const reconnected = this.everOpened;
    const attempt = this.attempt;
    this.state = "open";
    this.everOpened = true;
    this.attempt = 0;
    this.connectionId = String(message.connection_id ?? "");
    this.accounts = Array.isArray(message.accounts) ? (message.accounts as string[]) : [];
    this.scopes = Array.isArray(message.scopes) ? (message.scopes as string[]) : [];
    this.startWatchdog();
    this.connectSettle?.resolve();
    this.connectSettle = undefined;
    this.connecting = undefined;
    if (reconnected) {
      this.emit("reconnected", { connectionId: this.connectionId, attempt });
      for (const subscription of this.subscriptions.values()) this.restore(subscription, 0);
    } else {
      this.emit("open", { connectionId: this.connectionId, accounts: this.accounts, scopes: this.scopes });
    }
  }

  /** Re-subscribes after a reconnect; a refusal for the rate limit is retried after its
   * retry_after (with back-off), any other is reported as an `error` event. */
  private restore(subscription: Subscription, attempt: number): void {
    this.sendSubscribe(subscription).catch((error: Error) => {
      const current = this.subscriptions.get(subscription.key);
      if (current !== subscription || this.state !== "open") return;
      if (error instanceof ApiError && error.code === "rate_limited" && attempt < 5) {
        const delay = Math.max((error.retryAfter ?? 0) * 1000, backoffDelay(attempt, this.options.reconnectBaseDelayMs, this.options.reconnectMaxDelayMs));
        setTimeout(() => {
          if (this.subscriptions.get(subscription.key) === subscription && this.state === "open") this.restore(subscription, attempt + 1);
        }, delay);
        return;
      }
      this.emit("error", error);
    });
  }

  // -- watchdog ------------------------------------------------------------------------------

  private startWatchdog(): void {
    this.stopWatchdog();
    this.lastMessageAt = Date.now();
    const every = Math.max(50, Math.min(this.options.pingIntervalMs, this.options.staleAfterMs) / 4);
    this.watchdog = setInterval(() => this.watch(), every);
  }

  private stopWatchdog(): void {
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private watch(): void {
    if (this.state !== "open" || this.socket === undefined) return;
    const idle = Date.now() - this.lastMessageAt;
    if (idle >= this.options.staleAfterMs) {
      this.emit("stale", { idleMs: idle });
      const socket = this.socket;
      this.detach(socket);
      this.dropped(4000, "stale: nothing received in time", undefined);
      return;
    }
    if (idle >= this.options.pingIntervalMs && Date.now() - this.lastPingAt >= this.options.pingIntervalMs) {
      this.lastPingAt = Date.now();
      this.sendRaw({ op: "ping", id: this.nextId("watchdog") });
    }
  }

  // -- receiving -----------------------------------------------------------------------------

  private received(data: unknown): void {
    this.lastMessageAt = Date.now();
    let text: string;
    if (typeof data === "string") text = data;
    else if (data instanceof ArrayBuffer) text = new TextDecoder().decode(data);
    else if (ArrayBuffer.isView(data)) text = new TextDecoder().decode(data as ArrayBufferView);
    else text = String(data);
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text) as Record<string, unknown>;
    } catch {
      this.emit("error", new LeviathanError(`The stream sent something that is not JSON: ${text.slice(0, 200)}`));
      return;
    }
    if (typeof message !== "object" || message === null) return;
    this.emit("raw", message);
    const type = message.type;
    if (type === "authenticated") {
      this.authenticated(message);
      return;
    }
    if (type === "pong") {
      const id = String(message.id ?? "");
      const pending = this.pendingPings.get(id);
      if (pending !== undefined) {
        this.pendingPings.delete(id);
        clearTimeout(pending.timer);
        pending.resolve(Date.now());
      }
      return;
    }
    if (type === "result") {
      this.commandAnswered(message);
      return;
    }
    if (type === "error") {
      this.errorReceived(message);
      return;
    }
    if ((type === "subscribed" || type === "unsubscribed") && !("contents" in message)) {
      const target = message.market_id ?? message.account_id ?? message.id;
      const key = subscriptionKey(String(message.channel), target === undefined ? undefined : String(target));
      this.ack(`${type === "subscribed" ? "sub" : "unsub"}:${key}`, undefined);
      return;
    }
    if (type === "subscribed" || type === "channel_data") {
      const key = subscriptionKey(String(message.channel), String(message.id));
      if (type === "subscribed") this.ack(`sub:${key}`, undefined);
      this.route(this.subscriptions.get(key), Number(message.message_id), message);
      return;
    }
    if (typeof message.channel === "string" && typeof message.seq === "number") {
      this.route(this.findSubscription(message), message.seq, message);
    }
  }

  private findSubscription(message: Record<string, unknown>): Subscription | undefined {
    const channel = String(message.channel);
    if (MARKET_CHANNELS.has(channel)) {
      return this.subscriptions.get(subscriptionKey(channel, canonicalMarketId(String(message.market_id ?? ""))));
    }
    const ofChannel = [...this.subscriptions.values()].filter((s) => s.channel === channel);
    if (ofChannel.length <= 1) return ofChannel[0];
    const accountId = message.account_id;
    return (
      ofChannel.find((s) => s.accountId !== undefined && s.accountId === accountId) ??
      ofChannel.find((s) => s.accountId === undefined)
    );
  }

  private route(subscription: Subscription | undefined, seq: number, raw: Record<string, unknown>): void {
    if (subscription === undefined) return; // unsubscribed meanwhile
    const snapshot = raw.type === "snapshot" || raw.type === "subscribed";
    if (subscription.lastSeq !== undefined && Number.isFinite(seq)) {
      if (seq <= subscription.lastSeq) return; // already seen
      if (seq !== subscription.lastSeq + 1) {
        const expected = subscription.lastSeq + 1;
        subscription.synced = false;
        subscription.gap(expected, seq);
        this.emit("gap", { subscription, expected, received: seq });
        this.resync(subscription);
      }
    }
    if (Number.isFinite(seq)) subscription.lastSeq = seq;
    if (snapshot) subscription.synced = true;
    else if (subscription.channel === "trades" || subscription.channel === "v4_positions" || subscription.channel === "v4_balances") {
      subscription.synced = true; // events / full pulses: nothing to rebuild
    }
    const message = convertMessage(raw);
    subscription.deliver(message);
    this.emit("message", message);
  }

  /** After a gap: a fresh snapshot (numbered in the subscription's sequence). */
  private resync(subscription: Subscription): void {
    if (subscription.channel === "trades") return; // events: nothing to re-read
    if (SEED_CHANNELS.has(subscription.channel)) {
      if (subscription.channel === "v4_orders") {
        // Re-subscribe: the fresh `subscribed` frame carries every open order.
        this.sendRaw({ type: "unsubscribe", channel: subscription.channel, account_id: subscription.accountId });
        subscription.lastSeq = undefined;
        this.sendSubscribe(subscription).catch((error: Error) => this.emit("error", error));
      }
      return;
    }
    this.sendRaw(this.target({ op: "snapshot", channel: subscription.channel }, subscription));
  }

  private ack(key: string, value: undefined): void {
    const pending = this.pendingAcks.get(key);
    if (pending === undefined) return;
    this.pendingAcks.delete(key);
    clearTimeout(pending.timer);
    pending.resolve(value);
  }

  private errorReceived(message: Record<string, unknown>): void {
    const error = apiErrorFor({
      code: String(message.code ?? "internal_error"),
      message: String(message.message ?? "The stream refused the request."),
      status: typeof message.status === "number" ? message.status : 0,
      retryAfter: typeof message.retry_after === "number" ? message.retry_after : null,
      body: message,
      operation: typeof message.command === "string" ? message.command : typeof message.op === "string" ? message.op : undefined,
    });
    if (typeof message.command === "string" && message.id !== undefined && this.pendingCommands.has(String(message.id))) {
      this.settleCommand(String(message.id), undefined, error);
      return;
    }
    const op = message.op ?? (message.command === "subscribe" || message.command === "unsubscribe" ? message.command : undefined);
    if (op === "subscribe" || op === "unsubscribe") {
      const channel = String(message.channel ?? "");
      let target: string | undefined;
      if (MARKET_CHANNELS.has(channel)) target = message.market_id === undefined ? undefined : canonicalMarketId(String(message.market_id));
      else target = message.account_id === undefined ? undefined : String(message.account_id);
      const key = `${op === "subscribe" ? "sub" : "unsub"}:${subscriptionKey(channel, target)}`;
      const pending = this.pendingAcks.get(key);
      if (pending !== undefined) {
        this.pendingAcks.delete(key);
        clearTimeout(pending.timer);
        pending.reject(error);
        return;
      }
    }
    if (op === "ping" && message.id !== undefined) {
      const pending = this.pendingPings.get(String(message.id));
      if (pending !== undefined) {
        this.pendingPings.delete(String(message.id));
        clearTimeout(pending.timer);
        pending.reject(error);
        return;
      }
    }
    if (this.state !== "open") {
      // Refused at authentication: the server closes next (4401, 4403, 4429).
      if (error.code === "rate_limited") {
        this.retryAfterMs = error.retryAfter === null ? undefined : error.retryAfter * 1000;
      } else if (error.code === "unauthorized" || error.code === "forbidden") {
        this.closeError = error;
      }
      if (!this.everOpened && this.connectSettle !== undefined && error.code !== "rate_limited") {
        this.connectSettle.reject(error);
        this.connectSettle = undefined;
      }
    } else if (error.code === "unauthorized" || error.code === "forbidden") {
      this.closeError = error; // e.g. the key was revoked: the server closes next
    }
    this.emit("error", error);
  }

  private commandAnswered(message: Record<string, unknown>): void {
    const id = String(message.id ?? "");
    const pending = this.pendingCommands.get(id);
    if (pending === undefined) return;
    const schema = COMMAND_RESULTS[pending.command] ?? null;
    this.settleCommand(id, fromWire(message.data, schema), undefined);
  }

  private settleCommand(id: string, value: unknown, error: ApiError | undefined): void {
    const pending = this.pendingCommands.get(id);
    if (pending === undefined) return;
    this.pendingCommands.delete(id);
    clearTimeout(pending.timer);
    if (error !== undefined) pending.reject(error);
    else pending.resolve(value);
  }

  // -- sending -------------------------------------------------------------------------------

  private nextId(prefix: string): string {
    this.counter += 1;
    return `${prefix}-${this.counter}`;
  }

  private sendRaw(message: Record<string, unknown>): boolean {
    const socket = this.socket;
    if (socket === undefined || this.state !== "open") return false;
    try {
      socket.send(JSON.stringify(message, (_, value) => (value === undefined ? undefined : value)));
      return true;
    } catch (error) {
      this.emit("error", error instanceof Error ? error : new Error(String(error)));
      return false;
    }
  }

  private target(message: Record<string, unknown>, subscription: Subscription): Record<string, unknown> {
    if (MARKET_CHANNELS.has(subscription.channel)) message.market_id = subscription.marketId;
    else if (subscription.accountId !== undefined) message.account_id = subscription.accountId;
    return message;
  }

  private expect<T>(map: Map<string, Pending<T>>, key: string, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const previous = map.get(key);
      if (previous !== undefined) {
        clearTimeout(previous.timer);
        previous.reject(new StreamClosedError(`${what}: superseded by a newer request.`));
      }
      const timer = setTimeout(() => {
        map.delete(key);
        reject(new StreamClosedError(`${what}: no answer within ${this.options.requestTimeoutMs} ms.`));
      }, this.options.requestTimeoutMs);
      map.set(key, { resolve, reject, timer });
    });
  }

  private sendSubscribe(subscription: Subscription): Promise<void> {
    const waiting = this.expect(this.pendingAcks, `sub:${subscription.key}`, `subscribe ${subscription.key}`);
    const message = SEED_CHANNELS.has(subscription.channel)
      ? { type: "subscribe", channel: subscription.channel, account_id: subscription.accountId }
      : this.target({ op: "subscribe", channel: subscription.channel }, subscription);
    this.sendRaw(message);
    return waiting;
  }

  /** Subscribes (connecting first if needed); resolves when the server acknowledges.
   * The subscription survives reconnects: it is restored (with a fresh snapshot) each time. */
  async subscribe<M = StreamMessage>(spec: SubscribeSpec, listener?: Listener<M>): Promise<Subscription<M>> {
    await this.connect();
    let accountId = spec.accountId;
    if (SEED_CHANNELS.has(spec.channel) && accountId === undefined) {
      accountId = this.options.accountId ?? (this.accounts.length === 1 ? this.accounts[0] : undefined);
      if (accountId === undefined) throw new LeviathanError(`${spec.channel} needs an accountId: this key has ${this.accounts.length} accounts.`);
    }
    if (MARKET_CHANNELS.has(spec.channel) && !spec.marketId) throw new LeviathanError(`${spec.channel} needs a marketId.`);
    const subscription = new Subscription<M>(this, { ...spec, accountId });
    if (listener !== undefined) subscription.on(listener);
    if (this.subscriptions.has(subscription.key)) {
      throw new LeviathanError(`Already subscribed to ${spec.channel} ${subscription.marketId ?? subscription.accountId ?? "(every account)"}.`);
    }
    this.subscriptions.set(subscription.key, subscription as unknown as Subscription);
    try {
      await this.sendSubscribe(subscription as unknown as Subscription);
    } catch (error) {
      this.subscriptions.delete(subscription.key);
      throw error;
    }
    return subscription;
  }

  /** Unsubscribes; its listeners get nothing more. */
  async unsubscribe(subscription: { readonly key: string; readonly channel: Channel; readonly accountId: string | undefined }): Promise<void> {
    const found = this.subscriptions.get(subscription.key);
    if (found === undefined) return;
    this.subscriptions.delete(subscription.key);
    if (this.state !== "open") return;
    const waiting = this.expect(this.pendingAcks, `unsub:${subscription.key}`, `unsubscribe ${subscription.key}`);
    const message = SEED_CHANNELS.has(subscription.channel)
      ? { type: "unsubscribe", channel: subscription.channel, account_id: subscription.accountId }
      : this.target({ op: "unsubscribe", channel: subscription.channel }, found);
    this.sendRaw(message);
    await waiting;
  }

  /** Asks for a fresh snapshot of a subscription (done automatically after a gap). */
  requestSnapshot(subscription: { readonly key: string }): void {
    const found = this.subscriptions.get(subscription.key);
    if (found !== undefined) this.resync(found);
  }

  /** The subscriptions held (restored after each reconnect). */
  list(): Subscription[] {
    return [...this.subscriptions.values()];
  }

  /** Round trip (`{"op":"ping"}` → pong), ms. */
  async ping(): Promise<number> {
    await this.connect();
    const id = this.nextId("ping");
    const started = Date.now();
    const waiting = this.expect(this.pendingPings, id, "ping");
    this.sendRaw({ op: "ping", id });
    const at = await waiting;
    return at - started;
  }

  /** A live order book for `marketId` (subscribes to `orderbook`; resolves once the first
   * snapshot is applied). */
  async orderBook(marketId: string): Promise<LiveOrderBook> {
    await this.connect();
    const key = subscriptionKey("orderbook", canonicalMarketId(marketId));
    const existing = this.subscriptions.get(key);
    let book: LiveOrderBook;
    let first: Promise<void>;
    if (existing !== undefined) {
      book = new LiveOrderBook(existing);
      first = Promise.resolve();
      this.requestSnapshot(existing);
      first = new Promise((resolve) => {
        const off = book.onUpdate(() => {
          off();
          resolve();
        });
      });
    } else {
      const subscription = new Subscription(this, { channel: "orderbook", marketId });
      book = new LiveOrderBook(subscription);
      first = new Promise((resolve) => {
        const off = book.onUpdate(() => {
          off();
          resolve();
        });
      });
      this.subscriptions.set(subscription.key, subscription);
      try {
        await this.sendSubscribe(subscription);
      } catch (error) {
        this.subscriptions.delete(subscription.key);
        throw error;
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      first,
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new StreamClosedError(`No order book snapshot for ${marketId} in time.`)), this.options.requestTimeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    return book;
  }

  // -- seed 002 commands -----------------------------------------------------------------------

  /** Any seed 002 command with wire (snake_case) params; resolves with the REST twin's
   * body converted by its schema. */
  async command<T = unknown>(command: string, params: Record<string, unknown> = {}): Promise<T> {
    await this.connect();
    const id = this.nextId("cmd");
    const message: Record<string, unknown> = { type: command, id, params };
    if (this.signer !== undefined && WRITE_COMMANDS.has(command)) {
      const signed = await signMessage(this.signer, command, canonicalJson(params));
      message.timestamp = signed.timestamp;
      message.signature = signed.signature;
    }
    const waiting = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingCommands.delete(id);
        reject(new StreamClosedError(`${command}: no answer within ${this.options.requestTimeoutMs} ms.`));
      }, this.options.requestTimeoutMs);
      this.pendingCommands.set(id, { resolve: resolve as (value: unknown) => void, reject, timer, command });
    });
    if (!this.sendRaw(message)) {
      this.settleCommand(id, undefined, undefined);
      throw new StreamClosedError(`${command}: the stream is not connected.`);
    }
    return waiting;
  }

  private withAccount(params: Record<string, unknown>, accountId: string | undefined): Record<string, unknown> {
    const account = accountId ?? this.options.accountId;
    return account === undefined ? params : { ...params, account_id: account };
  }

  /** `get_leverage` (GET leverage). */
  getLeverage(input: { symbol: string; accountId?: string }): Promise<Leverage> {
    return this.command("get_leverage", this.withAccount({ symbol: input.symbol }, input.accountId));
  }

  /** `set_leverage` (POST leverage): a REJECTED change resolves with status "REJECTED". */
  setLeverage(input: { symbol: string; leverage: number; accountId?: string }): Promise<LeverageResult> {
    return this.command("set_leverage", this.withAccount({ symbol: input.symbol, leverage: input.leverage }, input.accountId));
  }

  /** `get_leverage_levels` (GET leverage/levels). */
  getLeverageLevels(input: { symbol?: string; accountId?: string } = {}): Promise<LeverageLevelsList> {
    return this.command("get_leverage_levels", this.withAccount(input.symbol === undefined ? {} : { symbol: input.symbol }, input.accountId));
  }

  /** `add_order` (POST orders). A client_order_id is generated when none is given. */
  addOrder(input: OrderPlaceInputRequest): Promise<Order> {
    const withId = input.clientOrderId ? input : { ...input, clientOrderId: newClientOrderId() };
    const { accountId, ...rest } = withId;
    return this.command("add_order", this.withAccount(toWire(rest, "OrderPlaceInputRequest") as Record<string, unknown>, accountId));
  }

  /** `cancel_order` (DELETE orders/{id} or by-client-id). */
  cancelOrder(ref: OrderRef & { accountId?: string }): Promise<Order> {
    return this.command("cancel_order", this.withAccount(orderRef(ref), ref.accountId));
  }

  /** `modify_order` (PATCH orders/{id} or by-client-id): price, quantity, takeProfit, stopLoss. */
  modifyOrder(ref: OrderRef & { accountId?: string; price?: Decimal | null; quantity?: Decimal | null; takeProfit?: Decimal | null; stopLoss?: Decimal | null }): Promise<Order> {
    const { accountId, price, quantity, takeProfit, stopLoss } = ref;
    const changes = toWire({ price, quantity, takeProfit, stopLoss }, "PatchedOrderModifyInputRequest") as Record<string, unknown>;
    return this.command("modify_order", this.withAccount({ ...orderRef(ref), ...changes }, accountId));
  }
}

function orderRef(ref: OrderRef): Record<string, unknown> {
  return "orderId" in ref && ref.orderId !== undefined
    ? { order_id: ref.orderId, cancel_order_id_type: "order_id" }
    : { order_id: (ref as { clientOrderId: string }).clientOrderId, cancel_order_id_type: "client_order_id" };
}

const COMMAND_RESULTS: Record<string, FieldShape> = {
  get_leverage: "Leverage",
  set_leverage: "LeverageResult",
  get_leverage_levels: "LeverageLevelsList",
  add_order: "Order",
  cancel_order: "Order",
  modify_order: "Order",
};
