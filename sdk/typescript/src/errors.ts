// Typed errors: one class per API error code, each carrying code, message and HTTP status.

/** Base of every error this SDK throws. */
export class LeviathanError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export interface ApiErrorInit {
  code: string;
  message: string;
  status: number;
  headers?: Headers;
  body?: unknown;
  retryAfter?: number | null;
  /** The operation (operationId) or stream command that failed. */
  operation?: string;
}

/** The API answered an error: `{"code", "message"}` with an HTTP status. An unknown
 * code (one newer than this SDK) is an ApiError with that code, never a crash. */
export class ApiError extends LeviathanError {
  /** Machine-readable code, e.g. `insufficient_margin`. */
  readonly code: string;
  /** HTTP status (on the stream: the REST twin's status). */
  readonly status: number;
  /** Seconds to wait before retrying (Retry-After), when the API says. */
  readonly retryAfter: number | null;
  readonly headers: Headers | undefined;
  /** The decoded error body as received. */
  readonly body: unknown;
  readonly operation: string | undefined;

  constructor(init: ApiErrorInit) {
    super(init.message);
    this.code = init.code;
    this.status = init.status;
    this.retryAfter = init.retryAfter ?? null;
    this.headers = init.headers;
    this.body = init.body;
    this.operation = init.operation;
  }
}

// --- the request itself -------------------------------------------------------------
export class InvalidParamsError extends ApiError {}
export class UnauthorizedError extends ApiError {}
export class ForbiddenError extends ApiError {}
export class NotFoundError extends ApiError {}
export class MethodNotAllowedError extends ApiError {}
export class NotAcceptableError extends ApiError {}
export class ConflictError extends ApiError {}
export class PayloadTooLargeError extends ApiError {}
export class UnsupportedMediaTypeError extends ApiError {}
/** 429: wait `retryAfter` seconds. The client already retried (honouring Retry-After)
 * `maxRetries` times before throwing this. */
export class RateLimitedError extends ApiError {}
export class InternalServerError extends ApiError {}
/** 503: a dependency of the API is briefly unavailable (`retryAfter`: 5). */
export class ServiceUnavailableError extends ApiError {}
// --- who may do it -------------------------------------------------------------------
export class KybRequiredError extends ApiError {}
export class CustodialRequiredError extends ApiError {}
export class AccountNotActiveError extends ApiError {}
// --- orders and markets ----------------------------------------------------------------
export class InsufficientLiquidityError extends ApiError {}
export class DuplicateOrderError extends ApiError {}
export class OrderNotActiveError extends ApiError {}
export class MarketClosedError extends ApiError {}
export class SlippageExceededError extends ApiError {}
export class MarketDataUnavailableError extends ApiError {}
export class MarketDataStaleError extends ApiError {}
// --- money ---------------------------------------------------------------------------
export class InsufficientFundsError extends ApiError {}
export class InsufficientMarginError extends ApiError {}
export class WithdrawalNotPendingError extends ApiError {}
// --- venues --------------------------------------------------------------------------
export class VenueUnavailableError extends ApiError {}
export class VenueAuthFailedError extends ApiError {}
export class VenueRateLimitedError extends ApiError {}
export class VenueBadResponseError extends ApiError {}
export class VenueNotFoundError extends ApiError {}
export class VenueConflictError extends ApiError {}
export class VenueRejectedError extends ApiError {}

/** Error code → class. */
export const ERROR_CLASSES: Readonly<Record<string, new (init: ApiErrorInit) => ApiError>> = {
  invalid_params: InvalidParamsError,
  unauthorized: UnauthorizedError,
  forbidden: ForbiddenError,
  not_found: NotFoundError,
  method_not_allowed: MethodNotAllowedError,
  not_acceptable: NotAcceptableError,
  conflict: ConflictError,
  payload_too_large: PayloadTooLargeError,
  unsupported_media_type: UnsupportedMediaTypeError,
  rate_limited: RateLimitedError,
  internal_error: InternalServerError,
  service_unavailable: ServiceUnavailableError,
  kyb_required: KybRequiredError,
  custodial_required: CustodialRequiredError,
  account_not_active: AccountNotActiveError,
  insufficient_liquidity: InsufficientLiquidityError,
  duplicate_order: DuplicateOrderError,
  order_not_active: OrderNotActiveError,
  market_closed: MarketClosedError,
  slippage_exceeded: SlippageExceededError,
  market_data_unavailable: MarketDataUnavailableError,
  market_data_stale: MarketDataStaleError,
  insufficient_funds: InsufficientFundsError,
  insufficient_margin: InsufficientMarginError,
  withdrawal_not_pending: WithdrawalNotPendingError,
  venue_unavailable: VenueUnavailableError,
  venue_auth_failed: VenueAuthFailedError,
  venue_rate_limited: VenueRateLimitedError,
  venue_bad_response: VenueBadResponseError,
  venue_not_found: VenueNotFoundError,
  venue_conflict: VenueConflictError,
  venue_rejected: VenueRejectedError,
};

/** The typed error for an API error (a base ApiError for a code this SDK does not know). */
export function apiErrorFor(init: ApiErrorInit): ApiError {
  const ErrorClass = ERROR_CLASSES[init.code] ?? ApiError;
  return new ErrorClass(init);
}

/** The request never got an answer: DNS, refused or dropped connection, TLS, … */
export class ApiConnectionError extends LeviathanError {}

/** No answer within `timeoutMs`. */
export class ApiTimeoutError extends ApiConnectionError {}

/** The server answered something that is not the API's JSON (e.g. a proxy's HTML page). */
export class UnexpectedResponseError extends LeviathanError {
  readonly status: number;
  readonly text: string;
  constructor(message: string, status: number, text: string) {
    super(message);
    this.status = status;
    this.text = text;
  }
}

/** A request signing problem (bad signing key, no Ed25519 in this runtime's WebCrypto). */
export class SigningError extends LeviathanError {}

/** The stream closed for good (a refused key, or `close()`), or a command's socket dropped. */
export class StreamClosedError extends LeviathanError {
  readonly closeCode: number | undefined;
  constructor(message: string, closeCode?: number) {
    super(message);
    this.closeCode = closeCode;
  }
}
