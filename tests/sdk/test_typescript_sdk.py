"""The TypeScript SDK (`@leviathan/sdk`, sdk/typescript) against the real server.

The app is served by uvicorn in a subprocess (tests.live_server) on the test's
database, with prices kept fresh by a small feed thread (and a tick of BTC-PERP's
book every second, so the stream has updates to send). The SDK is built with `tsc`
(`npm ci` first when its node_modules are missing) and its suite runs with
`node --test` on the compiled output, with LEVIATHAN_BASE_URL, LEVIATHAN_STREAM_URL
and LEVIATHAN_API_KEY pointing at the server. What only the server side can do, the
node tests ask of a small control endpoint served here (LEVIATHAN_TEST_CONTROL):
fill a key's rate-limit window (a real 429 with a short Retry-After), count orders by
client_order_id in the database (exactly one after a retried execute), and restart the
server on the same port (the stream's reconnect).

Also: the seed's TypeScript Quickstart, as written, in a fresh project that installs
the SDK with `npm install <sdk/typescript>`; and the committed models are what
sdk/typescript/generate.py makes of the served OpenAPI document.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from accounts.models import Account, ApiKey
from accounts.services.api_keys import api_key_identify
from portal.api.throttles import WINDOW_MS, rate_window_key
from portal.redis import redis_client
from tests import live_server
from tests.api.conftest import key_issue
from tests.conftest import credit_cash
from tests.factories import UserFactory, open_account
from tests.trading.conftest import binary_create, perp_create
from tests.trading.quoting import put_quote
from trading.models import Order
from trading.services.linked_accounts import linked_account_link
from trading.venues.fakes.kalshi import FakeKalshi, seed_demo

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "typescript"
SEED_KEY = "lev_live_xxxxxxxxxxxxxxxx"
NODE_TIMEOUT = 420
# The node suites, in this order (the last one restarts the server).
NODE_TESTS = ["test/unit.test.mjs", "test/rest.test.mjs", "test/stream.test.mjs"]
MIN_NODE_TESTS = 55

# Seed 000's TypeScript Quickstart, as written there (one statement a line).
QUICKSTART = """\
// npm install @leviathan/sdk
import { Leviathan } from "@leviathan/sdk";
const client = new Leviathan({ apiKey: "lev_live_xxxxxxxxxxxxxxxx" });
// View all open positions
const positions = await client.intelligence.positions();
positions.forEach(p =>
  console.log(`${p.symbol} ${p.side} — PnL: ${p.pnl}`)
);
// Execute a trade
const trade = await client.intelligence.execute({
  symbol: "TRUMP-WIN",
  side: "buy",
  notionalUsdc: "50000",
});
console.log(`Trade executed: ${trade.id}`);
"""

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are needed for the TypeScript SDK",
)


def _run(argv: list[str], *, cwd: Path, env: dict | None = None, timeout: float = 300):
    return subprocess.run(  # noqa: S603 (our tools, our files)
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def sdk_built() -> Path:
    """sdk/typescript with its dev dependencies installed (npm ci: the lockfile) and
    dist/ compiled by tsc."""
    installed = SDK / "node_modules" / ".package-lock.json"
    lockfile = SDK / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lockfile.stat().st_mtime:
        out = _run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SDK)
        assert out.returncode == 0, out.stdout + out.stderr
    for script in ("build", "typecheck-tests"):  # tsc: the SDK, then the typing checks
        out = _run(["npm", "run", "--silent", script], cwd=SDK)
        assert out.returncode == 0, out.stdout + out.stderr
    return SDK


# -- the server and what feeds it ----------------------------------------------------------


class Feed:
    """Keeps TRUMP-WIN and BTC-PERP quoted (fresh timestamps), and moves BTC-PERP's
    top bid size every tick, so order-book subscribers get updates."""

    def __init__(self, period: float = 1.0):
        self.period, self.stop, self.ticks = period, threading.Event(), 0
        self.thread = threading.Thread(target=self._run, name="ts-sdk-feed", daemon=True)

    def publish(self) -> None:
        self.ticks += 1
        for venue in ("kalshi", "polymarket"):
            put_quote(f"TRUMP-WIN@{venue}", bid="0.55", ask="0.56")
        size = "1000000" if self.ticks % 2 else "1000001"
        put_quote("BTC-PERP@leviathan", bid="64000", ask="64010", binary=False, size=size)

    def _run(self) -> None:
        while not self.stop.wait(self.period):
            try:
                self.publish()
            except Exception:  # a missed tick is retried next period
                time.sleep(self.period)

    def __enter__(self):
        self.publish()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


class Server:
    """uvicorn on one fixed port for the whole test, restartable (the stream's reconnect)."""

    def __init__(self, monkeypatch):
        self.port = live_server._free_port()
        monkeypatch.setattr(live_server, "_free_port", lambda: self.port)
        self.stack: ExitStack | None = None
        self.base = ""
        self.lock = threading.Lock()

    def start(self) -> str:
        self.stack = ExitStack()
        self.base = self.stack.enter_context(live_server.asgi_server())
        return self.base

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.close()
            self.stack = None

    def restart(self) -> None:
        with self.lock:
            self.stop()
            time.sleep(0.5)
            self.start()


def _rate_window_fill(key: str, group: str, retry_after: float) -> dict:
    """Fill `key`'s window of `group` so its next request is a 429 whose Retry-After is
    about `retry_after` seconds (the oldest entry leaves the window then)."""
    identity = api_key_identify(key)
    assert identity is not None
    limit = settings.API_RATE_LIMITS[group]
    client = redis_client()
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000
    oldest = now_ms - WINDOW_MS + round(retry_after * 1000)
    window = rate_window_key(group, identity.pk)
    client.delete(window)
    client.zadd(window, {secrets.token_hex(8): oldest + i for i in range(limit)})
    client.pexpire(window, WINDOW_MS)
    return {"filled": limit, "group": group}


def _control_server(server: Server) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            params = json.loads(self.rfile.read(length) or b"{}")
            try:
                if self.path == "/ratelimit":
                    body = _rate_window_fill(
                        params["key"], params.get("group", "market_data"), params["retry_after"]
                    )
                elif self.path == "/orders":
                    count = Order.objects.filter(client_order_id=params["client_order_id"]).count()
                    body = {"count": count}
                elif self.path == "/restart":
                    server.restart()
                    body = {"restarted": True}
                else:
                    self._answer(404, {"error": self.path})
                    return
                self._answer(200, body)
            except Exception as exc:  # reported to the node test
                self._answer(500, {"error": repr(exc)})
            finally:
                connection.close()  # this thread's database connection

    control = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=control.serve_forever, name="ts-sdk-control", daemon=True).start()
    return control


