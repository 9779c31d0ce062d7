"""The Python SDK's overhead per call against raw httpx, on the same endpoint, one run.

    .venv/bin/python bench/sdk_overhead.py [--calls 400] [--rounds 5] [--keep-db]

It seeds what bench/api_load.py seeds (its own database, default
postgres://postgres@127.0.0.1:5432/bench_sdk: a margin account with 22
positions bought through order_execute, an API key), serves the app with
uvicorn (bench settings: rate limits out of reach), then calls
GET /v1/intelligence/positions `--calls` times per round, in `--rounds`
alternating rounds, two ways on one keep-alive connection each:

- raw: `httpx.Client.get` with the headers, `response.json()`, then each
  position's symbol, side and P&L read (what the seed's Quickstart prints);
- SDK: `Leviathan.intelligence.positions()` (request built, sent, the answer
  read into typed models) and the same three fields of each position read
  (the models convert a field, to Decimal, enum, …, when it is first read);
  and, for information, both again reading every field of every position.

It prints this process's CPU per call (time.process_time: the server's work
is in another process) for each, and the ratio SDK / raw (target ≤ 1.2), and
checks that both read the same positions. Exits 1 when the answers differ.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_sdk")
sys.path.insert(0, str(ROOT / "sdk" / "python"))
sys.path.insert(0, str(ROOT / "bench"))

import api_load as load  # noqa: E402 (its environment defaults, then ours)
import django  # noqa: E402
import httpx  # noqa: E402
from benchdb import database_drop, database_recreate, redis_keys_delete  # noqa: E402
from leviathan import Leviathan  # noqa: E402
from leviathan._models import Position  # noqa: E402

TARGET = 1.2
PATH = "/v1/intelligence/positions"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per round (default 400)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


def cpu_of(call, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls


def main() -> int:
    args = parse_args()
    url = os.environ["DATABASE_URL"]
    name = database_recreate(url)
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    server = None
    try:
        call_command("migrate", verbosity=0, interactive=False)
        load.markets_seed()
        account = load.account_seed()
        binary, perps = load.positions_seed(account)
        key = load.key_issue(account)
        connections.close_all()
        server, base = load.server_start(1)
        headers = {"Authorization": f"Bearer {key}", "Lev-Version": load.API_VERSION}
        raw_client = httpx.Client(headers=headers)
        sdk = Leviathan(api_key=key, base_url=f"{base}/v1", http_client=httpx.Client())

        names = list(Position._types)  # every field, by its JSON and its Python name
        attrs = [attr for attr, _ in Position._types.values()]

        def raw(every_field: bool = False):
            response = raw_client.get(f"{base}{PATH}")
            response.raise_for_status()
            body = response.json()
            if every_field:
                return body, [[p[name] for name in names] for p in body["positions"]]
            return body, [(p["symbol"], p["side"], p["pnl"]) for p in body["positions"]]

        def typed(every_field: bool = False):
            positions = sdk.intelligence.positions()
            if every_field:
                return positions, [[getattr(p, attr) for attr in attrs] for p in positions]
            return positions, [(p.symbol, p.side, p.pnl) for p in positions]

        raw_positions, sdk_positions = raw()[0]["positions"], typed()[0]
        for _ in range(20):  # warm both paths and connections
            raw(), typed()
        raw_cpu, sdk_cpu, raw_all, sdk_all = [], [], [], []
        for _ in range(args.rounds):
            raw_cpu.append(cpu_of(raw, args.calls))
            sdk_cpu.append(cpu_of(typed, args.calls))
            raw_all.append(cpu_of(lambda: raw(every_field=True), args.calls))
            sdk_all.append(cpu_of(lambda: typed(every_field=True), args.calls))
        raw_best, sdk_best = min(raw_cpu), min(sdk_cpu)
        ratio = sdk_best / raw_best
        every = min(sdk_all) / min(raw_all)
        print(
            f"GET {PATH} ({binary} binary + {perps} perpetual positions), "
            f"{args.rounds} × {args.calls} calls each way"
        )
        print(f"  raw httpx + json : {raw_best * 1000:6.3f} ms CPU per call (best round)")
        print(f"  leviathan SDK    : {sdk_best * 1000:6.3f} ms CPU per call (best round)")
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(f"  ratio SDK / raw  : {ratio:.2f} (target ≤ {TARGET}: {verdict})")
        print(
            f"  every field read : raw {min(raw_all) * 1000:.3f} ms, SDK {min(sdk_all) * 1000:.3f} "
            f"ms: {every:.2f} (each converted: Decimal, datetime, enum)"
        )
        same = [p["symbol"] for p in raw_positions] == [p.symbol for p in sdk_positions]
        print(f"  answers: {'the same positions' if same else 'DIFFERENT'}")
        return 0 if same else 1
    finally:
        if server is not None:
            load.server_stop(server)
        redis_keys_delete()
        if not args.keep_db:
            database_drop(url, name)


if __name__ == "__main__":
    sys.exit(main())
