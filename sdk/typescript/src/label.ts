// Subject labels, as the Rust SDK's `label` module defines them (docs/log-format.md): a label is
// the first 32 bytes of the log's C2SP vrf-r255 output (RFC 9381 ECVRF over ristretto255 with
// SHA-512) over the tenant and the normalised address; the log commits to its VRF public key in
// its one `log_parameters` leaf. Verifying only: the ristretto255 group from @noble/curves (the
// SDK's one runtime dependency), SHA-512 from WebCrypto. Also the older salted commitments.

import { ristretto255, ristretto255_hasher } from "@noble/curves/ed25519.js";

import { bytes, concat, fromBase64, Hash, sha256, toHex } from "./crypto.js";

const Point = ristretto255.Point;
type Point = InstanceType<typeof Point>;
/** The order of the ristretto255 group. */
const ORDER = Point.Fn.ORDER;
/** vrf-r255's suite_string. */
const SUITE = concat(Uint8Array.of(0xff), bytes("c2sp.org/vrf-r255"));

/** The `type` of the leaf that commits to the log's VRF public key. */
export const PARAMETERS_TYPE = "log_parameters";
/** The VRF the log uses. */
export const VRF_SUITE = "c2sp.org/vrf-r255";

async function sha512(...parts: Uint8Array[]): Promise<Uint8Array> {
  return new Uint8Array(await globalThis.crypto.subtle.digest("SHA-512", concat(...parts)));
}

/** A little-endian unsigned integer. */
function littleEndian(data: Uint8Array): bigint {
  return data.reduceRight((n, byte) => (n << 8n) | BigInt(byte), 0n);
}

/** A canonical ristretto255 encoding's point, or null. */
function point(data: Uint8Array): Point | null {
  try {
    return Point.fromBytes(data);
  } catch {
    return null;
  }
}

/** The map key of the parameters leaf: SHA-256("consent-ledger/log-parameters/v1"). */
export function parametersKey(): Promise<Hash> {
  return sha256(bytes("consent-ledger/log-parameters/v1"));
}

/** `tag ‖ u64be(len(part)) ‖ part ‖ …`: the length-prefixed inputs of the keys and the VRF. */
function lengthPrefixed(tag: string, ...values: string[]): Uint8Array {
  const parts: Uint8Array[] = [bytes(tag)];
  for (const part of values.map(bytes)) {
    const length = new Uint8Array(8);
    new DataView(length.buffer).setBigUint64(0, BigInt(part.length));
    parts.push(length, part);
  }
  return concat(...parts);
}

/** The map key of a tenant's legal holds: SHA-256("consent-ledger/legal-hold/v1" ‖ u64be(len(tenant)) ‖ tenant). */
export function holdKey(tenantId: string): Promise<Hash> {
  return sha256(lengthPrefixed("consent-ledger/legal-hold/v1", tenantId));
}

/** The map key of a collection point version's retirement: SHA-256("consent-ledger/collection-point/v1" ‖
 * u64be(len(tenant)) ‖ tenant ‖ u64be(len(id)) ‖ id). */
export function collectionPointKey(tenantId: string, id: string): Promise<Hash> {
  return sha256(lengthPrefixed("consent-ledger/collection-point/v1", tenantId, id));
}

/** The VRF input: "consent-ledger/label/v1" ‖ u64be(len(tenant)) ‖ tenant ‖ u64be(len(address)) ‖ address. */
export function vrfInput(tenantId: string, address: string): Uint8Array {
  return lengthPrefixed("consent-ledger/label/v1", tenantId, address);
}

/**
 * RFC 9381 ECVRF_verify for C2SP vrf-r255: the 64-byte output if `proof` (Gamma ‖ c ‖ s, 80
 * bytes) is valid for `alpha` under `publicKey`, else null. Never throws.
 */
export async function vrfVerify(publicKey: Uint8Array, alpha: Uint8Array, proof: Uint8Array): Promise<Uint8Array | null> {
  if (publicKey.length !== 32 || proof.length !== 80) return null;
  const y = point(publicKey);
  if (!y || y.is0()) return null; // validate_key = TRUE
  const gammaBytes = proof.subarray(0, 32);
  const gamma = point(gammaBytes);
  if (!gamma) return null;
  const cBytes = proof.subarray(32, 48);
  const c = littleEndian(cBytes);
  const s = littleEndian(proof.subarray(48, 80));
  if (s >= ORDER) return null;
  // encode_to_curve: the RFC 9496 map of 64 uniform bytes (not RFC 9380's hashToCurve).
  const h = ristretto255_hasher.deriveToCurve!(await sha512(SUITE, Uint8Array.of(0x82), publicKey, alpha));
  // The inputs are public: the variable-time multiplication, which also takes 0, is right.
  const u = Point.BASE.multiplyUnsafe(s).subtract(y.multiplyUnsafe(c));
  const v = h.multiplyUnsafe(s).subtract(gamma.multiplyUnsafe(c));
  const challenge = await sha512(SUITE, Uint8Array.of(0x02), publicKey, h.toBytes(), gammaBytes, u.toBytes(), v.toBytes(), Uint8Array.of(0x00));
  if (toHex(challenge.subarray(0, 16)) !== toHex(cBytes)) return null;
  return sha512(SUITE, Uint8Array.of(0x03), gammaBytes, Uint8Array.of(0x00));
}

/** The label of an address (hex) if `proof` is its VRF proof under `publicKey`, else null. */
export async function verifyLabel(publicKey: Uint8Array, tenantId: string, address: string, proof: Uint8Array): Promise<string | null> {
  const beta = await vrfVerify(publicKey, vrfInput(tenantId, address), proof);
  return beta ? toHex(beta.subarray(0, 32)) : null;
}

/** The salted commitment of a subject from before labels (hex). */
export async function commitment(tenantId: string, address: string, salt: Uint8Array): Promise<string> {
  return toHex(await sha256(bytes(`consent-ledger/subject/v1\n${tenantId}\n${address}\n`), salt));
}

/** A `log_parameters` leaf's VRF public key, checked as strictly as the Rust SDK does; or why not. */
export async function parametersPublicKey(doc: Record<string, unknown>): Promise<Uint8Array | string> {
  const members = ["created_at", "prev", "subject", "type", "v", "vrf", "vrf_public_key"];
  const keys = Object.keys(doc).sort();
  if (keys.length !== members.length || keys.some((k, i) => k !== members[i])) {
    return "not a log_parameters leaf of version 1";
  }
  if (doc.type !== PARAMETERS_TYPE || doc.v !== 1 || typeof doc.created_at !== "string") {
    return "not a log_parameters leaf of version 1";
  }
  if (doc.subject !== toHex(await parametersKey())) return "its subject is not the parameters key";
  if (doc.vrf !== VRF_SUITE) return `its VRF is ${JSON.stringify(doc.vrf)}, not ${VRF_SUITE}`;
  const key = typeof doc.vrf_public_key === "string" ? fromBase64(doc.vrf_public_key) : null;
  const y = key?.length === 32 ? point(key) : null;
  if (!key || !y || y.is0()) return "its vrf_public_key is not a ristretto255 public key";
  if (doc.prev !== null) {
    return `it follows leaf ${doc.prev}: the log changed its VRF key, and a second key can give an address a second history`;
  }
  return key;
}
