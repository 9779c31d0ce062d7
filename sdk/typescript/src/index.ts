// @leviathan/sdk: the Leviathan Prime API client (REST + stream) for Node 20+, browsers,
// Deno and Bun. See README.md.

export { Leviathan, Intelligence } from "./client.js";
export type {
  LeviathanOptions,
  PositionsResult,
  ReportFile,
  LeverageResource,
  OrdersResource,
  DepositsResource,
  WithdrawalsResource,
  ReportsResource,
  LinkedAccountResource,
  PositionsResource,
  AccountResource,
} from "./client.js";
export { PagedList } from "./paging.js";
export type { PageParams, PageShape } from "./paging.js";
export {
  Transport,
  DEFAULT_BASE_URL,
  DEFAULT_STREAM_URL,
  DEFAULT_API_VERSION,
  SDK_VERSION,
  newClientOrderId,
  backoffDelay,
  parseRetryAfter,
} from "./transport.js";
export type { RequestOptions, RetryInfo, CallInput } from "./transport.js";
export * from "./errors.js";
export { canonicalJson, signingAction, signMessage, makeSigner, nowNanoseconds } from "./signing.js";
export type { Signer, SigningKey } from "./signing.js";
export { fromWire, toWire } from "./convert.js";
export { compareDecimal, addDecimal, isZeroDecimal } from "./decimal.js";
export {
  LeviathanStream,
  LiveOrderBook,
  Subscription,
  canonicalMarketId,
} from "./stream.js";
export type {
  StreamOptions,
  StreamState,
  StreamEvents,
  StreamMessage,
  SubscribeSpec,
  Channel,
  MarketChannel,
  AccountChannel,
  SeedChannel,
  OrderBookSnapshotMessage,
  OrderBookUpdateMessage,
  TradesMessage,
  PublicTrade,
  AccountSnapshotMessage,
  AccountState,
  AccountEventMessage,
  OrderEvent,
  FillEvent,
  PositionEvent,
  MarginEvent,
  LeverageEvent,
  MarginCallEvent,
  SeedChannelMessage,
  StreamVenueBook,
  VenueLevel,
  OrderRef,
  WebSocketLike,
  WebSocketConstructor,
} from "./stream.js";
export * from "./models.js";
