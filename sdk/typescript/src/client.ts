// The REST client: `new Leviathan({ apiKey })`, methods grouped as the API is.

import { LeviathanError } from "./errors.js";
import type {
  AccountOutput,
  BalancesOutput,
  DateTime,
  Decimal,
  DepositCreateRequest,
  DepositListOutput,
  DepositOutput,
  DepositsListQuery,
  ExecuteInputRequest,
  Fill,
  FillPage,
  FillsListQuery,
  Leverage,
  LeverageLevelsList,
  LeverageResult,
  LeverageSetInputRequest,
  LinkedAccountOutput,
  Margin,
  MarginSimulateInputRequest,
  MarginSimulation,
  Market,
  MarketList,
  MarketsListQuery,
  MarketsOrderbookQuery,
  OperationId,
  Order,
  OrderBook,
  OrderPage,
  OrderPlaceInputRequest,
  OrdersListQuery,
  OrdersTriggersCancelByClientIdQuery,
  OrdersTriggersCancelQuery,
  PatchedOrderModifyInputRequest,
  Position,
  PositionCloseInputRequest,
  PositionList,
  ReportListOutput,
  ReportOutput,
  ReportRequestRequest,
  TransactionListOutput,
  TransactionOutput,
  TransactionsListQuery,
  WithdrawalCreateRequest,
  WithdrawalListOutput,
  WithdrawalOutput,
  WithdrawalsListQuery,
  ReportsListQuery,
} from "./models.js";
import { PagedList, type PageParams } from "./paging.js";
import type { SigningKey } from "./signing.js";
import { LeviathanStream, type StreamOptions, type WebSocketConstructor } from "./stream.js";
import {
  DEFAULT_API_VERSION,
  DEFAULT_BASE_URL,
  DEFAULT_STREAM_URL,
  Transport,
  envVar,
  newClientOrderId,
  sleep,
  type CallInput,
  type RequestOptions,
  type RetryInfo,
} from "./transport.js";

export interface LeviathanOptions {
  /** `lev_live_…` / `lev_test_…`. Default: env LEVIATHAN_API_KEY (where `process` exists). */
  apiKey?: string;
  /** REST base URL. Default: env LEVIATHAN_BASE_URL, else https://api.leviathan.global/v1. */
  baseUrl?: string;
  /** Stream URL. Default: env LEVIATHAN_STREAM_URL, else wss://stream.leviathan.global/v1. */
  streamUrl?: string;
  /** The account every call acts on unless a call names another (keys bound to several
   * accounts must name one). */
  accountId?: string;
  /** Per-attempt timeout, ms (default 30,000). */
  timeoutMs?: number;
  /** Retries after the first attempt for idempotent calls and 429s (default 3). */
  maxRetries?: number;
  /** Ed25519 key that signs writes (keys registered with a public key must sign). */
  signingKey?: SigningKey;
  /** `Lev-Version` sent (default 2026-04-01). */
  apiVersion?: string;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /** A WebSocket constructor for the stream (default: the global WebSocket; Node 20
   * has none: pass `WebSocket` from the `ws` package). */
  WebSocket?: WebSocketConstructor;
  /** First back-off step, ms (default 500); doubles per retry, with jitter. */
  retryBaseDelayMs?: number;
  /** Longest back-off step, ms (default 8,000). */
  retryMaxDelayMs?: number;
  /** A Retry-After longer than this (ms, default 60,000) is not waited for: the error is thrown. */
  maxRetryAfterMs?: number;
  /** Headers added to every request. */
  headers?: Record<string, string>;
  /** Called before each retry. */
  onRetry?: (info: RetryInfo) => void;
}

/** GET positions: the positions as an array (so `positions.forEach(…)` works), with the
 * list's other fields on it. */
export type PositionsResult = Position[] & {
  accountId: string;
  marginUtilization: Decimal | null;
  asOf: DateTime;
};

/** A report file downloaded (CSV or JSON). */
export interface ReportFile {
  contentType: string;
  text: string;
  /** The JSON report parsed (format json). */
  json<T = unknown>(): T;
}

type Callable<F, P> = F & P;

function callable<F extends (...args: never[]) => unknown, P extends object>(fn: F, props: P): Callable<F, P> {
  return Object.assign(fn, props);
}

function withClientOrderId<T extends { clientOrderId?: string | null }>(input: T): T {
  return input.clientOrderId === undefined || input.clientOrderId === null
    ? { ...input, clientOrderId: newClientOrderId() }
    : input;
}

