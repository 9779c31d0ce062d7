// Ed25519 request signing (seed 004's scheme, as the API verifies it):
//
//   X-Timestamp: Unix time in nanoseconds
//   X-Signature: hex Ed25519 signature of  timestamp + ACTION + canonicalJSON(body)
//
// ACTION is the last path segment (`execute`, `orders`, `cancel`, …; on the stream: the
// command, e.g. `add_order`), canonicalJSON the body with keys sorted at every level
// and no whitespace ("" for no body). Uses the standard WebCrypto `crypto.subtle`
// Ed25519 (Node 20+, Deno, Bun, current browsers); a custom `signer` can replace it.

import { SigningError } from "./errors.js";

/** Signs bytes: returns the 64-byte signature (or its hex). */
export type Signer = (message: Uint8Array) => Promise<Uint8Array | string> | Uint8Array | string;

/** A signing key: a 32-byte Ed25519 seed (hex, base64 or bytes), a 64-byte seed+public
 * key (hex or bytes, as some tools export), a PKCS#8 PEM, a WebCrypto CryptoKey, or a
 * custom `Signer` function. */
export type SigningKey = string | Uint8Array | CryptoKey | Signer;

const PKCS8_ED25519_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

function compareCodePoints(a: string, b: string): number {
  // Python's sort_keys orders by code point; JS's default sort by UTF-16 unit.
  const left = Array.from(a);
  const right = Array.from(b);
  const n = Math.min(left.length, right.length);
  for (let i = 0; i < n; i++) {
    const x = left[i].codePointAt(0)!;
    const y = right[i].codePointAt(0)!;
    if (x !== y) return x - y;
  }
  return left.length - right.length;
}

/** The body as signed: keys sorted at every level, no whitespace; "" for no body. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return "";
  return canonical(value);
}

function canonical(value: unknown): string {
  if (value === null || typeof value !== "object") {
    const text = JSON.stringify(value);
    return text === undefined ? "null" : text;
  }
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? "null" : canonical(item))).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => compareCodePoints(a, b));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(",")}}`;
}

/** The last segment of a URL path: the ACTION signed. */
export function signingAction(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

let lastTimestamp = 0n;

/** Unix time in nanoseconds, as a decimal string; strictly increasing within a process,
 * so two writes with the same body never sign the same message (the API accepts a
 * signature once). */
export function nowNanoseconds(): string {
  const ms = Date.now();
  const perf = typeof performance !== "undefined" ? performance.now() : 0;
  const subMs = Math.floor((perf % 1) * 1e6);
  let now = BigInt(ms) * 1_000_000n + BigInt(subMs);
  if (now <= lastTimestamp) now = lastTimestamp + 1n;
  lastTimestamp = now;
  return now.toString();
}

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new SigningError("Not hex.");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function fromBase64(text: string): Uint8Array {
  const normal = text.replace(/-/g, "+").replace(/_/g, "/").replace(/\s+/g, "");
  const binary = atob(normal + "=".repeat((4 - (normal.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function keyBytes(key: string | Uint8Array): { pkcs8: Uint8Array } {
  let bytes: Uint8Array;
  if (typeof key === "string") {
    const text = key.trim();
    if (text.startsWith("-----BEGIN")) {
      const body = text.replace(/-----[^-]+-----/g, "");
      return { pkcs8: fromBase64(body) };
    }
    bytes = /^[0-9a-fA-F]+$/.test(text) && (text.length === 64 || text.length === 128) ? fromHex(text) : fromBase64(text);
  } else {
    bytes = key;
  }
  if (bytes.length === 64) bytes = bytes.slice(0, 32); // seed + public key
  if (bytes.length === 32) {
    const pkcs8 = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32);
    pkcs8.set(PKCS8_ED25519_PREFIX);
    pkcs8.set(bytes, PKCS8_ED25519_PREFIX.length);
    return { pkcs8 };
  }
  if (bytes.length === 48 && bytes[0] === 0x30) return { pkcs8: bytes }; // already PKCS#8
  throw new SigningError(
    "A signing key is a 32-byte Ed25519 seed (64 hex characters or base64), 64 bytes of seed + public key, a PKCS#8 PEM, a CryptoKey or a signer function.",
  );
}

/** Turns a SigningKey into a Signer (WebCrypto Ed25519 unless a Signer was given). */
export function makeSigner(key: SigningKey): Signer {
  if (typeof key === "function") return key;
  let cryptoKey: Promise<CryptoKey> | undefined;
  const load = (): Promise<CryptoKey> => {
    if (cryptoKey === undefined) {
      const subtle = globalThis.crypto?.subtle;
      if (subtle === undefined) {
        return Promise.reject(new SigningError("This runtime has no WebCrypto (crypto.subtle): pass a signer function as signingKey."));
      }
      if (typeof key === "object" && !(key instanceof Uint8Array)) {
        cryptoKey = Promise.resolve(key as CryptoKey);
      } else {
        const { pkcs8 } = keyBytes(key as string | Uint8Array);
        cryptoKey = subtle
          .importKey("pkcs8", pkcs8 as BufferSource, { name: "Ed25519" }, false, ["sign"])
          .catch((error: unknown) => {
            cryptoKey = undefined;
            throw new SigningError(
              "Could not load the Ed25519 signing key with WebCrypto (this runtime may lack Ed25519: pass a signer function as signingKey).",
              { cause: error },
            );
          });
      }
    }
    return cryptoKey;
  };
  return async (message: Uint8Array) => {
    const loaded = await load();
    const signature = await globalThis.crypto.subtle.sign({ name: "Ed25519" }, loaded, message as BufferSource);
    return new Uint8Array(signature);
  };
}

/** (timestamp, hex signature) for one write: `timestamp + action + canonicalBody`. */
export async function signMessage(signer: Signer, action: string, canonicalBody: string, timestamp = nowNanoseconds()): Promise<{ timestamp: string; signature: string }> {
  const message = new TextEncoder().encode(`${timestamp}${action}${canonicalBody}`);
  const signature = await signer(message);
  return { timestamp, signature: typeof signature === "string" ? signature.toLowerCase() : toHex(signature) };
}
