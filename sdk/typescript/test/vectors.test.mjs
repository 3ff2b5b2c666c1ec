// The golden vectors (sdk/vectors/, written by the server's tests/it/vectors.rs): the consent
// rules of this port give the decisions the server gave for its own recorded leaves, and
// verifyEvidence gives the Rust verifier's verdict — passed or not, and the same failed items —
// on every bundle, valid, tampered or with leaves that are not canonical JSON. No server needed.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { ml_dsa44 } from "@noble/post-quantum/ml-dsa.js";

import { cosignedAt, decisionsFromLeaves, headerForm, normalizeAddress, parseConsentLeaf, strictMillis, verifyCampaign, verifyDecision, verifyEvidence } from "../dist/index.js";

const vectors = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "vectors");
const read = (name) => JSON.parse(readFileSync(join(vectors, name), "utf8"));

test("the consent rules give the server's decisions on its own leaves", () => {
  const { cases } = read("consent-rules.json");
  assert.ok(cases.length >= 10);
  for (const c of cases) {
    const events = c.events.map((e) => {
      const leaf = parseConsentLeaf(e.leaf);
      assert.notEqual(typeof leaf, "string", `${c.name}: ${leaf}`);
      return [e.leaf_index, leaf];
    });
    const purposes = c.decisions.map((d) => d.purpose);
    assert.deepEqual(decisionsFromLeaves(events, purposes), c.decisions, c.name);
  }
});

test("verifyEvidence gives the Rust verifier's verdict on every bundle", async () => {
  const { vkey, cases } = read("bundles.json");
  assert.ok(cases.length > 10);
  for (const c of cases) {
    const report = await verifyEvidence(c.bundle, vkey);
    const failed = report.items.filter((i) => !i.ok).map((i) => i.what);
    assert.deepEqual({ passed: report.passed, failed }, c.verdict, c.name);
  }
});

test("verifyEvidence gives the Rust verifier's verdict on every relabelled bundle", async () => {
  const { vkey, cases } = read("relabelled.json");
  assert.ok(cases.length >= 5);
  for (const c of cases) {
    const report = await verifyEvidence(c.bundle, vkey);
    const failed = report.items.filter((i) => !i.ok).map((i) => i.what);
    assert.deepEqual({ passed: report.passed, failed }, c.verdict, c.name);
  }
});

test("verifyDecision gives the Rust verifier's verdict on every send decision", async () => {
  const { vkey, cases } = read("decisions.json");
  assert.ok(cases.length > 3);
  for (const c of cases) {
    const report = await verifyDecision(c.answer, vkey);
    const failed = report.items.filter((i) => !i.ok).map((i) => i.what);
    assert.deepEqual({ passed: report.passed, failed }, c.verdict, c.name);
  }
});

test("verifyCampaign gives the Rust verifier's verdict on every campaign proof", async () => {
  const { vkey, cases } = read("campaigns.json");
  assert.ok(cases.length > 5);
  for (const c of cases) {
    const report = await verifyCampaign(c.proof, vkey);
    const failed = report.items.filter((i) => !i.ok).map((i) => i.what);
    assert.deepEqual({ passed: report.passed, failed }, c.verdict, c.name);
  }
});

test("both verifiers give the same verdict on witnessed bundles and campaign proofs under their policy", async () => {
  for (const kind of ["events", "campaigns", "future"]) {
    const { vkey, policy, cases } = read(`witnessed-${kind}.json`);
    assert.ok(cases.length >= 2);
    for (const c of cases) {
      const verify = kind === "campaigns" ? verifyCampaign : verifyEvidence;
      const report = await verify(c.document, vkey, { policy });
      const failed = report.items.filter((i) => !i.ok).map((i) => i.what);
      assert.deepEqual({ passed: report.passed, failed }, c.verdict, `${kind}: ${c.name}`);
    }
  }
});