@pytest.fixture
def linked_key(transactional_db, settings, monkeypatch):
    """A linked (non-custodial) Kalshi account on the fake Kalshi, and a key for it."""
    with FakeKalshi() as fake:
        settings.KALSHI_BASE_URLS = {"production": fake.base_url, "demo": fake.base_url}
        monkeypatch.setenv("KALSHI_DEMO_URL", fake.base_url)
        monkeypatch.setenv("KALSHI_PRODUCTION_URL", fake.base_url)
        seeded = seed_demo(fake, key_id=f"key-{secrets.token_hex(6)}")
        credential = linked_account_link(
            user=UserFactory(),
            venue="kalshi",
            environment="demo",
            key_id=seeded.key_id,
            private_key_pem=seeded.private_key_pem,
        )
        yield key_issue([credential.account])


@pytest.fixture
def world(transactional_db, linked_key, monkeypatch):
    """Accounts, markets and keys for the node suite; the server; the control endpoint."""
    account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(account, "500000")
    second = open_account(kind=Account.Kind.CUSTODIAL, owner=account.owner)
    credit_cash(second, "1000")
    binary_create("TRUMP-WIN")
    perp_create("BTC-PERP", "BTC")
    seed = Ed25519PrivateKey.generate()
    public = seed.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    seed_hex = seed.private_bytes_raw().hex()
    signed_account = open_account(kind=Account.Kind.CUSTODIAL)
    credit_cash(signed_account, "10000")
    reader = [s for s in ApiKey.Scope.values if s != "trade"]
    env = {
        "LEVIATHAN_API_KEY": key_issue([account]),
        "LEVIATHAN_TEST_ACCOUNT_ID": account.public_id,
        "LEVIATHAN_TEST_SECOND_ACCOUNT_ID": second.public_id,
        "LEVIATHAN_TEST_MULTI_KEY": key_issue([account, second]),
        "LEVIATHAN_TEST_RATE_KEY": key_issue([account]),
        "LEVIATHAN_TEST_STREAM_KEY": key_issue([account]),
        "LEVIATHAN_TEST_READONLY_KEY": key_issue([account], scopes=reader),
        "LEVIATHAN_TEST_SIGNED_KEY": key_issue([signed_account], signing_public_key=public),
        "LEVIATHAN_TEST_SIGNING_SEED": seed_hex,
        "LEVIATHAN_TEST_LINKED_KEY": linked_key,
    }
    server = Server(monkeypatch)
    with Feed():
        base = server.start()
        control = _control_server(server)
        try:
            env |= {
                "LEVIATHAN_BASE_URL": f"{base}/v1",
                "LEVIATHAN_STREAM_URL": base.replace("http://", "ws://") + "/v1",
                "LEVIATHAN_TEST_CONTROL": f"http://127.0.0.1:{control.server_port}",
            }
            yield env, account
        finally:
            control.shutdown()
            server.stop()


