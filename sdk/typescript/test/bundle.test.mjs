// The browser modules the ledger serves are committed: browser/sdk.js (at /sdk.js) and
// browser/verify-page.js (inlined into the /verify page); a fresh `npm run bundle` must give the
// same bytes (run it after changing their sources).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = join(dirname(fileURLToPath(import.meta.url)), "..");

for (const [source, bundle] of [["src/browser.ts", "sdk.js"], ["src/verify-page.ts", "verify-page.js"]]) {
  test(`browser/${bundle} is the bundle of ${source}`, () => {
    const out = join(mkdtempSync(join(tmpdir(), "sdk-bundle-")), bundle);
    const args = [source, "--bundle", "--format=esm", "--target=es2022", "--minify", "--legal-comments=none", `--outfile=${out}`];
    execFileSync(join(sdk, "node_modules", ".bin", "esbuild"), args, { cwd: sdk, stdio: "ignore" });
    assert.equal(
      readFileSync(join(sdk, "browser", bundle), "utf8"),
      readFileSync(out, "utf8"),
      `browser/${bundle} drifted from the source: run \`npm run bundle\` in sdk/typescript`,
    );
  });
}

test("the verify page's bundle gives the Rust verifier's verdict on every golden bundle", async () => {
  await import(join(sdk, "browser", "verify-page.js"));
  const { verifyText } = globalThis.consentLedger;
  const { vkey, cases } = JSON.parse(readFileSync(join(sdk, "..", "vectors", "bundles.json"), "utf8"));
  for (const c of cases) {
    const { report } = await verifyText(JSON.stringify(c.bundle), vkey);
    assert.equal(report.passed, c.verdict.passed, c.name);
    assert.deepEqual(report.items.filter((i) => !i.ok).map((i) => i.what), c.verdict.failed, c.name);
  }
});
