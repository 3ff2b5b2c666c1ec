//! Provable send decisions (`GET /v1/consent?…&proof=true`): the answer carries the address's
//! evidence bundle, so `consent-ledger verify decision` checks offline that the decision is the
//! one the log's events give — and the decision comes from the log, not from the `consent_state`
//! rows an operator can edit. On SQLite and PostgreSQL.

use serde_json::{json, Value};

use crate::common::{tamper, wait_for_checkpoint, TestApp, TestDb};
use crate::evidence::verify_cli_as;
use crate::on_both_backends;
use crate::unsubscribe::{shop, Shop};

on_both_backends!(
    a_proven_decision_verifies_offline,
    an_altered_decision_fails_offline,
    a_proven_decision_comes_from_the_log_not_from_edited_rows,
    an_address_without_events_has_no_decision_to_prove,
    a_proven_decision_for_an_unknown_purpose_is_refused,
);

async fn record(app: &TestApp, shop: &Shop, email: &str, event: &str, purposes: Value) {
    let body = json!({"event": event, "email": email, "purposes": purposes,
        "method": "web_form", "received_by": {"role": "sender", "name": "Sakura Shop"}});
    let res = app
        .call("POST", "/v1/events", Some(&shop.sender), Some(&body), &[])
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let index = res.json()["leaf_index"].as_u64().unwrap();
    wait_for_checkpoint(&app.log, index + 2).await;
}

async fn ask(app: &TestApp, shop: &Shop, email: &str, purpose: &str, proof: bool) -> (u16, Value) {
    let path = format!("/v1/consent?email={email}&purpose={purpose}&proof={proof}");
    let res = app.call("GET", &path, Some(&shop.sender), None, &[]).await;
    (res.status, res.json())
}

/// Opted in to both purposes, then out of offers.
async fn in_then_out_of_offers(app: &TestApp, shop: &Shop, email: &str) {
    record(app, shop, email, "opt_in", json!(["newsletter", "offers"])).await;
    record(app, shop, email, "opt_out", json!(["offers"])).await;
}

async fn a_proven_decision_verifies_offline(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "asked@example.jp";
    in_then_out_of_offers(&app, &shop, email).await;
    let (status, answer) = ask(&app, &shop, email, "newsletter", true).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["format"], "consent-ledger/decision/v1");
    assert_eq!(answer["decision"]["may_send"], true);
    assert_eq!(answer["decision"]["status"], "granted");
    let (ok, out) = verify_cli_as("decision", &answer, &app.log.verifier_key(), &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "ok    the decision follows from the proof — newsletter: may_send true (granted)"
        ),
        "{out}"
    );
    app.stop().await;
}

async fn an_altered_decision_fails_offline(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "altered@example.jp";
    in_then_out_of_offers(&app, &shop, email).await;
    let (_, mut answer) = ask(&app, &shop, email, "offers", true).await;
    assert_eq!(answer["decision"]["may_send"], false);
    answer["decision"]["may_send"] = json!(true);
    answer["decision"]["status"] = json!("granted");
    let (ok, out) = verify_cli_as("decision", &answer, &app.log.verifier_key(), &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  the decision follows from the proof — the proof gives may_send false (withdrawn), the answer says true (granted)"),
        "{out}"
    );
    app.stop().await;
}

/// The operator edits the row the live answer reads: the live answer believes it (documented
/// in the threat model), the proven one replays the log and does not.
async fn a_proven_decision_comes_from_the_log_not_from_edited_rows(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "edited@example.jp";
    in_then_out_of_offers(&app, &shop, email).await;
    tamper(
        &db,
        "UPDATE consent_state SET status = 'granted' WHERE purpose = 'offers'",
    );
    let (_, live) = ask(&app, &shop, email, "offers", false).await;
    assert_eq!(live["may_send"], true, "the edited row: {live}");
    let (status, answer) = ask(&app, &shop, email, "offers", true).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"]["may_send"], false, "{answer}");
    let (ok, out) = verify_cli_as("decision", &answer, &app.log.verifier_key(), &[]);
    assert!(ok, "{out}");
    app.stop().await;
}

async fn an_address_without_events_has_no_decision_to_prove(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let (status, problem) = ask(&app, &shop, "never@example.jp", "newsletter", true).await;
    assert_eq!(status, 404, "{problem}");
    assert!(problem["detail"].as_str().is_some(), "{problem}");
    app.stop().await;
}

async fn a_proven_decision_for_an_unknown_purpose_is_refused(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "purpose@example.jp";
    in_then_out_of_offers(&app, &shop, email).await;
    let (status, problem) = ask(&app, &shop, email, "surveys", true).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("surveys"),
        "{problem}"
    );
    app.stop().await;
}
