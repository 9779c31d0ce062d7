"""Publishing one tick's margin updates: one pipelined batch against one group_send each.

    .venv/bin/python bench/push_batch.py [--messages 1000] [--rounds 20]

The sender's side of the dashboard fan-out (bench/ws_fanout.py measures it end to
end): `--messages` margin updates of the engine's size and shape to as many
`account.<id>` groups, sent the way `trading.broadcasts._send` sends them on the
configured layer (`group_send_batch`: one Redis pipeline per 1,000) and the way it
sent them before (a group_send each, SEND_CONCURRENCY at a time, through
channels_redis' pub/sub layer), in interleaved rounds on the same event loop and
Redis. Nobody subscribes: this is the publish cost (CPU and round trips) the
engine pays before the last server process can have its message. Prints p50/p99
per round and the ratio. Uses REDIS_URL (default redis://127.0.0.1:6379/0); it
writes no keys.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
os.environ.setdefault("REDIS_KEY_PREFIX", f"bench-push-{os.getpid()}")

import django  # noqa: E402

TEXT = (
    '{"type":"margin","cash":"-20.00","usedMargin":"12.00","adjustedEquity":"55.826470",'
    '"availableMargin":"43.826470","health":"2.790000","utilization":"0.358000",'
    '"status":"healthy","mayBorrow":true,"stale":false,"staleSince":null,'
    '"at":"2026-12-07T08:00:00.000000+00:00"}'
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    django.setup()
    from django.conf import settings

    from portal.channel_layer import RedisPubSubBatchChannelLayer
    from trading.broadcasts import _group_send_all

    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    batched = RedisPubSubBatchChannelLayer(**config)
    messages = [
        (f"account.{i}", {"type": "margin.update", "account": i, "text": TEXT})
        for i in range(1, args.messages + 1)
    ]

    async def run() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {"pipelined": [], "per message": []}
        for round_ in range(args.rounds + 2):  # two warm-up rounds
            for name in times:
                started = time.perf_counter()
                if name == "pipelined":
                    await batched.group_send_batch(messages)
                else:
                    await _group_send_all(batched, messages)  # group_send each (before)
                if round_ >= 2:
                    times[name].append(time.perf_counter() - started)
        return times

    times = asyncio.run(run())
    print(f"{args.messages} messages a round, {args.rounds} rounds each, interleaved")
    for name, values in times.items():
        values.sort()
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        p50 = statistics.median(values)
        print(f"  {name:12s} p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms")
    ratio = statistics.median(times["pipelined"]) / statistics.median(times["per message"])
    print(f"pipelined / per message (p50): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
