// C2SP signed notes and tlog-checkpoint bodies (the log's Ed25519 signature, algorithm 0x01),
// tlog-cosignature (witnesses' Ed25519 cosignature/v1, algorithm 0x04, and ML-DSA-44, algorithm
// 0x06, verified with @noble/post-quantum) and tlog-policy quorums.

import { ml_dsa44 } from "@noble/post-quantum/ml-dsa.js";

import { bytes, ed25519Verify, equal, fromBase64, Hash, sha256, toHex } from "./crypto.js";

/** The public key length of each signature type (Ed25519 for the log's 0x01 and 0x04; ML-DSA-44 0x06). */
const KEY_LENGTH: Record<number, number> = { 0x01: 32, 0x04: 32, 0x06: 1312 };
/** The witness key types: Ed25519 cosignature/v1 and ML-DSA-44. */
const WITNESS_TYPES = [0x04, 0x06];

/** A checkpoint body: origin, tree size, root hash. */
export interface Checkpoint {
  origin: string;
  size: bigint;
  root: Hash;
}

interface Key {
  name: string;
  id: Uint8Array;
  algorithm: number;
  publicKey: Uint8Array;
}

async function parseKey(vkey: string, algorithms: number | number[]): Promise<Key> {
  // Names hold no '+', but the base64 key may: split from the left.
  const [name, idHex, ...rest] = vkey.trim().split("+");
  const material = rest.join("+");
  if (!name || !idHex || !material) {
    throw new Error("a verifier key is <name>+<key id>+<base64 key>");
  }
  const raw = fromBase64(material);
  const allowed = typeof algorithms === "number" ? [algorithms] : algorithms;
  if (!raw || !allowed.includes(raw[0]) || raw.length !== 1 + KEY_LENGTH[raw[0]]) {
    throw new Error(`not a key of signature type ${allowed.map((a) => `0x0${a}`).join(" or ")}`);
  }
  const algorithm = raw[0];
  const publicKey = raw.slice(1);
  const id = (await sha256(bytes(`${name}\n`), Uint8Array.of(algorithm), publicKey)).slice(0, 4);
  if (toHex(id) !== idHex.toLowerCase()) throw new Error("the key id does not match the name and key");
  return { name, id, algorithm, publicKey };
}

