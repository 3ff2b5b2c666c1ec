//! One history per address (`docs/threat-model.md`): leaves name an address by its VRF label,
//! which a bundle proves, so a second subject row an operator adds for an address — with a label
//! of its own choosing, or with a salted commitment as subjects from before labels had — gives a
//! bundle that fails; and because the label outlives erasure, a refusal still binds after the
//! address was erased and came back, and the history shows it. On SQLite and PostgreSQL.

use consent_ledger::evidence::verify::{verify, Report};
use serde_json::{json, Value};

use crate::common::{tamper, wait_for_checkpoint, TestApp, TestDb};
use crate::evidence::evidence;
use crate::on_both_backends;
use crate::unsubscribe::{shop, Shop};

on_both_backends!(
    a_second_subject_row_with_another_label_fails_the_bundle,
    a_second_subject_row_with_a_salted_commitment_fails_the_bundle,
    a_refusal_survives_erasure_and_the_history_goes_on,
    an_opt_out_under_a_swapped_row_key_is_recorded_under_the_label,
);

async fn record(app: &TestApp, shop: &Shop, email: &str, event: &str, basis: &str) -> Value {
    let mut body = json!({"event": event, "email": email, "purposes": ["newsletter"],
        "method": "web_form", "received_by": {"role": "sender", "name": "Sakura Shop"}});
    if event == "opt_in" {
        body["basis"] = json!(basis);
    }
    let res = app
        .call("POST", "/v1/events", Some(&shop.sender), Some(&body), &[])
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let answer = res.json();
    wait_for_checkpoint(&app.log, answer["leaf_index"].as_u64().unwrap() + 2).await;
    answer
}

fn verified(app: &TestApp, bundle: &Value) -> Report {
    verify(
        &serde_json::to_vec(bundle).unwrap(),
        &app.log.verifier_key(),
        None,
        None,
    )
}

fn failed(report: &Report) -> Vec<&str> {
    report.failed()
}

/// The SQL of a second history: the address's row loses its address, and a new row for it
/// takes `commitment` (an SQL expression over the old row) as its key, `vrf` as its kind.
fn second_row(opt_in: &Value, email: &str, commitment: &str, vrf: bool) -> String {
    let old = format!(
        "(SELECT subject_id FROM events WHERE id = '{}')",
        opt_in["event_id"].as_str().unwrap()
    );
    format!(
        "UPDATE subjects SET address = NULL WHERE id = {old};
         INSERT INTO subjects (id, tenant_id, address, salt, commitment, last_leaf_index,
                               created_at, erased_at, vrf)
           SELECT 'forged', tenant_id, '{email}', salt, {commitment}, NULL, created_at, NULL, {vrf}
           FROM subjects WHERE id = {old};"
    )
}

/// The operator gives the address a new row named by a key of its choosing (here the old row's
/// salt) and records a fresh opt-in there: the opt-out is not in that history, but the bundle's
/// VRF proof gives the address's one label, which is not the key the events name.
async fn a_second_subject_row_with_another_label_fails_the_bundle(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "twice@example.jp";
    let opt_in = record(&app, &shop, email, "opt_in", "consent").await;
    record(&app, &shop, email, "opt_out", "").await;
    tamper(&db, &second_row(&opt_in, email, "salt", true));
    record(&app, &shop, email, "opt_in", "consent").await;

    let bundle = evidence(&app, &shop.sender, email).await;
    assert_eq!(bundle["events"].as_array().unwrap().len(), 1, "{bundle}");
    let report = verified(&app, &bundle);
    assert_eq!(failed(&report), ["subject label"], "{:?}", report.items);
    app.stop().await;
}

