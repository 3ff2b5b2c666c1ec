//! Regulators verify: a sender exports the evidence of an address, the binary verifies it
//! offline with the verifier key alone, every tampered part is caught and named, the proofs agree
//! with the independent reference verifier, and a forked log is caught by `verify
//! --trusted-checkpoint` and by `monitor`. On SQLite and PostgreSQL (the fork on SQLite files).

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use consent_ledger::api::AppState;
use consent_ledger::auth::Role;
use consent_ledger::evidence::verify;
use consent_ledger::hex;
use serde_json::{json, Value};

use crate::common::{audit_map, bin, reference, TestApp, TestDb};
use crate::on_both_backends;
use crate::unsubscribe::{may_send, opt_in, shop};

on_both_backends!(
    evidence_verifies_offline_and_tampering_is_caught,
    two_servers_on_one_database_keep_one_subject_map,
    the_map_audit_catches_a_misstated_subject_map,
    verify_with_url_anchors_the_bundle_to_the_latest_checkpoint,
    verify_with_email_refuses_a_look_alike_s_bundle
);

/// Runs `verify evidence` on `bundle`; (success, stdout).
pub fn verify_cli(bundle: &Value, vkey: &str, extra: &[&str]) -> (bool, String) {
    verify_cli_as("evidence", bundle, vkey, extra)
}

