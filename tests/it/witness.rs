//! Witnesses (C2SP tlog-witness / tlog-cosignature / tlog-policy), end to end: two witnesses run
//! as `consent-ledger witness serve` processes, the log asks them to cosign its checkpoints and
//! serves the cosignatures, an evidence bundle carries a cosigned checkpoint, and `verify
//! evidence --policy` holds a bundle to a k-of-n quorum. On SQLite and PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use consent_ledger::api::AppState;
use serde_json::{json, Value};

use crate::campaigns::{record_check, served_proof};
use crate::common::{bin, reference, TestApp, TestDb};
use crate::evidence::{evidence, verify_cli};
use crate::on_both_backends;
use crate::unsubscribe::{opt_in, shop};

on_both_backends!(
    witnesses_cosign_and_verify_holds_bundles_to_a_quorum,
    an_auditing_witness_refuses_a_chain_that_skips_an_opt_out,
    a_back_dated_event_fails_under_the_witnesses_times,
    a_back_dated_campaign_check_fails_under_the_witnesses_times,
    an_auditing_witness_refuses_a_back_dated_leaf,
    an_auditing_witness_refuses_a_future_dated_leaf,
    a_future_dated_erasure_fails_under_the_witnesses_times
);

/// A witness process, killed when dropped.
struct WitnessProcess {
    child: Child,
    url: String,
    vkey: String,
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A witness key made by `witness new-key`: ML-DSA-44 (the default), except for `w2`, which
/// keeps an Ed25519 `cosignature/v1` key, so that a quorum of w1 and w2 mixes both types.
fn new_key(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let key = dir.join(format!("{name}.key"));
    let algorithm = if name == "w2" { "ed25519" } else { "ml-dsa-44" };
    let out = bin()
        .args([
            "witness",
            "new-key",
            "--name",
            &format!("{name}.example.jp/witness"),
            "--algorithm",
            algorithm,
        ])
        .arg("--out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        key,
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
    )
}

fn start_witness(dir: &Path, name: &str, log_vkey: &str) -> WitnessProcess {
    start_witness_with(dir, name, log_vkey, &[])
}

fn start_witness_with(dir: &Path, name: &str, log_vkey: &str, args: &[&str]) -> WitnessProcess {
    let (key, vkey) = new_key(dir, name);
    let mut child = bin()
        .args(["witness", "serve", "--key"])
        .arg(&key)
        .args(["--log", log_vkey, "--listen", "127.0.0.1:0", "--state"])
        .arg(dir.join(format!("{name}-state")))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the witness starts").unwrap();
        if let Some(url) = line.strip_prefix("witness listening on ") {
            break url.to_string();
        }
    };
    // Keep reading: a closed pipe would fail the witness's next line of output.
    std::thread::spawn(move || lines.for_each(drop));
    WitnessProcess { child, url, vkey }
}

