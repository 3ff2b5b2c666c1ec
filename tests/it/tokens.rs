//! API tokens: issued, listed and revoked through the API by admins and senders, each within
//! its scope; a revoked token is refused at once by every node of one database; lifetimes are
//! capped by configuration; lists page with a cursor and a `Link` to the next page.

use std::time::Duration;

use consent_ledger::auth::Role;
use serde_json::{json, Value};

use crate::common::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    an_issued_token_works_until_revoked_on_every_node,
    a_sender_manages_only_its_own_tenants_sender_tokens,
    a_lifetime_beyond_the_cap_is_refused,
    a_token_ends_with_the_token_that_issued_it,
    token_lists_page_with_a_cursor_and_a_next_link
);

/// An admin token and a tenant.
async fn admin_and_tenant(db: &TestDb, app: &TestApp, name: &str) -> (String, String) {
    let state = consent_ledger::api::AppState::open(&db.config()).unwrap();
    let admin = state
        .authority
        // A week: within every cap these tests set, and the longest its tokens may live.
        .issue(Role::Admin, None, "ops", Duration::from_secs(7 * 86_400))
        .unwrap();
    state.log.shutdown();
    let tenant = tenant(app, &admin, name).await;
    (admin, tenant)
}

async fn tenant(app: &TestApp, admin: &str, name: &str) -> String {
    let created = app
        .call(
            "POST",
            "/v1/tenants",
            Some(admin),
            Some(&json!({"name": name, "purposes": [{"purpose": "newsletter"}]})),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    created.json()["id"].as_str().unwrap().to_string()
}

async fn issue(app: &TestApp, by: &str, body: Value) -> crate::common::Answer {
    app.call("POST", "/v1/tokens", Some(by), Some(&body), &[])
        .await
}

async fn an_issued_token_works_until_revoked_on_every_node(db: TestDb) {
    let a = TestApp::start(&db).await;
    let b = TestApp::start(&db).await;
    let (admin, tenant) = admin_and_tenant(&db, &a, "Tokens").await;
    let issued = issue(
        &a,
        &admin,
        json!({"name": "mailer", "role": "sender", "tenant": tenant}),
    )
    .await;
    assert_eq!(issued.status, 201, "{}", issued.text());
    assert_eq!(issued.header("cache-control"), "no-store");
    let issued = issued.json();
    let (id, secret) = (
        issued["id"].as_str().unwrap(),
        issued["secret"].as_str().unwrap(),
    );
    assert!(id.starts_with("tok_"), "{id}");
    assert_eq!(issued["status"], "active");
    // Issued by the admin's token: named by its id.
    assert!(
        issued["created_by"].as_str().unwrap().starts_with("tok_"),
        "{issued}"
    );
    let read = format!("/v1/tenants/{tenant}");
    // Both nodes accept it (and remember its signature).
    for node in [&a, &b] {
        let answer = node.call("GET", &read, Some(secret), None, &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    // The list shows it, without the secret.
    let list = a.call("GET", "/v1/tokens", Some(&admin), None, &[]).await;
    assert_eq!(list.status, 200, "{}", list.text());
    let tokens = list.json()["tokens"].as_array().unwrap().clone();
    let listed: Vec<&Value> = tokens.iter().filter(|t| t["id"] == id).collect();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("secret").is_none(), "{}", listed[0]);

    // Revoked on node A: refused on node B at once, with a reason.
    let revoked = a
        .call(
            "DELETE",
            &format!("/v1/tokens/{id}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(revoked.json()["status"], "revoked");
    for node in [&b, &a] {
        let refused = node.call("GET", &read, Some(secret), None, &[]).await;
        assert_eq!(refused.status, 401, "{}", refused.text());
        assert!(
            refused.json()["detail"]
                .as_str()
                .unwrap()
                .contains("revoked"),
            "{}",
            refused.text()
        );
    }
    // Revoking again answers the same.
    let again = a
        .call(
            "DELETE",
            &format!("/v1/tokens/{id}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["revoked_at"], revoked.json()["revoked_at"]);
    a.stop().await;
    b.stop().await;
}

async fn a_sender_manages_only_its_own_tenants_sender_tokens(db: TestDb) {
    let app = TestApp::start(&db).await;
    let (admin, mine) = admin_and_tenant(&db, &app, "Mine").await;
    let theirs = tenant(&app, &admin, "Theirs").await;
    let first = issue(&app, &admin, json!({"name": "first", "tenant": mine}))
        .await
        .json();
    let sender = first["secret"].as_str().unwrap().to_string();
    let first_id = first["id"].as_str().unwrap().to_string();
    // Its own tenant's sender token: the tenant may be left out.
    let own = issue(&app, &sender, json!({"name": "second"})).await;
    assert_eq!(own.status, 201, "{}", own.text());
    assert_eq!(own.json()["tenant"], mine.as_str());
    assert_eq!(own.json()["created_by"], first_id.as_str());
    // Not an admin token, not another tenant's.
    let admin_token = issue(&app, &sender, json!({"name": "x", "role": "admin"})).await;
    assert_eq!(admin_token.status, 403, "{}", admin_token.text());
    let other = issue(&app, &sender, json!({"name": "x", "tenant": theirs})).await;
    assert_eq!(other.status, 403, "{}", other.text());
    // An admin's sender token names an existing tenant.
    let unknown = issue(&app, &admin, json!({"name": "x", "tenant": "nope"})).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    let unbound = issue(&app, &admin, json!({"name": "x"})).await;
    assert_eq!(unbound.status, 422, "{}", unbound.text());
    // The sender lists its own tenant's tokens only, and cannot revoke another's.
    let foreign = issue(&app, &admin, json!({"name": "theirs", "tenant": theirs})).await;
    let foreign_id = foreign.json()["id"].as_str().unwrap().to_string();
    let list = app
        .call("GET", "/v1/tokens", Some(&sender), None, &[])
        .await;
    let tenants: Vec<Value> = list.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].clone())
        .collect();
    assert_eq!(tenants, vec![json!(mine), json!(mine)], "{}", list.text());
    let revoke = app
        .call(
            "DELETE",
            &format!("/v1/tokens/{foreign_id}"),
            Some(&sender),
            None,
            &[],
        )
        .await;
    assert_eq!(revoke.status, 404, "{}", revoke.text());
    let regulator = issue(
        &app,
        &admin,
        json!({"name": "officer", "role": "regulator"}),
    )
    .await;
    assert_eq!(regulator.status, 201, "{}", regulator.text());
    let regulator = regulator.json()["secret"].as_str().unwrap().to_string();
    let refused = issue(&app, &regulator, json!({"name": "x", "role": "regulator"})).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    app.stop().await;
}

async fn a_lifetime_beyond_the_cap_is_refused(db: TestDb) {
    let mut config = db.config();
    config.token_max_lifetime_days = 7;
    let app = TestApp::start_with(config).await;
    let (admin, tenant) = admin_and_tenant(&db, &app, "Capped").await;
    let long = issue(
        &app,
        &admin,
        json!({"name": "x", "tenant": tenant, "expires_in_days": 8}),
    )
    .await;
    assert_eq!(long.status, 422, "{}", long.text());
    assert!(long.text().contains("1–7"), "{}", long.text());
    // Without a lifetime: the default, shortened to the cap.
    let default = issue(&app, &admin, json!({"name": "x", "tenant": tenant})).await;
    assert_eq!(default.status, 201, "{}", default.text());
    let json = default.json();
    let (created, expires) = (
        json["created_at"].as_str().unwrap(),
        json["expires_at"].as_str().unwrap(),
    );
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    };
    let days = ((parse(expires) - parse(created)).as_seconds_f64() / 86_400.0).round();
    assert_eq!(days, 7.0, "{created} → {expires}");
    app.stop().await;
}

async fn token_lists_page_with_a_cursor_and_a_next_link(db: TestDb) {
    let app = TestApp::start(&db).await;
    let (admin, tenant) = admin_and_tenant(&db, &app, "Pages").await;
    for name in ["a", "b", "c"] {
        let answer = issue(&app, &admin, json!({"name": name, "tenant": tenant})).await;
        assert_eq!(answer.status, 201, "{}", answer.text());
    }
    let first = app
        .call(
            "GET",
            &format!("/v1/tokens?tenant={tenant}&limit=2"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let names = |page: &Value| -> Vec<String> {
        page["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&first.json()), ["a", "b"]);
    let next = first.json()["next_after"].as_str().unwrap().to_string();
    let link = first.header("link");
    let url = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("a next link: {link:?}"));
    assert!(url.contains(&format!("after={next}")), "{url}");
    let second = app.call("GET", url, Some(&admin), None, &[]).await;
    assert_eq!(names(&second.json()), ["c"]);
    assert!(second.json().get("next_after").is_none());
    assert_eq!(second.header("link"), "");
    let bad = app
        .call("GET", "/v1/tokens?limit=0", Some(&admin), None, &[])
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text());
    for garbage in [
        "/v1/tokens?after=%00",
        "/v1/tenants?after=x%27y",
        "/v1/tokens?tenant=%00",
    ] {
        let bad = app.call("GET", garbage, Some(&admin), None, &[]).await;
        assert_eq!(bad.status, 400, "{garbage}: {}", bad.text());
    }
    app.stop().await;
}

async fn a_token_ends_with_the_token_that_issued_it(db: TestDb) {
    let app = TestApp::start(&db).await;
    let (admin, tenant) = admin_and_tenant(&db, &app, "Chain").await;
    let parent = issue(
        &app,
        &admin,
        json!({"name": "parent", "tenant": tenant, "expires_in_days": 2}),
    )
    .await
    .json();
    let parent_secret = parent["secret"].as_str().unwrap();
    // Asked to live 30 days, it lives no longer than its parent.
    let child = issue(
        &app,
        parent_secret,
        json!({"name": "child", "expires_in_days": 30}),
    )
    .await
    .json();
    assert_eq!(child["expires_at"], parent["expires_at"], "{child}");
    assert_eq!(child["created_by"], parent["id"]);
    let grandchild = issue(
        &app,
        child["secret"].as_str().unwrap(),
        json!({"name": "grandchild"}),
    )
    .await
    .json();
    let read = format!("/v1/tenants/{tenant}");
    let revoked = app
        .call(
            "DELETE",
            &format!("/v1/tokens/{}", parent["id"].as_str().unwrap()),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    for token in [&child, &grandchild] {
        let refused = app
            .call(
                "GET",
                &read,
                Some(token["secret"].as_str().unwrap()),
                None,
                &[],
            )
            .await;
        assert_eq!(
            refused.status,
            401,
            "{} still works: {}",
            token["name"],
            refused.text()
        );
    }
    app.stop().await;
}
