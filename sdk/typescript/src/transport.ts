// The HTTP core: one `request()` for every operation. fetch only (no Node APIs), so it
// runs in Node 20+, browsers, Deno and Bun.
//
// - keys converted by schema (camelCase in, snake_case on the wire, and back);
// - retries with exponential back-off and jitter on connection errors, timeouts, 429
//   (honouring Retry-After) and 5xx — for idempotent calls only: GET, and writes that
//   carry a client_order_id (the API answers a repeat with the original order). A 429
//   is retried for any call: the API refused it before doing anything;
// - Ed25519 signing of writes (a fresh timestamp and signature per attempt: the API
//   accepts a signature once);
// - typed errors (`errors.ts`).

import { fromWire, toWire } from "./convert.js";
import {
  ApiConnectionError,
  ApiError,
  ApiTimeoutError,
  UnexpectedResponseError,
  apiErrorFor,
} from "./errors.js";
import { OPERATIONS, type OperationId, type OperationInfo } from "./models.js";
import { canonicalJson, makeSigner, signMessage, signingAction, type Signer, type SigningKey } from "./signing.js";

export const DEFAULT_BASE_URL = "https://api.leviathan.global/v1";
export const DEFAULT_STREAM_URL = "wss://stream.leviathan.global/v1";
export const DEFAULT_API_VERSION = "2026-04-01";
export const SDK_VERSION = "0.1.0";

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Options every call takes as its last argument. */
export interface RequestOptions {
  /** The account to act on (a key bound to several accounts must name one). Overrides
   * the client's `accountId`. */
  accountId?: string;
  /** Per-attempt timeout, ms. */
  timeoutMs?: number;
  /** Retries after the first attempt (idempotent calls only; 0: none). */
  maxRetries?: number;
  /** Cancels the call (and its retries). */
  signal?: AbortSignal;
  /** Extra headers for this call. */
  headers?: Record<string, string>;
}

export interface TransportOptions {
  apiKey: string;
  baseUrl: string;
  accountId?: string;
  timeoutMs: number;
  maxRetries: number;
  apiVersion: string;
  signingKey?: SigningKey;
  fetch?: typeof fetch;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  maxRetryAfterMs: number;
  headers?: Record<string, string>;
  /** Called before each retry (for logging/metrics). */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  operation: string;
  attempt: number;
  delayMs: number;
  reason: "connection" | "timeout" | "status";
  status?: number;
  error: unknown;
}

export interface CallInput {
  pathParams?: Record<string, string>;
  query?: Record<string, unknown>;
  body?: Record<string, unknown>;
  options?: RequestOptions;
  /** Send no account_id (markets, the token download). */
  noAccount?: boolean;
  /** Send no API key (the report download: its signed token is the credential). */
  anonymous?: boolean;
}

export interface RawResponse<T> {
  status: number;
  headers: Headers;
  data: T;
}

/** Reads an environment variable where a `process` exists (Node, Bun, Deno's compat);
 * nothing in browsers. */
export function envVar(name: string): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const value = env?.[name];
  return value === undefined || value === "" ? undefined : value;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Exponential back-off with jitter: a random delay in [½, 1] × min(max, base·2^attempt). */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** Retry-After in seconds (delta-seconds or an HTTP date), or null. */
