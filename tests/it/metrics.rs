//! `/metrics` in the Prometheus text exposition format: a scrape names every metric the
//! operator's dashboards need, with route patterns (never paths that carry values) as labels.

use serde_json::json;

use crate::common::{TestApp, TestDb};
use crate::on_both_backends;
use crate::unsubscribe::shop;

on_both_backends!(a_scrape_names_every_metric);

/// The value of the sample `name` (exact series, labels included), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn a_scrape_names_every_metric(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let recorded = app
        .call(
            "POST",
            "/v1/events",
            Some(&shop.sender),
            Some(
                &json!({"event": "opt_in", "email": "m@example.jp", "purposes": ["newsletter"],
                         "method": "web_form", "received_by": {"role": "sender", "name": "Shop"}}),
            ),
            &[],
        )
        .await;
    assert_eq!(recorded.status, 201, "{}", recorded.text());
    let index = recorded.json()["leaf_index"].as_u64().unwrap();
    crate::common::wait_for_checkpoint(&app.log, index + 1).await;
    let decided = app
        .call(
            "GET",
            "/v1/consent?email=m@example.jp&purpose=newsletter",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(decided.status, 200);
    let scrape = app.get("/metrics").await;
    assert_eq!(scrape.status, 200);
    assert!(
        scrape
            .header("content-type")
            .starts_with("application/openmetrics-text"),
        "{}",
        scrape.header("content-type")
    );
    let text = scrape.text();
    for family in [
        "# TYPE consent_ledger_http_requests counter",
        "# TYPE consent_ledger_http_request_duration_seconds histogram",
        "# TYPE consent_ledger_sequencer_batch_leaves histogram",
        "# TYPE consent_ledger_sequencer_commit_duration_seconds histogram",
        "# TYPE consent_ledger_checkpoint_lag_seconds histogram",
        "# TYPE consent_ledger_log_tree_size gauge",
        "# TYPE consent_ledger_webhook_attempts counter",
        "# TYPE consent_ledger_webhook_backlog gauge",
        "# TYPE consent_ledger_db_pool_wait_seconds histogram",
    ] {
        assert!(text.contains(family), "{family} in:\n{text}");
    }
    let events = sample(
        &text,
        "consent_ledger_http_requests_total{route=\"/v1/events\",method=\"POST\",status=\"201\"}",
    );
    assert!(events.is_some_and(|n| n >= 1.0), "{text}");
    // The route's pattern, not the path with its query.
    assert!(!text.contains("m@example.jp"), "{text}");
    assert!(text.contains("route=\"/v1/consent\""), "{text}");
    for counted in [
        "consent_ledger_sequencer_batch_leaves_count",
        "consent_ledger_sequencer_commit_duration_seconds_count",
        "consent_ledger_checkpoint_lag_seconds_count",
        "consent_ledger_db_pool_wait_seconds_count",
    ] {
        assert!(
            sample(&text, counted).is_some_and(|n| n >= 1.0),
            "{counted} in:\n{text}"
        );
    }
    assert!(
        sample(&text, "consent_ledger_webhook_backlog").is_some(),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
    app.stop().await;
}
