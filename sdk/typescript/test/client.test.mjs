// The server-side client against a real server: the suppression list and its changes, the
// export, erasure, the display notice, webhooks (a delivery checked with
// verifyWebhookSignature), API tokens; and its retries, on a fake fetch: 429 and 503 are retried
// with the same idempotency key, a POST without one is not.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { ConsentLedger, ConsentLedgerError, verifyWebhookSignature, backoffMs } from "../dist/index.js";
import { serve, setUp, noServer } from "./harness.mjs";

const by = { role: "sender", name: "Sakura Shop K.K." };
const event = (kind, email, purposes) => ({ event: kind, email, purposes, method: "web_form", received_by: by });

test("suppression, changes, export, display notice and erasure", { skip: noServer }, async () => {
  const env = setUp();
  const server = await serve(env.db);
  try {
    const ledger = new ConsentLedger({ baseUrl: server.url, token: env.token });
    await ledger.recordEvent(event("opt_in", "a@example.jp", ["newsletter"]));
    const out = await ledger.recordEvent(event("opt_out", "a@example.jp", "all"));
    const page = await ledger.suppression("newsletter");
    assert.deepEqual(page.addresses, ["a@example.jp"]);
    assert.equal(page.entries[0].scope, "all");
    assert.equal(page.entries[0].event_id, out.event_id);
    const csv = await ledger.suppressionCsv("newsletter");
    assert.match(csv.split("\n")[1], /^"a@example.jp",/);
    const changes = await ledger.suppressionChanges({ purpose: "newsletter" });
    assert.equal(changes.changes.length, 1);
    assert.equal(changes.changes[0].suppressed, true);
    const again = await ledger.suppressionChanges({ purpose: "newsletter", since: changes.resume_since });
    assert.deepEqual(again.changes, []);
    const exported = [];
    for await (const e of ledger.all((after) => ledger.exportEvents({ after, limit: 1 }), (p) => p.events)) exported.push(e.event);
    assert.deepEqual(exported, ["opt_in", "opt_out"]);
    const tenant = await ledger.updateTenant(env.tenant, { optout_contact: "https://shop.example.jp/unsubscribe" });
    assert.equal(tenant.optout_contact, "https://shop.example.jp/unsubscribe");
    const notice = await ledger.displayNotice({ lang: "en" });
    assert.match(notice.text, /Sakura Shop K\.K\./);
    await assert.rejects(ledger.erase("a@example.jp"), (e) => e instanceof ConsentLedgerError && e.status === 409 && typeof e.problem.erasable_from === "string");
  } finally {
    await server.stop();
  }
});

test("webhooks: a signed delivery the receiver verifies, rotation, the delivery log", { skip: noServer }, async () => {
  const env = setUp();
  const server = await serve(env.db, { CONSENT_LEDGER_WEBHOOKS_TO_LOOPBACK: "true" });
  const received = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ body, signature: req.headers["consent-ledger-signature"] });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  try {
    const ledger = new ConsentLedger({ baseUrl: server.url, token: env.token });
    const hook = await ledger.createWebhook({ url: `http://127.0.0.1:${receiver.address().port}/hook`, events: ["opt_out", "opt_in"] });
    assert.deepEqual([...hook.events].sort(), ["opt_in", "opt_out"]);
    const delivery = await ledger.testWebhook(hook.id);
    assert.equal(delivery.status, "delivered");
    const { body, signature } = received[0];
    assert.equal(JSON.parse(body).type, "test");
    assert.equal(await verifyWebhookSignature(hook.secret, signature, body), true);
    assert.equal(await verifyWebhookSignature(hook.secret, signature, body + " "), false);
    assert.equal(await verifyWebhookSignature(hook.secret, signature, body, { now: Date.now() / 1000 + 3600 }), false, "an old delivery");
    const rotated = await ledger.rotateWebhookSecret(hook.id, { overlapHours: 1 });
    await ledger.testWebhook(hook.id);
    const second = received[1];
    assert.equal(await verifyWebhookSignature(rotated.secret, second.signature, second.body), true);
    assert.equal(await verifyWebhookSignature(hook.secret, second.signature, second.body), true, "the old secret during the overlap");
    const log = await ledger.webhookDeliveries(hook.id);
    assert.equal(log.deliveries.length, 2);
    assert.equal((await ledger.webhooks()).webhooks.length, 1);
    await ledger.removeWebhook(hook.id);
    assert.equal((await ledger.webhooks()).webhooks.length, 0);
  } finally {
    receiver.close();
    await server.stop();
  }
});

