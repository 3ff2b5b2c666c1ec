//! Logs from before labels (`docs/log-format.md`, relabelling): a log whose first subjects were
//! named by salted commitments, made here as versions before labels made it, is relabelled when
//! a version with labels serves it — one `relabel` leaf per subject links its commitment to its
//! label — and a bundle of such an address then shows its whole history under the label and
//! verifies. A leaf naming the salted commitment after its relabelling (a second history) fails
//! the bundle and alarms the auditor. On SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use consent_ledger::config::Config;
use consent_ledger::log::Leaf;
use serde_json::{json, Value};

use crate::common::{audit_map, wait_for_checkpoint, TestApp, TestDb};
use crate::evidence::evidence;
use crate::labels::record;
use crate::on_both_backends;
use crate::unsubscribe::{shop_in, Shop};

on_both_backends!(
    a_history_from_before_labels_is_relabelled_and_shown_whole,
    a_leaf_under_a_relabelled_commitment_fails_the_bundle_and_the_audit,
    the_relabelled_vectors_are_the_servers_own_answers,
);

/// The configuration of a service as versions before labels ran it.
fn pre_labels(db: &TestDb) -> Config {
    Config {
        pre_labels: true,
        ..db.config()
    }
}

/// A tenant and, in a log from before labels, an opt-in then an opt-out of `email` and an
/// opt-in of `other`; then the service as it is today, once it relabelled `email`, and that
/// address's bundle (and the one the old service gave, under the salted commitment).
pub async fn relabelled(db: &TestDb, email: &str, other: &str) -> (Shop, TestApp, Value, Value) {
    let shop = shop_in(&pre_labels(db), true);
    let old = TestApp::start_with(pre_labels(db)).await;
    record(&old, &shop, email, "opt_in", "consent").await;
    record(&old, &shop, email, "opt_out", "").await;
    record(&old, &shop, other, "opt_in", "consent").await;
    let salted = evidence(&old, &shop.sender, email).await;
    assert!(salted["subject"]["vrf_proof"].is_null(), "{salted}");
    assert!(salted["parameters"]["leaf"].is_null(), "{salted}");
    old.stop().await;

    let app = TestApp::start(db).await;
    // The relabelling runs in the background: wait until the address's bundle, named by its
    // label, shows the relabel leaf (before it, the label has no history yet). The worker
    // relabels both addresses in one batch.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bundle = evidence(&app, &shop.sender, email).await;
        let count = bundle["events"].as_array().map_or(0, Vec::len);
        let relabelled = (0..count).any(|n| leaf(&bundle, n)["type"] == "relabel");
        if bundle["subject"]["vrf_proof"].is_string() && relabelled {
            return (shop, app, bundle, salted);
        }
        assert!(Instant::now() < deadline, "not relabelled within 60 s");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn failed(app: &TestApp, bundle: &Value) -> Vec<String> {
    let report = consent_ledger::evidence::verify::verify(
        &serde_json::to_vec(bundle).unwrap(),
        &app.log.verifier_key(),
        None,
        None,
    );
    report.failed().into_iter().map(str::to_string).collect()
}

pub fn leaf(bundle: &Value, n: usize) -> Value {
    let b64 = bundle["events"][n]["leaf"].as_str().unwrap();
    serde_json::from_slice(&crate::labels::base64_decode(b64)).unwrap()
}

/// The opt-in and opt-out from before labels, then the relabel leaf naming the salted
/// commitment and its label: the bundle verifies, its decision is the opt-out's, and the next
/// event goes on under the label, in the same chain.
async fn a_history_from_before_labels_is_relabelled_and_shown_whole(db: TestDb) {
    let email = "old.timer@example.jp";
    let (shop, app, bundle, _) = relabelled(&db, email, "other@example.jp").await;
    let events = bundle["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{bundle}");
    let relabel = leaf(&bundle, 2);
    assert_eq!(relabel["type"], "relabel", "{relabel}");
    assert_eq!(relabel["from"], leaf(&bundle, 0)["subject"], "{relabel}");
    assert_eq!(
        relabel["subject"], bundle["subject"]["commitment"],
        "{relabel}"
    );
    assert_eq!(relabel["prev"], events[1]["leaf_index"], "{relabel}");
    assert!(
        failed(&app, &bundle).is_empty(),
        "{:?}",
        failed(&app, &bundle)
    );
    assert_eq!(bundle["decisions"][0]["status"], "withdrawn", "{bundle}");

    let again = record(&app, &shop, email, "opt_in", "consent").await;
    let bundle = evidence(&app, &shop.sender, email).await;
    assert_eq!(bundle["events"].as_array().unwrap().len(), 4, "{bundle}");
    let last = leaf(&bundle, 3);
    assert_eq!(last["subject"], bundle["subject"]["commitment"], "{last}");
    assert_eq!(last["prev"], bundle["events"][2]["leaf_index"], "{last}");
    assert_eq!(
        bundle["events"][3]["leaf_index"], again["leaf_index"],
        "{bundle}"
    );
    assert!(
        failed(&app, &bundle).is_empty(),
        "{:?}",
        failed(&app, &bundle)
    );
    assert_eq!(bundle["decisions"][0]["status"], "granted", "{bundle}");

    // The auditor replays it all: the relabelling is a link of the chain.
    let state = tempfile::tempdir().unwrap();
    let out = audit_map(&app.base, &app.log.verifier_key(), state.path()).await;
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

/// A dishonest process appends a fresh opt-in under the salted commitment after its
/// relabelling, naming the commitment's head as its `prev` (a second history that a bundle of
/// the salted era would show as granted). The label's bundle no longer proves the commitment
/// closed, and the auditor alarms.
async fn a_leaf_under_a_relabelled_commitment_fails_the_bundle_and_the_audit(db: TestDb) {
    let email = "closed@example.jp";
    let (shop, app, bundle, _) = relabelled(&db, email, "other.closed@example.jp").await;
    let state = tempfile::tempdir().unwrap();
    let vkey = app.log.verifier_key();
    assert!(audit_map(&app.base, &vkey, state.path())
        .await
        .status
        .success());

    let mut forged = leaf(&bundle, 0);
    forged["event_id"] = json!("0191a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b");
    forged["prev"] = bundle["events"][1]["leaf_index"].clone();
    let index = app
        .log
        .append(vec![Leaf::from_json(&forged).unwrap()])
        .await
        .unwrap()
        .start;
    wait_for_checkpoint(&app.log, index + 2).await;

    let bundle = evidence(&app, &shop.sender, email).await;
    let relabel_at = bundle["events"][2]["leaf_index"].as_u64().unwrap();
    assert_eq!(
        failed(&app, &bundle),
        [format!(
            "relabelling at leaf {relabel_at}: the salted commitment is closed"
        )]
    );
    let out = audit_map(&app.base, &vkey, state.path()).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(&format!("leaf {index}")), "{text}");
    assert!(text.contains("relabel leaf moved"), "{text}");
    app.stop().await;
}

/// The golden vectors of a relabelled log (`sdk/vectors/relabelled.json`, read by both SDKs'
/// tests): its bundle through the relabelling, and that bundle altered — the relabel leaf left
/// out, the map's word on the salted commitment left out, the older history left out — and the
/// bundle the old service gave under the salted commitment; written with
/// `CONSENT_LEDGER_WRITE_VECTORS=1` (SQLite).
async fn the_relabelled_vectors_are_the_servers_own_answers(db: TestDb) {
    let (_, app, valid, salted) =
        relabelled(&db, "vector@example.jp", "other.vector@example.jp").await;
    let vkey = app.log.verifier_key();
    let mut without_relabel = valid.clone();
    without_relabel["events"].as_array_mut().unwrap().remove(2);
    let mut without_proof = valid.clone();
    without_proof.as_object_mut().unwrap().remove("relabelled");
    let mut without_history = valid.clone();
    without_history["events"]
        .as_array_mut()
        .unwrap()
        .drain(0..2);
    let cases: Vec<Value> = [
        ("valid: through a relabelling", valid),
        ("tampered: the relabel leaf left out", without_relabel),
        (
            "tampered: the map's word on the salted commitment left out",
            without_proof,
        ),
        (
            "tampered: the history before the relabelling left out",
            without_history,
        ),
        (
            "tampered: the old bundle under the salted commitment",
            salted,
        ),
    ]
    .into_iter()
    .map(|(name, bundle)| {
        let report = consent_ledger::evidence::verify::verify(
            &serde_json::to_vec(&bundle).unwrap(),
            &vkey,
            None,
            None,
        );
        json!({"name": name, "bundle": bundle,
               "verdict": {"passed": report.passed(), "failed": report.failed()}})
    })
    .collect();
    assert_eq!(cases[0]["verdict"]["passed"], json!(true), "{}", cases[0]);
    for case in &cases[1..] {
        assert_eq!(case["verdict"]["passed"], json!(false), "{}", case["name"]);
    }
    app.stop().await;
    if std::env::var("CONSENT_LEDGER_WRITE_VECTORS").as_deref() == Ok("1")
        && db.url.starts_with("sqlite")
    {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/vectors/relabelled.json");
        let about = "Evidence bundles of an address whose history began before the log had a VRF key, from a real log relabelled by the server, valid and tampered, with the Rust verifier's verdict; written by tests/it/relabel.rs";
        let text =
            serde_json::to_string_pretty(&json!({"about": about, "vkey": vkey, "cases": cases}))
                .unwrap();
        std::fs::write(path, text + "\n").unwrap();
    }
}
