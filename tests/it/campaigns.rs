//! Campaign receipts: `POST /v1/consent:check` with `"record": true` appends a
//! `campaign_check` leaf whose entries are the decisions as of the leaves before it, and
//! `GET /v1/campaign-checks/{id}/proof?email=` proves an address's entry, which `consent-ledger
//! verify campaign` checks offline — including against an operator that edited the rows the
//! campaign was answered from. On SQLite and PostgreSQL.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde_json::{json, Value};

use crate::common::{tamper, wait_for_checkpoint, TestApp, TestDb};
use crate::evidence::verify_cli_as;
use crate::on_both_backends;
use crate::unsubscribe::{shop, Shop};

on_both_backends!(
    a_recorded_check_answers_and_names_its_leaf,
    each_address_of_a_recorded_check_is_proven_offline,
    a_decision_is_proven_as_of_the_check_not_of_later_events,
    a_check_answered_from_edited_rows_fails_offline,
    an_altered_entry_fails_offline,
    a_proof_for_an_address_not_in_the_check_is_not_found,
    an_erased_address_is_checked_by_its_label_and_its_refusal_binds,
);

async fn record(app: &TestApp, shop: &Shop, email: &str, event: &str) {
    let body = json!({"event": event, "email": email, "purposes": ["newsletter"],
        "method": "web_form", "received_by": {"role": "sender", "name": "Sakura Shop"}});
    let res = app
        .call("POST", "/v1/events", Some(&shop.sender), Some(&body), &[])
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    wait_for_checkpoint(&app.log, res.json()["leaf_index"].as_u64().unwrap() + 2).await;
}

