// The demo signup page, built with bindSignupForm, in headless Chromium (chromedriver over the
// W3C WebDriver protocol): a signup is recorded as a pending opt-in; with the ledger unreachable
// it is queued and recorded on the next visit, once; Node then verifies the evidence. Skipped
// without chromium and chromedriver, except under CI=true.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join, dirname, extname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { once } from "node:events";

import { ConsentLedger, verifyEvidence } from "../dist/index.js";
import { serve, setUp, noServer } from "./harness.mjs";

const sdk = join(dirname(fileURLToPath(import.meta.url)), "..");
const CHROMIUM = "/usr/bin/chromium";
const DRIVER = "/usr/bin/chromedriver";
const haveBrowser = existsSync(CHROMIUM) && existsSync(DRIVER);
if (!haveBrowser && process.env.CI === "true") {
  throw new Error("CI=true but chromium/chromedriver are missing: apt-get install chromium chromium-driver");
}

/** Serves the SDK directory (dist/ and demo/) on a free port. */
async function staticServer() {
  const types = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json" };
  const server = createServer((req, res) => {
    const path = normalize(join(sdk, new URL(req.url, "http://x").pathname));
    if (!path.startsWith(sdk) || !existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" });
    res.end(readFileSync(path));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

/** A headless Chromium session through chromedriver. */
async function browser() {
  const probe = createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  const port = probe.address().port;
  probe.close();
  const driver = spawn(DRIVER, [`--port=${port}`], { stdio: "ignore" });
  const base = `http://127.0.0.1:${port}`;
  const call = async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json.value)}`);
    return json.value;
  };
  for (let i = 0; ; i++) {
    try {
      if ((await call("GET", "/status")).ready) break;
    } catch (e) {
      if (i > 100) throw e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const session = await call("POST", "/session", {
    capabilities: {
      alwaysMatch: {
        "goog:chromeOptions": {
          binary: CHROMIUM,
          args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,800"],
        },
      },
    },
  });
  const s = `/session/${session.sessionId}`;
  const element = async (css) => Object.values(await call("POST", `${s}/element`, { using: "css selector", value: css }))[0];
  return {
    go: (url) => call("POST", `${s}/url`, { url }),
    type: async (css, text) => call("POST", `${s}/element/${await element(css)}/value`, { text }),
    click: async (css) => call("POST", `${s}/element/${await element(css)}/click`, {}),
    text: async (css) => call("GET", `${s}/element/${await element(css)}/text`),
    script: (script) => call("POST", `${s}/execute/sync`, { script, args: [] }),
    async waitForText(css, pattern) {
      for (let i = 0; i < 150; i++) {
        const text = await this.text(css);
        if (pattern.test(text)) return text;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`${css} never matched ${pattern}: ${await this.text(css)}`);
    },
    async quit() {
      await call("DELETE", s).catch(() => {});
      driver.kill();
    },
  };
}

test("the demo signup page records consent in a real browser", { skip: noServer || (!haveBrowser && "no chromium/chromedriver") }, async () => {
  const site = await staticServer();
  const env = setUp({ origin: site.origin });
  const ledger = await serve(env.db);
  const page = await browser();
  try {
    // The page loads the SDK as the README's snippet does: the ledger's /sdk.js, from another origin.
    const sdkUrl = encodeURIComponent(`${ledger.url}/sdk.js`);
    const demo = (url) => `${site.origin}/demo/index.html?ledger=${encodeURIComponent(url)}&key=${env.publishable}&sdk=${sdkUrl}`;
    await page.go(demo(ledger.url));
    await page.type("input[type=email]", "taro@example.jp");
    await page.click("input[value=newsletter]");
    await page.click("button[type=submit]");
    await page.waitForText("#status", /^recorded/);

    // The ledger down: queued in the page, recorded on the next visit — once.
    await page.go(demo("http://127.0.0.1:9"));
    await page.type("input[type=email]", "jiro@example.jp");
    await page.click("input[value=offers]");
    await page.click("button[type=submit]");
    await page.waitForText("#status", /^queued/);
    const queued = await page.script(`return Object.keys(localStorage).filter(k => k.startsWith("consent-ledger:queue:")).map(k => JSON.parse(localStorage[k]).length)`);
    assert.deepEqual(queued, [1]);
    await page.go(demo(ledger.url));
    await page.waitForText("#status", /^recorded/);
    assert.deepEqual(await page.script(`return JSON.parse(localStorage["consent-ledger:queue:${env.publishable}"])`), []);

    // A double click records one signup.
    await page.go(demo(ledger.url));
    await page.type("input[type=email]", "shiro@example.jp");
    await page.click("input[value=newsletter]");
    await page.script(`document.querySelector("button[type=submit]").click(); document.querySelector("button[type=submit]").click(); return 0`);
    await page.waitForText("#status", /^recorded/);

    // "continue": once recorded, the form goes on to its own action (a GET to the page here).
    await page.go(`${demo(ledger.url)}&mode=continue`);
    await page.type("input[type=email]", "saburo@example.jp");
    await page.click("input[value=offers]");
    await page.click("button[type=submit]");
    for (let i = 0; !(await page.script("return location.search")).includes("email=saburo"); i++) {
      assert.ok(i < 100, "the form never went on to its action");
      await new Promise((r) => setTimeout(r, 100));
    }

    const client = new ConsentLedger({ baseUrl: ledger.url, token: env.token });
    assert.equal((await client.evidence("shiro@example.jp")).events.length, 1, "a double click records once");
    assert.equal((await client.decision("saburo@example.jp", "offers")).status, "pending");
    for (const [email, purpose] of [["taro@example.jp", "newsletter"], ["jiro@example.jp", "offers"]]) {
      const decision = await client.decision(email, purpose);
      assert.equal(decision.status, "pending", `${email}: a signup awaits the person's confirmation`);
      assert.equal(decision.may_send, false);
    }
    const bundle = await client.evidence("jiro@example.jp");
    assert.equal(bundle.events.length, 1, "recorded once");
    const report = await verifyEvidence(bundle, env.vkey);
    assert.ok(report.passed, JSON.stringify(report.items.filter((i) => !i.ok)));
    const template = Buffer.from(bundle.collection_points[0].content, "base64").toString();
    assert.match(template, /Sakura Shop K\.K\. sends me/);
  } finally {
    await page.quit();
    await ledger.stop();
    site.close();
  }
});
