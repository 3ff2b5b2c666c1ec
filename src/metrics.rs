//! The service's metrics, served at `/metrics` in the Prometheus text exposition format
//! (OpenMetrics 1.0 text, which Prometheus scrapes): requests by route and status and their
//! latency, the sequencer's batch sizes and commit time, the lag from an acknowledgement to the
//! checkpoint that covers it, webhook backlog and failures, and waits for a database connection.
//!
//! One registry per process ([`metrics`]); the layers record into it with the small functions
//! below (no metric types leak out). Labels are bounded: routes are patterns (`/v1/tenants/{id}`),
//! never paths, and no label carries personal data. Not here: serving it (`api/health.rs`).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    batch_leaves: Histogram,
    commit_seconds: Histogram,
    checkpoint_lag: Histogram,
    tree_size: Gauge,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    webhook_backlog: Gauge,
    pool_wait: Histogram,
}

/// Seconds, from 0.1 ms to about 6.5 s.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("consent_ledger");
    let requests = Family::<RequestLabels, Counter>::default();
    let latency: HistogramFamily<RouteLabels> = Family::new_with_constructor(seconds);
    let batch_leaves = Histogram::new(exponential_buckets(1.0, 2.0, 13));
    let (commit_seconds, checkpoint_lag, pool_wait) = (seconds(), seconds(), seconds());
    let (tree_size, webhook_backlog) = (Gauge::default(), Gauge::default());
    let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
    // Every outcome from the start, at 0: a rate needs the series before the first failure.
    for outcome in ["delivered", "failed", "given_up"] {
        drop(webhook_attempts.get_or_create(&OutcomeLabels { outcome }));
    }
    registry.register(
        "http_requests",
        "HTTP requests answered, by route pattern, method and status",
        requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "Time to answer an HTTP request, by route pattern",
        latency.clone(),
    );
    registry.register(
        "sequencer_batch_leaves",
        "Leaves committed per sequencer transaction",
        batch_leaves.clone(),
    );
    registry.register(
        "sequencer_commit_duration_seconds",
        "Time of one sequencer transaction (build, write, commit)",
        commit_seconds.clone(),
    );
    registry.register(
        "checkpoint_lag_seconds",
        "From the earliest acknowledgement a checkpoint covers to its publication",
        checkpoint_lag.clone(),
    );
    registry.register(
        "log_tree_size",
        "Leaves in the latest checkpoint this process published",
        tree_size.clone(),
    );
    registry.register(
        "webhook_attempts",
        "Webhook delivery attempts, by outcome (delivered, failed, given_up)",
        webhook_attempts.clone(),
    );
    registry.register(
        "webhook_backlog",
        "Webhook deliveries waiting to be sent (due or backing off), as of the scrape",
        webhook_backlog.clone(),
    );
    registry.register(
        "db_pool_wait_seconds",
        "Time waited for a database connection from the pool",
        pool_wait.clone(),
    );
    Metrics {
        registry,
        requests,
        latency,
        batch_leaves,
        commit_seconds,
        checkpoint_lag,
        tree_size,
        webhook_attempts,
        webhook_backlog,
        pool_wait,
    }
});

/// The methods counted by name; any other (a client may send any token) is `other`, so no
/// client can make series without end.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// An HTTP request answered: its route pattern (`unmatched` for none), method and status.
pub fn request(route: &str, method: &str, status: u16, took: Duration) {
    let m = &*METRICS;
    let method = METHODS.iter().find(|m| **m == method).unwrap_or(&"other");
    m.requests
        .get_or_create(&RequestLabels {
            route: route.to_string(),
            method: method.to_string(),
            status,
        })
        .inc();
    m.latency
        .get_or_create(&RouteLabels {
            route: route.to_string(),
        })
        .observe(took.as_secs_f64());
}

/// A sequencer transaction of `leaves` leaves that took `took`.
pub fn commit(leaves: usize, took: Duration) {
    METRICS.batch_leaves.observe(leaves as f64);
    METRICS.commit_seconds.observe(took.as_secs_f64());
}

/// A checkpoint of `size` published, `lag` after the earliest acknowledgement it covers.
pub fn checkpoint(size: u64, lag: Option<Duration>) {
    METRICS.tree_size.set(size as i64);
    if let Some(lag) = lag {
        METRICS.checkpoint_lag.observe(lag.as_secs_f64());
    }
}

/// A webhook delivery attempt: `delivered`, `failed` (will retry) or `given_up`.
pub fn webhook_attempt(outcome: &'static str) {
    METRICS
        .webhook_attempts
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
}

/// A wait for a database connection.
pub fn pool_wait(took: Duration) {
    METRICS.pool_wait.observe(took.as_secs_f64());
}

/// The exposition, with the webhook backlog as counted now.
pub fn render(webhook_backlog: i64) -> String {
    METRICS.webhook_backlog.set(webhook_backlog);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &METRICS.registry)
        .expect("writing to a String does not fail");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_with_its_type() {
        request("/v1/tenants/{id}", "GET", 200, Duration::from_millis(3));
        commit(5, Duration::from_millis(2));
        checkpoint(7, Some(Duration::from_millis(40)));
        webhook_attempt("failed");
        pool_wait(Duration::from_micros(20));
        let text = render(4);
        for line in [
            "# TYPE consent_ledger_http_requests counter",
            "consent_ledger_http_requests_total{route=\"/v1/tenants/{id}\",method=\"GET\",status=\"200\"}",
            "# TYPE consent_ledger_http_request_duration_seconds histogram",
            "# TYPE consent_ledger_sequencer_batch_leaves histogram",
            "# TYPE consent_ledger_sequencer_commit_duration_seconds histogram",
            "# TYPE consent_ledger_checkpoint_lag_seconds histogram",
            "consent_ledger_log_tree_size 7",
            "consent_ledger_webhook_attempts_total{outcome=\"failed\"}",
            "consent_ledger_webhook_backlog 4",
            "# TYPE consent_ledger_db_pool_wait_seconds histogram",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn unknown_methods_are_one_series() {
        request("/x", "BREW", 405, Duration::from_millis(1));
        request("/x", "FROB", 405, Duration::from_millis(1));
        let text = render(0);
        assert!(
            text.contains("route=\"/x\",method=\"other\",status=\"405\"} 2"),
            "{text}"
        );
        assert!(!text.contains("BREW"));
    }
}
