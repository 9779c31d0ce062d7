"""`manage.py run_margin_engine`: the margin engine process (Procfile `risk`)."""

from django.core.management.base import BaseCommand, CommandError

from portal.metrics import metrics_exporter_start
from portal.processes import startup_objects_freeze, stop_on_signals
from portal.shards import Shard
from trading.engine import (
    SWEEP_EVERY_SECONDS,
    MarginEngine,
    margin_sweep_full,
)


class Command(BaseCommand):
    help = (
        "Run the margin engine: re-evaluate the accounts holding each instrument that "
        "ticks, open and resolve margin calls, store margin snapshots and push live "
        "figures; re-evaluate every account periodically. One engine runs per shard "
        "(settings ENGINE_SHARDS) per Redis; another started meanwhile for the same shard "
        "stands by and takes over when it stops."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--sweep-every",
            type=float,
            default=SWEEP_EVERY_SECONDS,
            help=f"Seconds between full sweeps (default {SWEEP_EVERY_SECONDS:g}).",
        )
        parser.add_argument(
            "--shard-index",
            type=int,
            default=None,
            help="The shard this engine owns, 0 … ENGINE_SHARDS-1 (default: the setting "
            "ENGINE_SHARD_INDEX; an index beyond the count stands by for index mod count).",
        )
        parser.add_argument(
            "--once",
            action="store_true",
            help="Run one full sweep alongside any running engine (no pushes) and exit.",
        )

    def handle(self, *args, sweep_every, once, shard_index, **options):
        if sweep_every <= 0:
            raise CommandError("--sweep-every must be positive.")
        try:
            shard = Shard.configured(shard_index)
        except ValueError as exc:
            raise CommandError(f"--shard-index: {exc}") from exc
        if once:
            accounts, stats = margin_sweep_full()
            self.stdout.write(
                f"margin engine: swept {accounts} accounts; {stats.calls_opened} calls opened, "
                f"{stats.calls_resolved} resolved, {stats.snapshots} snapshots"
            )
            return
        engine = MarginEngine(sweep_every=sweep_every, shard=shard)
        owns = "" if shard.whole else f"; {shard}"
        self.stdout.write(f"margin engine: full sweep every {sweep_every:g}s{owns}")
        metrics_exporter_start()  # its own /metrics when METRICS_PORT is set
        startup_objects_freeze()
        with stop_on_signals(engine.stop):
            stats = engine.run()
        self.stdout.write(
            f"margin engine: stopped after {stats.batches} batches and {stats.sweeps} sweeps; "
            f"{stats.calls_opened} calls opened, {stats.calls_resolved} resolved, "
            f"{stats.errors} errors"
        )