def _node_env(extra: dict) -> dict:
    env = {**os.environ, **extra}
    env.pop("NODE_OPTIONS", None)
    return env


def _hold(env: dict) -> None:
    """For working on the SDK: with LEVIATHAN_TS_HOLD=<file>, write the suite's environment
    there (JSON) and keep the server up until the file is deleted, instead of running node."""
    hold = Path(os.environ["LEVIATHAN_TS_HOLD"])
    hold.write_text(json.dumps(env))
    while hold.exists():
        time.sleep(0.5)


@pytest.mark.timeout(NODE_TIMEOUT + 180)
def test_the_node_suite_passes_against_the_live_server(sdk_built, world):
    env, account = world
    if os.environ.get("LEVIATHAN_TS_HOLD"):
        _hold(env)
        return
    out = _run(
        ["node", "--test", "--test-concurrency=1", "--test-reporter=spec", *NODE_TESTS],
        cwd=sdk_built,
        env=_node_env(env),
        timeout=NODE_TIMEOUT,
    )
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-20000:]
    counts = {name: int(n) for name, n in re.findall(r"^ℹ (\w+) (\d+)$", report, re.MULTILINE)}
    assert counts.get("fail") == 0 and counts.get("skipped") == 0, report[-5000:]
    assert counts.get("pass") == counts.get("tests") >= MIN_NODE_TESTS, counts
    for name in (  # the live suites ran (a skipped suite would not count as a skipped test)
        "the seed's Quickstart runs as written",
        "every operation of the document was exercised",
        "execute after a dropped connection",
        "429: the client waits for Retry-After",
        "pagination: for await walks every page",
        "reconnect after a server restart",
    ):
        assert f"✔ {name}" in report, name
    # The Quickstart's trade (and the suite's) landed on the key's account.
    assert Order.objects.filter(account=account, status=Order.Status.FILLED).exists()


def test_the_quickstart_runs_as_written_from_an_installed_package(sdk_built, world, tmp_path):
    env, account = world
    project = tmp_path / "partner-app"
    project.mkdir()
    (project / "package.json").write_text('{"name": "partner-app", "private": true}\n')
    out = _run(["npm", "install", "--no-audit", "--no-fund", str(sdk_built)], cwd=project)
    assert out.returncode == 0, out.stdout + out.stderr
    (project / "quickstart.mjs").write_text(QUICKSTART.replace(SEED_KEY, env["LEVIATHAN_API_KEY"]))
    quiet = {k: v for k, v in env.items() if k != "LEVIATHAN_API_KEY"}
    before = Order.objects.filter(account=account).count()
    out = _run(["node", "quickstart.mjs"], cwd=project, env=_node_env(quiet), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("Trade executed: ")]
    order = Order.objects.get(public_id=line.removeprefix("Trade executed: "))
    assert order.account == account and order.status == Order.Status.FILLED
    assert order.notional_usdc == Decimal("50000")
    assert Order.objects.filter(account=account).count() == before + 1


def test_the_committed_models_are_what_the_api_document_gives(tmp_path):
    """src/models.ts is what generate.py makes of the document the server serves (written
    as `make sdk` writes sdk/openapi.json: manage.py spectacular)."""
    served = tmp_path / "openapi.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(served))
    out = _run([sys.executable, str(SDK / "generate.py"), str(served), "--check"], cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    # And --check notices a difference.
    changed = json.loads(served.read_text())
    changed["components"]["schemas"]["Order"]["properties"]["new_field"] = {"type": "string"}
    served.write_text(json.dumps(changed))
    out = _run([sys.executable, str(SDK / "generate.py"), str(served), "--check"], cwd=ROOT)
    assert out.returncode == 1 and "out of date" in out.stderr
