// The browser module the ledger serves at /sdk.js is browser/sdk.js, committed: a fresh
// `npm run bundle` must give the same bytes (run it after changing the signup code).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = join(dirname(fileURLToPath(import.meta.url)), "..");

test("browser/sdk.js is the bundle of src/browser.ts", () => {
  const out = join(mkdtempSync(join(tmpdir(), "sdk-bundle-")), "sdk.js");
  const args = ["src/browser.ts", "--bundle", "--format=esm", "--target=es2022", "--minify", "--legal-comments=none", `--outfile=${out}`];
  execFileSync(join(sdk, "node_modules", ".bin", "esbuild"), args, { cwd: sdk, stdio: "ignore" });
  assert.equal(
    readFileSync(join(sdk, "browser", "sdk.js"), "utf8"),
    readFileSync(out, "utf8"),
    "browser/sdk.js drifted from the source: run `npm run bundle` in sdk/typescript",
  );
});
