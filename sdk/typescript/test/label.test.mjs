// The VRF of subject labels: C2SP vrf-r255's own test vector (sdk/vectors/vrf-r255.json, read by
// the Rust SDK too) verifies and gives its output; any flipped bit of the proof, key or input
// is refused (null, never a throw), as is a non-canonical scalar. Labels of real bundles are
// checked on the golden bundles (vectors.test.mjs).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { vrfVerify, vrfInput } from "../dist/index.js";

const vectors = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "vectors");
const v = JSON.parse(readFileSync(join(vectors, "vrf-r255.json"), "utf8"));
const unhex = (h) => Uint8Array.from(h.match(/../g), (b) => parseInt(b, 16));
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const [pk, alpha, proof] = [unhex(v.public_key), unhex(v.alpha), unhex(v.proof)];

test("the C2SP vrf-r255 vector verifies and gives its output", async () => {
  assert.equal(hex(await vrfVerify(pk, alpha, proof)), v.output);
});

test("any flipped bit of the proof, the key or the input is refused", async () => {
  for (const [name, data] of [["proof", proof], ["key", pk], ["input", alpha]]) {
    for (let bit = 0; bit < data.length * 8; bit++) {
      const bad = data.slice();
      bad[bit >> 3] ^= 1 << (bit & 7);
      const args = { proof: [pk, alpha, bad], key: [bad, alpha, proof], input: [pk, bad, proof] }[name];
      assert.equal(await vrfVerify(...args), null, `${name} bit ${bit}`);
    }
  }
});

test("a non-canonical scalar, an identity key and a short proof are refused", async () => {
  const order = 2n ** 252n + 27742317777372353535851937790883648493n;
  let s = 0n;
  for (let i = 79; i >= 48; i--) s = (s << 8n) | BigInt(proof[i]);
  const high = proof.slice();
  let t = s + order;
  for (let i = 48; i < 80; i++, t >>= 8n) high[i] = Number(t & 0xffn);
  assert.equal(await vrfVerify(pk, alpha, high), null);
  assert.equal(await vrfVerify(new Uint8Array(32), alpha, proof), null);
  assert.equal(await vrfVerify(pk, alpha, proof.subarray(0, 79)), null);
});

test("the VRF input is length-prefixed", () => {
  assert.notEqual(hex(vrfInput("ab", "c@d")), hex(vrfInput("a", "bc@d")));
  assert.equal(hex(vrfInput("t", "a")).slice(46), "0000000000000001740000000000000001" + "61");
});
