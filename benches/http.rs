//! HTTP benchmark of the consent API: opt-in events/s at 64 concurrent clients (with p50/p99
//! latency), single send decisions/s, and batch decisions (addresses/s), on SQLite and on
//! PostgreSQL. Server and load generator share this 2-core machine.
//!
//! `cargo bench --bench http` (`-- --skip-pg`, `-- --seconds N`).

#[allow(dead_code)]
#[path = "../tests/it/common/pg.rs"]
mod pg;

use std::rc::Rc;
use std::time::{Duration, Instant};

use consent_ledger::api::{self, AppState};
use consent_ledger::auth::Role;
use consent_ledger::config::Config;
use consent_ledger::consent::{
    self,
    model::{NewTenant, PurposeDefinition},
};

const CLIENTS: usize = 64;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Runs `CLIENTS` concurrent loops of `request(i)` for `seconds`; returns (count, latencies).
async fn load<F, Fut>(seconds: u64, request: F) -> (u64, Vec<Duration>)
where
    F: Fn(u64) -> Fut + 'static,
    Fut: std::future::Future<Output = u16>,
{
    let request = Rc::new(request);
    let counter = Rc::new(std::cell::Cell::new(0u64));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (request, counter) = (request.clone(), counter.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let i = counter.get();
                counter.set(i + 1);
                let start = Instant::now();
                let status = request(i).await;
                assert!(status < 300, "request failed with {status}");
                latencies.push(start.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    (all.len() as u64, all)
}

fn run(name: &str, url: &str, seconds: u64, rows: &mut Vec<(String, String)>) {
    let config = Config {
        database_url: url.into(),
        bind: "127.0.0.1:0".into(),
        ..Config::default()
    };
    let state = AppState::open(&config).expect("opens");
    let tenant = consent::create_tenant(
        &state.store,
        NewTenant {
            name: "Bench".into(),
            purposes: vec![PurposeDefinition {
                purpose: "newsletter".into(),
                description: String::new(),
            }],
            ..Default::default()
        },
    )
    .unwrap();
    let token = state
        .authority
        .issue(
            Role::Sender,
            Some(&tenant.id),
            "bench",
            Duration::from_secs(3600),
        )
        .unwrap();
    let (server_state, log) = (state.clone(), state.log.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let server_thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let (server, addrs) = api::server(server_state, "127.0.0.1:0").unwrap();
            tx.send((addrs[0], server.handle())).unwrap();
            server.await.unwrap();
        })
    });
    let (addr, handle) = rx.recv().unwrap();
    let base = format!("http://{addr}");
    let results = actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        let auth = format!("Bearer {token}");
        let (c, a, b) = (client.clone(), auth.clone(), base.clone());
        let events = load(seconds, move |i| {
            let (c, a, b) = (c.clone(), a.clone(), b.clone());
            async move {
                let body = format!(
                    r#"{{"event":"opt_in","email":"user{i}@example.jp","purposes":["newsletter"],"method":"web_form","received_by":{{"role":"sender","name":"Bench K.K."}}}}"#
                );
                let mut res = c.post(format!("{b}/v1/events")).insert_header(("Authorization", a)).content_type("application/json").send_body(body).await.unwrap();
                let _ = res.body().await;
                res.status().as_u16()
            }
        }).await;
        let recorded = events.0;
        let (c, a, b) = (client.clone(), auth.clone(), base.clone());
        let decisions = load(seconds, move |i| {
            let (c, a, b) = (c.clone(), a.clone(), b.clone());
            async move {
                let n = i % recorded.max(1);
                let mut res = c.get(format!("{b}/v1/consent?email=user{n}@example.jp&purpose=newsletter")).insert_header(("Authorization", a)).send().await.unwrap();
                let _ = res.body().await;
                res.status().as_u16()
            }
        }).await;
        let (c, a, b) = (client.clone(), auth.clone(), base.clone());
        let batch = load(seconds, move |i| {
            let (c, a, b) = (c.clone(), a.clone(), b.clone());
            async move {
                let emails: Vec<String> = (0..1000).map(|k| format!("user{}@example.jp", (i * 1000 + k) % recorded.max(1))).collect();
                let body = serde_json::json!({"purpose": "newsletter", "emails": emails});
                let mut res = c.post(format!("{b}/v1/consent:check")).insert_header(("Authorization", a)).send_json(&body).await.unwrap();
                let _ = res.body().limit(1 << 24).await;
                res.status().as_u16()
            }
        }).await;
        (events, decisions, batch)
    });
    let ((n_events, lat_events), (n_dec, lat_dec), (n_batch, _)) = results;
    let per_s = |n: u64| format!("{:.0}", n as f64 / seconds as f64);
    rows.push((
        format!("{name}: opt-in events/s over HTTP, {CLIENTS} clients, durable"),
        per_s(n_events),
    ));
    rows.push((
        format!("{name}: event latency p50 / p99"),
        format!(
            "{} / {}",
            ms(percentile(&lat_events, 0.5)),
            ms(percentile(&lat_events, 0.99))
        ),
    ));
    rows.push((
        format!("{name}: single decisions/s (GET /v1/consent)"),
        per_s(n_dec),
    ));
    rows.push((
        format!("{name}: decision latency p50 / p99"),
        format!(
            "{} / {}",
            ms(percentile(&lat_dec, 0.5)),
            ms(percentile(&lat_dec, 0.99))
        ),
    ));
    rows.push((
        format!("{name}: batch decisions, addresses/s (1,000 per request)"),
        per_s(n_batch * 1000),
    ));
    actix_web::rt::System::new().block_on(handle.stop(true));
    server_thread.join().unwrap();
    log.shutdown();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .map_or(10, |v| v.parse().unwrap());
    let skip_pg = args.iter().any(|a| a == "--skip-pg");
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    eprintln!("SQLite …");
    run(
        "SQLite",
        &format!("sqlite://{}", dir.path().join("http.db").display()),
        seconds,
        &mut rows,
    );
    if !skip_pg {
        eprintln!("PostgreSQL (fsync on) …");
        std::env::set_var("CONSENT_LEDGER_PG_FSYNC", "on");
        if let Some(url) = pg::fresh_database() {
            run("PostgreSQL", &url, seconds, &mut rows);
        }
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("\n{:width$}  value", "measure");
    println!("{}  {}", "-".repeat(width), "-".repeat(24));
    for (k, v) in rows {
        println!("{k:width$}  {v}");
    }
}