function splitAccount<T extends { accountId?: string }>(input: T, options: RequestOptions = {}): [T, RequestOptions] {
  // An accountId in the body is the call's account (the API reads it from the body for
  // writes): carry it in the options too, so it is sent the one place the operation takes.
  if (input.accountId !== undefined && options.accountId === undefined) {
    return [input, { ...options, accountId: input.accountId }];
  }
  return [input, options];
}

function pageParams<Q extends PageParams>(query: Q | undefined): [Omit<Q, "offset">, number | undefined] {
  const { offset, ...rest } = (query ?? {}) as Q;
  return [rest as Omit<Q, "offset">, offset];
}

export class Leviathan {
  /** The HTTP core (advanced: `client.transport.request(operationId, …)` calls any
   * operation of the document by its operationId). */
  readonly transport: Transport;
  readonly baseUrl: string;
  readonly streamUrl: string;
  readonly accountId: string | undefined;
  readonly intelligence: Intelligence;
  private readonly options: LeviathanOptions;

  constructor(options: LeviathanOptions = {}) {
    const apiKey = options.apiKey ?? envVar("LEVIATHAN_API_KEY");
    if (apiKey === undefined || apiKey.trim() === "") {
      throw new LeviathanError("An API key is required: new Leviathan({ apiKey: \"lev_live_…\" }) or env LEVIATHAN_API_KEY.");
    }
    this.options = options;
    this.baseUrl = (options.baseUrl ?? envVar("LEVIATHAN_BASE_URL") ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.streamUrl = options.streamUrl ?? envVar("LEVIATHAN_STREAM_URL") ?? DEFAULT_STREAM_URL;
    this.accountId = options.accountId;
    this.transport = new Transport({
      apiKey: apiKey.trim(),
      baseUrl: this.baseUrl,
      accountId: options.accountId,
      timeoutMs: options.timeoutMs ?? 30_000,
      maxRetries: options.maxRetries ?? 3,
      apiVersion: options.apiVersion ?? DEFAULT_API_VERSION,
      signingKey: options.signingKey,
      fetch: options.fetch,
      retryBaseDelayMs: options.retryBaseDelayMs ?? 500,
      retryMaxDelayMs: options.retryMaxDelayMs ?? 8_000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
      headers: options.headers,
      onRetry: options.onRetry,
    });
    this.intelligence = new Intelligence(this.transport);
  }

  /** A stream client (`/v1/stream`) with this client's key, URL and signing key. Call
   * `connect()` on it (subscribing connects too). */
  stream(options: Partial<StreamOptions> = {}): LeviathanStream {
    return new LeviathanStream({
      apiKey: this.transport.options.apiKey,
      url: this.streamUrl,
      signingKey: this.options.signingKey,
      WebSocket: this.options.WebSocket,
      accountId: this.accountId,
      ...options,
    });
  }

  /** Any operation of the document by its operationId (keys converted by schema). */
  async request<T = unknown>(operation: OperationId, input: CallInput = {}): Promise<T> {
    return (await this.transport.request<T>(operation, input)).data;
  }
}

async function call<T>(transport: Transport, operation: OperationId, input: CallInput = {}): Promise<T> {
  return (await transport.request<T>(operation, input)).data;
}

export interface LeverageResource {
  /** GET leverage?symbol=: the account's leverage on a market. */
  get(symbol: string | { symbol: string }, options?: RequestOptions): Promise<Leverage>;
  /** POST leverage: set it. A REJECTED change (HTTP 422) is returned, not thrown:
   * check `result.status` ("APPLIED" | "REJECTED") and `result.rejectReason`. */
  set(input: LeverageSetInputRequest, options?: RequestOptions): Promise<LeverageResult>;
  /** GET leverage/levels: the levels each market allows. */
  levels(query?: { symbol?: string }, options?: RequestOptions): Promise<LeverageLevelsList>;
}

export interface OrdersResource {
  /** POST orders. A client_order_id is generated when none is given; retries reuse it.
   * What crosses is sent to the venue at once: `status` "pending" (HTTP 202) until the
   * venue confirms; `get()` it later. */
  create(input: OrderPlaceInputRequest, options?: RequestOptions): Promise<Order>;
  /** GET orders: a page (await) or every order (for await). */
  list(query?: OrdersListQuery, options?: RequestOptions): PagedList<OrderPage, Order>;
  get(orderId: string, options?: RequestOptions): Promise<Order>;
  getByClientId(clientOrderId: string, options?: RequestOptions): Promise<Order>;
  modify(orderId: string, input: PatchedOrderModifyInputRequest, options?: RequestOptions): Promise<Order>;
  modifyByClientId(clientOrderId: string, input: PatchedOrderModifyInputRequest, options?: RequestOptions): Promise<Order>;
  cancel(orderId: string, options?: RequestOptions): Promise<Order>;
  cancelByClientId(clientOrderId: string, options?: RequestOptions): Promise<Order>;
  /** DELETE orders/{id}/triggers: remove its take-profit, stop-loss (`which`) or both
   * before they fire, on a resting or filled order; repeating it changes nothing.
   * OrderNotActiveError once a trigger has fired. */
  cancelTriggers(orderId: string, query?: OrdersTriggersCancelQuery, options?: RequestOptions): Promise<Order>;
  cancelTriggersByClientId(
    clientOrderId: string,
    query?: OrdersTriggersCancelByClientIdQuery,
    options?: RequestOptions,
  ): Promise<Order>;
}

export interface DepositsResource {
  /** POST deposits: `{ amount, method: "card" | "bank_transfer", cardNumber? }` → pending. */
  create(input: DepositCreateRequest, options?: RequestOptions): Promise<DepositOutput>;
  get(depositId: string, options?: RequestOptions): Promise<DepositOutput>;
  list(query?: DepositsListQuery, options?: RequestOptions): PagedList<DepositListOutput, DepositOutput>;
}

export interface WithdrawalsResource {
  /** POST withdrawals: `{ amount, destination }` → pending (held at once). */
  create(input: WithdrawalCreateRequest, options?: RequestOptions): Promise<WithdrawalOutput>;
  get(withdrawalId: string, options?: RequestOptions): Promise<WithdrawalOutput>;
  list(query?: WithdrawalsListQuery, options?: RequestOptions): PagedList<WithdrawalListOutput, WithdrawalOutput>;
  /** POST withdrawals/{id}/cancel (409 withdrawal_not_pending unless pending). */
  cancel(withdrawalId: string, options?: RequestOptions): Promise<WithdrawalOutput>;
}

export interface ReportsResource {
  /** POST reports: `{ type, from, to, format? }` → 202 pending. */
  create(input: ReportRequestRequest, options?: RequestOptions): Promise<ReportOutput>;
  get(reportId: string, options?: RequestOptions): Promise<ReportOutput>;
  list(query?: ReportsListQuery, options?: RequestOptions): PagedList<ReportListOutput, ReportOutput>;
  /** Polls GET reports/{id} until the report is ready (or failed); returns it. */
  waitUntilReady(reportId: string, options?: RequestOptions & { intervalMs?: number; waitMs?: number }): Promise<ReportOutput>;
  /** The report's file, through its signed download URL (a fresh one is fetched when
   * given an id, or a report without a URL). */
  download(report: string | ReportOutput, options?: RequestOptions): Promise<ReportFile>;
}

export interface LinkedAccountResource {
  /** GET linked-account: a linked (non-custodial) account's sync status. */
  get(options?: RequestOptions): Promise<LinkedAccountOutput>;
  /** POST linked-account/sync: sync now (202; poll `get()` for the outcome). */
  sync(options?: RequestOptions): Promise<LinkedAccountOutput>;
}

export type PositionsResource = Callable<
  (options?: RequestOptions) => Promise<PositionsResult>,
  {
    /** POST positions/{symbol}/close: all of it, a `quantity` or a `percent`. A
     * client_order_id is generated when none is given; retries reuse it. */
    close(symbol: string, input?: PositionCloseInputRequest, options?: RequestOptions): Promise<Order>;
  }
>;

export type AccountResource = Callable<
  (options?: RequestOptions) => Promise<AccountOutput>,
  {
    /** GET account/balances (the same as `intelligence.balances()`). */
    balances(options?: RequestOptions): Promise<BalancesOutput>;
  }
>;

/** Everything under /v1/intelligence. */
export class Intelligence {
  readonly positions: PositionsResource;
  readonly leverage: LeverageResource;
  readonly orders: OrdersResource;
  readonly deposits: DepositsResource;
  readonly withdrawals: WithdrawalsResource;
  readonly reports: ReportsResource;
  readonly linkedAccount: LinkedAccountResource;
  readonly account: AccountResource;

