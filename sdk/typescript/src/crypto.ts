// Small byte helpers over WebCrypto (browsers and Node 20): SHA-256, Ed25519 verification,
// base64 and hex. No other crypto is needed to check a consent-ledger proof.

/** 32 bytes. */
export type Hash = Uint8Array;

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

/** UTF-8 bytes of a string. */
export function bytes(text: string): Uint8Array {
  return utf8.encode(text);
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** SHA-256. */
export async function sha256(...parts: Uint8Array[]): Promise<Hash> {
  return new Uint8Array(await subtle.digest("SHA-256", concat(...parts)));
}

/** RFC 9162 leaf hash: SHA-256(0x00 ‖ leaf). */
export function leafHash(leaf: Uint8Array): Promise<Hash> {
  return sha256(Uint8Array.of(0), leaf);
}

/** RFC 9162 interior node: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Hash, right: Hash): Promise<Hash> {
  return sha256(Uint8Array.of(1), left, right);
}

/** Verifies an Ed25519 signature. */
export async function ed25519Verify(
  publicKey: Uint8Array,
  signature: Uint8Array,
  message: Uint8Array,
): Promise<boolean> {
  try {
    const key = await subtle.importKey("raw", concat(publicKey), { name: "Ed25519" }, false, ["verify"]);
    return await subtle.verify({ name: "Ed25519" }, key, concat(signature), concat(message));
  } catch {
    return false;
  }
}

/** Standard base64 (with padding) to bytes; `null` if it is not base64. */
export function fromBase64(text: string): Uint8Array | null {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return null;
  const raw = atob(text);
  const data = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  // Canonical only (no stray bits in the last character), as the Rust verifier requires.
  return toBase64(data) === text ? data : null;
}

/** Bytes to standard base64. */
export function toBase64(data: Uint8Array): string {
  let raw = "";
  for (const b of data) raw += String.fromCharCode(b);
  return btoa(raw);
}

/** Bytes to lower-case hex. */
export function toHex(data: Uint8Array): string {
  return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Lower-case hex to bytes; `null` if it is not. */
export function fromHex(text: string): Uint8Array | null {
  if (!/^(?:[0-9a-f]{2})*$/.test(text)) return null;
  return Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** Byte-wise equality. */
export function equal(a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): boolean {
  return !!a && !!b && a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * RFC 8785 (JCS) canonical JSON for the documents the log holds (integers only): members sorted
 * by UTF-16 code units, which is JavaScript's default string order, and ECMAScript escaping.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const object = value as Record<string, unknown>;
  return `{${Object.keys(object)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(object[k])}`)
    .join(",")}}`;
}