async fn witnesses_cosign_and_verify_holds_bundles_to_a_quorum(db: TestDb) {
    let shop = shop(&db, true);
    let state = AppState::open(&db.config()).unwrap();
    let log_vkey = state.log.verifier_key();
    state.log.shutdown();
    let dir = tempfile::tempdir().unwrap();
    let w1 = start_witness(dir.path(), "w1", &log_vkey);
    let w2 = start_witness(dir.path(), "w2", &log_vkey);
    let (_, absent) = new_key(dir.path(), "w3");

    let mut config = db.config();
    config.witnesses = vec![
        format!("{} {}", w1.vkey, w1.url).parse().unwrap(),
        format!("{} {}", w2.vkey, w2.url).parse().unwrap(),
    ];
    let app = TestApp::start_with(config).await;
    let email = "yuki@example.jp";
    opt_in(&app, &shop, email).await;

    // The log serves its checkpoint with both witnesses' cosignatures.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let cp = app.get("/checkpoint").await.text();
        if cp.matches('\u{2014}').count() == 3 {
            assert!(cp.contains("w1.example.jp/witness") && cp.contains("w2.example.jp/witness"));
            break;
        }
        assert!(Instant::now() < deadline, "not cosigned in time: {cp}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }

    let bundle = evidence(&app, &shop.sender, email).await;
    let witnessed = bundle["witnessed"]["checkpoint"].as_str().unwrap();
    // The history serves the cosignatures too.
    let size = consent_ledger_sdk::note::Checkpoint::parse(witnessed.split("\n\n").next().unwrap())
        .unwrap()
        .size;
    let page = app.get("/v1/log/checkpoints?limit=1000").await.json();
    let listed = page["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tree_size"] == size)
        .unwrap()["checkpoint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(listed.contains("w1.example.jp/witness") && listed.contains("w2.example.jp/witness"));
    // Both cosignatures check out with the independent reference written from the C2SP text.
    for w in [&w1, &w2] {
        let time = reference::cosigned_at(witnessed, &w.vkey).expect("a valid cosignature");
        assert!(time > 1_700_000_000);
    }
    reference::verify_checkpoint(witnessed, &log_vkey).expect("still the log's checkpoint");

    let policy = |name: &str, text: String| {
        let path = dir.path().join(format!("{name}.policy"));
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let head = format!(
        "log {log_vkey}\nwitness A {}\nwitness B {} {}\nwitness C {absent}\n",
        w1.vkey, w2.vkey, w2.url
    );
    let both = policy("both", format!("{head}group both all A B\nquorum both\n"));
    let two_of_three = policy(
        "two",
        format!("# regulators\n{head}group g 2 A B C\nquorum g\n"),
    );
    let all_three = policy(
        "all",
        format!("{head}group everyone all A B C\nquorum everyone\n"),
    );
    for (path, passes) in [(&both, true), (&two_of_three, true), (&all_three, false)] {
        let (ok, out) = verify_cli(&bundle, &log_vkey, &["--policy", path]);
        assert_eq!(ok, passes, "{path}\n{out}");
        if !passes {
            assert!(
                out.lines()
                    .any(|l| l.starts_with("FAIL") && l.contains("quorum")),
                "{out}"
            );
        }
    }
    // Without its cosignatures, or with a consistency proof that does not hold: refused.
    let mut stripped = bundle.clone();
    let log_only: String = witnessed
        .lines()
        .filter(|l| !l.contains("example.jp/witness"))
        .map(|l| format!("{l}\n"))
        .collect();
    stripped["witnessed"]["checkpoint"] = json!(log_only);
    let (ok, out) = verify_cli(&stripped, &log_vkey, &["--policy", &both]);
    assert!(
        !ok && out.contains("cosigned by no witness of the policy"),
        "{out}"
    );
    // A consistency proof that does not hold: the first hash flipped, or one where none belongs.
    let mut bad = bundle.clone();
    let proof = bad["witnessed"]["consistency"].as_array_mut().unwrap();
    match proof.first_mut() {
        Some(first) => {
            let mut hash = B64.decode(first.as_str().unwrap()).unwrap();
            hash[0] ^= 1;
            *first = json!(B64.encode(hash));
        }
        None => proof.push(json!(B64.encode([7u8; 32]))),
    }
    let (ok, out) = verify_cli(&bad, &log_vkey, &["--policy", &both]);
    assert!(
        !ok && out.contains("extends the bundle's checkpoint"),
        "{out}"
    );
    // A policy for another log is refused.
    let stranger = consent_ledger::log::note::NoteSigner::new("other.example/log", &[9; 32])
        .unwrap()
        .verifier_key();
    let other = policy("other", format!("log {stranger}\nquorum none\n"));
    let (ok, out) = verify_cli(&bundle, &log_vkey, &["--policy", &other]);
    assert!(
        !ok && out.contains("FAIL  the log is one the policy accepts"),
        "{out}"
    );

    // The witness protocol itself: a stale old size learns the held size as text/x.tlog.size.
    let cp = app.get("/checkpoint").await.text();
    let res = awc::Client::new()
        .post(format!("{}/add-checkpoint", w1.url))
        .send_body(format!("old 0\n\n{cp}"))
        .await;
    let mut res = res.unwrap();
    assert_eq!(res.status().as_u16(), 409);
    assert_eq!(
        res.headers().get("content-type").unwrap().to_str().unwrap(),
        "text/x.tlog.size"
    );
    let held: u64 = String::from_utf8(res.body().await.unwrap().to_vec())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(held > 0);
    let unknown = awc::Client::new()
        .post(format!("{}/add-checkpoint", w1.url))
        .send_body("old 0\n\nother.example/log\n1\nAAAA\n\n\u{2014} x AAAA\n")
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    // "A witness SHOULD serve a recent checkpoint for each log it cosigned.
    //  GET <monitoring prefix>/<origin hash>/checkpoint [...] it MUST include the cosignature(s)
    //  from the witness's key(s) that were returned from add-checkpoint and the cosignature from
    //  the log key(s) that the witness verified. If the witness has never cosigned a checkpoint
    //  for that log, it MUST respond with a "404 Not Found" HTTP status code instead."
    let origin = cp.lines().next().unwrap();
    let hash = consent_ledger::hex(&<sha2::Sha256 as sha2::Digest>::digest(origin));
    let mut res = awc::Client::new()
        .get(format!("{}/{hash}/checkpoint", w1.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let note = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    let witness_name = w1.vkey.split('+').next().unwrap();
    assert!(note.starts_with(&format!("{origin}\n")), "{note}");
    assert!(
        note.contains(&format!("\u{2014} {witness_name} ")),
        "{note}"
    );
    assert!(note.contains(&format!("\u{2014} {origin} ")), "{note}");
    let other = w2.vkey.split('+').next().unwrap();
    assert!(
        !note.contains(&format!("\u{2014} {other} ")),
        "only the lines it verified or made: {note}"
    );
    let never = awc::Client::new()
        .get(format!("{}/{}/checkpoint", w1.url, "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(never.status().as_u16(), 404);
    app.stop().await;
}

/// Offers `cp` to `witness` as the log would (the old size learnt from its 409, with the
/// consistency proof from it): the witness's status and body.
async fn offer(
    app: &TestApp,
    witness: &WitnessProcess,
    cp: &consent_ledger::log::SignedCheckpoint,
) -> (u16, String) {
    let client = awc::Client::new();
    let url = format!("{}/add-checkpoint", witness.url);
    let mut res = client
        .post(&url)
        .send_body(format!("old 0\n\n{}", cp.note))
        .await
        .unwrap();
    let held: u64 = String::from_utf8(res.body().await.unwrap().to_vec())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let lines: String = app
        .log
        .consistency_proof(held, cp.size)
        .unwrap()
        .iter()
        .map(|h| format!("{}\n", B64.encode(h)))
        .collect();
    let mut res = client
        .post(&url)
        .send_body(format!("old {held}\n{lines}\n{}", cp.note))
        .await
        .unwrap();
    let body = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    (res.status().as_u16(), body)
}

/// Waits until the log serves a checkpoint of at least `size` that `witness` cosigned.
async fn cosigned(app: &TestApp, witness: &str, size: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let cp = app.get("/checkpoint").await.text();
        let at = consent_ledger_sdk::note::Checkpoint::parse(cp.split("\n\n").next().unwrap())
            .map_or(0, |c| c.size);
        if at >= size && cp.contains(witness) {
            return;
        }
        assert!(Instant::now() < deadline, "not cosigned in time: {cp}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An auditing witness (`witness serve --audit URL`) replays every leaf before it cosigns. It
/// cosigns an honest log; then a patched server writes an event whose `prev` skips the opt-out,
/// and the rows are edited to match, so the bundle alone is VALID. The witness refuses that
/// checkpoint (422, naming the leaf), so a bundle held to a policy naming it fails.
async fn an_auditing_witness_refuses_a_chain_that_skips_an_opt_out(db: TestDb) {
    let shop = shop(&db, true);
    // A second server on the same database serves the tiles the witness reads.
    let reader = TestApp::start(&db).await;
    let log_vkey = reader.log.verifier_key();
    let dir = tempfile::tempdir().unwrap();
    let auditor = start_witness_with(dir.path(), "auditor", &log_vkey, &["--audit", &reader.base]);
    let mut config = db.config();
    config.witnesses = vec![format!("{} {}", auditor.vkey, auditor.url).parse().unwrap()];
    let app = TestApp::start_with(config).await;
    let email = "audited@example.jp";
    let event = |kind: &str| {
        json!({"event": kind, "email": email, "purposes": ["newsletter"], "method": "web_form",
               "received_by": {"role": "sender", "name": "Sakura Shop"}})
    };
    let post = |body: serde_json::Value| {
        let (app, token) = (&app, shop.sender.clone());
        async move {
            let res = app
                .call("POST", "/v1/events", Some(&token), Some(&body), &[])
                .await;
            assert_eq!(res.status, 201, "{}", res.text());
            res.json()
        }
    };
    let opt_in = post(event("opt_in")).await;
    let opt_out = post(event("opt_out")).await;
    let out_index = opt_out["leaf_index"].as_u64().unwrap();
    cosigned(&app, "auditor.example.jp/witness", out_index + 2).await;

    // The patched server's leaf, and the rows made to match it.
    let label = evidence(&app, &shop.sender, email).await["subject"]["commitment"].clone();
    let now = consent_ledger::rfc3339(consent_ledger::now_millis());
    let forged = consent_ledger::log::Leaf::from_json(&json!({
        "type": "consent_event", "v": 1, "tenant": shop.tenant, "event_id": "forged",
        "subject": label, "event": "opt_in", "purposes": ["newsletter"], "basis": "consent",
        "method": "web_form", "collection_point": null,
        "received_by": {"role": "sender", "name": "Sakura Shop"},
        "occurred_at": now, "recorded_at": now,
        "prev": opt_in["leaf_index"], "confirmation_required": false, "evidence_sha256": null,
        "confirms": null
    }))
    .unwrap();
    let index = app.log.append(vec![forged]).await.unwrap().start;
    let id = opt_out["event_id"].as_str().unwrap();
    crate::common::tamper(
        &db,
        &format!(
            "DELETE FROM consent_state WHERE event_id = '{id}';
             DELETE FROM webhook_deliveries WHERE event_id = '{id}';
             UPDATE events SET id = 'forged', kind = 'opt_in', leaf_index = {index},
                    prev_leaf_index = {} WHERE id = '{id}';",
            opt_in["leaf_index"]
        ),
    );
    let cp = crate::common::wait_for_checkpoint(&app.log, index + 2).await;

    // Offered the checkpoint directly (old size learnt from the 409), the witness refuses it.
    let (status, body) = offer(&app, &auditor, &cp).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains(&format!("leaf {index} names leaf {}", opt_in["leaf_index"])),
        "{body}"
    );

    // The bundle alone passes; held to the auditing witness, it does not.
    let bundle = evidence(&app, &shop.sender, email).await;
    let (ok, out) = verify_cli(&bundle, &log_vkey, &[]);
    assert!(ok, "the rows were made to match: {out}");
    let policy = dir.path().join("audited.policy");
    std::fs::write(
        &policy,
        format!("log {log_vkey}\nwitness A {}\nquorum A\n", auditor.vkey),
    )
    .unwrap();
    let (ok, out) = verify_cli(&bundle, &log_vkey, &["--policy", policy.to_str().unwrap()]);
    assert!(!ok, "{out}");
    app.stop().await;
    reader.stop().await;
}

/// The witnesses' cosignature times bound the events' times (with a policy naming them): an
/// honest bundle passes both bounds; then a patched server appends an opt-in that claims to have
/// been recorded long ago (the chain and rows made to match, so the bundle alone passes), and
/// the bundle held to the policy fails, because the witness cosigned a tree without that event
/// after the time it claims.
async fn a_back_dated_event_fails_under_the_witnesses_times(db: TestDb) {
    let shop = shop(&db, true);
    let dir = tempfile::tempdir().unwrap();
    let (app, _w1, policy) = witnessed_app(&db, dir.path()).await;
    let log_vkey = app.log.verifier_key();
    let email = "dated@example.jp";
    let first = opt_in(&app, &shop, email).await;
    let first_index = first["leaf_index"].as_u64().unwrap();
    cosigned(&app, "w1.example.jp/witness", first_index + 2).await;
    let bundle = evidence(&app, &shop.sender, email).await;
    let (ok, out) = verify_cli(&bundle, &log_vkey, &["--policy", &policy]);
    assert!(ok, "{out}");
    assert!(out.contains("ok    time: no event claims a time after the witnesses saw it — each recorded no later than"), "{out}");
    let honest = bundle.clone();

    // The patched server's back-dated opt-in, and the rows made to match it.
    let label = bundle["subject"]["commitment"].clone();
    let forged = consent_ledger::log::Leaf::from_json(&json!({
        "type": "consent_event", "v": 1, "tenant": shop.tenant, "event_id": "backdated",
        "subject": label, "event": "opt_in", "purposes": ["offers"], "basis": "consent",
        "method": "web_form", "collection_point": null,
        "received_by": {"role": "sender", "name": "Sakura Shop"},
        "occurred_at": "2026-01-05T00:00:00Z", "recorded_at": "2026-01-05T00:00:00Z",
        "prev": first_index, "confirmation_required": false, "evidence_sha256": null,
        "confirms": null
    }))
    .unwrap();
    let index = app.log.append(vec![forged]).await.unwrap().start;
    let id = first["event_id"].as_str().unwrap();
    crate::common::tamper(
        &db,
        &format!(
            "INSERT INTO events (id, tenant_id, subject_id, kind, purposes, basis, method,
                                 collection_point, received_by, occurred_at, recorded_at,
                                 leaf_index, prev_leaf_index, confirmation_required, evidence)
               SELECT 'backdated', tenant_id, subject_id, kind, '[\"offers\"]', basis, method,
                      NULL, received_by, 1767571200000, 1767571200000, {index}, {first_index},
                      confirmation_required, NULL
               FROM events WHERE id = '{id}';
             UPDATE subjects SET last_leaf_index = {index}
               WHERE id = (SELECT subject_id FROM events WHERE id = '{id}');"
        ),
    );
    cosigned(&app, "w1.example.jp/witness", index + 2).await;
    let bundle = evidence(&app, &shop.sender, email).await;
    assert_eq!(bundle["events"].as_array().unwrap().len(), 2, "{bundle}");
    // The chain and rows were made to match; but the log's clock runs forward along a chain, and
    // this event says it was recorded before the one it follows.
    let (ok, out) = verify_cli(&bundle, &log_vkey, &[]);
    assert!(
        !ok && out.contains(&format!(
            "FAIL  event 1 (leaf {index}): recorded after the leaf before it"
        )),
        "{out}"
    );
    let (ok, out) = verify_cli(&bundle, &log_vkey, &["--policy", &policy]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "FAIL  time: no event recorded before the witnesses saw a tree without it — event 1 (leaf {index}) says recorded 2026-01-05T00:00:00Z, but witness A cosigned a tree of"
        )),
        "{out}"
    );
    app.stop().await;
    write_witnessed_vectors(
        &db,
        "events",
        &log_vkey,
        &std::fs::read_to_string(&policy).unwrap(),
        &[
            ("honest", honest),
            ("a back-dated event", bundle.clone()),
            // What a bundle's maker can do: leave the tight checkpoint out. The verifier then
            // has no lower bound (a note says so); an auditing witness refuses such a leaf.
            ("a back-dated event, its earlier checkpoints left out", {
                let mut b = bundle;
                b.as_object_mut().unwrap().remove("earlier");
                b
            }),
        ],
    );
}

/// A log with one witness, and the policy naming it (its path).
async fn witnessed_app(db: &TestDb, dir: &Path) -> (TestApp, WitnessProcess, String) {
    let state = AppState::open(&db.config()).unwrap();
    let log_vkey = state.log.verifier_key();
    state.log.shutdown();
    let w1 = start_witness(dir, "w1", &log_vkey);
    let mut config = db.config();
    config.witnesses = vec![format!("{} {}", w1.vkey, w1.url).parse().unwrap()];
    let app = TestApp::start_with(config).await;
    let policy = dir.join("w1.policy");
    std::fs::write(
        &policy,
        format!("log {log_vkey}\nwitness A {}\nquorum A\n", w1.vkey),
    )
    .unwrap();
    (app, w1, policy.to_str().unwrap().to_string())
}

/// A recorded campaign check's time is bounded like an event's: an honest check's proof passes
/// under the policy; a patched server's copy of it dated months back (its row made to match)
/// passes without the policy and fails under it.
async fn a_back_dated_campaign_check_fails_under_the_witnesses_times(db: TestDb) {
    let shop = shop(&db, true);
    let dir = tempfile::tempdir().unwrap();
    let (app, _w1, policy) = witnessed_app(&db, dir.path()).await;
    let log_vkey = app.log.verifier_key();
    let email = "campaign@example.jp";
    let first = opt_in(&app, &shop, email).await;
    cosigned(
        &app,
        "w1.example.jp/witness",
        first["leaf_index"].as_u64().unwrap() + 2,
    )
    .await;
    let check =
        record_check(&app, &shop.sender, "newsletter", &[email]).await["campaign_check"].clone();
    let honest_index = check["leaf_index"].as_u64().unwrap();
    cosigned(&app, "w1.example.jp/witness", honest_index + 2).await;
    let proof_of = |id: String| {
        let (app, token) = (&app, shop.sender.clone());
        async move { served_proof(app, &token, &id, email).await }
    };
    let honest = proof_of(check["id"].as_str().unwrap().to_string()).await;
    let run = |doc: &Value, extra: &[&str]| {
        crate::evidence::verify_cli_as("campaign", doc, &log_vkey, extra)
    };
    let (ok, out) = run(&honest, &["--policy", &policy]);
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "ok    campaign: time: no event recorded before the witnesses saw a tree without it"
        ),
        "{out}"
    );

    // The patched server's copy of the check, dated in January, and its row.
    let forged = consent_ledger::log::Leaf::from_json(&json!({
        "type": "campaign_check", "v": 1, "tenant": shop.tenant, "id": "chk_forged",
        "purpose": "newsletter", "addresses": check["addresses"], "root": check["root"],
        "recorded_at": "2026-01-05T00:00:00Z"
    }))
    .unwrap();
    let index = app.log.append(vec![forged]).await.unwrap().start;
    let honest_id = check["id"].as_str().unwrap();
    crate::common::tamper(
        &db,
        &format!(
            "INSERT INTO campaign_checks (id, tenant_id, purpose, leaf_index, recorded_at,
                                          addresses, root, entries)
               SELECT 'chk_forged', tenant_id, purpose, {index}, 1767571200000, addresses,
                      root, entries
               FROM campaign_checks WHERE id = '{honest_id}';"
        ),
    );
    cosigned(&app, "w1.example.jp/witness", index + 2).await;
    let forged = proof_of("chk_forged".into()).await;
    let (ok, out) = run(&forged, &[]);
    assert!(
        ok,
        "without the policy the time is the operator's word: {out}"
    );
    let (ok, out) = run(&forged, &["--policy", &policy]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "FAIL  campaign: time: no event recorded before the witnesses saw a tree without it — the campaign leaf (leaf {index}) says recorded 2026-01-05T00:00:00Z"
        )),
        "{out}"
    );
    app.stop().await;
    write_witnessed_vectors(
        &db,
        "campaigns",
        &log_vkey,
        &std::fs::read_to_string(&policy).unwrap(),
        &[("honest", honest), ("a back-dated campaign check", forged)],
    );
}