/// The same with a salted commitment, as subjects had before the log's VRF key: the salt opens
/// it, but a salted history must have begun before the log's parameters leaf, and this one
/// began after it.
async fn a_second_subject_row_with_a_salted_commitment_fails_the_bundle(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "salted@example.jp";
    let opt_in = record(&app, &shop, email, "opt_in", "consent").await;
    record(&app, &shop, email, "opt_out", "").await;
    // The commitment is computed here and written as the key; the salt stays the row's.
    let first = evidence(&app, &shop.sender, email).await;
    let salt = base64_decode(first["subject"]["salt"].as_str().unwrap());
    let commitment = consent_ledger_sdk::commitment(&shop.tenant, email, &salt);
    let literal = match db.url.starts_with("sqlite") {
        true => format!("X'{}'", consent_ledger::hex(&commitment)),
        false => format!("decode('{}', 'hex')", consent_ledger::hex(&commitment)),
    };
    tamper(&db, &second_row(&opt_in, email, &literal, false));
    record(&app, &shop, email, "opt_in", "consent").await;

    let bundle = evidence(&app, &shop.sender, email).await;
    assert!(bundle["subject"]["vrf_proof"].is_null(), "{bundle}");
    let report = verified(&app, &bundle);
    assert_eq!(
        failed(&report),
        ["subject commitment: from before the log's VRF key"],
        "{:?}",
        report.items
    );
    app.stop().await;
}

/// An opt-out, erasure after the retention period, then the address comes back with an
/// exception-basis opt-in: the label's state outlived the address, so the refusal still binds
/// (Art. 3(3)); only fresh consent grants again. The bundle holds the whole history.
async fn a_refusal_survives_erasure_and_the_history_goes_on(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "refused@example.jp";
    record(&app, &shop, email, "opt_in", "consent").await;
    record(&app, &shop, email, "opt_out", "").await;
    let forty_days_ago = consent_ledger::now_millis() - 40 * 86_400_000;
    tamper(
        &db,
        &format!("UPDATE events SET recorded_at = {forty_days_ago};"),
    );
    let path = format!("/v1/subjects?email={email}");
    let erased = app
        .call("DELETE", &path, Some(&shop.sender), None, &[])
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text());

    record(&app, &shop, email, "opt_in", "business_relationship").await;
    let decision = decide(&app, &shop, email).await;
    assert_eq!(
        (decision["may_send"].clone(), decision["status"].clone()),
        (json!(false), json!("withdrawn")),
        "{decision}"
    );
    record(&app, &shop, email, "opt_in", "consent").await;
    assert_eq!(decide(&app, &shop, email).await["may_send"], true);

    let bundle = evidence(&app, &shop.sender, email).await;
    assert_eq!(bundle["events"].as_array().unwrap().len(), 4, "{bundle}");
    let report = verified(&app, &bundle);
    assert!(report.passed(), "{:?}", report.items);
    app.stop().await;
}

/// The variant without a second row: while the server runs, the operator swaps the row's key for
/// another, so that the opt-out would be recorded where no bundle of the address looks, then
/// swaps it back. The writer does not believe the row for an opt-out: it labels the address and
/// records the refusal under its label, so the bundle shows it.
async fn an_opt_out_under_a_swapped_row_key_is_recorded_under_the_label(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "swapped@example.jp";
    record(&app, &shop, email, "opt_in", "consent").await;
    let label = evidence(&app, &shop.sender, email).await["subject"]["commitment"]
        .as_str()
        .unwrap()
        .to_string();
    let row = format!("WHERE address = '{email}'");
    tamper(
        &db,
        &format!("UPDATE subjects SET commitment = salt {row};"),
    );
    let opt_out = record(&app, &shop, email, "opt_out", "").await;
    let literal = match db.url.starts_with("sqlite") {
        true => format!("X'{label}'"),
        false => format!("decode('{label}', 'hex')"),
    };
    tamper(
        &db,
        &format!("UPDATE subjects SET commitment = {literal} {row};"),
    );

    let bundle = evidence(&app, &shop.sender, email).await;
    let events = bundle["events"].as_array().unwrap();
    assert_eq!(events.last().unwrap()["leaf_index"], opt_out["leaf_index"]);
    let report = verified(&app, &bundle);
    assert!(report.passed(), "{:?}", report.items);
    let newsletter = &bundle["decisions"][0];
    assert_eq!(newsletter["status"], "withdrawn", "{bundle}");
    app.stop().await;
}

async fn decide(app: &TestApp, shop: &Shop, email: &str) -> Value {
    let path = format!("/v1/consent?email={email}&purpose=newsletter");
    let res = app.call("GET", &path, Some(&shop.sender), None, &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}
