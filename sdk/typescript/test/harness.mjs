// Test harness: a real consent-ledger server (the binary cargo built) on a throw-away SQLite
// file, set up through its own command line, on a free port.

import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const binary = process.env.CONSENT_LEDGER_BIN ?? join(root, "target", "debug", "consent-ledger");

/**
 * Why the tests that need a real server are skipped (no server binary: `cargo build`, or run
 * them through `cargo test`), or false when they run. Under CI=true nothing is skipped.
 */
export const noServer = existsSync(binary)
  ? false
  : `no server binary at ${binary}: build it with \`cargo build\` (the golden-vector tests run without it)`;
if (noServer && process.env.CI === "true") throw new Error(`CI=true but ${noServer}`);
if (noServer) console.warn(`SKIPPED: ${noServer}`);

/** Runs the CLI against `db`; returns stdout. */
export function cli(db, ...args) {
  return execFileSync(binary, args, {
    env: { ...process.env, CONSENT_LEDGER_DATABASE_URL: db, CONSENT_LEDGER_ORIGIN: "sdk.test/log" },
    encoding: "utf8",
  }).trim();
}

/** A tenant with a sender token (and a publishable key for `origin`, if given). */
export function setUp({ origin } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "consent-ledger-sdk-"));
  const db = `sqlite://${join(dir, "ledger.db")}`;
  cli(db, "migrate");
  const tenant = JSON.parse(
    cli(db, "tenant", "create", "--name", "Shop", "--legal-name", "Sakura Shop K.K.",
      "--postal-address", "1-2-3 Chiyoda, Tokyo", "--complaint-contact", "support@shop.example.jp",
      "--purpose", "newsletter=Monthly newsletter", "--purpose", "offers=Offers"),
  );
  const token = cli(db, "token", "issue", "--role", "sender", "--tenant", tenant.id);
  const publishable = origin
    ? JSON.parse(cli(db, "key", "create-publishable", "--tenant", tenant.id, "--allow-origin", origin)).key
    : undefined;
  const vkey = cli(db, "log", "vkey");
  return { dir, db, tenant: tenant.id, token, publishable, vkey };
}

/** Starts `consent-ledger serve` on `db` (with `env` added); resolves with { url, stop }. */
export async function serve(db, env = {}) {
  const child = spawn(binary, ["serve", "--bind", "127.0.0.1:0"], {
    env: { ...process.env, CONSENT_LEDGER_DATABASE_URL: db, CONSENT_LEDGER_ORIGIN: "sdk.test/log", RUST_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    child.on("exit", (code) => reject(new Error(`the server exited (${code})`)));
    lines.on("line", (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) resolve(m[1]);
    });
  });
  return {
    url,
    stop: () => new Promise((resolve) => {
      child.once("exit", resolve);
      child.kill("SIGTERM");
    }),
  };
}
