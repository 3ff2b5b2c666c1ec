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
    an_erasure_goes_by_the_log_s_times_not_the_rows,
    an_opt_out_under_a_swapped_row_key_is_recorded_under_the_label,
    an_opt_out_under_a_forged_salted_row_is_recorded_under_the_label,
    a_new_row_under_the_label_still_names_the_logs_head,
    a_link_opt_out_is_recorded_under_the_links_label_whatever_the_row_says,
);

/// Records one event of `email` for `newsletter` (`basis` for an opt-in) and waits until a
/// checkpoint covers it; returns the answer.
pub async fn record(app: &TestApp, shop: &Shop, email: &str, event: &str, basis: &str) -> Value {
    let mut body = json!({"event": event, "email": email, "purposes": ["newsletter"],
        "method": "web_form", "received_by": {"role": "sender", "name": "Sakura Shop"}});
    if event == "opt_in" {
        body["basis"] = json!(basis);
    }
    if basis == "business_relationship" {
        body["evidence"] =
            json!({"transaction_reference": "order 1234", "transaction_date": "2017-12-01"});
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
/// it, but a bundle must name the subject by its label (a history from before labels is shown
/// through its relabel leaf, `relabel.rs`), and this one names the commitment.
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
    assert_eq!(failed(&report), ["subject label"], "{:?}", report.items);
    app.stop().await;
}

/// An opt-out, erasure after the retention period, then the address comes back with an
/// exception-basis opt-in: the label's state outlived the address, so the refusal still binds
/// (Art. 3(3)); only fresh consent grants again. The bundle holds the whole history.
async fn a_refusal_survives_erasure_and_the_history_goes_on(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start_with_clock(&db, -40).await;
    let email = "refused@example.jp";
    record(&app, &shop, email, "opt_in", "consent").await;
    record(&app, &shop, email, "opt_out", "").await;
    let app = app.restart_with_clock(&db, 0).await;
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

    // The history goes on through the erasure: its leaf is in the chain, and the law allowed it.
    let bundle = evidence(&app, &shop.sender, email).await;
    let kinds: Vec<Value> = bundle["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let doc = leaf_json(e);
            doc.get("event").cloned().unwrap_or(doc["type"].clone())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            json!("opt_in"),
            json!("opt_out"),
            json!("erasure"),
            json!("opt_in"),
            json!("opt_in")
        ],
        "{bundle}"
    );
    let erasure_index = erased.json()["leaf_index"].as_u64().unwrap();
    assert_eq!(bundle["events"][2]["leaf_index"], erasure_index);
    let report = verified(&app, &bundle);
    assert!(report.passed(), "{:?}", report.items);
    let allowed = format!("erasure at leaf {erasure_index}: the law allowed it");
    assert!(
        report.items.iter().any(|i| i.what == allowed),
        "{:?}",
        report.items
    );
    app.stop().await;
}

/// The leaf of a bundle's event, as JSON.
fn leaf_json(event: &Value) -> Value {
    serde_json::from_slice(&base64_decode(event["leaf"].as_str().unwrap())).unwrap()
}

/// The operator moves its rows' times back to erase an address before the law allows: the
/// service goes by the log's times, not the rows', and refuses; and had it erased, the verifier
/// would say so (the erasure leaf's time against its events' in the log).
async fn an_erasure_goes_by_the_log_s_times_not_the_rows(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "too.early@example.jp";
    record(&app, &shop, email, "opt_in", "consent").await;
    record(&app, &shop, email, "opt_out", "").await;
    let forty_days_ago = consent_ledger::now_millis() - 40 * 86_400_000;
    tamper(
        &db,
        &format!("UPDATE events SET recorded_at = {forty_days_ago};"),
    );
    let path = format!("/v1/subjects?email={email}");
    let refused = app
        .call("DELETE", &path, Some(&shop.sender), None, &[])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(
        refused.json()["erasable_from"].is_string(),
        "{}",
        refused.text()
    );
    app.stop().await;
}

/// The variant without a second row: while the server runs, the operator swaps the row's key for
/// another (here the row's salt), so that the opt-out would be recorded where no bundle of the
/// address looks, then swaps it back. The writer does not believe the row for an opt-out: it
/// labels the address and records the refusal under its label, so the bundle shows it.
async fn an_opt_out_under_a_swapped_row_key_is_recorded_under_the_label(db: TestDb) {
    swapped_then_restored(db, "swapped@example.jp", |_| "salt".into(), "TRUE").await;
}

/// The same with the row made to look like a subject from before labels (`vrf` false, its key
/// the salted commitment of the address): the writer believes a salted key only if its chain
/// reaches back before the log's VRF key, and this one has no chain at all.
async fn an_opt_out_under_a_forged_salted_row_is_recorded_under_the_label(db: TestDb) {
    swapped_then_restored(db, "forged.salt@example.jp", salted, "FALSE").await;
}

