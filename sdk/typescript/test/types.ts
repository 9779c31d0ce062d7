// Compile-time checks of the public types (`npm run typecheck-tests`; nothing runs).
import { Leviathan, type Order, type OrderStatusEnum, type Decimal, type OrderBookUpdateMessage, type StreamMessage } from "@leviathan/sdk";
import { WebSocket } from "ws";

export async function quickstart(): Promise<void> {
  // The seed's Quickstart, typed.
  const client = new Leviathan({ apiKey: "lev_live_xxxxxxxxxxxxxxxx" });
  const positions = await client.intelligence.positions();
  positions.forEach(p =>
    console.log(`${p.symbol} ${p.side} — PnL: ${p.pnl}`)
  );
  const trade = await client.intelligence.execute({
    symbol: "TRUMP-WIN",
    side: "buy",
    notionalUsdc: "50000",
  });
  console.log(`Trade executed: ${trade.id}`);
}

export async function typed(client: Leviathan, order: Order): Promise<void> {
  const notional: Decimal | null = order.notional; // money is a decimal string
  const text: string | null = notional;
  void text;
  // @ts-expect-error: money is never a number
  await client.intelligence.execute({ symbol: "TRUMP-WIN", side: "buy", notionalUsdc: 50000 });
  // @ts-expect-error: fields are camelCase
  void order.client_order_id;
  const future: OrderStatusEnum = "a_status_from_the_future"; // unknown enum values are kept
  const known: OrderStatusEnum = "filled";
  void future;
  void known;
  for await (const item of client.intelligence.orders.list({ status: "active", limit: 50 })) {
    const id: string = item.id;
    void id;
  }
  const page = await client.intelligence.fills({ limit: 10 });
  const next: number | null = page.nextOffset;
  void next;
  const stream = new Leviathan({ apiKey: "k", WebSocket }).stream();
  const sub = await stream.subscribe({ channel: "orderbook", marketId: "BTC-PERP" }, (message: StreamMessage) => {
    if (message.type === "update" && "books" in message) {
      const update = message as OrderBookUpdateMessage;
      void update.books[0].bids[0].price.toUpperCase();
    }
  });
  await sub.unsubscribe();
  const book = await stream.orderBook("BTC-PERP");
  const best: string | undefined = book.bestBid()?.price;
  void best;
}