/// With `CONSENT_LEDGER_WRITE_VECTORS=1` (on SQLite): `sdk/vectors/witnessed-<kind>.json`,
/// bundles (`events`) or campaign proofs (`campaigns`) of a log with a witness and the policy
/// naming it, with the Rust verifier's verdict under the policy, for both SDKs' time bounds.
fn write_witnessed_vectors(
    db: &TestDb,
    kind: &str,
    vkey: &str,
    policy: &str,
    documents: &[(&str, Value)],
) {
    use consent_ledger::evidence::verify::{verify, verify_campaign};
    use consent_ledger::log::policy::Policy;
    if std::env::var("CONSENT_LEDGER_WRITE_VECTORS").as_deref() != Ok("1")
        || !db.url.starts_with("sqlite")
    {
        return;
    }
    let parsed = Policy::parse(policy).unwrap();
    let cases: Vec<Value> = documents
        .iter()
        .map(|(name, d)| {
            let bytes = serde_json::to_vec(d).unwrap();
            let report = match kind {
                "campaigns" => verify_campaign(&bytes, vkey, None, Some(&parsed)),
                _ => verify(&bytes, vkey, None, Some(&parsed)),
            };
            json!({"name": name, "document": d,
                   "verdict": {"passed": report.passed(), "failed": report.failed()}})
        })
        .collect();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("sdk/vectors/witnessed-{kind}.json"));
    let doc = json!({"about": format!("{kind} of a log with one witness (honest, back- or future-dated with rows made to match), with the Rust verifier's verdict under the policy; written by tests/it/witness.rs"), "kind": kind, "vkey": vkey, "policy": policy, "cases": cases});
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
}

