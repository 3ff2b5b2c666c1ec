//! The TypeScript SDK's own suite (`sdk/typescript`, node's test runner): its client and verifier
//! against a real server started from this build's binary, its types against the OpenAPI
//! document, and the demo signup page in headless Chromium. Run from here so that the README's
//! one test command covers the SDK too. Skipped without Node.js 20 and npm, except under CI=true.

use std::path::Path;
use std::process::Command;

#[test]
fn typescript_sdk_suite_passes() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/typescript");
    let have_npm = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_npm {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but npm is missing: install Node.js 20 and npm"
        );
        eprintln!("skipped: no npm");
        return;
    }
    let run = |args: &[&str]| {
        let out = Command::new("npm")
            .args(args)
            .current_dir(&sdk)
            .env("CONSENT_LEDGER_BIN", env!("CARGO_BIN_EXE_consent-ledger"))
            .output()
            .expect("npm runs");
        assert!(
            out.status.success(),
            "npm {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["ci", "--no-audit", "--no-fund"]);
    run(&["test"]);
}