  constructor(private readonly transport: Transport) {
    const t = transport;
    this.positions = callable(
      async (options?: RequestOptions): Promise<PositionsResult> => {
        const list = await call<PositionList>(t, "positions_list", { options });
        const { positions, ...rest } = list;
        return Object.assign([...positions], rest) as PositionsResult;
      },
      {
        close: (symbol: string, input: PositionCloseInputRequest = {}, options?: RequestOptions) => {
          const [body, opts] = splitAccount(withClientOrderId(input), options);
          return call<Order>(t, "position_close", { pathParams: { symbol }, body: { ...body }, options: opts });
        },
      },
    );
    this.leverage = {
      get: (symbol, options) =>
        call<Leverage>(t, "leverage_get", { query: { symbol: typeof symbol === "string" ? symbol : symbol.symbol }, options }),
      set: (input, options) => {
        const [body, opts] = splitAccount(input, options);
        return call<LeverageResult>(t, "leverage_set", { body: { ...body }, options: opts });
      },
      levels: (query = {}, options) => call<LeverageLevelsList>(t, "leverage_levels", { query: { ...query }, options }),
    };
    this.orders = {
      create: (input, options) => {
        const [body, opts] = splitAccount(withClientOrderId(input), options);
        return call<Order>(t, "orders_create", { body: { ...body }, options: opts });
      },
      list: (query, options) => this.paged<OrdersListQuery, OrderPage, Order>("orders_list", query, options, (p) => p.orders),
      get: (orderId, options) => call<Order>(t, "orders_get", { pathParams: { order_id: orderId }, options }),
      getByClientId: (clientOrderId, options) =>
        call<Order>(t, "orders_get_by_client_id", { pathParams: { client_order_id: clientOrderId }, options }),
      modify: (orderId, input, options) => {
        const [body, opts] = splitAccount(input, options);
        return call<Order>(t, "orders_modify", { pathParams: { order_id: orderId }, body: { ...body }, options: opts });
      },
      modifyByClientId: (clientOrderId, input, options) => {
        const [body, opts] = splitAccount(input, options);
        return call<Order>(t, "orders_modify_by_client_id", {
          pathParams: { client_order_id: clientOrderId },
          body: { ...body },
          options: opts,
        });
      },
      cancel: (orderId, options) => call<Order>(t, "orders_cancel", { pathParams: { order_id: orderId }, options }),
      cancelByClientId: (clientOrderId, options) =>
        call<Order>(t, "orders_cancel_by_client_id", { pathParams: { client_order_id: clientOrderId }, options }),
      cancelTriggers: (orderId, query = {}, options) =>
        call<Order>(t, "orders_triggers_cancel", { pathParams: { order_id: orderId }, query: { ...query }, options }),
      cancelTriggersByClientId: (clientOrderId, query = {}, options) =>
        call<Order>(t, "orders_triggers_cancel_by_client_id", {
          pathParams: { client_order_id: clientOrderId },
          query: { ...query },
          options,
        }),
    };
    this.deposits = {
      create: (input, options) => {
        const [body, opts] = splitAccount(input, options);
        return call<DepositOutput>(t, "deposits_create", { body: { ...body }, options: opts });
      },
      get: (depositId, options) => call<DepositOutput>(t, "deposits_get", { pathParams: { deposit_id: depositId }, options }),
      list: (query, options) =>
        this.paged<DepositsListQuery, DepositListOutput, DepositOutput>("deposits_list", query, options, (p) => p.deposits),
    };
    this.withdrawals = {
      create: (input, options) => {
        const [body, opts] = splitAccount(input, options);
        return call<WithdrawalOutput>(t, "withdrawals_create", { body: { ...body }, options: opts });
      },
      get: (withdrawalId, options) =>
        call<WithdrawalOutput>(t, "withdrawals_get", { pathParams: { withdrawal_id: withdrawalId }, options }),
      list: (query, options) =>
        this.paged<WithdrawalsListQuery, WithdrawalListOutput, WithdrawalOutput>("withdrawals_list", query, options, (p) => p.withdrawals),
      cancel: (withdrawalId, options) =>
        call<WithdrawalOutput>(t, "withdrawals_cancel", { pathParams: { withdrawal_id: withdrawalId }, options }),
    };
    this.reports = {
      create: (input, options) => {
        const [body, opts] = splitAccount(input, options);
        return call<ReportOutput>(t, "reports_create", { body: { ...body }, options: opts });
      },
      get: (reportId, options) => call<ReportOutput>(t, "reports_get", { pathParams: { report_id: reportId }, options }),
      list: (query, options) =>
        this.paged<ReportsListQuery, ReportListOutput, ReportOutput>("reports_list", query, options, (p) => p.reports),
      waitUntilReady: async (reportId, options = {}) => {
        const { intervalMs = 500, waitMs = 60_000, ...rest } = options;
        const deadline = Date.now() + waitMs;
        for (;;) {
          const report = await this.reports.get(reportId, rest);
          if (report.status === "ready" || report.status === "failed") return report;
          if (Date.now() > deadline) {
            throw new LeviathanError(`Report ${reportId} is still ${report.status} after ${waitMs} ms.`);
          }
          await sleep(intervalMs, rest.signal);
        }
      },
      download: async (report, options) => {
        let found = typeof report === "string" ? undefined : report;
        if (found === undefined || !found.downloadUrl) {
          found = await this.reports.get(typeof report === "string" ? report : report.id, options);
        }
        if (!found.downloadUrl) {
          throw new LeviathanError(`Report ${found.id} is ${found.status}: there is no file to download yet.`);
        }
        const token = new URL(found.downloadUrl).searchParams.get("token") ?? "";
        const response = await t.request<unknown>("reports_download", {
          pathParams: { report_id: found.id },
          query: { token },
          options,
          noAccount: true,
          anonymous: true,
        });
        const contentType = response.headers.get("Content-Type") ?? "";
        const text = typeof response.data === "string" ? response.data : JSON.stringify(response.data);
        return { contentType, text, json: <T>() => JSON.parse(text) as T };
      },
    };
    this.linkedAccount = {
      get: (options) => call<LinkedAccountOutput>(t, "linked_account_get", { options }),
      sync: (options) => call<LinkedAccountOutput>(t, "linked_account_sync", { options }),
    };
    this.account = callable((options?: RequestOptions) => call<AccountOutput>(t, "account_get", { options }), {
      balances: (options?: RequestOptions) => call<BalancesOutput>(t, "intelligence_account_balances_retrieve", { options }),
    });
  }