/// An auditing witness remembers when it last cosigned: a new leaf that says it was recorded
/// before then (beyond the grace) is back-dated, and it refuses the checkpoint (422, naming the
/// leaf) whatever the bundle a verifier is later shown carries.
async fn an_auditing_witness_refuses_a_back_dated_leaf(db: TestDb) {
    let body = offered_with_a_leaf_recorded_at(&db, "2026-01-05T00:00:00Z").await;
    assert!(
        body.contains("says it was recorded at 2026-01-05T00:00:00Z"),
        "{body}"
    );
}

/// A leaf dated after the auditing witness's own clock (beyond the grace) is refused: an
/// operator cannot date an erasure a month ahead to make its retention period look run.
async fn an_auditing_witness_refuses_a_future_dated_leaf(db: TestDb) {
    let ahead = consent_ledger::rfc3339(consent_ledger::now_millis() + 40 * 86_400_000);
    let body = offered_with_a_leaf_recorded_at(&db, &ahead).await;
    assert!(
        body.contains(&format!("says it was recorded at {ahead}"))
            && body.contains("dates it in the future"),
        "{body}"
    );
}

/// A log whose one witness audits it: after an opt-in it cosigned, a leaf that says it was
/// recorded at `recorded_at` is appended, and the checkpoint covering it is offered to the
/// witness, which must refuse it (422, naming the leaf). Returns the witness's answer.
async fn offered_with_a_leaf_recorded_at(db: &TestDb, recorded_at: &str) -> String {
    let shop = shop(db, true);
    let reader = TestApp::start(db).await;
    let log_vkey = reader.log.verifier_key();
    let dir = tempfile::tempdir().unwrap();
    let auditor = start_witness_with(dir.path(), "auditor", &log_vkey, &["--audit", &reader.base]);
    let mut config = db.config();
    config.witnesses = vec![format!("{} {}", auditor.vkey, auditor.url).parse().unwrap()];
    let app = TestApp::start_with(config).await;
    let first = opt_in(&app, &shop, "timed@example.jp").await;
    cosigned(
        &app,
        "auditor.example.jp/witness",
        first["leaf_index"].as_u64().unwrap() + 2,
    )
    .await;
    let forged =
        consent_ledger::log::Leaf::from_json(&json!({"type": "test", "recorded_at": recorded_at}))
            .unwrap();
    let index = app.log.append(vec![forged]).await.unwrap().start;
    let cp = crate::common::wait_for_checkpoint(&app.log, index + 2).await;
    let (status, body) = offer(&app, &auditor, &cp).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains(&format!("leaf {index} says")), "{body}");
    app.stop().await;
    reader.stop().await;
    body
}

