// The server-side client against a real server, and verifyEvidence against real bundles: a
// bundle verifies in Node exactly as the Rust verifier says, and every tampering the Rust tests
// use is caught and named.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { ConsentLedger, ConsentLedgerError, verifyCampaign, verifyDecision, verifyEvidence, verifyCheckpoint } from "../dist/index.js";
import { binary, serve, setUp, noServer } from "./harness.mjs";

const received = { role: "sender", name: "Sakura Shop" };

function rustVerify(dir, bundle, vkey) {
  const path = join(dir, `bundle-${Math.random()}.json`);
  writeFileSync(path, JSON.stringify(bundle));
  try {
    execFileSync(binary, ["verify", "evidence", path, "--vkey", vkey], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const flip = (b64) => {
  const bytes = Buffer.from(b64, "base64");
  bytes[bytes.length >> 1] ^= 1;
  return bytes.toString("base64");
};

test("record, decide, and verify evidence offline", { skip: noServer }, async () => {
  const env = setUp();
  const server = await serve(env.db);
  try {
    const ledger = new ConsentLedger({ baseUrl: server.url, token: env.token });
    const email = "hanako@example.jp";
    const key = "signup-1";
    const form = await ledger.registerCollectionPoint({
      name: "signup-footer", channel: "web_form", content_type: "text/html; charset=utf-8",
      content: "<label><input type=checkbox name=newsletter> Send me the newsletter</label>",
      sender_name_shown: "Sakura Shop K.K.", prechecked: false, language: "en",
    });
    const first = await ledger.recordEvent(
      { event: "opt_in", email, purposes: ["newsletter", "offers"], method: "web_form", received_by: received, collection_point: form.id },
      { idempotencyKey: key },
    );
    // A checkpoint covering the first event, kept as a regulator would (used below).
    let early;
    while (!early || (await verifyCheckpoint(early, env.vkey)).size <= BigInt(first.leaf_index)) {
      early = await (await fetch(`${server.url}/checkpoint`)).text();
    }
    const again = await ledger.recordEvent(
      { event: "opt_in", email, purposes: ["newsletter", "offers"], method: "web_form", received_by: received, collection_point: form.id },
      { idempotencyKey: key },
    );
    assert.equal(again.event_id, first.event_id, "a retry with the same key records once");
    await ledger.recordEvent({ event: "opt_in", email, purposes: ["newsletter"], method: "paper", received_by: received });
    await ledger.recordEvent({ event: "opt_out", email, purposes: ["offers"], method: "email", received_by: received });
    assert.equal((await ledger.decision(email, "newsletter")).may_send, true);
    assert.equal((await ledger.decision(email, "offers")).may_send, false);
    const batch = await ledger.check([email, "nobody@example.jp", "not an address"], "newsletter");
    assert.deepEqual(batch.results.map((r) => r.may_send), [true, false, false]);
    const links = await ledger.unsubscribeLinks({ emails: [email] });
    assert.match(links.links[0].headers["List-Unsubscribe"], /^<https?:\/\//);
    await assert.rejects(
      ledger.recordEvent({ event: "opt_in", email: "bad", purposes: ["newsletter"], method: "web_form", received_by: received }),
      (e) => e instanceof ConsentLedgerError && e.status === 422 && !e.retryable && /address/i.test(e.problem.detail),
    );

    const vkey = await ledger.verifierKey();
    assert.equal(vkey, env.vkey);
    const bundle = await ledger.evidence(email);
    const report = await verifyEvidence(bundle, vkey);
    assert.ok(report.passed, JSON.stringify(report.items.filter((i) => !i.ok)));
    assert.ok(report.items.some((i) => i.what === "complete: no event of this address is missing" && i.ok));
    assert.equal(rustVerify(env.dir, bundle, vkey), true);
    const proven = await ledger.provenDecision(email, "offers");
    assert.equal(proven.decision.may_send, false);
    const decided = await verifyDecision(proven, vkey);
    assert.ok(decided.passed, JSON.stringify(decided.items.filter((i) => !i.ok)));
    const recorded = await ledger.check([email], "newsletter", { record: true });
    assert.equal(recorded.results[0].may_send, true);
    const receipt = await ledger.campaignProof(recorded.campaign_check.id, email);
    const audited = await verifyCampaign(receipt, vkey);
    assert.ok(audited.passed, JSON.stringify(audited.items.filter((i) => !i.ok)));
    const cp = await verifyCheckpoint(bundle.checkpoint, vkey);
    assert.ok(cp.size > 0n);
    await assert.rejects(verifyCheckpoint(bundle.checkpoint, vkey.replace(/\+[0-9a-f]{8}\+/, "+00000000+")));

    // A checkpoint trusted earlier: the bundle must extend it; an older bundle fails unless
    // history is what is asked for. Policies: "quorum none" holds; a witness quorum does not
    // (this log has no witnesses); a policy naming one witness key twice is refused.
    const earlySize = (await verifyCheckpoint(early, vkey)).size;
    assert.ok(earlySize < cp.size, "later events are in a later checkpoint");
    const proof = await (await fetch(`${server.url}/v1/log/proof/consistency?from=${earlySize}&to=${cp.size}`)).json();
    const ok = await verifyEvidence(bundle, vkey, { trusted: { checkpoint: early, consistency: proof.path } });
    assert.ok(ok.passed && ok.items.some((i) => i.what === "consistent with the trusted checkpoint" && i.ok));
    const broken = await verifyEvidence(bundle, vkey, { trusted: { checkpoint: early, consistency: proof.path.slice(1) } });
    assert.equal(broken.passed, false);
    await ledger.recordEvent({ event: "opt_out", email: "someone@example.jp", purposes: "all", method: "email", received_by: received });
    let newer;
    for (let i = 0; i < 100 && !newer; i++) {
      const latest = await (await fetch(`${server.url}/checkpoint`)).text();
      if ((await verifyCheckpoint(latest, vkey)).size > cp.size) newer = latest;
      else await new Promise((r) => setTimeout(r, 50));
    }
    const later = await verifyCheckpoint(newer, vkey);
    const forward = await (await fetch(`${server.url}/v1/log/proof/consistency?from=${cp.size}&to=${later.size}`)).json();
    const stale = await verifyEvidence(bundle, vkey, { trusted: { checkpoint: newer, consistency: forward.path } });
    assert.ok(stale.items.some((i) => i.what === "bundle is as recent as the trusted checkpoint" && !i.ok));
    assert.ok((await verifyEvidence(bundle, vkey, { trusted: { checkpoint: newer, consistency: forward.path, allowOlder: true } })).passed);
    assert.ok((await verifyEvidence(bundle, vkey, { policy: `log ${vkey}\nquorum none\n` })).passed);
    const witnessKey = execFileSync(binary, ["witness", "new-key", "--name", "w.example/1", "--out", join(env.dir, "w.key")], { encoding: "utf8" }).trim();
    const needsWitness = await verifyEvidence(bundle, vkey, { policy: `witness A ${witnessKey}\nquorum A\n` });
    assert.ok(needsWitness.items.some((i) => i.what.startsWith("witnessed checkpoint: quorum") && !i.ok), JSON.stringify(needsWitness.items));
    const twice = await verifyEvidence(bundle, vkey, { policy: `witness A ${witnessKey}\nwitness B ${witnessKey}\nquorum A\n` });
    assert.ok(twice.items.some((i) => i.what === "policy" && !i.ok), JSON.stringify(twice.items));

    // Every tampering of the Rust tests: refused by both verifiers, the failing item named.
    const tampered = [
      ["leaf byte", (b) => { b.events[1].leaf = flip(b.events[1].leaf); }, "leaf hash"],
      ["proof step", (b) => { b.events[0].inclusion_proof[0] = flip(b.events[0].inclusion_proof[0]); }, "inclusion"],
      ["checkpoint size", (b) => { const l = b.checkpoint.split("\n"); l[1] = String(Number(l[1]) + 1); b.checkpoint = l.join("\n"); }, "checkpoint"],
      ["signature", (b) => { const [body, sig] = [b.checkpoint.slice(0, b.checkpoint.lastIndexOf(" ")), b.checkpoint.slice(b.checkpoint.lastIndexOf(" ") + 1)]; b.checkpoint = `${body} ${flip(sig.trim())}\n`; }, "checkpoint"],
      ["VRF proof", (b) => { b.subject.vrf_proof = flip(b.subject.vrf_proof); }, "subject label"],
      ["address", (b) => { b.subject.email = "other@example.jp"; }, "subject label"],
      ["parameters left out", (b) => { delete b.parameters; }, "log parameters"],
      ["template", (b) => { b.collection_points[0].content = flip(b.collection_points[0].content); }, "content and id"],
      ["template left out", (b) => { b.collection_points = []; }, "its collection point is in the bundle"],
      ["decision", (b) => { b.decisions.find((d) => d.purpose === "offers").may_send = true; }, "decision for"],
      ["hidden middle event", (b) => { b.events.splice(1, 1); }, "chain"],
      ["hidden newest event", (b) => { b.events.pop(); }, "complete"],
      ["map bucket", (b) => { b.completeness.bucket_entries = flip(b.completeness.bucket_entries); }, "complete"],
      ["map path", (b) => { b.completeness.bucket_path[3] = flip(b.completeness.bucket_path[3]); }, "complete"],
      ["map leaf", (b) => { b.completeness.map_leaf.leaf = flip(b.completeness.map_leaf.leaf); }, "subject map: leaf hash"],
      ["tlog-proof text", (b) => { b.events[0].tlog_proof = "c2sp.org/tlog-proof@v1\nindex 0\n\nx"; }, "tlog-proof"],
    ];
    for (const [what, tamper, named] of tampered) {
      const bad = structuredClone(bundle);
      tamper(bad);
      const r = await verifyEvidence(bad, vkey);
      assert.equal(r.passed, false, `${what}: accepted`);
      assert.ok(r.items.some((i) => !i.ok && i.what.includes(named)), `${what} should fail ${named}: ${JSON.stringify(r.items.filter((i) => !i.ok))}`);
      assert.equal(rustVerify(env.dir, bad, vkey), false, `${what}: the Rust verifier accepted it`);
    }
  } finally {
    await server.stop();
  }
});
