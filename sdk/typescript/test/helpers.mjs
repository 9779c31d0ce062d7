// Shared by the node tests: the live server's environment, the control endpoint, a TCP
// proxy that can drop a connection, and a record of which operations were exercised.

import net from "node:net";
import assert from "node:assert/strict";

export const env = process.env;
/** The live suites need the server (tests/sdk/test_typescript_sdk.py provides it). */
export const LIVE = Boolean(env.LEVIATHAN_BASE_URL && env.LEVIATHAN_API_KEY && env.LEVIATHAN_TEST_CONTROL);
export const SKIP_LIVE = LIVE ? false : "no live server (LEVIATHAN_BASE_URL, LEVIATHAN_API_KEY, LEVIATHAN_TEST_CONTROL)";

/** POST to the pytest-side control endpoint. */
export async function control(path, body = {}) {
  const response = await fetch(`${env.LEVIATHAN_TEST_CONTROL}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json();
  assert.equal(response.status, 200, JSON.stringify(data));
  return data;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `predicate()` is truthy (polling), or fails after `timeoutMs`. */
export async function until(predicate, timeoutMs = 15_000, what = "condition") {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A TCP proxy to `target` (http://host:port). `dropAfterRequest(match)`: the next
 * connection whose request text matches is forwarded to the server, and when the
 * server starts answering, the client's socket is destroyed (the answer never arrives). */
export async function startProxy(target) {
  const { hostname, port } = new URL(target);
  const sockets = new Set();
  const pairs = new Set();
  let dropMatch = null;
  let dropped = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    sockets.add(client);
    sockets.add(upstream);
    let doomed = false;
    const pair = { silent: false };
    pairs.add(pair);
    client.on("data", (chunk) => {
      if (pair.silent) return;
      if (dropMatch !== null && dropMatch.test(chunk.toString("latin1"))) {
        dropMatch = null;
        doomed = true;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (pair.silent) return;
      if (doomed) {
        dropped += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    dropAfterRequest(match) {
      dropMatch = match;
    },
    /** The connections open now go silent both ways (nothing relayed, nothing closed). */
    blackhole() {
      for (const pair of pairs) pair.silent = true;
    },
    get dropped() {
      return dropped;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Records the operations a client's calls reached (and which of them failed with an
 * ApiError), by wrapping its transport. */
export function recordOperations(client, record) {
  const original = client.transport.request.bind(client.transport);
  client.transport.request = async (operation, input) => {
    try {
      const response = await original(operation, input);
      record.ok.add(operation);
      return response;
    } catch (error) {
      if (error && typeof error.code === "string" && typeof error.status === "number") record.failed.add(operation);
      throw error;
    }
  };
  return client;
}

/** Asserts that `promise` rejects with `ErrorClass` (and `code`), and returns the error. */
export async function rejectsWith(promise, ErrorClass, code) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ErrorClass, `expected ${ErrorClass.name}, got ${error?.name}: ${error?.message}`);
    if (code !== undefined) assert.equal(error.code, code);
    return error;
  }
  assert.fail(`expected ${ErrorClass.name}, but it resolved`);
}