  /** POST execute: a market order for `notionalUsdc`, smart-routed. A client_order_id is
   * generated when none is given, and retries (after a dropped connection, a timeout, a
   * 5xx or a 429) reuse it, so the order is placed once. */
  execute(input: ExecuteInputRequest, options?: RequestOptions): Promise<Order> {
    const [body, opts] = splitAccount(withClientOrderId(input), options);
    return call<Order>(this.transport, "execute", { body: { ...body }, options: opts });
  }

  /** GET margin: utilization, available credit, health, breakdowns. */
  margin(options?: RequestOptions): Promise<Margin> {
    return call<Margin>(this.transport, "margin_get", { options });
  }

  /** POST margin/simulate: the account's figures before and after simulated changes (a read). */
  simulate(input: MarginSimulateInputRequest = {}, options?: RequestOptions): Promise<MarginSimulation> {
    const [body, opts] = splitAccount(input, options);
    return call<MarginSimulation>(this.transport, "margin_simulate", { body: { ...body }, options: opts });
  }

  /** GET fills: a page (await) or every fill (for await). */
  fills(query?: FillsListQuery, options?: RequestOptions): PagedList<FillPage, Fill> {
    return this.paged<FillsListQuery, FillPage, Fill>("fills_list", query, options, (p) => p.fills);
  }