test("a bundle whose number is written 49.0 or 49e0 is refused, as the Rust verifier refuses it", async () => {
  const { vkey, cases } = read("bundles.json");
  const valid = cases.find((c) => c.verdict.passed);
  const text = JSON.stringify(valid.bundle);
  assert.ok((await verifyEvidence(text, vkey)).passed, "the text as written passes");
  for (const form of [".0", "e0", "E0"]) {
    const written = text.replace(/"leaf_index":(\d+)/, (_, n) => `"leaf_index":${n}${form}`);
    assert.notEqual(written, text);
    const report = await verifyEvidence(written, vkey);
    assert.deepEqual(report.items.filter((i) => !i.ok).map((i) => i.what), ["bundle"], form);
  }
});

test("times: the calendar's dates only, as the Rust verifier reads them", () => {
  const { refused, accepted } = read("times.json");
  for (const time of refused) assert.equal(strictMillis(time), null, time);
  for (const time of accepted) assert.notEqual(strictMillis(time), null, time);
});

test("cosignedAt reads the Rust witness's ML-DSA-44 and Ed25519 cosignatures as the Rust verifier does", async () => {
  const { cases } = read("cosignatures.json");
  assert.ok(cases.length >= 8);
  for (const c of cases) {
    const time = await cosignedAt(c.note, c.vkey);
    assert.equal(time === null ? null : Number(time), c.cosigned_at, c.name);
  }
});

test("an independent ML-DSA-44 (@noble/post-quantum) derives the Rust witness's key and signature from its seed", () => {
  const { cases } = read("cosignatures.json");
  const c = cases.find((k) => k.name === "ML-DSA-44: cosigned");
  const seed = Uint8Array.from(Buffer.from(c.seed, "hex"));
  const { publicKey, secretKey } = ml_dsa44.keygen(seed);
  const material = Buffer.from(c.vkey.split("+").slice(2).join("+"), "base64");
  assert.equal(material[0], 0x06);
  assert.deepEqual(Uint8Array.from(material.subarray(1)), publicKey);
  // FIPS 204's deterministic variant (rnd = 0): the same bytes from both implementations.
  const line = c.note.trimEnd().split("\n").pop();
  const blob = Buffer.from(line.split(" ").pop(), "base64");
  const sig = ml_dsa44.sign(cosignedMessageOf(c.note, "witness.example.jp/w", blob), secretKey, { extraEntropy: false });
  assert.deepEqual(sig, Uint8Array.from(blob.subarray(12)));
});

/** The cosigned_message of the note's checkpoint, written here from tlog-cosignature's struct. */
function cosignedMessageOf(note, name, blob) {
  const [origin, size, root] = note.split("\n");
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(v)); return b; };
  return Uint8Array.from(Buffer.concat([
    Buffer.from("subtree/v1\n\0"), Buffer.from([name.length]), Buffer.from(name), blob.subarray(4, 12),
    Buffer.from([origin.length]), Buffer.from(origin), u64(0), u64(size), Buffer.from(root, "base64"),
  ]));
}

test("verifyEvidence with email: the bundle must be of exactly that address, as the Rust check_address says", async () => {
  const { vkey, cases } = read("bundles.json");
  const valid = cases.find((c) => c.name === "valid").bundle;
  const same = await verifyEvidence(valid, vkey, { email: valid.subject.email });
  assert.equal(same.passed, true);
  const other = await verifyEvidence(valid, vkey, { email: "someone.else@example.jp" });
  assert.equal(other.passed, false);
  assert.deepEqual(other.items.filter((i) => !i.ok).map((i) => i.what), ["subject: the address asked about"]);
});

test("normalizeAddress keeps and refuses the addresses the Rust rule does", () => {
  const { cases } = read("addresses.json");
  assert.ok(cases.length > 40);
  for (const c of cases) {
    const got = normalizeAddress(c.input);
    assert.deepEqual("address" in got ? got.address : null, c.normalised, JSON.stringify(c.input));
  }
});

test("a legacy local part is quoted in headers", () => {
  assert.equal(headerForm("taro..hanako@docomo.ne.jp"), '"taro..hanako"@docomo.ne.jp');
  assert.equal(headerForm("taro.hanako@docomo.ne.jp"), "taro.hanako@docomo.ne.jp");
});
