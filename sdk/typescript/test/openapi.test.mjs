// The SDK's types are generated from the service's OpenAPI document: regenerating them from the
// committed openapi/openapi.json must give the committed src/openapi.ts (run `npm run openapi`).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = join(dirname(fileURLToPath(import.meta.url)), "..");

test("src/openapi.ts matches openapi/openapi.json", () => {
  const out = join(mkdtempSync(join(tmpdir(), "sdk-openapi-")), "openapi.ts");
  execFileSync(join(sdk, "node_modules", ".bin", "openapi-typescript"), [join(sdk, "..", "..", "openapi", "openapi.json"), "-o", out], {
    stdio: "ignore",
  });
  assert.equal(
    readFileSync(join(sdk, "src", "openapi.ts"), "utf8"),
    readFileSync(out, "utf8"),
    "the SDK's types drifted from the API: run `npm run openapi` in sdk/typescript",
  );
});