/// A patched server appends an erasure dated forty days ahead, right after the opt-out, so that
/// its retention period looks run (the rows made to match). The bundle alone cannot tell; held to
/// the witnesses' times it fails, because they cosigned the tree holding it long before the time
/// it claims.
async fn a_future_dated_erasure_fails_under_the_witnesses_times(db: TestDb) {
    let shop = shop(&db, true);
    let dir = tempfile::tempdir().unwrap();
    let (app, _w1, policy) = witnessed_app(&db, dir.path()).await;
    let log_vkey = app.log.verifier_key();
    let email = "future@example.jp";
    opt_in(&app, &shop, email).await;
    let body = json!({"event": "opt_out", "email": email, "purposes": "all", "method": "web_form",
        "received_by": {"role": "sender", "name": "Sakura Shop"}});
    let res = app
        .call("POST", "/v1/events", Some(&shop.sender), Some(&body), &[])
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let out_index = res.json()["leaf_index"].as_u64().unwrap();
    let bundle = evidence(&app, &shop.sender, email).await;
    let ahead = consent_ledger::rfc3339(consent_ledger::now_millis() + 40 * 86_400_000);
    let forged = consent_ledger::log::Leaf::from_json(&json!({
        "type": "erasure", "v": 1, "tenant": shop.tenant, "subject": bundle["subject"]["commitment"],
        "prev": out_index, "recorded_at": ahead, "retention_days": 31, "evidence_erased": []
    }))
    .unwrap();
    let index = app.log.append(vec![forged]).await.unwrap().start;
    crate::common::tamper(
        &db,
        &format!(
            "INSERT INTO erasures (leaf_index, tenant_id, subject_id, recorded_at)
               SELECT {index}, tenant_id, id, 0 FROM subjects WHERE address = '{email}';
             UPDATE subjects SET last_leaf_index = {index} WHERE address = '{email}';"
        ),
    );
    cosigned(&app, "w1.example.jp/witness", index + 2).await;
    let bundle = evidence(&app, &shop.sender, email).await;
    assert_eq!(bundle["events"].as_array().unwrap().len(), 3, "{bundle}");
    let (ok, out) = verify_cli(&bundle, &log_vkey, &[]);
    assert!(ok, "the bundle alone cannot tell: {out}");
    let (ok, out) = verify_cli(&bundle, &log_vkey, &["--policy", &policy]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  time: no event claims a time after the witnesses saw it")
            && out.contains(&format!("erasure at leaf {index}")),
        "{out}"
    );
    // Each leaf is bounded by the earliest witnessed tree that holds it, which the bundle
    // carries in `earlier`: without the latest witnessed checkpoint the bound still holds.
    let mut without_latest = bundle.clone();
    without_latest.as_object_mut().unwrap().remove("witnessed");
    let (_, out) = verify_cli(&without_latest, &log_vkey, &["--policy", &policy]);
    assert!(
        out.contains("FAIL  time: no event claims a time after the witnesses saw it")
            && out.contains(&format!("erasure at leaf {index} claims")),
        "{out}"
    );
    // Nor can the maker escape every bound: with the witnessed checkpoint as the bundle's own
    // (its cosignatures carried along), no `witnessed` and no earlier tree holding the erasure,
    // the bundle's own checkpoint bounds it.
    let size_of = |note: &str| -> u64 { note.lines().nth(1).unwrap().parse().unwrap() };
    let own = bundle["checkpoint"].as_str().unwrap();
    let cosigned = bundle["witnessed"]["checkpoint"].as_str().unwrap();
    assert_eq!(size_of(own), size_of(cosigned), "{bundle}");
    let swapped = serde_json::to_string(&bundle).unwrap().replace(
        serde_json::to_string(own).unwrap().trim_matches('"'),
        serde_json::to_string(cosigned).unwrap().trim_matches('"'),
    );
    let mut own_cosigned: Value = serde_json::from_str(&swapped).unwrap();
    own_cosigned.as_object_mut().unwrap().remove("witnessed");
    let kept: Vec<Value> = own_cosigned["earlier"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| size_of(e["checkpoint"].as_str().unwrap()) <= index)
        .cloned()
        .collect();
    own_cosigned["earlier"] = json!(kept);
    let (ok, out) = verify_cli(&own_cosigned, &log_vkey, &["--policy", &policy]);
    assert!(
        !ok && out.contains(&format!("erasure at leaf {index} claims")),
        "{out}"
    );
    app.stop().await;
    write_witnessed_vectors(
        &db,
        "future",
        &log_vkey,
        &std::fs::read_to_string(&policy).unwrap(),
        &[
            ("a future-dated erasure", bundle),
            ("without the witnessed checkpoint", without_latest),
            (
                "the witnessed checkpoint as the bundle's own, no tree holding it in earlier",
                own_cosigned,
            ),
        ],
    );
}