/// `consent-ledger verify <what> FILE --vkey …` on a document: did it pass, and what it printed.
pub fn verify_cli_as(what: &str, doc: &Value, vkey: &str, extra: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{what}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let out = bin()
        .args(["verify", what])
        .arg(&path)
        .args(["--vkey", vkey])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The leaf indexes of a bundle's events, in order.
pub fn leaf_indexes(bundle: &Value) -> Vec<Value> {
    bundle["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["leaf_index"].clone())
        .collect()
}

/// The evidence bundle of `email`, fetched with `token` (which must be allowed it).
pub async fn evidence(app: &TestApp, token: &str, email: &str) -> Value {
    let res = app
        .call(
            "GET",
            &format!("/v1/evidence?email={email}"),
            Some(token),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

async fn event(app: &TestApp, token: &str, body: Value) -> Value {
    let res = app
        .call("POST", "/v1/events", Some(token), Some(&body), &[])
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()
}

async fn evidence_verifies_offline_and_tampering_is_caught(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let state = AppState::open(&db.config()).unwrap();
    let regulator = state
        .authority
        .issue(
            Role::Regulator,
            None,
            "jfta",
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    let vkey = state.log.verifier_key();
    state.log.shutdown();

    let form = json!({"name": "signup", "channel": "web_form", "content_type": "text/html; charset=utf-8",
                      "content": "<label><input type=checkbox> Send me the newsletter</label>",
                      "sender_name_shown": "Sakura Shop", "prechecked": false, "language": "ja"});
    let cp = app
        .call(
            "POST",
            "/v1/collection-points",
            Some(&shop.sender),
            Some(&form),
            &[],
        )
        .await;
    assert_eq!(cp.status, 201, "{}", cp.text());
    let cp_id = cp.json()["id"].as_str().unwrap().to_string();
    let email = "Hanako@Example.JP";
    // A history with every rule: pending then confirmed, a refusal, a stale opt-in that must not
    // count, then fresh consent for one purpose.
    event(
        &app,
        &shop.sender,
        json!({"event": "opt_in", "email": email, "purposes": ["newsletter", "offers"],
        "method": "web_form", "collection_point": cp_id, "confirmation_required": true,
        "received_by": {"role": "sender", "name": "Sakura Shop"},
        "evidence": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"}}),
    )
    .await;
    event(
        &app,
        &shop.sender,
        json!({"event": "confirm", "email": email, "purposes": "all",
        "method": "email", "received_by": {"role": "sender", "name": "Sakura Shop"}}),
    )
    .await;
    event(
        &app,
        &shop.sender,
        json!({"event": "opt_out", "email": email, "purposes": "all",
        "method": "email", "received_by": {"role": "sender", "name": "Sakura Shop"}}),
    )
    .await;
    event(
        &app,
        &shop.sender,
        json!({"event": "opt_in", "email": email, "purposes": ["offers"],
        "basis": "business_relationship", "method": "in_person", "evidence": {"transaction_reference": "order 1234", "transaction_date": "2017-12-01"},
        "received_by": {"role": "sender", "name": "Sakura Shop"}}),
    )
    .await;
    event(
        &app,
        &shop.sender,
        json!({"event": "opt_in", "email": email, "purposes": ["newsletter"],
        "method": "web_form", "collection_point": cp_id,
        "received_by": {"role": "sender", "name": "Sakura Shop"}}),
    )
    .await;
    opt_in(&app, &shop, "someone-else@example.jp").await;
    assert!(may_send(&app, &shop, "hanako@example.jp", "newsletter").await);
    assert!(!may_send(&app, &shop, "hanako@example.jp", "offers").await);

    let bundle = evidence(&app, &shop.sender, email).await;
    assert_eq!(bundle["events"].as_array().unwrap().len(), 5);
    assert_eq!(bundle["collection_points"].as_array().unwrap().len(), 1);
    assert_eq!(bundle["subject"]["email"], "hanako@example.jp");
    for leaf in bundle["events"].as_array().unwrap() {
        let bytes = B64.decode(leaf["leaf"].as_str().unwrap()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            !text.to_lowercase().contains("hanako"),
            "no plaintext address in a leaf: {text}"
        );
    }
    let proof_text = bundle["events"][0]["tlog_proof"].as_str().unwrap();
    assert!(
        proof_text.starts_with("c2sp.org/tlog-proof@v1\nindex "),
        "{proof_text}"
    );

    // Offline, with the binary and the key alone.
    let (ok, out) = verify_cli(&bundle, &vkey, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("verdict: VALID") && !out.contains("FAIL"),
        "{out}"
    );
    assert!(out.contains("decision for newsletter") && out.contains("decision for offers"));

    // The same evidence in consent-record standards: tests/it/receipts.rs.
    let res = app
        .call(
            "GET",
            &format!("/v1/evidence?email={email}&format=xml"),
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 422);

    // The printable report, in both languages, carries the verifier's verdict.
    let html_dir = tempfile::tempdir().unwrap();
    for (lang, words) in [
        (
            "ja",
            [
                "検証の結果：有効です",
                "記録の経過",
                "同意の申込み（確認メールを送信）",
                "配信停止（送信拒否の通知）",
                "IPアドレス: 203.0.113.7",
            ],
        ),
        (
            "en",
            [
                "VALID",
                "The records, in order",
                "Consent requested",
                "Unsubscribed (refusal)",
                "IP address: 203.0.113.7",
            ],
        ),
    ] {
        let path = html_dir.path().join(format!("report-{lang}.html"));
        let (ok, out) = verify_cli(
            &bundle,
            &vkey,
            &["--report", path.to_str().unwrap(), "--lang", lang],
        );
        assert!(ok, "{out}");
        let html = std::fs::read_to_string(&path).unwrap();
        for word in words.iter().chain(&[
            "Sakura Shop K.K.",
            "hanako@example.jp",
            "Send me the newsletter",
            "Mozilla/5.0",
        ]) {
            assert!(html.contains(word), "{lang} report lacks {word}");
        }
        assert!(
            !html.contains("<label><input"),
            "screen content is escaped into its sandboxed frame"
        );
        // Kept for people to look at, like the browser test's screenshots.
        let artifacts =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&artifacts).unwrap();
        std::fs::write(
            artifacts.join(format!("evidence-report-{lang}.html")),
            &html,
        )
        .unwrap();
    }

    // The independent reference agrees: signature, and every inclusion proof.
    let checkpoint =
        reference::verify_checkpoint(bundle["checkpoint"].as_str().unwrap(), &vkey).unwrap();
    for leaf in bundle["events"].as_array().unwrap().iter().chain(
        bundle["collection_points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["proof"]),
    ) {
        let bytes = B64.decode(leaf["leaf"].as_str().unwrap()).unwrap();
        let path: Vec<[u8; 32]> = leaf["inclusion_proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
            .collect();
        let root = reference::root_from_inclusion(
            reference::leaf_hash(&bytes),
            leaf["leaf_index"].as_u64().unwrap(),
            checkpoint.size,
            &path,
        );
        assert_eq!(root, Some(checkpoint.root));
        let parsed = verify::parse_tlog_proof(leaf["tlog_proof"].as_str().unwrap()).unwrap();
        assert_eq!(parsed.path, path);
    }

    // And completeness, from the text of docs/evidence-format.md: the checkpoint's last leaf is
    // the subject map; the subject's bucket leads to its root; it names the last event.
    let c = &bundle["completeness"];
    let map_leaf_index = c["map_leaf"]["leaf_index"].as_u64().unwrap();
    assert_eq!(map_leaf_index, checkpoint.size - 1);
    let map_leaf: Value =
        serde_json::from_slice(&B64.decode(c["map_leaf"]["leaf"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(map_leaf["type"], "subject_map");
    assert_eq!(map_leaf["covers"].as_u64(), Some(map_leaf_index));
    let commitment = bundle["subject"]["commitment"].as_str().unwrap();
    let bucket = u64::from_str_radix(&commitment[..4], 16).unwrap();
    assert_eq!(c["bucket"].as_u64(), Some(bucket));
    let entries = B64.decode(c["bucket_entries"].as_str().unwrap()).unwrap();
    let bucket_path: Vec<[u8; 32]> = c["bucket_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect();
    let map_root = reference::root_from_inclusion(
        reference::leaf_hash(&entries),
        bucket,
        65_536,
        &bucket_path,
    )
    .unwrap();
    assert_eq!(hex(&map_root), map_leaf["root"].as_str().unwrap());
    let latest = entries
        .chunks(40)
        .find(|e| hex(&e[..32]) == commitment)
        .map(|e| u64::from_be_bytes(e[32..].try_into().unwrap()));
    let events = bundle["events"].as_array().unwrap();
    assert_eq!(latest, events.last().unwrap()["leaf_index"].as_u64());

    // Every part tampered: caught, and the failing item named.
    let flip_b64 = |v: &Value| {
        let mut bytes = B64.decode(v.as_str().unwrap()).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        json!(B64.encode(bytes))
    };
    let tampered: Vec<(&str, Tamper<'_>, &str)> = vec![
        (
            "leaf byte",
            Box::new(|b: &mut Value| b["events"][1]["leaf"] = flip_b64(&b["events"][1]["leaf"])),
            "leaf hash",
        ),
        (
            "proof step",
            Box::new(|b: &mut Value| {
                b["events"][2]["inclusion_proof"][0] =
                    flip_b64(&b["events"][2]["inclusion_proof"][0])
            }),
            "inclusion",
        ),
        (
            "checkpoint size",
            Box::new(|b: &mut Value| {
                let cp = b["checkpoint"].as_str().unwrap().to_string();
                let mut lines: Vec<String> = cp.split('\n').map(str::to_string).collect();
                lines[1] = (lines[1].parse::<u64>().unwrap() + 1).to_string();
                b["checkpoint"] = json!(lines.join("\n"));
            }),
            "checkpoint",
        ),
        (
            "signature",
            Box::new(|b: &mut Value| {
                let cp = b["checkpoint"].as_str().unwrap().to_string();
                let (body, sig) = cp.rsplit_once(' ').unwrap();
                let mut raw = B64.decode(sig.trim()).unwrap();
                raw[10] ^= 1;
                b["checkpoint"] = json!(format!("{body} {}\n", B64.encode(raw)));
            }),
            "checkpoint",
        ),
        (
            "VRF proof",
            Box::new(|b: &mut Value| {
                b["subject"]["vrf_proof"] = flip_b64(&b["subject"]["vrf_proof"])
            }),
            "subject label",
        ),
        (
            "address",
            Box::new(|b: &mut Value| b["subject"]["email"] = json!("other@example.jp")),
            "subject label",
        ),
        (
            "evidence",
            Box::new(|b: &mut Value| {
                b["subject"]["evidence"][0]["evidence"]["ip"] = json!("198.51.100.1")
            }),
            "evidence",
        ),
        (
            "salt",
            Box::new(|b: &mut Value| b["subject"]["salt"] = flip_b64(&b["subject"]["salt"])),
            "evidence",
        ),
        (
            "parameters left out",
            Box::new(|b: &mut Value| b["parameters"] = Value::Null),
            "log parameters",
        ),
        (
            "template",
            Box::new(|b: &mut Value| {
                b["collection_points"][0]["content"] =
                    flip_b64(&b["collection_points"][0]["content"])
            }),
            "content and id",
        ),
        (
            "decision",
            Box::new(|b: &mut Value| b["decisions"][1]["may_send"] = json!(true)),
            "decision for",
        ),
        (
            "hidden event",
            Box::new(|b: &mut Value| {
                b["events"].as_array_mut().unwrap().remove(2);
            }),
            "chain",
        ),
        (
            "hidden newest event (the chain alone cannot tell)",
            Box::new(|b: &mut Value| {
                b["events"].as_array_mut().unwrap().pop();
            }),
            "complete",
        ),
        (
            "map bucket",
            Box::new(|b: &mut Value| {
                b["completeness"]["bucket_entries"] = flip_b64(&b["completeness"]["bucket_entries"])
            }),
            "complete",
        ),
        (
            "map path",
            Box::new(|b: &mut Value| {
                b["completeness"]["bucket_path"][3] = flip_b64(&b["completeness"]["bucket_path"][3])
            }),
            "complete",
        ),
        (
            "map leaf",
            Box::new(|b: &mut Value| {
                b["completeness"]["map_leaf"]["leaf"] =
                    flip_b64(&b["completeness"]["map_leaf"]["leaf"])
            }),
            "subject map: leaf hash",
        ),
        (
            "tlog-proof text",
            Box::new(|b: &mut Value| {
                b["events"][0]["tlog_proof"] = json!("c2sp.org/tlog-proof@v1\nindex 0\n\nx")
            }),
            "tlog-proof",
        ),
    ];
    for (what, tamper, named) in tampered {
        let mut bad = bundle.clone();
        tamper(&mut bad);
        let (ok, out) = verify_cli(&bad, &vkey, &[]);
        assert!(!ok, "{what}: accepted\n{out}");
        assert!(out.contains("verdict: INVALID"), "{what}: {out}");
        let failing: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
        assert!(
            failing.iter().any(|l| l.contains(named)),
            "{what} should fail {named}: {failing:?}"
        );
    }
    // A bundle older than a checkpoint the regulator already trusts: refused (an opt-out since
    // would be missing), unless history is what they asked for.
    let later = event(
        &app,
        &shop.sender,
        json!({"event": "opt_out", "email": email, "purposes": "all",
        "method": "email", "received_by": {"role": "sender", "name": "Sakura Shop"}}),
    )
    .await;
    let newer =
        crate::common::wait_for_checkpoint(&app.log, later["leaf_index"].as_u64().unwrap() + 1)
            .await;
    let old_size: u64 = bundle["checkpoint"]
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let proof = app
        .get(&format!(
            "/v1/log/proof/consistency?from={old_size}&to={}",
            newer.size
        ))
        .await;
    assert_eq!(proof.status, 200, "{}", proof.text());
    let files = tempfile::tempdir().unwrap();
    let (trusted, proof_file) = (
        files.path().join("trusted"),
        files.path().join("proof.json"),
    );
    std::fs::write(&trusted, &newer.note).unwrap();
    std::fs::write(&proof_file, &proof.body).unwrap();
    let args = [
        "--trusted-checkpoint",
        trusted.to_str().unwrap(),
        "--consistency-proof",
        proof_file.to_str().unwrap(),
    ];
    let (ok, out) = verify_cli(&bundle, &vkey, &args);
    assert!(
        !ok && out.contains("FAIL  bundle is as recent as the trusted checkpoint"),
        "{out}"
    );
    let (ok, out) = verify_cli(&bundle, &vkey, &[&args[..], &["--allow-older"]].concat());
    assert!(ok, "{out}");
    assert!(
        out.contains("ok    consistent with the trusted checkpoint"),
        "{out}"
    );

    // Another log's key: refused.
    let other = TestDb::sqlite();
    let other_state = AppState::open(&other.config()).unwrap();
    let (ok, out) = verify_cli(&bundle, &other_state.log.verifier_key(), &[]);
    other_state.log.shutdown();
    assert!(!ok && out.contains("FAIL  checkpoint"), "{out}");

    // A regulator asks for any tenant (and the read is recorded); a sender only for its own.
    let res = app
        .call(
            "GET",
            &format!("/v1/evidence?email={email}&tenant={}", shop.tenant),
            Some(&regulator),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let reads = app
        .call(
            "GET",
            "/v1/audit/regulator-reads",
            Some(&shop.sender),
            None,
            &[],
        )
        .await
        .json();
    assert!(reads.to_string().contains("evidence"), "{reads}");
    let other_shop = shop_for(&db);
    let res = app
        .call(
            "GET",
            &format!("/v1/evidence?email={email}&tenant={}", shop.tenant),
            Some(&other_shop),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 403);
    for (query, status) in [
        ("email=nobody@example.jp", 404),
        ("email=not-an-address", 422),
    ] {
        let res = app
            .call(
                "GET",
                &format!("/v1/evidence?{query}"),
                Some(&shop.sender),
                None,
                &[],
            )
            .await;
        assert_eq!(res.status, status, "{query}: {}", res.text());
    }
    app.stop().await;
}

/// A change to a bundle.
type Tamper<'a> = Box<dyn Fn(&mut Value) + 'a>;

fn shop_for(db: &TestDb) -> String {
    shop(db, true).sender
}

/// Appends one opt-in through the API of a server on `db`, stopping it after.
async fn append_on(db: &TestDb, shop_sender: &str, email: &str) {
    let app = TestApp::start(db).await;
    let recorded = event(
        &app,
        shop_sender,
        json!({"event": "opt_in", "email": email, "purposes": ["newsletter"],
        "method": "web_form", "received_by": {"role": "sender", "name": "Sakura Shop"}}),
    )
    .await;
    // Let a checkpoint cover it.
    crate::common::wait_for_checkpoint(&app.log, recorded["leaf_index"].as_u64().unwrap() + 1)
        .await;
    app.stop().await;
}

#[actix_web::test]
async fn a_forked_log_is_caught_by_verify_and_monitor() {
    // One log, copied at the same size, then grown differently: same key, two histories.
    let a = TestDb::sqlite();
    let shop = shop(&a, true);
    append_on(&a, &shop.sender, "first@example.jp").await;
    let b = TestDb::sqlite();
    let path = |db: &TestDb| db.url.strip_prefix("sqlite://").unwrap().to_string();
    for suffix in ["", "-wal", "-shm"] {
        let from = format!("{}{suffix}", path(&a));
        if std::path::Path::new(&from).exists() {
            std::fs::copy(&from, format!("{}{suffix}", path(&b))).unwrap();
        }
    }
    let vkey = {
        let state = AppState::open(&a.config()).unwrap();
        let vkey = state.log.verifier_key();
        state.log.shutdown();
        vkey
    };
    let monitor_state = tempfile::tempdir().unwrap();
    // Off the test's thread: the server under test answers on it.
    let monitor = |base: &str| {
        let mut command = bin();
        command
            .args([
                "monitor", "--url", base, "--vkey", &vkey, "--once", "--state",
            ])
            .arg(monitor_state.path());
        async move {
            actix_web::rt::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap()
        }
    };
    let app_a = TestApp::start(&a).await;
    let out = monitor(&app_a.base).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok  first checkpoint"));
    app_a.stop().await;

    append_on(&a, &shop.sender, "only-in-a@example.jp").await;
    append_on(&b, &shop.sender, "only-in-b@example.jp").await;

    let app_a = TestApp::start(&a).await;
    // (The first bundle of a log adds its parameters leaf: fetched before the sizes are compared.)
    let bundle_a = evidence(&app_a, &shop.sender, "only-in-a@example.jp").await;
    let cp_a = app_a.log.latest_checkpoint().unwrap();
    let out = monitor(&app_a.base).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("consistent"),
        "{text}"
    );
    let trusted = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(trusted.path(), &cp_a.note).unwrap();
    app_a.stop().await;

    let app_b = TestApp::start(&b).await;
    let bundle_b = evidence(&app_b, &shop.sender, "only-in-b@example.jp").await;
    let cp_b = app_b.log.latest_checkpoint().unwrap();
    assert_eq!(cp_a.size, cp_b.size, "both forks have one size");
    assert_ne!(cp_a.root, cp_b.root);
    // The monitor, following the same log name, sees the other root: a split view, exit code 2.
    let out = monitor(&app_b.base).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ALARM: split view"));
    // The regulator trusted A's checkpoint; B's evidence is refused.
    let res = app_b
        .call(
            "GET",
            "/v1/evidence?email=only-in-b@example.jp",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let (ok, out) = verify_cli(
        &res.json(),
        &vkey,
        &["--trusted-checkpoint", trusted.path().to_str().unwrap()],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  consistent with the trusted checkpoint"),
        "{out}"
    );
    // Without the trusted checkpoint, B's bundle is internally valid: that is why regulators keep one.
    let (ok, out) = verify_cli(&res.json(), &vkey, &[]);
    assert!(ok, "{out}");
    // Checked together, the two bundles are the proof of the fork: both fail.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.json"),
        serde_json::to_vec(&bundle_a).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.json"),
        serde_json::to_vec(&bundle_b).unwrap(),
    )
    .unwrap();
    let out = bin()
        .args(["verify", "evidence"])
        .arg(dir.path())
        .args(["--vkey", &vkey])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{text}");
    assert_eq!(text.matches("split view").count(), 2, "{text}");
    assert!(text.contains("0 valid, 2 invalid"), "{text}");
    app_b.stop().await;
}

/// Two servers share one database (as several PostgreSQL servers would): each one's subject map
/// takes in the other's events, so a bundle from either is complete, whichever recorded what.
async fn two_servers_on_one_database_keep_one_subject_map(db: TestDb) {
    let shop = shop(&db, true);
    let a = TestApp::start(&db).await;
    let b = TestApp::start(&db).await;
    let vkey = a.log.verifier_key();
    for i in 0..4 {
        opt_in(&a, &shop, &format!("a{i}@example.jp")).await;
        opt_in(&b, &shop, &format!("b{i}@example.jp")).await;
    }
    // An opt-out through b of an address that opted in through a, and the other way round.
    for (app, email) in [(&b, "a0@example.jp"), (&a, "b1@example.jp")] {
        event(
            app,
            &shop.sender,
            json!({"event": "opt_out", "email": email, "purposes": "all", "method": "email",
                   "received_by": {"role": "sender", "name": "Sakura Shop"}}),
        )
        .await;
    }
    for app in [&a, &b] {
        for email in ["a0@example.jp", "b1@example.jp", "b3@example.jp"] {
            let bundle = evidence(app, &shop.sender, email).await;
            let (ok, out) = verify_cli(&bundle, &vkey, &[]);
            assert!(ok, "{email} from {}: {out}", app.base);
            if email != "b3@example.jp" {
                assert_eq!(bundle["events"].as_array().unwrap().len(), 2, "{email}");
            }
        }
    }
    a.stop().await;
    b.stop().await;
}

/// `monitor --audit-map` rebuilds the subject map from every leaf: an honest log passes, and a
/// subject map leaf that is not the map of the leaves before it (here forged into the log with
/// the raw append API) raises an alarm, exit code 2.
async fn the_map_audit_catches_a_misstated_subject_map(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let vkey = app.log.verifier_key();
    for i in 0..3 {
        opt_in(&app, &shop, &format!("m{i}@example.jp")).await;
    }
    let state = tempfile::tempdir().unwrap();
    let out = audit_map(&app.base, &vkey, state.path()).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("subject map leaf(s) match"), "{text}");

    // A map leaf naming nobody's latest event: what a log hiding an opt-out would write.
    let forged = consent_ledger::log::Leaf::from_json(&json!({
        "type": "subject_map", "v": 1, "covers": 0, "root": "00".repeat(32), "subjects": 0
    }))
    .unwrap();
    let index = app.log.append(vec![forged]).await.unwrap().start;
    crate::common::wait_for_checkpoint(&app.log, index + 1).await;
    let out = audit_map(&app.base, &vkey, state.path()).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("subject map leaf at {index} does not match")),
        "{text}"
    );
    app.stop().await;
}

/// `verify evidence --url`: the log's latest checkpoint is the anchor, and a bundle of the log
/// passes as consistent with it; without an anchor the verdict says the bundle is valid only as
/// of its own checkpoint.
async fn verify_with_url_anchors_the_bundle_to_the_latest_checkpoint(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "fresh@example.jp";
    opt_in(&app, &shop, email).await;
    let bundle = evidence(&app, &shop.sender, email).await;
    opt_in(&app, &shop, "later@example.jp").await;
    let vkey = app.log.verifier_key();
    let (ok, out) = verify_cli(&bundle, &vkey, &[]);
    assert!(ok && out.contains("not anchored to a later one"), "{out}");
    // Off the test's thread: the server under test answers on it.
    let (base, key) = (app.base.clone(), vkey.clone());
    let (ok, out) =
        actix_web::rt::task::spawn_blocking(move || verify_cli(&bundle, &key, &["--url", &base]))
            .await
            .unwrap();
    assert!(
        ok && out.contains("consistent with the latest checkpoint of"),
        "{out}"
    );
    app.stop().await;
}

/// `verify evidence --email`: the regulator names the address it asked about (normalised as the
/// service does: `Taro@Example.JP` is `taro@example.jp`); the bundle of that address passes, and a
/// complete, valid bundle of a look-alike address (`tar0`, a zero) fails *"subject: the address asked about"*.
async fn verify_with_email_refuses_a_look_alike_s_bundle(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let vkey = app.log.verifier_key();
    opt_in(&app, &shop, "taro@example.jp").await;
    opt_in(&app, &shop, "tar0@example.jp").await;
    let bundle = evidence(&app, &shop.sender, "taro@example.jp").await;
    let (ok, out) = verify_cli(&bundle, &vkey, &["--email", "Taro@Example.JP"]);
    assert!(
        ok && out.contains("ok    subject: the address asked about"),
        "{out}"
    );
    let look_alike = evidence(&app, &shop.sender, "tar0@example.jp").await;
    let (ok, out) = verify_cli(&look_alike, &vkey, &["--email", "taro@example.jp"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  subject: the address asked about"),
        "{out}"
    );
    app.stop().await;
}