/** The ML-DSA-44 `cosigned_message` of a checkpoint (tlog-cosignature; `start` 0), or null. */
function cosignedMessage(name: string, time: bigint, body: string): Uint8Array | null {
  let cp: Checkpoint;
  try {
    cp = parseCheckpoint(body);
  } catch {
    return null;
  }
  const n = bytes(name);
  const o = bytes(cp.origin);
  if (n.length < 1 || n.length > 255 || o.length < 1 || o.length > 255) return null;
  const u64 = (v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v);
    return b;
  };
  const parts = [bytes("subtree/v1\n\0"), Uint8Array.of(n.length), n, u64(time), Uint8Array.of(o.length), o, u64(0n), u64(cp.size), cp.root];
  const out = new Uint8Array(parts.reduce((k, p) => k + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Splits a note into its body and its signature lines (name, blob). */
function splitNote(note: string): { body: string; signatures: { name: string; blob: Uint8Array }[] } {
  const at = note.lastIndexOf("\n\n");
  if (at < 0) throw new Error("no blank line before the signatures");
  const body = note.slice(0, at + 1);
  const block = note.slice(at + 2);
  if (!block.endsWith("\n")) throw new Error("the note must end with a newline");
  const signatures = block
    .slice(0, -1)
    .split("\n")
    .map((line) => {
      const m = /^\u2014 ([^\s+]+) (\S+)$/.exec(line);
      const blob = m ? fromBase64(m[2]) : null;
      if (!m || !blob || blob.length < 5) throw new Error("a malformed signature line");
      return { name: m[1], blob };
    });
  return { body, signatures };
}

/** Parses a checkpoint body. */
export function parseCheckpoint(body: string): Checkpoint {
  const [origin, size, root] = body.split("\n");
  if (!origin) throw new Error("no origin line");
  if (!/^(0|[1-9][0-9]*)$/.test(size ?? "")) throw new Error("the size is not a decimal number");
  const rootBytes = fromBase64(root ?? "");
  if (!rootBytes || rootBytes.length !== 32) throw new Error("the root is not a base64 hash");
  return { origin, size: BigInt(size), root: rootBytes };
}

/**
 * Verifies a signed checkpoint with the log's verifier key: the signature, the body, and that
 * the origin is the key's name. Lines by other keys (witnesses) are ignored; a failing line by
 * the key rejects the note. Throws if not.
 */
export async function verifyCheckpoint(note: string, vkey: string): Promise<Checkpoint> {
  const key = await parseKey(vkey, 0x01);
  const { body, signatures } = splitNote(note);
  // A line with the key's name and ID that fails to verify rejects the whole note, wherever it
  // stands (C2SP signed-note: "If a signature from a known key fails to verify, clients SHOULD
  // reject the whole note."), as the Rust verifier does.
  let signed = false;
  for (const { name, blob } of signatures) {
    if (name !== key.name || !equal(blob.slice(0, 4), key.id)) continue;
    if (blob.length !== 68 || !(await ed25519Verify(key.publicKey, blob.slice(4), bytes(body)))) {
      throw new Error(`a signature line by ${key.name} does not verify: the note is refused`);
    }
    signed = true;
  }
  if (!signed) throw new Error(`no valid signature by ${key.name}`);
  const cp = parseCheckpoint(body);
  if (cp.origin !== key.name) {
    throw new Error(`the checkpoint's origin ${cp.origin} is not the key's ${key.name}`);
  }
  return cp;
}

/** The time of a valid cosignature by the witness `vkey` (Ed25519 cosignature/v1 or ML-DSA-44)
 * on `note`, or `null`. */
export async function cosignedAt(note: string, vkey: string): Promise<bigint | null> {
  const key = await parseKey(vkey, WITNESS_TYPES);
  const signatureLength = key.algorithm === 0x06 ? 2420 : 64;
  let split;
  try {
    split = splitNote(note);
  } catch {
    return null;
  }
  let latest: bigint | null = null;
  for (const { name, blob } of split.signatures) {
    if (name !== key.name || blob.length !== 12 + signatureLength || !equal(blob.slice(0, 4), key.id)) continue;
    const time = new DataView(blob.buffer, blob.byteOffset + 4, 8).getBigUint64(0);
    let ok: boolean;
    if (key.algorithm === 0x06) {
      const message = cosignedMessage(key.name, time, split.body);
      ok = message !== null && ml_dsa44.verify(blob.slice(12), message, key.publicKey);
    } else {
      ok = await ed25519Verify(key.publicKey, blob.slice(12), bytes(`cosignature/v1\ntime ${time}\n${split.body}`));
    }
    if (time < 2n ** 63n && ok) {
      latest = latest === null || time > latest ? time : latest;
    }
  }
  return latest;
}

/** The base64 public key of a vkey of signature type `algorithm` (or one of them), or `null` (no key id check). */
export function keyMaterial(vkey: string, algorithms: number | number[]): string | null {
  const [name, id, ...rest] = vkey.trim().split("+");
  const raw = fromBase64(rest.join("+"));
  const allowed = typeof algorithms === "number" ? [algorithms] : algorithms;
  if (!name || !/^[0-9a-fA-F]{8}$/.test(id ?? "") || !raw || !allowed.includes(raw[0]) || raw.length !== 1 + KEY_LENGTH[raw[0]]) return null;
  return rest.join("+");
}

/** A C2SP tlog-policy: accepted logs, known witnesses, and the quorum. */
export interface Policy {
  logs: string[];
  witnesses: Map<string, string>;
  groups: Map<string, { k: number; members: string[] }>;
  quorum: string;
}

/** Parses tlog-policy text (`log`, `witness`, `group`, `quorum` lines) and checks every key
 * (its key id too). Rejects (throws) if malformed, as the Rust parser does. */
export async function parsePolicy(text: string): Promise<Policy> {
  const policy = parsePolicyLines(text);
  for (const log of policy.logs) await parseKey(log, 0x01);
  for (const [name, witness] of policy.witnesses) {
    await parseKey(witness, WITNESS_TYPES).catch((e) => {
      throw new Error(`witness ${name}: ${e.message}`);
    });
  }
  return policy;
}

function parsePolicyLines(text: string): Policy {
  const policy: Policy = { logs: [], witnesses: new Map(), groups: new Map(), quorum: "" };
  const defined = (n: string) => n === "none" || policy.witnesses.has(n) || policy.groups.has(n);
  text.split("\n").forEach((raw, i) => {
    const fail = (m: string): never => {
      throw new Error(`policy line ${i + 1}: ${m}`);
    };
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(raw)) fail("control characters other than tab");
    const words = raw.split(/[ \t]+/).filter((w) => w);
    if (words.length === 0 || words[0].startsWith("#")) return;
    const [kind, ...args] = words;
    if (kind === "log" && (args.length === 1 || args.length === 2)) {
      const key = keyMaterial(args[0], 0x01) ?? fail("not a log verifier key");
      if (policy.logs.some((l) => keyMaterial(l, 0x01) === key)) fail("the same log key twice");
      policy.logs.push(args[0]);
    } else if (kind === "witness" && (args.length === 2 || args.length === 3)) {
      if (defined(args[0])) fail(`${args[0]} is already defined`);
      const key = keyMaterial(args[1], WITNESS_TYPES) ?? fail("not a witness verifier key");
      for (const w of policy.witnesses.values()) {
        if (keyMaterial(w, WITNESS_TYPES) === key) fail("the same witness key twice");
      }
      policy.witnesses.set(args[0], args[1]);
    } else if (kind === "group" && args.length >= 3) {
      const [name, threshold, ...members] = args;
      if (defined(name)) fail(`${name} is already defined`);
      if (new Set(members).size !== members.length) fail("a member is listed twice");
      for (const m of members) if (m === "none" || !defined(m)) fail(`${m} is not defined above`);
      const k =
        threshold === "all" ? members.length : threshold === "any" ? 1 : /^[1-9][0-9]*$/.test(threshold) ? Number(threshold) : 0;
      if (k < 1 || k > members.length) fail(`threshold ${threshold} is not all, any or 1..${members.length}`);
      policy.groups.set(name, { k, members });
    } else if (kind === "quorum" && args.length === 1) {
      if (policy.quorum) fail("a second quorum line");
      if (!defined(args[0])) fail(`${args[0]} is not defined above`);
      policy.quorum = args[0];
    } else {
      fail(`not a log, witness, group or quorum line: ${raw.trim()}`);
    }
  });
  if (!policy.quorum) throw new Error("the policy has no quorum line");
  return policy;
}

/** Whether `note`'s cosignatures satisfy the policy's quorum, and which witnesses cosigned. */
/** The policy's witnesses whose cosignatures on `note` verify, with their times (Unix seconds), in policy order. */
export async function cosignedTimes(policy: Policy, note: string): Promise<[string, number][]> {
  const out: [string, number][] = [];
  for (const [name, vkey] of policy.witnesses) {
    const t = await cosignedAt(note, vkey);
    if (t !== null) out.push([name, Number(t)]);
  }
  return out;
}

export async function checkQuorum(
  policy: Policy,
  note: string,
): Promise<{ satisfied: boolean; cosignedBy: string[] }> {
  const cosignedBy = (await cosignedTimes(policy, note)).map(([name]) => name);
  const witnessed = (name: string): boolean => {
    if (name === "none") return true;
    const group = policy.groups.get(name);
    if (!group) return cosignedBy.includes(name);
    return group.members.filter(witnessed).length >= group.k;
  };
  return { satisfied: witnessed(policy.quorum), cosignedBy };
}
