//! Every list pages the same way: `limit`, a `next_after` cursor in the body, and a `Link:
//! <…>; rel="next"` header to follow; the last page has neither. Tenants (admins), collection
//! points, publishable keys, webhooks and tokens.

use std::time::Duration;

use consent_ledger::auth::Role;
use serde_json::{json, Value};

use crate::common::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(every_list_follows_its_next_link_to_the_end);

/// Follows `path`'s next links with `limit=2`; the items of `field` on every page, in order.
async fn all_pages(app: &TestApp, token: &str, path: &str, field: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut next = Some(format!("{path}{sep}limit=2"));
    let mut items = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        let page = app.call("GET", &url, Some(token), None, &[]).await;
        assert_eq!(page.status, 200, "{url}: {}", page.text());
        let body = page.json();
        let got = body[field]
            .as_array()
            .unwrap_or_else(|| panic!("{url}: {body}"));
        assert!(got.len() <= 2, "{url}: {body}");
        items.extend(got.iter().cloned());
        let link = page.header("link");
        match body.get("next_after") {
            Some(cursor) => {
                let cursor = cursor.as_str().map_or(cursor.to_string(), str::to_string);
                let target = link
                    .strip_prefix('<')
                    .and_then(|l| l.strip_suffix(">; rel=\"next\""))
                    .unwrap_or_else(|| panic!("{url}: a next link, got {link:?}"));
                assert!(target.ends_with(&format!("after={cursor}")), "{target}");
                next = Some(target.to_string());
            }
            None => assert_eq!(link, "", "{url}: the last page links nowhere"),
        }
        pages += 1;
        assert!(pages < 10, "{path}: the pages never end");
    }
    items
}

async fn every_list_follows_its_next_link_to_the_end(db: TestDb) {
    let app = TestApp::start(&db).await;
    let state = consent_ledger::api::AppState::open(&db.config()).unwrap();
    let admin = state
        .authority
        .issue(Role::Admin, None, "ops", Duration::from_secs(600))
        .unwrap();
    state.log.shutdown();
    let mut tenants = Vec::new();
    for name in ["One", "Two", "Three"] {
        let created = app
            .call(
                "POST",
                "/v1/tenants",
                Some(&admin),
                Some(&json!({"name": name, "purposes": [{"purpose": "newsletter"}]})),
                &[],
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        tenants.push(created.json()["id"].as_str().unwrap().to_string());
    }
    let tenant = &tenants[0];
    let sender = app
        .call(
            "POST",
            "/v1/tokens",
            Some(&admin),
            Some(&json!({"name": "mailer", "tenant": tenant})),
            &[],
        )
        .await
        .json()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let post = |path: &'static str, body: Value| {
        let (app, sender) = (&app, &sender);
        async move {
            let answer = app.call("POST", path, Some(sender), Some(&body), &[]).await;
            assert_eq!(answer.status, 201, "{path}: {}", answer.text());
        }
    };
    for i in 0..3 {
        post(
            "/v1/collection-points",
            json!({"name": format!("form-{i}"), "channel": "web_form",
                   "content_type": "text/html; charset=utf-8", "content": format!("<p>form {i}</p>"),
                   "sender_name_shown": "One K.K.", "prechecked": false, "language": "ja"}),
        )
        .await;
        post(
            "/v1/publishable-keys",
            json!({"origins": [format!("https://shop{i}.example.jp")]}),
        )
        .await;
        post(
            "/v1/webhooks",
            json!({"url": format!("http://127.0.0.1:9/hook/{i}")}),
        )
        .await;
        post("/v1/tokens", json!({"name": format!("token-{i}")})).await;
    }
    let all = all_pages(&app, &admin, "/v1/tenants", "tenants").await;
    let ids: Vec<&str> = all.iter().map(|t| t["id"].as_str().unwrap()).collect();
    for t in &tenants {
        assert!(ids.contains(&t.as_str()), "{t} in {ids:?}");
    }
    let names = |items: Vec<Value>, field: &str| -> Vec<String> {
        items
            .iter()
            .map(|i| i[field].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(
            all_pages(&app, &sender, "/v1/collection-points", "collection_points").await,
            "name"
        ),
        ["form-0", "form-1", "form-2"]
    );
    let keys = all_pages(&app, &sender, "/v1/publishable-keys", "keys").await;
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[2]["origins"], json!(["https://shop2.example.jp"]));
    let hooks = all_pages(&app, &sender, "/v1/webhooks", "webhooks").await;
    assert_eq!(
        names(hooks, "url"),
        [0, 1, 2].map(|i| format!("http://127.0.0.1:9/hook/{i}"))
    );
    assert_eq!(
        names(
            all_pages(&app, &sender, "/v1/tokens", "tokens").await,
            "name"
        ),
        ["mailer", "token-0", "token-1", "token-2"]
    );
    // An admin names the tenant whose keys it lists.
    let theirs = all_pages(
        &app,
        &admin,
        &format!("/v1/publishable-keys?tenant={}", tenants[1]),
        "keys",
    )
    .await;
    assert!(theirs.is_empty());
    app.stop().await;
}