test("tokens: issue, list, revoke; a revoked token is refused", { skip: noServer }, async () => {
  const env = setUp();
  const server = await serve(env.db);
  try {
    const ledger = new ConsentLedger({ baseUrl: server.url, token: env.token });
    const issued = await ledger.issueToken({ name: "mailer", expires_in_days: 7 });
    assert.equal(issued.role, "sender");
    const mailer = new ConsentLedger({ baseUrl: server.url, token: issued.secret, retries: 0 });
    assert.equal((await mailer.decision("x@example.jp", "newsletter")).may_send, false);
    const listed = await ledger.tokens();
    assert.ok(listed.tokens.some((t) => t.id === issued.id && !("secret" in t)));
    const revoked = await ledger.revokeToken(issued.id);
    assert.equal(revoked.status, "revoked");
    await assert.rejects(mailer.decision("x@example.jp", "newsletter"), (e) => e instanceof ConsentLedgerError && e.status === 401);
  } finally {
    await server.stop();
  }
});

/** A fetch that answers `answers` in turn, recording each request's idempotency key. */
function scripted(answers) {
  const seen = [];
  const fetch = async (_url, init) => {
    seen.push(init.headers["idempotency-key"] ?? null);
    const [status, headers] = answers.shift();
    const body = status < 300 ? '{"event_id":"e","leaf_index":1}' : '{"title":"busy","status":' + status + "}";
    return new Response(body, { status, headers: { "content-type": "application/json", ...headers } });
  };
  return { fetch, seen };
}

test("a busy service is retried with the same idempotency key", async () => {
  const { fetch, seen } = scripted([[503, { "retry-after": "0" }], [429, { "retry-after": "0" }], [201, {}]]);
  const ledger = new ConsentLedger({ baseUrl: "http://ledger.invalid", token: "t", fetch, retryDelayMs: 1 });
  const recorded = await ledger.recordEvent(event("opt_in", "r@example.jp", ["newsletter"]));
  assert.equal(recorded.leaf_index, 1);
  assert.equal(seen.length, 3);
  assert.ok(seen[0] && seen.every((k) => k === seen[0]), "one key for every attempt");
});

test("a POST without an idempotency key is not repeated on a 503, and retries end", async () => {
  const once = scripted([[503, {}], [201, {}]]);
  const ledger = new ConsentLedger({ baseUrl: "http://ledger.invalid", token: "t", fetch: once.fetch, retryDelayMs: 1 });
  await assert.rejects(ledger.createWebhook({ url: "https://hooks.example.jp/x" }), (e) => e.status === 503 && e.retryable);
  assert.equal(once.seen.length, 1);
  const busy = scripted([[503, {}], [503, {}], [503, {}]]);
  const reads = new ConsentLedger({ baseUrl: "http://ledger.invalid", token: "t", fetch: busy.fetch, retries: 2, retryDelayMs: 1 });
  await assert.rejects(reads.decision("r@example.jp", "newsletter"), (e) => e.status === 503);
  assert.equal(busy.seen.length, 3, "the first attempt and two retries");
});

test("back-off follows Retry-After, capped, or doubles with jitter", () => {
  assert.equal(backoffMs(1, 250, "2"), 2000);
  assert.equal(backoffMs(1, 250, "3600"), 60000);
  for (let attempt = 1; attempt <= 4; attempt++) {
    const wait = backoffMs(attempt, 250, null);
    assert.ok(wait >= 0 && wait <= 250 * 2 ** (attempt - 1));
  }
});
