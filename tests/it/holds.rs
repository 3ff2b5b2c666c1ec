//! Erasures and legal holds as leaves (`docs/log-format.md`): a hold, with the order it follows,
//! is a `legal_hold` leaf in the tenant's hold chain, and the service decides an erasure's
//! retention period from that chain, not from the tenant's row; a bundle proves the holds
//! complete, and the verifier checks each erasure's period against them. On SQLite and PostgreSQL.

use serde_json::{json, Value};

use crate::common::{audit_map, date, tamper, wait_for_checkpoint, TestApp, TestDb};
use crate::evidence::evidence;
use crate::labels::record;
use crate::on_both_backends;
use crate::unsubscribe::{shop, Shop};
use consent_ledger::evidence::verify::verify;

on_both_backends!(
    a_hold_in_the_log_keeps_the_records_a_year_whatever_the_row_says,
    a_hold_names_the_order_it_follows,
    an_auditor_alarms_on_an_erasure_the_law_did_not_allow,
    a_clock_set_ahead_to_erase_early_shows_in_the_chain,
    an_erasure_racing_other_writes_fails_none_of_them,
    an_address_with_links_only_is_erased_without_a_leaf,
);

async fn hold(app: &TestApp, shop: &Shop, body: &Value) -> crate::common::Answer {
    let path = format!("/v1/tenants/{}/legal-hold", shop.tenant);
    app.call("PUT", &path, Some(&shop.admin), Some(body), &[])
        .await
}

fn order(on: bool, date: &str) -> Value {
    json!({"legal_hold": on, "order_date": date, "order_reference": "総務省 措置命令 第12号"})
}

/// A hold put on forty days ago (by the log's clock); the operator then clears the tenant's row.
/// The erasure still waits a year, as the log's hold chain says; once the hold is lifted, it goes
/// ahead after the month, and the bundle of the address that came back proves both holds and an
/// erasure that waited the period they give.
async fn a_hold_in_the_log_keeps_the_records_a_year_whatever_the_row_says(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start_with_clock(&db, -40).await;
    let email = "held@example.jp";
    record(&app, &shop, email, "opt_in", "consent").await;
    record(&app, &shop, email, "opt_out", "").await;
    let ordered = date(-45);
    let on = hold(&app, &shop, &order(true, &ordered)).await;
    assert_eq!(
        (on.status, on.json()["legal_hold"].clone()),
        (200, json!(true))
    );
    let app = app.restart_with_clock(&db, 0).await;
    tamper(&db, "UPDATE tenants SET legal_hold = FALSE;");
    let path = format!("/v1/subjects?email={email}");
    let refused = app
        .call("DELETE", &path, Some(&shop.sender), None, &[])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    let from = refused.json()["erasable_from"]
        .as_str()
        .unwrap()
        .to_string();
    let in_300_days = consent_ledger::now_millis() + 300 * 86_400_000;
    assert!(from > consent_ledger::rfc3339(in_300_days), "{from}");

    let off = hold(&app, &shop, &order(false, &date(-8))).await;
    assert_eq!(
        (off.status, off.json()["legal_hold"].clone()),
        (200, json!(false))
    );
    let erased = app
        .call("DELETE", &path, Some(&shop.sender), None, &[])
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text());
    record(&app, &shop, email, "opt_in", "consent").await;

    let bundle = evidence(&app, &shop.sender, email).await;
    assert_eq!(
        bundle["holds"]["leaves"].as_array().unwrap().len(),
        2,
        "{bundle}"
    );
    let report = verify(
        &serde_json::to_vec(&bundle).unwrap(),
        &app.log.verifier_key(),
        None,
        None,
    );
    assert!(report.passed(), "{:?}", report.items);
    let index = erased.json()["leaf_index"].as_u64().unwrap();
    let follows = format!("erasure at leaf {index}: its retention period follows the legal holds");
    assert!(
        report.items.iter().any(|i| i.what == follows),
        "{:?}",
        report.items
    );
    // The report shows the holds with their orders, and the erasure in the timeline.
    let parsed: consent_ledger::evidence::Bundle = serde_json::from_value(bundle.clone()).unwrap();
    let html = consent_ledger::evidence::report::render(
        &parsed,
        &report,
        consent_ledger::evidence::report::Lang::Ja,
        consent_ledger::evidence::report::Anchor::None,
    );
    for shown in [
        "保存期間を1年に延長",
        "解除",
        ordered.as_str(),
        "総務省 措置命令 第12号",
        "個人データの消去（配信停止の効力は残ります）",
    ] {
        assert!(html.contains(shown), "the report lacks {shown}");
    }
    // An auditor replaying the whole log finds the erasure lawful too.
    let state = tempfile::tempdir().unwrap();
    let out = audit_map(&app.base, &app.log.verifier_key(), state.path()).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    app.stop().await;
}