/// One request of the table: what it is, and its body.
struct Offer {
    what: &'static str,
    body: String,
}

/// C2SP tlog-witness `add-checkpoint`, as a table: each request goes to our witness (the
/// `witness serve` process) and to the reference witness written in the tests from the spec
/// text (`reference::witness_status`), in order, each with what it cosigned so far; the two
/// must answer the same status every time — and the table covers every status the spec names.
#[actix_web::test]
async fn our_witness_answers_as_the_reference_witness_does() {
    use consent_ledger_sdk::note::NoteSigner;
    let dir = tempfile::tempdir().unwrap();
    let log = NoteSigner::new("table.example/log", &[9; 32]).unwrap();
    let stranger = NoteSigner::new("table.example/log", &[8; 32]).unwrap();
    let other_log = NoteSigner::new("other.example/log", &[9; 32]).unwrap();
    let witness = start_witness(dir.path(), "table", &log.verifier_key());
    let leaves: Vec<reference::Hash> = (0..8u8).map(|i| reference::leaf_hash(&[i])).collect();
    let signed = |signer: &NoteSigner, size: usize, root: reference::Hash| {
        let origin = if std::ptr::eq(signer, &other_log) {
            "other.example/log"
        } else {
            "table.example/log"
        };
        signer
            .sign(&format!("{origin}\n{size}\n{}\n", B64.encode(root)))
            .unwrap()
    };
    let note = |size: usize| signed(&log, size, reference::mth(&leaves[..size]));
    let proof = |m: usize, n: usize| -> String {
        reference::consistency(m, &leaves[..n])
            .iter()
            .map(|h| format!("{}\n", B64.encode(h)))
            .collect()
    };
    let offer = |what, old: usize, proof: String, note: String| Offer {
        what,
        body: format!("old {old}\n{proof}\n{note}"),
    };
    // A line by the log's name and key ID whose signature fails, before the valid one.
    let failing_first = {
        let valid = note(4);
        let (body, line) = valid.rsplit_once("\n\n").unwrap();
        let blob = B64
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        let mut bad = blob.clone();
        bad[10] ^= 1;
        format!(
            "{body}\n\n\u{2014} table.example/log {}\n{line}",
            B64.encode(bad)
        )
    };
    let table = [
        offer("the empty tree, from nothing", 0, String::new(), note(0)),
        offer(
            "size 0 with a root that is not the empty tree's",
            0,
            String::new(),
            signed(&log, 0, leaves[0]),
        ),
        offer(
            "an unknown origin",
            0,
            String::new(),
            signed(&other_log, 2, reference::mth(&leaves[..2])),
        ),
        offer(
            "signed by another key of the same name only",
            0,
            String::new(),
            signed(&stranger, 4, reference::mth(&leaves[..4])),
        ),
        offer(
            "a failing line by the log's key before a valid one",
            0,
            String::new(),
            failing_first,
        ),
        offer("old larger than the checkpoint", 5, String::new(), note(4)),
        Offer {
            what: "no old line",
            body: format!("\n{}", note(4)),
        },
        Offer {
            what: "old with a leading zero",
            body: format!("old 00\n\n{}", note(4)),
        },
        offer("a stale old size", 3, proof(3, 4), note(4)),
        offer("old 0 with a consistency proof", 0, proof(2, 4), note(4)),
        offer("growth from the empty tree", 0, String::new(), note(4)),
        offer(
            "growth with a proof that does not verify",
            4,
            proof(3, 6),
            note(6),
        ),
        offer("growth with the right proof", 4, proof(4, 6), note(6)),
        offer(
            "a fork: the same size, another root",
            6,
            String::new(),
            signed(&log, 6, reference::mth(&leaves[1..7])),
        ),
        offer("the same checkpoint again", 6, String::new(), note(6)),
        offer("the same size with a proof", 6, proof(4, 6), note(6)),
        offer("an old size from before", 4, proof(4, 8), note(8)),
        offer("growth to the whole tree", 6, proof(6, 8), note(8)),
    ];
    let client = awc::Client::new();
    let url = format!("{}/add-checkpoint", witness.url);
    let mut latest: Option<(u64, reference::Hash)> = None;
    let mut seen = std::collections::BTreeSet::new();
    for case in &table {
        let expected = reference::witness_status(&case.body, &log.verifier_key(), latest);
        let mut res = client
            .post(&url)
            .send_body(case.body.clone())
            .await
            .unwrap();
        let body = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
        assert_eq!(res.status().as_u16(), expected, "{}: {body}", case.what);
        if expected == 200 {
            let cp = case.body.split_once("\n\n").unwrap().1;
            let mut l = cp.lines();
            let (_, size, root) = (l.next(), l.next().unwrap(), l.next().unwrap());
            latest = Some((
                size.parse().unwrap(),
                B64.decode(root).unwrap().try_into().unwrap(),
            ));
            // "Witnesses SHOULD use ML-DSA-44 cosignatures": ours does by default.
            assert!(
                reference::cosigned_at(&format!("{cp}{body}"), &witness.vkey).is_some(),
                "{}",
                case.what
            );
        }
        seen.insert(expected);
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [200, 400, 403, 404, 409, 422]
    );
}

