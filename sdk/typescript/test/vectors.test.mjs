// The golden vectors (sdk/vectors/, written by the server's tests/it/vectors.rs): the consent
// rules of this port give the decisions the server gave for its own recorded leaves, and
// verifyEvidence gives the Rust verifier's verdict — passed or not, and the same failed items —
// on every bundle, valid, tampered or with leaves that are not canonical JSON. No server needed.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { decisionsFromLeaves, parseConsentLeaf, strictMillis, verifyCampaign, verifyDecision, verifyEvidence } from "../dist/index.js";

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
  for (const kind of ["events", "campaigns"]) {
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

test("times: the calendar's dates only, as the Rust verifier reads them", () => {
  const { refused, accepted } = read("times.json");
  for (const time of refused) assert.equal(strictMillis(time), null, time);
  for (const time of accepted) assert.notEqual(strictMillis(time), null, time);
});