/// A modified server (here the raw append API) erases an address whose consent is in force: no
/// bundle will show it, as the address is gone, but the auditor replaying the consent rules over
/// every leaf raises an alarm (exit 2) naming the leaf.
async fn an_auditor_alarms_on_an_erasure_the_law_did_not_allow(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let vkey = app.log.verifier_key();
    let email = "granted@example.jp";
    record(&app, &shop, email, "opt_in", "consent").await;
    let bundle = evidence(&app, &shop.sender, email).await;
    let state = tempfile::tempdir().unwrap();
    let out = audit_map(&app.base, &vkey, state.path()).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let last = bundle["events"][0]["leaf_index"].as_u64().unwrap();
    let forged = consent_ledger::log::Leaf::from_json(&json!({
        "type": "erasure", "v": 1, "tenant": shop.tenant,
        "subject": bundle["subject"]["commitment"], "prev": last,
        "recorded_at": consent_ledger::rfc3339(consent_ledger::now_millis()),
        "retention_days": 31, "evidence_erased": [],
    }))
    .unwrap();
    let index = app.log.append(vec![forged]).await.unwrap().start;
    wait_for_checkpoint(&app.log, index + 2).await;
    let out = audit_map(&app.base, &vkey, state.path()).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "leaf {index} erases a subject's records before the law allows"
        )) && text.contains("consent in force for newsletter"),
        "{text}"
    );
    app.stop().await;
}

/// A hold without its order, with a date that is no date, or for no tenant changes nothing.
async fn a_hold_names_the_order_it_follows(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let no_order = hold(&app, &shop, &json!({"legal_hold": true})).await;
    assert_eq!(no_order.status, 400, "{}", no_order.text());
    let bad_date = hold(&app, &shop, &order(true, "2026-02-30")).await;
    assert_eq!(bad_date.status, 422, "{}", bad_date.text());
    assert!(
        bad_date.text().contains("order_date"),
        "{}",
        bad_date.text()
    );
    let blank = json!({"legal_hold": true, "order_date": date(-10), "order_reference": " "});
    assert_eq!(hold(&app, &shop, &blank).await.status, 422);
    let ahead = hold(&app, &shop, &order(true, &date(3))).await;
    assert_eq!(ahead.status, 422, "{}", ahead.text());
    assert!(ahead.text().contains("in the future"), "{}", ahead.text());
    let run = hold(&app, &shop, &order(true, &date(-400))).await;
    assert_eq!(run.status, 422, "{}", run.text());
    assert!(run.text().contains("has run"), "{}", run.text());
    let nobody = app
        .call(
            "PUT",
            "/v1/tenants/nobody/legal-hold",
            Some(&shop.admin),
            Some(&order(true, &date(-10))),
            &[],
        )
        .await;
    assert_eq!(nobody.status, 404, "{}", nobody.text());
    let tenant = app
        .call(
            "GET",
            &format!("/v1/tenants/{}", shop.tenant),
            Some(&shop.admin),
            None,
            &[],
        )
        .await;
    assert_eq!(tenant.json()["legal_hold"], false, "{}", tenant.text());
    app.stop().await;
}