/// The printable report says, for each event, when the witnesses saw it at the latest, and
/// who vouches for that.
#[actix_web::test]
async fn the_report_says_when_the_witnesses_saw_each_event() {
    let db = TestDb::sqlite();
    let shop = shop(&db, true);
    let dir = tempfile::tempdir().unwrap();
    let (app, _w1, policy) = witnessed_app(&db, dir.path()).await;
    let email = "seen@example.jp";
    let first = opt_in(&app, &shop, email).await;
    cosigned(
        &app,
        "w1.example.jp/witness",
        first["leaf_index"].as_u64().unwrap() + 2,
    )
    .await;
    let bundle = evidence(&app, &shop.sender, email).await;
    let policy =
        consent_ledger::log::policy::Policy::parse(&std::fs::read_to_string(&policy).unwrap())
            .unwrap();
    let html = crate::report::report_of(
        &bundle,
        &app.log.verifier_key(),
        Some(&policy),
        consent_ledger::evidence::report::Lang::Ja,
    );
    assert!(html.contains("検証の結果：有効です"), "{html}");
    for shown in [
        "独立した証人",
        "<dt>証人による裏付け</dt><dd>遅くとも <time datetime=",
    ] {
        assert!(html.contains(shown), "the report lacks {shown}");
    }
    app.stop().await;
}