/// The salted commitment of the bundle's address and salt, as an SQL literal.
fn salted(bundle: &Value) -> String {
    let salt = base64_decode(bundle["subject"]["salt"].as_str().unwrap());
    let email = bundle["subject"]["email"].as_str().unwrap();
    let tenant = bundle["tenant"]["id"].as_str().unwrap();
    consent_ledger::hex(&consent_ledger_sdk::commitment(tenant, email, &salt))
}

async fn swapped_then_restored(db: TestDb, email: &str, key: impl Fn(&Value) -> String, vrf: &str) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    record(&app, &shop, email, "opt_in", "consent").await;
    let before = evidence(&app, &shop.sender, email).await;
    let label = before["subject"]["commitment"]
        .as_str()
        .unwrap()
        .to_string();
    let row = format!("WHERE address = '{email}'");
    let forged = match key(&before) {
        k if k == "salt" => k,
        k => blob(&db, &k),
    };
    tamper(
        &db,
        &format!("UPDATE subjects SET commitment = {forged}, vrf = {vrf} {row};"),
    );
    let opt_out = record(&app, &shop, email, "opt_out", "").await;
    let restore = format!(
        "UPDATE subjects SET commitment = {}, vrf = TRUE {row};",
        blob(&db, &label)
    );
    tamper(&db, &restore);

    let bundle = evidence(&app, &shop.sender, email).await;
    let events = bundle["events"].as_array().unwrap();
    assert_eq!(events.last().unwrap()["leaf_index"], opt_out["leaf_index"]);
    let report = verified(&app, &bundle);
    assert!(report.passed(), "{:?}", report.items);
    assert_eq!(bundle["decisions"][0]["status"], "withdrawn", "{bundle}");
    app.stop().await;
}

/// Bytes as an SQL literal of the test's database.
fn blob(db: &TestDb, hex: &str) -> String {
    match db.url.starts_with("sqlite") {
        true => format!("X'{hex}'"),
        false => format!("decode('{hex}', 'hex')"),
    }
}

/// The operator moves the address's row aside (another key, no address), so that the next event
/// creates a fresh row under the address's label: that event still names the label's head in
/// the log as its `prev`, and the bundle, which follows the chain as the log links it, not the
/// rows, still holds the opt-out.
async fn a_new_row_under_the_label_still_names_the_logs_head(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "moved@example.jp";
    record(&app, &shop, email, "opt_in", "consent").await;
    let opt_out = record(&app, &shop, email, "opt_out", "").await;
    tamper(
        &db,
        &format!(
            "UPDATE subjects SET commitment = salt, address = NULL WHERE address = '{email}';"
        ),
    );
    let next = record(&app, &shop, email, "opt_in", "consent").await;
    assert_eq!(next["prev_leaf_index"], opt_out["leaf_index"], "{next}");

    let bundle = evidence(&app, &shop.sender, email).await;
    assert!(
        crate::evidence::leaf_indexes(&bundle).contains(&opt_out["leaf_index"]),
        "{bundle}"
    );
    let report = verified(&app, &bundle);
    assert!(report.failed().is_empty(), "{:?}", report.items);
    app.stop().await;
}

/// The operator points the row at a decoy address before the recipient clicks the link, to
/// record the refusal under the decoy's label: the link carries the label it was made for, and
/// the opt-out goes under it.
async fn a_link_opt_out_is_recorded_under_the_links_label_whatever_the_row_says(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "clicked@example.jp";
    record(&app, &shop, email, "opt_in", "consent").await;
    let link = crate::unsubscribe::links(&app, &shop, &[email], None).await;
    let path = crate::unsubscribe::path_of(link[0]["url"].as_str().unwrap());
    let row = |to: &str, from: &str| {
        format!("UPDATE subjects SET address = '{to}' WHERE address = '{from}';")
    };
    tamper(&db, &row("decoy@example.jp", email));
    let clicked = crate::unsubscribe::one_click(&app, &path).await;
    assert_eq!(clicked.status, 200, "{}", clicked.text());
    tamper(&db, &row(email, "decoy@example.jp"));

    // The bundle waits for a checkpoint covering the address's newest event.
    let bundle = evidence(&app, &shop.sender, email).await;
    let report = verified(&app, &bundle);
    assert!(report.passed(), "{:?}", report.items);
    assert_eq!(bundle["events"].as_array().unwrap().len(), 2, "{bundle}");
    assert_eq!(bundle["decisions"][0]["status"], "withdrawn", "{bundle}");
    app.stop().await;
}

async fn decide(app: &TestApp, shop: &Shop, email: &str) -> Value {
    let path = format!("/v1/consent?email={email}&purpose=newsletter");
    let res = app.call("GET", &path, Some(&shop.sender), None, &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

pub fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}
