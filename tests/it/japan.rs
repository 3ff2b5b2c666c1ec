//! The Act as it is lived in Japan (`docs/law.md`): the carriers' legacy addresses through the
//! whole flow, exception bases with their evidence, collection points' periods of use, legal
//! holds from the order, imports that keep what they import, 送信責任者 and the opt-out contact,
//! purposes with labels. Each on SQLite and PostgreSQL.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde_json::{json, Value};

use crate::common::{date, TestApp, TestDb};
use crate::evidence::{evidence, verify_cli};
use crate::on_both_backends;
use crate::unsubscribe::{links, may_send, one_click, opt_in, path_of, shop};

on_both_backends!(
    a_docomo_legacy_address_goes_through_the_whole_flow,
    an_exception_opt_in_names_its_evidence_and_says_when_a_refusal_binds_it,
    a_measures_order_keeps_records_a_year_from_the_order,
    an_import_keeps_its_method_and_counts_from_its_original_times,
    a_retired_screen_ends_its_period_of_use_in_the_log,
    the_notice_names_the_responsible_party_and_refuses_unsafe_contacts,
    purposes_are_added_and_read_by_their_labels,
);

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

    let res = post(
        &app,
        &shop.sender,
        "/v1/events",
        &event("opt_out", email, json!({})),
    )
    .await;
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
    let res = post(
        &app,
        &shop.sender,
        "/v1/events",
        &event("opt_out", email, json!({"purposes": "all"})),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let app = app.restart_with_clock(&db, 0).await;
    let order_date = date(-200);
    let hold = json!({"legal_hold": true, "order_date": order_date, "order_reference": "総務省 措置命令 第7号"});
    let path = format!("/v1/tenants/{}/legal-hold", shop.tenant);
    let by_sender = app
        .call("PUT", &path, Some(&shop.sender), Some(&hold), &[])
        .await;
    assert_eq!(
        by_sender.status, 403,
        "only an admin or a regulator sets a hold"
    );
    let set = app
        .call("PUT", &path, Some(&shop.admin), Some(&hold), &[])
        .await;
    assert_eq!(set.status, 200, "{}", set.text());
    let erase = format!("/v1/subjects?email={email}");
    let refused = app
        .call("DELETE", &erase, Some(&shop.sender), None, &[])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    let from = refused.json()["erasable_from"]
        .as_str()
        .unwrap()
        .to_string();
    let year_from_order = consent_ledger_sdk::consent::millis(&format!("{order_date}T00:00:00Z"))
        .unwrap()
        + 366 * 86_400_000;
    assert_eq!(
        from,
        consent_ledger::rfc3339(year_from_order),
        "a year from the order"
    );

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
    assert!(
        out.contains("its retention period follows the legal holds"),
        "{out}"
    );
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
        .call(
            "DELETE",
            &format!("/v1/subjects?email={email}"),
            Some(&shop.sender),
            None,
            &[],
        )
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
    assert!(
        text.contains(url),
        "the footer names the recipient's link: {text}"
    );
    let res = one_click(&app, &path_of(url)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(!may_send(&app, &shop, LEGACY, "newsletter").await);
    assert!(may_send(&app, &shop, LEGACY, "offers").await);

    // Its evidence verifies offline, for this address and not for the one-dot one.
    let bundle = evidence(&app, &shop.sender, LEGACY).await;
    assert_eq!(bundle["subject"]["email"], LEGACY);
    let (ok, out) = verify_cli(
        &bundle,
        &vkey,
        &["--email", "\"taro..hanako\"@docomo.ne.jp"],
    );
    assert!(ok, "{out}");
    let (ok, out) = verify_cli(&bundle, &vkey, &["--email", "taro.hanako@docomo.ne.jp"]);
    assert!(
        !ok && out.contains("FAIL  subject: the address asked about"),
        "{out}"
    );
    app.stop().await;
}

async fn a_retired_screen_ends_its_period_of_use_in_the_log(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let vkey = app.log.verifier_key();
    let form = json!({"name": "signup", "channel": "web_form", "content_type": "text/html; charset=utf-8",
        "content": "<p>メールマガジンを受け取る</p>", "sender_name_shown": "Sakura Shop",
        "prechecked": false, "language": "ja"});
    let created = post(&app, &shop.sender, "/v1/collection-points", &form).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    let email = "screen@example.jp";
    let through = |extra: Value| {
        let mut body = event(
            "opt_in",
            email,
            json!({"collection_point": id, "method": "web_form"}),
        );
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let res = post(&app, &shop.sender, "/v1/events", &through(json!({}))).await;
    assert_eq!(res.status, 201, "{}", res.text());

    // Listed and read, in use.
    let list = app
        .call(
            "GET",
            "/v1/collection-points?name=signup",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text());
    let listed = list.json()["collection_points"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert!(listed[0].get("retired_at").is_none(), "{listed}");
    let path = format!("/v1/collection-points/{id}");
    let read = app
        .call("GET", &path, Some(&shop.sender), None, &[])
        .await
        .json();
    assert_eq!(
        B64.decode(read["content_base64"].as_str().unwrap())
            .unwrap(),
        "<p>メールマガジンを受け取る</p>".as_bytes()
    );

    let retired = post(&app, &shop.sender, &format!("{path}/retire"), &json!({})).await;
    assert_eq!(retired.status, 200, "{}", retired.text());
    let retired = retired.json();
    assert!(
        retired["retired_at"].is_string() && retired["retired_leaf_index"].is_u64(),
        "{retired}"
    );
    let again = post(&app, &shop.sender, &format!("{path}/retire"), &json!({})).await;
    assert_eq!(
        again.json()["retired_leaf_index"],
        retired["retired_leaf_index"],
        "retired once"
    );

    // A consent through it now is refused; an import of one given before is not.
    let res = post(&app, &shop.sender, "/v1/events", &through(json!({}))).await;
    assert_eq!(res.status, 422, "{}", res.text());
    assert!(res.text().contains("retired"), "{}", res.text());
    let line = json!({"event": "opt_in", "email": email, "purposes": ["offers"], "method": "web_form",
        "collection_point": id, "occurred_at": "2026-01-05T00:00:00Z",
        "received_by": {"role": "sender", "name": "Sakura Shop"}});
    let res = app
        .call_raw_with(
            "POST",
            "/v1/events:import?format=jsonl",
            Some(&shop.sender),
            "application/x-ndjson",
            format!("{line}\n").as_bytes(),
            &[],
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());

    // The bundle proves the period: the retirement leaf, and the map's word that it is the one.
    let bundle = evidence(&app, &shop.sender, email).await;
    let template = &bundle["collection_points"][0];
    assert_eq!(
        template["retired"]["leaf_index"], retired["retired_leaf_index"],
        "{template}"
    );
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let (ok, out) = verify_cli(&bundle, &vkey, &["--report", report.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("its period of use"), "{out}");
    let html = std::fs::read_to_string(&report).unwrap();
    let period = format!(
        "<dt>使用期間</dt><dd><time datetime=\"{}\"",
        read["registered_at"].as_str().unwrap(),
    );
    assert!(html.contains(&period), "{html}");
    let until = format!(
        " – <time datetime=\"{}\"",
        retired["retired_at"].as_str().unwrap()
    );
    assert!(html.contains(&until), "{html}");
    // A bundle that leaves the retirement out does not verify.
    let mut hidden = bundle.clone();
    hidden["collection_points"][0]
        .as_object_mut()
        .unwrap()
        .remove("retired");
    let (ok, out) = verify_cli(&hidden, &vkey, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL  collection point"), "{out}");
    app.stop().await;
}

async fn the_notice_names_the_responsible_party_and_refuses_unsafe_contacts(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let path = format!("/v1/tenants/{}", shop.tenant);
    let patch = |body: Value| {
        let path = path.clone();
        let token = shop.admin.clone();
        let app = &app;
        async move {
            app.call("PATCH", &path, Some(&token), Some(&body), &[])
                .await
        }
    };
    for bad in [
        "javascript:alert(1)",
        "http://shop.example.jp/stop",
        "data:text/html,x",
    ] {
        let res = patch(json!({"optout_contact": bad})).await;
        assert_eq!(res.status, 422, "{bad}: {}", res.text());
        assert!(res.text().contains("https: URL"), "{}", res.text());
    }
    let res =
        patch(json!({"optout_contact": "0120-123-456", "responsible_party": "桜配信代行株式会社"}))
            .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["responsible_party"], "桜配信代行株式会社");
    let notice = app
        .call(
            "GET",
            "/v1/display-notice?lang=ja",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(notice.status, 200, "{}", notice.text());
    let notice = notice.json();
    let text = notice["text"].as_str().unwrap();
    assert!(
        text.contains("送信者: Sakura Shop K.K.")
            && text.contains("送信責任者: 桜配信代行株式会社"),
        "{text}"
    );
    let html = notice["html"].as_str().unwrap();
    assert!(html.contains("href=\"tel:0120-123-456\""), "{html}");
    let en = app
        .call(
            "GET",
            "/v1/display-notice?lang=en",
            Some(&shop.sender),
            None,
            &[],
        )
        .await
        .json();
    assert!(
        en["text"]
            .as_str()
            .unwrap()
            .contains("Responsible for sending: 桜配信代行株式会社"),
        "{en}"
    );
    let res = patch(json!({"responsible_party": ""})).await;
    assert_eq!(res.json()["responsible_party"], Value::Null, "removed");
    app.stop().await;
}

async fn purposes_are_added_and_read_by_their_labels(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let path = format!("/v1/tenants/{}", shop.tenant);
    let body = json!({"purposes": [
        {"purpose": "newsletter", "description": "Monthly newsletter", "label_ja": "メールマガジン", "label_en": "Newsletter"},
        {"purpose": "events", "description": "Invitations", "label_ja": "イベントのご案内", "label_en": "Event invitations"}]});
    let res = app
        .call("PATCH", &path, Some(&shop.admin), Some(&body), &[])
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let purposes = res.json()["purposes"].clone();
    let keys: Vec<&str> = purposes
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["purpose"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["events", "newsletter", "offers"],
        "added, none removed"
    );
    // A change that gives one label keeps the rest.
    let one = json!({"purposes": [{"purpose": "newsletter", "label_en": "Our newsletter"}]});
    let res = app
        .call("PATCH", &path, Some(&shop.admin), Some(&one), &[])
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let newsletter = res.json()["purposes"][1].clone();
    assert_eq!(
        (
            &newsletter["description"],
            &newsletter["label_ja"],
            &newsletter["label_en"]
        ),
        (
            &json!("Monthly newsletter"),
            &json!("メールマガジン"),
            &json!("Our newsletter")
        ),
        "{newsletter}"
    );
    let bad = json!({"purposes": [{"purpose": "Bad Key"}]});
    let res = app
        .call("PATCH", &path, Some(&shop.admin), Some(&bad), &[])
        .await;
    assert_eq!(res.status, 422, "{}", res.text());

    // The new purpose takes consent; pages and the footer show labels, not keys.
    let email = "labels@example.jp";
    let res = post(
        &app,
        &shop.sender,
        "/v1/events",
        &event(
            "opt_in",
            email,
            json!({"purposes": ["events", "newsletter"]}),
        ),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let link = links(&app, &shop, &[email], Some("newsletter")).await[0].clone();
    let page = path_of(link["url"].as_str().unwrap());
    let ja = app.get(&page).await.text();
    assert!(ja.contains("メールマガジン"), "{ja}");
    let en = app.get(&format!("{page}?lang=en")).await.text();
    assert!(
        en.contains("Our newsletter") && !en.contains("メールマガジン"),
        "{en}"
    );
    let footer = app
        .call(
            "GET",
            &format!("/v1/display-notice?lang=en&email={email}&purpose=newsletter"),
            Some(&shop.sender),
            None,
            &[],
        )
        .await
        .json();
    assert!(
        footer["text"]
            .as_str()
            .unwrap()
            .contains("Unsubscribe (Our newsletter)"),
        "{footer}"
    );

    // The report too.
    let bundle = evidence(&app, &shop.sender, email).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let report = dir.path().join("report.html");
    let out = crate::common::bin()
        .args(["verify", "evidence"])
        .arg(&file)
        .args(["--vkey", &app.log.verifier_key(), "--report"])
        .arg(&report)
        .args(["--lang", "ja"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("メールマガジン") && html.contains("イベントのご案内"),
        "{html}"
    );
    app.stop().await;
}