export function parseRetryAfter(value: string | null): number | null {
  if (value === null || value.trim() === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

/** A client_order_id: `lev-` + 24 random hex characters. */
export function newClientOrderId(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return "lev-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

class AttemptTimeout extends Error {}

export class Transport {
  readonly options: TransportOptions;
  private readonly signer: Signer | undefined;

  constructor(options: TransportOptions) {
    this.options = options;
    this.signer = options.signingKey === undefined ? undefined : makeSigner(options.signingKey);
  }

  url(info: OperationInfo, pathParams: Record<string, string> = {}): string {
    let path = info.path;
    for (const name of info.pathParams) {
      const value = pathParams[name];
      if (value === undefined || value === null || String(value) === "") {
        throw new TypeError(`${name} is required.`);
      }
      path = path.replace(`{${name}}`, encodeURIComponent(String(value)));
    }
    const base = this.options.baseUrl.replace(/\/+$/, "");
    // The document's paths start with /v1; the base URL ends with it.
    const relative = base.endsWith("/v1") && path.startsWith("/v1/") ? path.slice(3) : path;
    return base + relative;
  }

  async request<T>(operation: OperationId, input: CallInput = {}): Promise<RawResponse<T>> {
    const info: OperationInfo = OPERATIONS[operation];
    const options = input.options ?? {};
    const url = new URL(this.url(info, input.pathParams));
    // Query: camelCase → wire names by the operation's parameters; others as given.
    const wireQuery: Record<string, string> = {};
    for (const [key, value] of Object.entries(input.query ?? {})) {
      if (value === undefined || value === null) continue;
      const wire = Object.entries(info.query).find(([, camel]) => camel === key)?.[0] ?? key;
      wireQuery[wire] = String(value);
    }
    let body: Record<string, unknown> | undefined =
      input.body === undefined ? undefined : (toWire(input.body, info.body) as Record<string, unknown>);
    const accountId = options.accountId ?? this.options.accountId;
    if (!input.noAccount && accountId !== undefined) {
      if (info.accountInBody) {
        body = { ...(body ?? {}) };
        if (body.account_id === undefined) body.account_id = accountId;
      } else if (wireQuery.account_id === undefined) {
        wireQuery.account_id = accountId;
      }
    }
    for (const [key, value] of Object.entries(wireQuery)) url.searchParams.set(key, value);
    const bodyText = body === undefined ? undefined : canonicalJson(body);
    const idempotent = info.method === "GET" || (body !== undefined && typeof body.client_order_id === "string");
    return this.send<T>(operation, info, url.toString(), bodyText, idempotent, options, input.anonymous === true);
  }

  private async headersFor(info: OperationInfo, url: string, bodyText: string | undefined, options: RequestOptions, anonymous: boolean): Promise<Headers> {
    const headers = new Headers({ Accept: "application/json", "Lev-Version": this.options.apiVersion });
    if (!anonymous) headers.set("Authorization", `Bearer ${this.options.apiKey}`);
    if (bodyText !== undefined) headers.set("Content-Type", "application/json");
    for (const [name, value] of Object.entries(this.options.headers ?? {})) headers.set(name, value);
    for (const [name, value] of Object.entries(options.headers ?? {})) headers.set(name, value);
    if (this.signer !== undefined && !anonymous && WRITE_METHODS.has(info.method)) {
      const action = signingAction(new URL(url).pathname);
      const { timestamp, signature } = await signMessage(this.signer, action, bodyText ?? "");
      headers.set("X-Timestamp", timestamp);
      headers.set("X-Signature", signature);
    }
    return headers;
  }

  private async send<T>(
    operation: string,
    info: OperationInfo,
    url: string,
    bodyText: string | undefined,
    idempotent: boolean,
    options: RequestOptions,
    anonymous: boolean,
  ): Promise<RawResponse<T>> {
    const maxRetries = options.maxRetries ?? this.options.maxRetries;
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    const fetchImpl = this.options.fetch ?? globalThis.fetch;
    for (let attempt = 0; ; attempt++) {
      const headers = await this.headersFor(info, url, bodyText, options, anonymous);
      const controller = new AbortController();
      const onAbort = () => controller.abort(options.signal!.reason);
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (options.signal?.aborted) controller.abort(options.signal.reason);
      const timer = setTimeout(() => controller.abort(new AttemptTimeout()), timeoutMs);
      let response: Response;
      let text: string;
      try {
        response = await fetchImpl(url, { method: info.method, headers, body: bodyText, signal: controller.signal });
        text = await response.text();
      } catch (error) {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        if (options.signal?.aborted) throw options.signal.reason;
        const timedOut = controller.signal.reason instanceof AttemptTimeout;
        const failure = timedOut
          ? new ApiTimeoutError(`${info.method} ${url}: no answer within ${timeoutMs} ms.`, { cause: error })
          : new ApiConnectionError(`${info.method} ${url}: ${describe(error)}`, { cause: error });
        if (idempotent && attempt < maxRetries) {
          await this.pause(operation, attempt, null, timedOut ? "timeout" : "connection", failure, undefined, options.signal);
          continue;
        }
        throw failure;
      }
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);

      const status = response.status;
      if (status >= 200 && status < 300) {
        return { status, headers: response.headers, data: this.decode<T>(info, status, response, text) };
      }
      const modelError = (info.modelErrors as Record<string, string>)[String(status)];
      const parsed = parseJson(text);
      if (modelError !== undefined && isObject(parsed) && !isErrorBody(parsed)) {
        return { status, headers: response.headers, data: fromWire<T>(parsed, modelError) };
      }
      const retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
      const error = isErrorBody(parsed)
        ? apiErrorFor({
            code: parsed.code,
            message: parsed.message,
            status,
            headers: response.headers,
            body: parsed,
            retryAfter,
            operation,
          })
        : new UnexpectedResponseError(`${info.method} ${url}: HTTP ${status} without the API's error body.`, status, text);
      const retryable = status === 429 || (idempotent && status >= 500);
      if (retryable && attempt < maxRetries) {
        const waitMs = retryAfter === null ? null : retryAfter * 1000;
        if (waitMs === null || waitMs <= this.options.maxRetryAfterMs) {
          await this.pause(operation, attempt, waitMs, "status", error, status, options.signal);
          continue;
        }
      }
      throw error;
    }
  }

  private async pause(
    operation: string,
    attempt: number,
    retryAfterMs: number | null,
    reason: RetryInfo["reason"],
    error: unknown,
    status: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const backoff = backoffDelay(attempt, this.options.retryBaseDelayMs, this.options.retryMaxDelayMs);
    // Retry-After is a floor: wait at least that, plus a little jitter so that many
    // clients told the same thing do not all come back in the same instant.
    const delayMs = retryAfterMs === null ? backoff : Math.round(retryAfterMs + Math.random() * Math.min(250, backoff));
    this.options.onRetry?.({ operation, attempt: attempt + 1, delayMs, reason, status, error });
    await sleep(delayMs, signal);
  }

  private decode<T>(info: OperationInfo, status: number, response: Response, text: string): T {
    const responses = info.responses as Record<string, string | null>;
    const schema = responses[String(status)] ?? Object.values(responses)[0] ?? null;
    const type = response.headers.get("Content-Type") ?? "";
    if (text === "") return undefined as T;
    if (!type.includes("json")) return text as T;
    const parsed = parseJson(text);
    if (parsed === undefined) {
      throw new UnexpectedResponseError(`HTTP ${status}: the body is not JSON.`, status, text);
    }
    return fromWire<T>(parsed, schema);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isErrorBody(value: unknown): value is { code: string; message: string } {
  return isObject(value) && typeof value.code === "string" && typeof value.message === "string";
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? ` (${cause.message})` : "";
    return `${error.message}${detail}`;
  }
  return String(error);
}

export { ApiError };