/// The operator sets its log's clock a month ahead to erase at once, then back: the erasure
/// goes through, but the address's next event is recorded before the erasure it follows, and the
/// verifier says so.
async fn a_clock_set_ahead_to_erase_early_shows_in_the_chain(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "ahead@example.jp";
    record(&app, &shop, email, "opt_in", "consent").await;
    record(&app, &shop, email, "opt_out", "").await;
    let app = app.restart_with_clock(&db, 32).await;
    let path = format!("/v1/subjects?email={email}");
    let erased = app
        .call("DELETE", &path, Some(&shop.sender), None, &[])
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text());
    let app = app.restart_with_clock(&db, 0).await;
    record(&app, &shop, email, "opt_in", "consent").await;
    let bundle = evidence(&app, &shop.sender, email).await;
    let report = verify(
        &serde_json::to_vec(&bundle).unwrap(),
        &app.log.verifier_key(),
        None,
        None,
    );
    let next = bundle["events"][3]["leaf_index"].as_u64().unwrap();
    assert_eq!(
        report.failed(),
        [format!(
            "event 3 (leaf {next}): recorded after the leaf before it"
        )],
        "{:?}",
        report.items
    );
    app.stop().await;
}

/// An erasure and a hold change sequenced in one batch with other tenants' writes: each request
/// gets its own answer (the erasure waits for the heads it cannot read yet), none a 5xx.
async fn an_erasure_racing_other_writes_fails_none_of_them(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start_with_clock(&db, -40).await;
    let email = "racing@example.jp";
    record(&app, &shop, email, "opt_in", "consent").await;
    record(&app, &shop, email, "opt_out", "").await;
    let app = app.restart_with_clock(&db, 0).await;
    let path = format!("/v1/subjects?email={email}");
    let others: Vec<Value> = (0..20)
        .map(|i| {
            json!({"event": "opt_in", "email": format!("other{i}@example.jp"),
            "purposes": ["newsletter"], "basis": "consent", "method": "web_form",
            "received_by": {"role": "sender", "name": "Sakura Shop"}})
        })
        .collect();
    let again = json!({"event": "opt_out", "email": email, "purposes": "all", "method": "web_form",
        "received_by": {"role": "sender", "name": "Sakura Shop"}});
    let mut requests: Vec<(&str, String, Option<Value>)> = others
        .into_iter()
        .map(|b| ("POST", "/v1/events".to_string(), Some(b)))
        .collect();
    requests.push(("POST", "/v1/events".into(), Some(again)));
    let hold_path = format!("/v1/tenants/{}/legal-hold", shop.tenant);
    requests.push(("PUT", hold_path, Some(order(true, &date(-3)))));
    requests.push(("DELETE", path, None));
    // All at once, so that the sequencer takes several of them in one batch.
    let pending: Vec<_> = requests
        .into_iter()
        .map(|(method, path, body)| {
            let url = format!("{}{path}", app.base);
            let token = match method {
                "PUT" => shop.admin.clone(),
                _ => shop.sender.clone(),
            };
            actix_web::rt::spawn(async move {
                let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
                let req = awc::Client::new()
                    .request(method, url)
                    .insert_header(("Authorization", format!("Bearer {token}")));
                let res = match body {
                    Some(b) => req.send_json(&b).await,
                    None => req.send().await,
                };
                res.unwrap().status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for p in pending {
        statuses.push(p.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s < 500), "{statuses:?}");
    app.stop().await;
}

/// An address the service only made unsubscribe links for has a row (its address) but no event
/// and so no history: it is erased once a month since it was stored has run, with no leaf.
async fn an_address_with_links_only_is_erased_without_a_leaf(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "linked.only@example.jp";
    crate::unsubscribe::links(&app, &shop, &[email], None).await;
    let path = format!("/v1/subjects?email={email}");
    let early = app
        .call("DELETE", &path, Some(&shop.sender), None, &[])
        .await;
    assert_eq!(early.status, 409, "{}", early.text());
    let app = app.restart_with_clock(&db, 32).await;
    let erased = app
        .call("DELETE", &path, Some(&shop.sender), None, &[])
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text());
    assert_eq!(erased.json()["events"], 0);
    assert!(erased.json()["leaf_index"].is_null(), "{}", erased.text());
    app.stop().await;
}
