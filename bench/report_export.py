"""Report export benchmark: the transactions CSV through the report service, against
PostgreSQL's own `COPY (SELECT …) TO STDOUT WITH CSV` of the same rows.

    .venv/bin/python bench/report_export.py [--rows 1000000] [--small 10000]
        [--repeat 3] [--keep-db]

On real PostgreSQL and Redis it:

1. creates the database named by DATABASE_URL (default
   postgres://postgres@127.0.0.1:5432/bench_reports; the name must start with
   "bench", because it is dropped and re-created) and migrates it; opens one
   custodial account with `account_open`;
2. writes `--rows` cash postings for it with INSERT … SELECT generate_series, in
   batches of BATCH journals per transaction: one journal per movement with two
   postings (the account's cash and the payment-clearing house account, summing
   to zero), `--small` movements per UTC day from 2026-01-01 (so one day is the
   small report and the whole range the large one), kinds, memos and amounts
   varied. The ledger's triggers stay on: every journal is checked balanced at
   commit. The account's cached cash balance is set to the ledger's sum;
3. times, `--repeat` times each, alternating: (a) the report service —
   `report_generate` of a transactions CSV report over the whole range (server-side
   cursor, csv.writer into a temporary file, the file moved into the default
   storage: MEDIA_ROOT is a temporary directory) and (b) the baseline — one psycopg
   connection streaming `COPY (SELECT …the same columns…) TO STDOUT WITH (FORMAT
   csv, HEADER)` into a temporary file. Prints rows/s of the best run of each and
   the ratio service / COPY (target ≥ 0.5);
4. checks the service's file is byte for byte the file COPY wrote (same header,
   same rows, same formatting), and that the report counted every row;
5. measures the peak of Python allocations (tracemalloc) while the service
   exports the `--small`-row report and the `--rows`-row report (target: the large
   within 2× of the small: memory does not grow with the rows). tracemalloc sees
   Python's allocations only (libpq's buffers for one fetch are outside it); the
   process's peak RSS is printed too.

Exits 1 if a check of step 4 fails. The database is dropped at the end unless
--keep-db; the run's Redis keys (prefix bench-reports-<pid>) and media directory
are always deleted.
"""