/// Records a check of `emails` for `purpose` with `token`; the answer.
pub async fn record_check(app: &TestApp, token: &str, purpose: &str, emails: &[&str]) -> Value {
    let body = json!({"purpose": purpose, "emails": emails, "record": true});
    let res = app
        .call("POST", "/v1/consent:check", Some(token), Some(&body), &[])
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

/// The proof of `email`'s entry in recorded check `id`, which must be served.
pub async fn served_proof(app: &TestApp, token: &str, id: &str, email: &str) -> Value {
    let path = format!("/v1/campaign-checks/{id}/proof?email={email}");
    let res = app.call("GET", &path, Some(token), None, &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

/// Records a check of `emails` for the newsletter; the answer.
async fn check(app: &TestApp, shop: &Shop, emails: &[&str]) -> Value {
    record_check(app, &shop.sender, "newsletter", emails).await
}

async fn proof(app: &TestApp, shop: &Shop, id: &str, email: &str) -> (u16, Value) {
    let path = format!("/v1/campaign-checks/{id}/proof?email={email}");
    let res = app.call("GET", &path, Some(&shop.sender), None, &[]).await;
    (res.status, res.json())
}

fn id(answer: &Value) -> &str {
    answer["campaign_check"]["id"].as_str().unwrap()
}

/// In, then out, and one in: "out@…" refused, "in@…" granted.
async fn two_addresses(app: &TestApp, shop: &Shop) {
    record(app, shop, "in@example.jp", "opt_in").await;
    record(app, shop, "out@example.jp", "opt_in").await;
    record(app, shop, "out@example.jp", "opt_out").await;
}

async fn a_recorded_check_answers_and_names_its_leaf(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    two_addresses(&app, &shop).await;
    let emails = [
        "in@example.jp",
        "out@example.jp",
        "new@example.jp",
        "not an address",
        "IN@example.jp",
    ];
    let answer = check(&app, &shop, &emails).await;
    let statuses: Vec<&str> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["granted", "withdrawn", "none", "invalid", "granted"]
    );
    let recorded = &answer["campaign_check"];
    assert!(id(&answer).starts_with("chk_"), "{answer}");
    assert_eq!(
        recorded["addresses"], 3,
        "distinct valid addresses: {answer}"
    );
    let (_, proven) = proof(&app, &shop, id(&answer), "in@example.jp").await;
    assert_eq!(proven["campaign"]["leaf_index"], recorded["leaf_index"]);
    let leaf = B64
        .decode(proven["campaign"]["leaf"].as_str().unwrap())
        .unwrap();
    let doc: Value = serde_json::from_slice(&leaf).unwrap();
    assert_eq!(doc["type"], "campaign_check");
    assert_eq!(doc["root"], recorded["root"]);
    assert!(!String::from_utf8_lossy(&leaf).contains("example.jp"));
    app.stop().await;
}

async fn each_address_of_a_recorded_check_is_proven_offline(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    two_addresses(&app, &shop).await;
    let answer = check(&app, &shop, &["in@example.jp", "out@example.jp"]).await;
    for (email, expected) in [
        ("in@example.jp", "newsletter: may_send true (granted"),
        ("out@example.jp", "newsletter: may_send false (withdrawn"),
    ] {
        let (status, doc) = proof(&app, &shop, id(&answer), email).await;
        assert_eq!(status, 200, "{doc}");
        let (ok, out) = verify_cli_as("campaign", &doc, &app.log.verifier_key(), &[]);
        assert!(ok, "{out}");
        let line =
            format!("ok    campaign: the decision follows from the events before it — {expected}");
        assert!(out.contains(&line), "{out}");
    }
    app.stop().await;
}

/// The receipt says what the campaign was told: an opt-out after the check does not change it.
async fn a_decision_is_proven_as_of_the_check_not_of_later_events(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    two_addresses(&app, &shop).await;
    let answer = check(&app, &shop, &["in@example.jp"]).await;
    record(&app, &shop, "in@example.jp", "opt_out").await;
    let (status, doc) = proof(&app, &shop, id(&answer), "in@example.jp").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(
        doc["proof"]["events"].as_array().unwrap().len(),
        2,
        "the later opt-out is in the bundle"
    );
    let (ok, out) = verify_cli_as("campaign", &doc, &app.log.verifier_key(), &[]);
    assert!(ok, "{out}");
    assert!(out.contains("may_send true (granted"), "{out}");
    app.stop().await;
}

/// The operator edits the state row so that the campaign is told it may mail a refused
/// address: the receipt commits to that answer, and its proof fails, naming what the events say.
async fn a_check_answered_from_edited_rows_fails_offline(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    two_addresses(&app, &shop).await;
    tamper(
        &db,
        "UPDATE consent_state SET status = 'granted' WHERE status = 'withdrawn'",
    );
    let answer = check(&app, &shop, &["out@example.jp"]).await;
    assert_eq!(
        answer["results"][0]["may_send"], true,
        "told it may send: {answer}"
    );
    let (status, doc) = proof(&app, &shop, id(&answer), "out@example.jp").await;
    assert_eq!(status, 200, "{doc}");
    let (ok, out) = verify_cli_as("campaign", &doc, &app.log.verifier_key(), &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  campaign: the decision follows from the events before it — the events before leaf"),
        "{out}"
    );
    assert!(out.contains("give may_send false (withdrawn"), "{out}");
    app.stop().await;
}

async fn an_altered_entry_fails_offline(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    two_addresses(&app, &shop).await;
    let answer = check(&app, &shop, &["in@example.jp", "out@example.jp"]).await;
    let (_, mut doc) = proof(&app, &shop, id(&answer), "out@example.jp").await;
    let mut entry = B64.decode(doc["entry"]["entry"].as_str().unwrap()).unwrap();
    entry[32] = 2; // withdrawn → granted
    doc["entry"]["entry"] = json!(B64.encode(&entry));
    let (ok, out) = verify_cli_as("campaign", &doc, &app.log.verifier_key(), &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL  campaign: entry — entry"), "{out}");
    app.stop().await;
}

async fn a_proof_for_an_address_not_in_the_check_is_not_found(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    two_addresses(&app, &shop).await;
    let answer = check(&app, &shop, &["in@example.jp", "never@example.jp"]).await;
    let (status, problem) = proof(&app, &shop, id(&answer), "out@example.jp").await;
    assert_eq!(status, 404, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not in campaign check"),
        "{problem}"
    );
    let (status, problem) = proof(&app, &shop, id(&answer), "never@example.jp").await;
    assert_eq!(status, 404, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("no events"),
        "{problem}"
    );
    let (status, _) = proof(&app, &shop, "chk_nope", "in@example.jp").await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// An erased address keeps its label's refusal: a recorded check answers `withdrawn` for it
/// (found by label, not by its erased row), and once the address comes back its entry is
/// proven from the log like any other.
async fn an_erased_address_is_checked_by_its_label_and_its_refusal_binds(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start_with_clock(&db, -40).await;
    let email = "erased@example.jp";
    record(&app, &shop, email, "opt_in").await;
    record(&app, &shop, email, "opt_out").await;
    let app = app.restart_with_clock(&db, 0).await;
    let path = format!("/v1/subjects?email={email}");
    let erased = app
        .call("DELETE", &path, Some(&shop.sender), None, &[])
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text());
    let answer = check(&app, &shop, &[email]).await;
    assert_eq!(answer["results"][0]["status"], "withdrawn", "{answer}");
    // The address comes back (an exception-basis opt-in does not lift the refusal).
    let body = json!({"event": "opt_in", "email": email, "purposes": ["newsletter"],
        "basis": "business_relationship", "method": "web_form", "evidence": {"transaction_reference": "order 1234", "transaction_date": "2017-12-01"},
        "received_by": {"role": "sender", "name": "Sakura Shop"}});
    let res = app
        .call("POST", "/v1/events", Some(&shop.sender), Some(&body), &[])
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let (status, doc) = proof(&app, &shop, id(&answer), email).await;
    assert_eq!(status, 200, "{doc}");
    let (ok, out) = verify_cli_as("campaign", &doc, &app.log.verifier_key(), &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("newsletter: may_send false (withdrawn"),
        "{out}"
    );
    app.stop().await;
}
