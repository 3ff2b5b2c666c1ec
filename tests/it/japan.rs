//! The Act as it is lived in Japan (`docs/law.md`): the carriers' legacy addresses through the
//! whole flow, exception bases with their evidence, collection points' periods of use, legal
//! holds from the order, imports that keep what they import, 送信責任者 and the opt-out contact,
//! purposes with labels. Each on SQLite and PostgreSQL.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde_json::{json, Value};

use crate::common::{TestApp, TestDb};
use crate::evidence::{evidence, verify_cli};
use crate::on_both_backends;
use crate::unsubscribe::{links, may_send, one_click, opt_in, path_of, shop};

on_both_backends!(
    a_docomo_legacy_address_goes_through_the_whole_flow,
    an_exception_opt_in_names_its_evidence_and_says_when_a_refusal_binds_it,
    a_measures_order_keeps_records_a_year_from_the_order,
    an_import_keeps_its_method_and_counts_from_its_original_times,
);

/// The calendar date `days` from now (negative: ago), `YYYY-MM-DD`.
fn date(days: i64) -> String {
    consent_ledger::rfc3339(consent_ledger::now_millis() + days * 86_400_000)[..10].to_string()
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> crate::common::Answer {
    app.call("POST", path, Some(token), Some(body), &[]).await
}

fn event(event: &str, email: &str, extra: Value) -> Value {
    let mut body = json!({"event": event, "email": email, "purposes": ["newsletter"],
        "method": "in_person", "received_by": {"role": "sender", "name": "Sakura Shop"}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn an_exception_opt_in_names_its_evidence_and_says_when_a_refusal_binds_it(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let vkey = app.log.verifier_key();
    let email = "meishi@example.jp";
    let bare = event("opt_in", email, json!({"basis": "address_notified"}));
    let res = post(&app, &shop.sender, "/v1/events", &bare).await;
    assert_eq!(res.status, 422, "{}", res.text());
    let detail = res.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("evidence.notified_by, evidence.notified_on"),
        "{detail}"
    );
    let card = event(
        "opt_in",
        email,
        json!({"basis": "address_notified",
               "evidence": {"notified_by": "business_card", "notified_on": date(-3), "note": "展示会で受領"}}),
    );
    let res = post(&app, &shop.sender, "/v1/events", &card).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["effective"], true, "{}", res.text());
    assert!(may_send(&app, &shop, email, "newsletter").await);

    let res = post(&app, &shop.sender, "/v1/events", &event("opt_out", email, json!({}))).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let business = event(
        "opt_in",
        email,
        json!({"basis": "business_relationship",
               "evidence": {"transaction_reference": "受注番号 A-1024", "transaction_date": date(-1)}}),
    );
    let res = post(&app, &shop.sender, "/v1/events", &business).await;
    assert_eq!(res.status, 201, "recorded all the same: {}", res.text());
    let answer = res.json();
    assert_eq!(answer["effective"], false, "{answer}");
    assert_eq!(answer["ineffective"]["purposes"], json!(["newsletter"]));
    assert!(
        answer["ineffective"]["reason"]
            .as_str()
            .unwrap()
            .contains("Art. 3(3)"),
        "{answer}"
    );
    assert!(!may_send(&app, &shop, email, "newsletter").await);

    // The evidence is in the bundle, committed by its leaf, and verifies.
    let bundle = evidence(&app, &shop.sender, email).await;
    let given: Vec<Value> = bundle["subject"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["evidence"].clone())
        .collect();
    assert!(
        given.iter().any(|e| e["notified_by"] == "business_card"),
        "{given:?}"
    );
    assert!(
        given
            .iter()
            .any(|e| e["transaction_reference"] == "受注番号 A-1024"),
        "{given:?}"
    );
    let (ok, out) = verify_cli(&bundle, &vkey, &[]);
    assert!(ok, "{out}");
    app.stop().await;
}

/// A measures order 200 days ago for an address whose last event was 400 days ago: a month
/// after the last event has long run, a year from the order has not — the erasure waits for it.
async fn a_measures_order_keeps_records_a_year_from_the_order(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start_with_clock(&db, -400).await;
    let email = "ordered@example.jp";
    opt_in(&app, &shop, email).await;
    let res = post(&app, &shop.sender, "/v1/events", &event("opt_out", email, json!({"purposes": "all"}))).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let app = app.restart_with_clock(&db, 0).await;
    let order_date = date(-200);
    let hold = json!({"legal_hold": true, "order_date": order_date, "order_reference": "総務省 措置命令 第7号"});
    let path = format!("/v1/tenants/{}/legal-hold", shop.tenant);
    let by_sender = app
        .call("PUT", &path, Some(&shop.sender), Some(&hold), &[])
        .await;
    assert_eq!(by_sender.status, 403, "only an admin or a regulator sets a hold");
    let set = app
        .call("PUT", &path, Some(&shop.admin), Some(&hold), &[])
        .await;
    assert_eq!(set.status, 200, "{}", set.text());
    let erase = format!("/v1/subjects?email={email}");
    let refused = app
        .call("DELETE", &erase, Some(&shop.sender), None, &[])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    let from = refused.json()["erasable_from"].as_str().unwrap().to_string();
    let year_from_order = consent_ledger_sdk::consent::millis(&format!("{order_date}T00:00:00Z"))
        .unwrap()
        + 366 * 86_400_000;
    assert_eq!(from, consent_ledger::rfc3339(year_from_order), "a year from the order");

    let app = app.restart_with_clock(&db, 170).await;
    let erased = app
        .call("DELETE", &erase, Some(&shop.sender), None, &[])
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text());
    // The address comes back; its bundle proves the hold and an erasure that waited for it.
    opt_in(&app, &shop, email).await;
    let bundle = evidence(&app, &shop.sender, email).await;
    let (ok, out) = verify_cli(&bundle, &app.log.verifier_key(), &[]);
    assert!(ok, "{out}");
    assert!(out.contains("its retention period follows the legal holds"), "{out}");
    app.stop().await;
}

async fn an_import_keeps_its_method_and_counts_from_its_original_times(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let email = "paper@example.jp";
    let lines = [
        json!({"event": "opt_in", "email": email, "purposes": ["newsletter"], "method": "paper",
               "basis": "business_relationship", "occurred_at": "2018-01-01T00:00:00Z",
               "evidence": {"transaction_reference": "契約 77", "transaction_date": "2017-12-20"},
               "received_by": {"role": "sender", "name": "Sakura Shop"}}),
        json!({"event": "opt_out", "email": email, "purposes": "all", "method": "phone",
               "occurred_at": "2018-02-01T00:00:00Z",
               "received_by": {"role": "sender", "name": "Sakura Shop"}}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let res = app
        .call_raw_with(
            "POST",
            "/v1/events:import?format=jsonl",
            Some(&shop.sender),
            "application/x-ndjson",
            body.as_bytes(),
            &[],
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let decision = app
        .call(
            "GET",
            &format!("/v1/consent?email={email}&purpose=newsletter"),
            Some(&shop.sender),
            None,
            &[],
        )
        .await
        .json();
    assert_eq!(decision["since"], "2018-02-01T00:00:00Z", "{decision}");
    let bundle = evidence(&app, &shop.sender, email).await;
    let leaves: Vec<Value> = bundle["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice(&B64.decode(e["leaf"].as_str().unwrap()).unwrap()).unwrap())
        .collect();
    assert_eq!(leaves[0]["method"], "paper");
    assert_eq!(leaves[1]["method"], "phone");
    assert!(leaves.iter().all(|l| l["imported"] == true), "{leaves:?}");
    let (ok, out) = verify_cli(&bundle, &app.log.verifier_key(), &[]);
    assert!(ok, "{out}");
    // The retention clock runs from 2018, not from the import: erasable now.
    let erased = app
        .call("DELETE", &format!("/v1/subjects?email={email}"), Some(&shop.sender), None, &[])
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text());
    app.stop().await;
}

/// `taro..hanako@docomo.ne.jp`: an address NTT docomo issued before 2009 (two dots in a row).
const LEGACY: &str = "taro..hanako@docomo.ne.jp";

async fn a_docomo_legacy_address_goes_through_the_whole_flow(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let vkey = app.log.verifier_key();
    let recorded = opt_in(&app, &shop, "Taro..Hanako@docomo.ne.jp").await;
    assert!(recorded["leaf_index"].is_u64(), "{recorded}");
    assert!(may_send(&app, &shop, LEGACY, "newsletter").await);
    // No dot folding: the address with one dot is another mailbox, with no consent.
    assert!(!may_send(&app, &shop, "taro.hanako@docomo.ne.jp", "newsletter").await);
    // Written in a header's quoted form, it is the same mailbox.
    let quoted = app
        .call(
            "POST",
            "/v1/consent:check",
            Some(&shop.sender),
            Some(&json!({"purpose": "newsletter", "emails": ["\"taro..hanako\"@docomo.ne.jp", "taro.@ezweb.ne.jp"]})),
            &[],
        )
        .await;
    assert_eq!(quoted.status, 200, "{}", quoted.text());
    let results = quoted.json()["results"].clone();
    assert_eq!(results[0]["may_send"], true, "{results}");
    assert_eq!(results[1]["status"], "none", "valid, never seen: {results}");

    // The footer for this recipient carries its own unsubscribe link.
    let footer = app
        .call(
            "GET",
            &format!("/v1/display-notice?lang=ja&email={LEGACY}&purpose=newsletter"),
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(footer.status, 200, "{}", footer.text());
    let text = footer.json()["text"].as_str().unwrap().to_string();
    let link = links(&app, &shop, &[LEGACY], Some("newsletter")).await[0].clone();
    assert_eq!(link["email"], LEGACY);
    let url = link["url"].as_str().unwrap();
    assert!(text.contains(url), "the footer names the recipient's link: {text}");
    let res = one_click(&app, &path_of(url)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(!may_send(&app, &shop, LEGACY, "newsletter").await);
    assert!(may_send(&app, &shop, LEGACY, "offers").await);

    // Its evidence verifies offline, for this address and not for the one-dot one.
    let bundle = evidence(&app, &shop.sender, LEGACY).await;
    assert_eq!(bundle["subject"]["email"], LEGACY);
    let (ok, out) = verify_cli(&bundle, &vkey, &["--email", "\"taro..hanako\"@docomo.ne.jp"]);
    assert!(ok, "{out}");
    let (ok, out) = verify_cli(&bundle, &vkey, &["--email", "taro.hanako@docomo.ne.jp"]);
    assert!(!ok && out.contains("FAIL  subject: the address asked about"), "{out}");
    app.stop().await;
}