import argparse
import gc
import hashlib
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MEDIA_ROOT = tempfile.mkdtemp(prefix="bench-reports-media-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
os.environ.setdefault("DJANGO_DEBUG", "false")  # DEBUG would keep every query in memory
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_reports")
os.environ.setdefault("REDIS_KEY_PREFIX", f"bench-reports-{os.getpid()}")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["MEDIA_ROOT"] = MEDIA_ROOT

import django  # noqa: E402
import psycopg  # noqa: E402
from benchdb import database_drop, database_recreate, redis_keys_delete  # noqa: E402

FIRST_DAY = date(2026, 1, 1)
BATCH = 200_000  # journals per seeding transaction
TARGET_RATIO = 0.5
TARGET_MEMORY_GROWTH = 2.0

# Kinds, memos and amounts vary by row number i; amounts are never zero.
SEED_JOURNALS = """
    INSERT INTO accounts_journal (id, kind, account_id, memo, created_at)
    SELECT i,
           (ARRAY['deposit','trade','fee','trade','interest','withdrawal','funding','trade'])
               [1 + i %% 8],
           %(account)s,
           CASE i %% 4
               WHEN 0 THEN 'Deposit dep_' || to_hex(i * 2654435761) || ' (Bank transfer)'
               WHEN 1 THEN 'buy ' || (i %% 500) || ' ELECT YES @ 0.'
                           || lpad((i %% 97 + 1)::text, 2, '0')
               WHEN 2 THEN 'Fee, "taker" ' || i
               ELSE 'Interest on used margin, day ' || (i %% 365)
           END,
           %(start)s::timestamptz + (i - 1) * %(step)s * interval '1 microsecond'
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
"""
SEED_POSTINGS = """
    INSERT INTO accounts_posting (id, journal_id, ledger_account_id, amount, created_at)
    SELECT 2 * i - 1 + side,
           i,
           CASE side WHEN 0 THEN %(cash)s ELSE %(house)s END,
           CASE side WHEN 0 THEN 1 ELSE -1 END
               * (((i * 7919) %% 200000) - 99999.5) / 1000,
           %(start)s::timestamptz + (i - 1) * %(step)s * interval '1 microsecond'
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i, (VALUES (0), (1)) AS s(side)
"""
# The report's rows, formatted as the service writes them (ISO 8601 UTC times with
# microseconds; decimals with their column's 6 places; the running balance).
BASELINE_COPY = """
    COPY (
        SELECT to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US+00:00') AS time,
               p.journal_id,
               j.kind,
               j.memo,
               p.amount,
               %(opening)s::numeric + sum(p.amount) OVER (ORDER BY p.id) AS balance
        FROM accounts_posting p JOIN accounts_journal j ON j.id = p.journal_id
        WHERE p.ledger_account_id = %(cash)s
          AND p.created_at >= %(start)s AND p.created_at < %(end)s
        ORDER BY p.id
    ) TO STDOUT WITH (FORMAT csv, HEADER)
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large report")
    parser.add_argument(
        "--small", type=int, default=10_000, help="rows of the small report (one day's)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (best kept)")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.small < 1 or args.rows < args.small or args.rows % args.small or args.repeat < 1:
        parser.error("--rows must be a positive multiple of --small; --repeat ≥ 1.")
    return args


def seed(url: str, rows: int, per_day: int):
    """One custodial account with `rows` cash postings, `per_day` a day; returns it."""
    from django.db import connection

    from accounts.models import Account, HouseAccount, User
    from accounts.services.accounts import account_open
    from accounts.services.ledger import cash_ledger_account, house_ledger_account

    owner = User.objects.create_user("bench-reports@example.test", kyb_status="approved")
    account = account_open(owner=owner, kind=Account.Kind.CUSTODIAL)
    cash = cash_ledger_account(account).pk
    house = house_ledger_account(HouseAccount.PAYMENT_CLEARING).pk
    connection.close()
    step_us = 86_400_000_000 // per_day
    params = {
        "account": account.pk,
        "cash": cash,
        "house": house,
        "start": datetime.combine(FIRST_DAY, datetime.min.time(), tzinfo=UTC),
        "step": step_us,
    }
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        for first in range(1, rows + 1, BATCH):
            last = min(rows, first + BATCH - 1)
            with conn.transaction():  # the balance triggers run at each commit
                conn.execute(SEED_JOURNALS, {**params, "first": first, "last": last})
                conn.execute(SEED_POSTINGS, {**params, "first": first, "last": last})
        conn.execute("SELECT setval(pg_get_serial_sequence('accounts_journal', 'id'), %s)", (rows,))
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('accounts_posting', 'id'), %s)", (2 * rows,)
        )
        conn.execute(
            "UPDATE accounts_account SET cash_balance = (SELECT sum(amount) FROM accounts_posting"
            " WHERE ledger_account_id = %s) WHERE id = %s",
            (cash, account.pk),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE accounts_posting")
        conn.execute("VACUUM ANALYZE accounts_journal")
    print(
        f"seeded {rows:,} journals / {2 * rows:,} postings ({per_day:,} a day from {FIRST_DAY}) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    account.refresh_from_db()
    return account, cash


def service_export(account, date_to: date) -> tuple[float, object]:
    """(seconds, report) of one `report_generate` of the transactions CSV."""
    from trading.models import Report
    from trading.services.reports import report_generate

    report = Report.objects.create(
        account=account, type="transactions", date_from=FIRST_DAY, date_to=date_to, format="csv"
    )
    gc.collect()
    started = time.perf_counter()
    report = report_generate(report_id=report.pk)
    return time.perf_counter() - started, report


def baseline_export(url: str, cash: int, date_to: date, path: str) -> tuple[float, int]:
    """(seconds, bytes) of COPY … TO STDOUT of the same rows into a file at `path`."""
    start = datetime.combine(FIRST_DAY, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        opening = conn.execute(
            "SELECT coalesce(sum(amount), 0) FROM accounts_posting "
            "WHERE ledger_account_id = %s AND created_at < %s",
            (cash, start),
        ).fetchone()[0]
        started = time.perf_counter()
        written = 0
        with open(path, "wb", buffering=1 << 20) as out, conn.cursor() as cursor:
            params = {"cash": cash, "start": start, "end": end, "opening": opening}
            with cursor.copy(BASELINE_COPY, params) as copy:
                for block in copy:
                    written += out.write(block)
        return time.perf_counter() - started, written


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def peak_python_memory(account, date_to: date) -> tuple[int, int]:
    """(peak traced bytes, rows) of one service export under tracemalloc."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    _, report = service_export(account, date_to)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, report.rows


def main() -> int:
    args = parse_args()
    url = os.environ["DATABASE_URL"]
    name = database_recreate(url)
    django.setup()
    from django.core.files.storage import default_storage
    from django.core.management import call_command

    print(f"database {name} (created; {'kept' if args.keep_db else 'dropped'} at the end)")
    failures: list[str] = []
    days = args.rows // args.small
    last_day = FIRST_DAY + timedelta(days=days - 1)
    scratch = tempfile.mkdtemp(prefix="bench-reports-copy-")
    try:
        call_command("migrate", verbosity=0, interactive=False)
        account, cash = seed(url, args.rows, args.small)
        print(
            f"export: transactions CSV of {args.rows:,} rows ({FIRST_DAY}..{last_day}), "
            f"best of {args.repeat}; {os.cpu_count()} CPUs"
        )
        service_times, baseline_times = [], []
        report = None
        baseline_path = os.path.join(scratch, "copy.csv")
        for run in range(args.repeat):
            seconds, report = service_export(account, last_day)
            service_times.append(seconds)
            if report.status != "ready" or report.rows != args.rows:
                failures.append(f"run {run}: report {report.status} with {report.rows} rows")
            seconds, size = baseline_export(url, cash, last_day, baseline_path)
            baseline_times.append(seconds)
            if run < args.repeat - 1:
                default_storage.delete(report.file.name)
        service_rate = args.rows / min(service_times)
        baseline_rate = args.rows / min(baseline_times)
        file_size = default_storage.size(report.file.name)
        print(
            f"  report service (report_generate)  {service_rate:11,.0f} rows/s  "
            f"best {min(service_times):.2f} s of {', '.join(f'{t:.2f}' for t in service_times)}"
            f"  ({file_size / 1e6:.1f} MB)"
        )
        print(
            f"  PostgreSQL COPY … TO STDOUT CSV   {baseline_rate:11,.0f} rows/s  "
            f"best {min(baseline_times):.2f} s of {', '.join(f'{t:.2f}' for t in baseline_times)}"
            f"  ({size / 1e6:.1f} MB)"
        )
        ratio = service_rate / baseline_rate
        verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
        print(f"  ratio service / COPY: {ratio:.3f} (target ≥ {TARGET_RATIO}: {verdict})")

        same = sha256(os.path.join(MEDIA_ROOT, report.file.name)) == sha256(baseline_path)
        print(f"  the service's file {'equals' if same else 'DIFFERS FROM'} COPY's, byte for byte")
        if not same:
            failures.append("the service's CSV differs from COPY's")
        default_storage.delete(report.file.name)

        print("peak Python memory of the export (tracemalloc):")
        small_peak, small_rows = peak_python_memory(account, FIRST_DAY)
        large_peak, large_rows = peak_python_memory(account, last_day)
        growth = large_peak / small_peak
        print(f"  {small_rows:>9,} rows  {small_peak / 1e6:7.2f} MB")
        print(f"  {large_rows:>9,} rows  {large_peak / 1e6:7.2f} MB")
        verdict = "met" if growth <= TARGET_MEMORY_GROWTH else "NOT met"
        print(
            f"  large / small: {growth:.2f}× (target ≤ {TARGET_MEMORY_GROWTH:g}×: {verdict}); "
            f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )
        if (small_rows, large_rows) != (args.small, args.rows):
            failures.append(f"memory runs counted {small_rows} and {large_rows} rows")
        for failure in failures:
            print(f"  FAILED: {failure}")
    finally:
        redis_keys_delete()
        shutil.rmtree(MEDIA_ROOT, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
        if not args.keep_db:
            database_drop(url, name)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
