//! The SDKs. The Rust client (`sdk/rust`) against the real server on both databases, its
//! verifier being the one the server's `verify evidence` uses (the evidence tests tamper with
//! bundles through it). The TypeScript SDK's own suite (`sdk/typescript`, node's test runner): its client and verifier
//! against a real server started from this build's binary, its types against the OpenAPI
//! document, and the demo signup page in headless Chromium. Run from here so that the README's
//! one test command covers the SDK too. It needs Node.js 20 and npm: `#[ignore]`d, run with
//! `--include-ignored` (as CI does).

use std::path::Path;
use std::process::Command;

use consent_ledger_sdk::client::{Client, NewEvent, Receiver};
use consent_ledger_sdk::evidence::verify;

use crate::common::{TestApp, TestDb};
use crate::on_both_backends;
use crate::unsubscribe::shop;

on_both_backends!(rust_client_records_decides_and_verifies);

async fn rust_client_records_decides_and_verifies(db: TestDb) {
    let shop = shop(&db, true);
    // A log whose reads need a token: the client sends it on every call.
    let mut config = db.config();
    config.log_read_access = consent_ledger::config::ReadAccess::Authenticated;
    let app = TestApp::start_with(config).await;
    let (base, token) = (app.base.clone(), shop.sender.clone());
    // Blocking calls to the server running on this test's thread: from another thread.
    actix_web::rt::task::spawn_blocking(move || {
        let client = Client::new(&base, &token);
        let event = |kind: &str, purposes: serde_json::Value| NewEvent {
            event: kind.into(),
            email: "kenji@example.jp".into(),
            purposes,
            method: "web_form".into(),
            received_by: Receiver {
                role: "sender".into(),
                name: "Sakura Shop".into(),
            },
            basis: None,
            collection_point: None,
            occurred_at: None,
            confirmation_required: false,
        };
        let opt_in = event("opt_in", serde_json::json!(["newsletter", "offers"]));
        let first = client.record_event(&opt_in, "k-1").unwrap();
        let again = client.record_event(&opt_in, "k-1").unwrap();
        assert_eq!(first.event_id, again.event_id, "one event for one key");
        client
            .record_event(&event("opt_out", serde_json::json!(["offers"])), "k-2")
            .unwrap();
        assert!(
            client
                .decision("kenji@example.jp", "newsletter")
                .unwrap()
                .may_send
        );
        let offers = client.decision("kenji@example.jp", "offers").unwrap();
        assert_eq!(
            (offers.may_send, offers.status.as_str()),
            (false, "withdrawn")
        );
        let proven = client
            .proven_decision("kenji@example.jp", "offers")
            .unwrap();
        let report = consent_ledger_sdk::evidence::verify::verify_decision(
            &serde_json::to_vec(&proven).unwrap(),
            &client.verifier_key().unwrap(),
            None,
            None,
        );
        assert!(report.passed(), "{:?}", report.failed());
        assert!(!proven.decision.may_send);
        let (results, id) = client
            .check_recorded(&["kenji@example.jp"], "newsletter")
            .unwrap();
        assert!(results[0].may_send);
        let receipt = client.campaign_proof(&id, "kenji@example.jp").unwrap();
        let report = consent_ledger_sdk::evidence::verify::verify_campaign(
            &serde_json::to_vec(&receipt).unwrap(),
            &client.verifier_key().unwrap(),
            None,
            None,
        );
        assert!(report.passed(), "{:?}", report.failed());
        let batch = client
            .check(
                &["kenji@example.jp", "nobody@example.jp", "not an address"],
                "newsletter",
            )
            .unwrap();
        let answers: Vec<(bool, &str)> = batch
            .iter()
            .map(|r| (r.may_send, r.status.as_str()))
            .collect();
        assert_eq!(
            answers,
            [(true, "granted"), (false, "none"), (false, "invalid")]
        );
        let links = client
            .unsubscribe_links(&["kenji@example.jp"], Some("newsletter"))
            .unwrap();
        assert!(links[0].headers.list_unsubscribe.contains(&links[0].url));
        assert_eq!(
            links[0].headers.list_unsubscribe_post,
            "List-Unsubscribe=One-Click"
        );
        let bad = client.record_event(
            &NewEvent {
                email: "nope".into(),
                ..opt_in
            },
            "k-3",
        );
        match bad {
            Err(e @ consent_ledger_sdk::client::ClientError::Problem { status: 422, .. }) => {
                assert!(!e.retryable())
            }
            other => panic!("expected a 422 problem, got {other:?}"),
        }

        let vkey = client.verifier_key().unwrap();
        let bundle = client.evidence("kenji@example.jp").unwrap();
        assert_eq!(bundle.events.len(), 2);
        let report = verify::verify(&serde_json::to_vec(&bundle).unwrap(), &vkey, None, None);
        assert!(
            report.passed(),
            "{:?}",
            report.items.iter().filter(|i| !i.ok).collect::<Vec<_>>()
        );
        let cp = client.checkpoint().unwrap();
        consent_ledger_sdk::note::NoteVerifier::parse(&vkey)
            .unwrap()
            .checkpoint(&cp)
            .unwrap();
    })
    .await
    .unwrap();
    app.stop().await;
}

#[test]
#[ignore = "needs Node.js 20 and npm (and chromium for its browser test): run with --include-ignored, as CI does"]
fn typescript_sdk_suite_passes() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/typescript");
    let have_npm = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(have_npm, "npm is missing: install Node.js 20 and npm");
    let run = |args: &[&str]| {
        let out = Command::new("npm")
            .args(args)
            .current_dir(&sdk)
            .env("CONSENT_LEDGER_BIN", env!("CARGO_BIN_EXE_consent-ledger"))
            // As under CI: the browser test fails, never skips, without chromium.
            .env("CI", "true")
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
