//! The suppression list as a mail system loads it: each refusal in force with when, its scope,
//! how the person refused and who received it; as JSON, JSON lines or CSV; and the changes since
//! a cursor, each a set (suppressed or not, as of now).

use serde_json::{json, Value};

use crate::common::{TestApp, TestDb};
use crate::on_both_backends;
use crate::unsubscribe::{links, one_click, opt_in, path_of, shop, Shop};

on_both_backends!(
    each_entry_says_when_its_scope_reason_and_source,
    csv_and_json_lines_carry_the_same_entries,
    the_changes_since_a_cursor_set_each_address_and_purpose
);

async fn get(app: &TestApp, shop: &Shop, path: &str) -> crate::common::Answer {
    let answer = app.call("GET", path, Some(&shop.sender), None, &[]).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    answer
}

async fn opt_out(app: &TestApp, shop: &Shop, email: &str, purposes: Value) -> Value {
    let res = app
        .call(
            "POST",
            "/v1/events",
            Some(&shop.sender),
            Some(
                &json!({"event": "opt_out", "email": email, "purposes": purposes, "method": "phone",
                         "received_by": {"role": "sender", "name": "Sakura Shop call centre"}}),
            ),
            &[],
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()
}

/// Entries with refusals in force for `purpose`, by address.
async fn entries(app: &TestApp, shop: &Shop, purpose: &str) -> Vec<Value> {
    let page = get(app, shop, &format!("/v1/suppression?purpose={purpose}")).await;
    let mut entries = page.json()["entries"].as_array().unwrap().clone();
    entries.sort_by_key(|e| e["email"].as_str().unwrap_or_default().to_string());
    entries
}

async fn each_entry_says_when_its_scope_reason_and_source(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    for email in ["all@example.jp", "one@example.jp"] {
        opt_in(&app, &shop, email).await;
    }
    let refused = opt_out(&app, &shop, "all@example.jp", json!("all")).await;
    let url = links(&app, &shop, &["one@example.jp"], Some("offers")).await[0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(one_click(&app, &path_of(&url)).await.status, 200);
    let offers = entries(&app, &shop, "offers").await;
    assert_eq!(offers.len(), 2, "{offers:?}");
    let (all, one) = (&offers[0], &offers[1]);
    assert_eq!(all["email"], "all@example.jp");
    assert_eq!(all["suppressed"], true);
    assert_eq!(all["scope"], "all");
    assert_eq!(all["reason"], "phone");
    assert_eq!(
        all["source"],
        json!({"role": "sender", "name": "Sakura Shop call centre"})
    );
    assert_eq!(all["event_id"], refused["event_id"]);
    assert_eq!(all["leaf_index"], refused["leaf_index"]);
    assert_eq!(all["refused_at"], refused["recorded_at"]);
    assert_eq!(one["email"], "one@example.jp");
    assert_eq!(one["scope"], "purpose");
    assert_eq!(one["reason"], "one_click");
    // For the newsletter, only the refusal of all.
    let newsletter = entries(&app, &shop, "newsletter").await;
    assert_eq!(newsletter.len(), 1);
    assert_eq!(newsletter[0]["email"], "all@example.jp");
    app.stop().await;
}

async fn csv_and_json_lines_carry_the_same_entries(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    for email in ["a@example.jp", "b@example.jp", "c@example.jp"] {
        opt_in(&app, &shop, email).await;
        opt_out(&app, &shop, email, json!(["newsletter"])).await;
    }
    let page = get(
        &app,
        &shop,
        "/v1/suppression?purpose=newsletter&limit=2&format=jsonl",
    )
    .await;
    assert_eq!(page.header("content-type"), "application/x-ndjson");
    let lines: Vec<Value> = page
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines
        .iter()
        .all(|l| l["suppressed"] == true && l["scope"] == "purpose"));
    let link = page.header("link");
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("a next link: {link:?}"));
    assert!(next.contains("format=jsonl"), "{next}");
    let rest = get(&app, &shop, next).await;
    assert_eq!(rest.text().lines().count(), 1);
    let csv = get(&app, &shop, "/v1/suppression?purpose=newsletter&format=csv").await;
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    let text = csv.text();
    let mut rows = text.lines();
    assert_eq!(
        rows.next().unwrap(),
        "\"email\",\"label\",\"purpose\",\"suppressed\",\"scope\",\"refused_at\",\"reason\",\"source_role\",\"source_name\",\"event_id\",\"leaf_index\""
    );
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("\"a@example.jp\",\"\",\"newsletter\",\"true\",\"purpose\",")),
        "{text}"
    );
    let bad = app
        .call(
            "GET",
            "/v1/suppression?purpose=newsletter&format=xml",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    app.stop().await;
}

async fn the_changes_since_a_cursor_set_each_address_and_purpose(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let changes = |since: Option<u64>| {
        let (app, shop) = (&app, &shop);
        async move {
            let path = match since {
                Some(s) => format!("/v1/suppression/changes?purpose=newsletter&since={s}"),
                None => "/v1/suppression/changes?purpose=newsletter".to_string(),
            };
            get(app, shop, &path).await.json()
        }
    };
    opt_in(&app, &shop, "x@example.jp").await;
    opt_out(&app, &shop, "x@example.jp", json!(["newsletter"])).await;
    let first = changes(None).await;
    let list = first["changes"].as_array().unwrap();
    assert_eq!(list.len(), 1, "one address, one purpose: {first}");
    assert_eq!(list[0]["email"], "x@example.jp");
    assert_eq!(list[0]["suppressed"], true);
    let resume = first["resume_since"].as_u64().unwrap();
    // Fresh consent lifts the refusal: the next poll sets it off the list.
    opt_in(&app, &shop, "x@example.jp").await;
    let second = changes(Some(resume)).await;
    let list = second["changes"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{second}");
    assert_eq!(list[0]["suppressed"], false);
    assert!(list[0].get("refused_at").is_none());
    let resume = second["resume_since"].as_u64().unwrap();
    // Page by page: a full page links to the next by `since`.
    let paged = get(
        &app,
        &shop,
        "/v1/suppression/changes?purpose=newsletter&limit=1",
    )
    .await;
    let next = paged.json()["next_after"].as_u64().expect("more wait");
    assert!(
        paged.header("link").contains(&format!("since={next}>")),
        "{}",
        paged.header("link")
    );
    // Nothing since: no change, the same cursor.
    let third = changes(Some(resume)).await;
    assert_eq!(third["changes"], json!([]));
    assert_eq!(third["resume_since"], resume);
    app.stop().await;
}