  /** GET markets. */
  markets(query?: MarketsListQuery, options?: RequestOptions): Promise<MarketList> {
    return call<MarketList>(this.transport, "markets_list", { query: { ...query }, options, noAccount: true });
  }

  /** GET markets/{symbol}. */
  market(symbol: string, options?: RequestOptions): Promise<Market> {
    return call<Market>(this.transport, "markets_get", { pathParams: { symbol }, options, noAccount: true });
  }

  /** GET markets/{symbol}/orderbook (`venue`, `depth`). */
  orderbook(symbol: string, query?: MarketsOrderbookQuery, options?: RequestOptions): Promise<OrderBook> {
    return call<OrderBook>(this.transport, "markets_orderbook", { pathParams: { symbol }, query: { ...query }, options, noAccount: true });
  }

  /** GET balances. */
  balances(options?: RequestOptions): Promise<BalancesOutput> {
    return call<BalancesOutput>(this.transport, "intelligence_balances_retrieve", { options });
  }

  /** GET transactions: a page (await) or every transaction (for await). */
  transactions(query?: TransactionsListQuery, options?: RequestOptions): PagedList<TransactionListOutput, TransactionOutput> {
    return this.paged<TransactionsListQuery, TransactionListOutput, TransactionOutput>("transactions_list", query, options, (p) => p.transactions);
  }

  private paged<Q extends PageParams, P extends { limit: number; offset: number; nextOffset: number | null }, I>(
    operation: OperationId,
    query: Q | undefined,
    options: RequestOptions | undefined,
    items: (page: P) => I[],
  ): PagedList<P, I> {
    const [rest, start] = pageParams(query);
    return new PagedList<P, I>(
      (offset) => call<P>(this.transport, operation, { query: { ...rest, offset }, options }),
      items,
      start,
    );
  }
}
