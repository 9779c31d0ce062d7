"""Market data: quotes, the simulator that makes them, and where they live.

- quotes.py: Quote / OrderBook / Outcome (Decimal prices, JSON round trip,
  NO side of a binary, collateral price).
- simulator.py: the seedable random-walk simulator (pure).
- twap.py: the time-weighted mid (pure, bounded memory).
- store.py: latest quotes in Redis and the published tick stream — the API
  other code reads (`quote_get`, `quotes_get_many`, `quotes_all`,
  `ticks_subscribe`).
- history.py: PriceTick history (downsampling, pruning).
- feed.py: the loop behind `manage.py run_marketdata`.
"""
