//! HTTP benchmark of the consent API: opt-in events/s at 64 concurrent clients (with p50/p99
//! latency), single send decisions/s, and batch decisions (addresses/s), on SQLite and on
//! PostgreSQL. Server and load generator share this 2-core machine.
//!
//! The load generator is a lean HTTP/1.1 client of its own (keep-alive connections, one request
//! in flight on each), so that most of the CPU goes to the server.
//!
//! Every rate is also given as a ratio to a bare actix handler measured in the same run, under the
//! same load generator: the shared machine's speed changes from run to run, the ratio much less.
//!
//! `cargo bench --bench http` (`-- --skip-pg`, `-- --seconds N`, `-- --only known|decisions|batch|links|oneclick`);
//! `-- --proofs FILE`: inclusion proofs over the log in FILE instead (`cargo bench --bench log --
//! --proofs-only FILE` grows one to 10M leaves).

#[allow(dead_code)]
#[path = "../tests/it/common/pg.rs"]
mod pg;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::rt::net::TcpStream;
use consent_ledger::api::{self, AppState};
use consent_ledger::auth::Role;
use consent_ledger::config::Config;
use consent_ledger::consent::{
    self,
    model::{NewTenant, PurposeDefinition},
};
use consent_ledger::unsubscribe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIENTS: usize = 64;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let last = sorted.len().saturating_sub(1);
    sorted
        .get((last as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// Serves the API over `state` on a port of its own, from a thread of its own.
fn serve(
    state: AppState,
) -> (
    SocketAddr,
    actix_web::dev::ServerHandle,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let (server, addrs) = api::server(state, "127.0.0.1:0").unwrap();
            tx.send((addrs[0], server.handle())).unwrap();
            server.await.unwrap();
        })
    });
    let (addr, handle) = rx.recv().unwrap();
    (addr, handle, thread)
}

/// "p50 / p99" of sorted latencies.
fn p50_p99(sorted: &[Duration]) -> String {
    format!(
        "{} / {}",
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.99))
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// One keep-alive HTTP/1.1 connection of the load generator. A plain socket and `httparse`,
/// not a full client: the generator shares the two cores with the server, and every cycle it
/// spends is one the server cannot.
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).await.expect("connects");
        stream.set_nodelay(true).unwrap();
        Connection {
            stream,
            buf: Vec::with_capacity(1 << 16),
        }
    }

    /// Sends one request (whole, as bytes) and reads its response; returns the status.
    async fn exchange(&mut self, request: &[u8]) -> u16 {
        self.stream.write_all(request).await.expect("sends");
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) =
                response.parse(&self.buf).expect("a valid response")
            {
                let status = response.code.unwrap_or(0);
                let length: usize = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                    .expect("responses carry Content-Length");
                while self.buf.len() < head + length {
                    self.fill().await;
                }
                self.buf.drain(..head + length);
                return status;
            }
            self.fill().await;
        }
    }

    async fn fill(&mut self) {
        let start = self.buf.len();
        self.buf.resize(start + (1 << 16), 0);
        let n = self
            .stream
            .read(&mut self.buf[start..])
            .await
            .expect("reads");
        assert!(n > 0, "the server closed the connection");
        self.buf.truncate(start + n);
    }
}

/// A request as bytes: `method path`, the bearer token, and a JSON body if any.
fn request(method: &str, path: &str, token: &str, body: Option<&str>) -> Vec<u8> {
    raw_request(
        method,
        path,
        Some(token),
        body.map(|b| ("application/json", b)),
    )
}

/// A request as bytes: an optional bearer token and an optional body of a content type.
fn raw_request(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n");
    if let Some(token) = token {
        r.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    match body {
        Some((content_type, body)) => r.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => r.push_str("\r\n"),
    }
    r.into_bytes()
}

/// CPU time this process (server and load generator) has used, from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().map(|v| v.parse::<u64>().unwrap_or(0)).sum());
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Runs `CLIENTS` connections, each sending `make(i)` requests back to back for `seconds`;
/// returns (count, latencies sorted, CPU time used).
async fn load(
    addr: SocketAddr,
    seconds: u64,
    make: impl Fn(u64) -> Vec<u8> + 'static,
) -> (u64, Vec<Duration>, Duration) {
    let cpu_start = cpu_time();
    let make = Rc::new(make);
    let counter = Rc::new(std::cell::Cell::new(0u64));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (make, counter) = (make.clone(), counter.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let mut connection = Connection::open(addr).await;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let i = counter.get();
                counter.set(i + 1);
                let request = make(i);
                let start = Instant::now();
                let status = connection.exchange(&request).await;
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
    (all.len() as u64, all, cpu_time().saturating_sub(cpu_start))
}

fn run(name: &str, url: &str, seconds: u64, only: Option<&str>, rows: &mut Vec<(String, String)>) {
    let config = Config {
        database_url: url.into(),
        bind: "127.0.0.1:0".into(),
        // One load generator is one IP: measure the service, not the per-IP limit.
        unsubscribe_per_ip: 0,
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
                ..Default::default()
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
    // The workers `serve` runs, so the service is measured as it runs.
    let workers = consent_ledger::workers::Workers::start(&state).expect("workers start");
    let (server_state, log) = (state.clone(), state.log.clone());
    let (addr, handle, server_thread) = serve(server_state);
    let results = actix_web::rt::System::new().block_on(async move {
        let events = load(addr, seconds, {
            let token = token.clone();
            move |i| {
            let body = format!(
                r#"{{"event":"opt_in","email":"user{i}@example.jp","purposes":["newsletter"],"method":"web_form","received_by":{{"role":"sender","name":"Bench K.K."}}}}"#
            );
            request("POST", "/v1/events", &token, Some(&body))
        }})
        .await;
        let recorded = events.0.max(1);
        let skip = |phase: &str| only.is_some_and(|o| o != phase);
        // Opt-ins for addresses recorded above: the commonest event of a running sender.
        let known = load(addr, if skip("known") { 0 } else { seconds }, {
            let token = token.clone();
            move |i| {
            let body = format!(
                r#"{{"event":"opt_in","email":"user{}@example.jp","purposes":["newsletter"],"method":"web_form","received_by":{{"role":"sender","name":"Bench K.K."}}}}"#,
                i % recorded
            );
            request("POST", "/v1/events", &token, Some(&body))
        }})
        .await;
        let decisions = load(addr, if skip("decisions") { 0 } else { seconds }, {
            let token = token.clone();
            move |i| {
                let path = format!("/v1/consent?email=user{}@example.jp&purpose=newsletter", i % recorded);
                request("GET", &path, &token, None)
            }
        })
        .await;
        let batch = load(addr, if skip("batch") { 0 } else { seconds }, {
            let token = token.clone();
            move |i| {
                let emails: Vec<String> = (0..1000)
                    .map(|k| format!("user{}@example.jp", (i * 1000 + k) % recorded))
                    .collect();
                let body = serde_json::json!({"purpose": "newsletter", "emails": emails}).to_string();
                request("POST", "/v1/consent:check", &token, Some(&body))
            }
        })
        .await;
        let link_batches = load(addr, if skip("links") { 0 } else { seconds }, move |i| {
            let emails: Vec<String> = (0..1000)
                .map(|k| format!("user{}@example.jp", (i * 1000 + k) % recorded))
                .collect();
            let body = serde_json::json!({"purpose": "newsletter", "emails": emails}).to_string();
            request("POST", "/v1/unsubscribe-links", &token, Some(&body))
        })
        .await;
        // One-click: a link per recorded address (made here, not timed); each click records an
        // opt-out, durable before its 200.
        let mut paths = Vec::new();
        if !skip("oneclick") {
            for start in (0..recorded).step_by(unsubscribe::MAX_LINKS) {
                let emails = (start..(start + unsubscribe::MAX_LINKS as u64).min(recorded))
                    .map(|k| format!("user{k}@example.jp"))
                    .collect();
                let made = unsubscribe::create_links(
                    &state.store,
                    &state.links,
                    state.log.labeler(),
                    &tenant.id,
                    unsubscribe::LinkRequest { emails, purpose: None, valid_days: None },
                )
                .unwrap();
                paths.extend(made.links.into_iter().map(|l| {
                    format!("/u/{}", l.url.rsplit_once("/u/").unwrap().1)
                }));
            }
        }
        let link_count = paths.len() as u64;
        let paths = Rc::new(paths);
        let clicks = load(addr, if skip("oneclick") { 0 } else { seconds }, move |i| {
            let path = &paths[i as usize % paths.len()];
            // As a mail provider sends it: no token, a form body.
            raw_request(
                "POST",
                path,
                None,
                Some(("application/x-www-form-urlencoded", "List-Unsubscribe=One-Click")),
            )
        })
        .await;
        (events, known, decisions, batch, link_batches, clicks, link_count)
    });
    let (
        (n_events, lat_events, cpu_events),
        (n_known, _, cpu_known),
        (n_dec, lat_dec, cpu_dec),
        (n_batch, _, _),
        (n_links, _, _),
        (n_clicks, lat_clicks, _),
        link_count,
    ) = results;
    let per_s = |n: u64| format!("{:.0}", n as f64 / seconds as f64);
    // CPU per request, server and load generator together: steadier than a rate when the
    // machine's neighbours are busy.
    let cpu_per =
        |cpu: Duration, n: u64| format!("{:.1} µs", cpu.as_secs_f64() * 1e6 / n.max(1) as f64);
    rows.push((
        format!("{name}: opt-in events/s over HTTP, {CLIENTS} clients, durable"),
        per_s(n_events),
    ));
    rows.push((
        format!("{name}: event latency p50 / p99"),
        p50_p99(&lat_events),
    ));
    rows.push((
        format!("{name}: CPU per event (server + load generator)"),
        cpu_per(cpu_events, n_events),
    ));
    if n_known > 0 {
        rows.push((
            format!("{name}: opt-in events/s for known addresses"),
            per_s(n_known),
        ));
        rows.push((
            format!("{name}: CPU per event for a known address"),
            cpu_per(cpu_known, n_known),
        ));
    }
    rows.push((
        format!("{name}: single decisions/s (GET /v1/consent)"),
        per_s(n_dec),
    ));
    rows.push((
        format!("{name}: decision latency p50 / p99"),
        p50_p99(&lat_dec),
    ));
    rows.push((
        format!("{name}: CPU per decision (server + load generator)"),
        cpu_per(cpu_dec, n_dec),
    ));
    rows.push((
        format!("{name}: batch decisions, addresses/s (1,000 per request)"),
        per_s(n_batch * 1000),
    ));
    rows.push((
        format!("{name}: unsubscribe links/s (1,000 per request)"),
        per_s(n_links * 1000),
    ));
    rows.push((
        format!("{name}: one-click opt-outs/s, durable (RFC 8058 POST)"),
        // Clicks beyond one per link are repeats, which record nothing: not counted.
        per_s(n_clicks.min(link_count)),
    ));
    rows.push((
        format!("{name}: one-click latency p50 / p99"),
        p50_p99(&lat_clicks),
    ));
    actix_web::rt::System::new().block_on(handle.stop(true));
    server_thread.join().unwrap();
    log.shutdown();
    drop(workers);
}

/// Inclusion proofs over HTTP (`GET /v1/log/proof/inclusion`) of random leaves of the log kept
/// in the SQLite file `file` (grown by `cargo bench --bench log -- --proofs-only FILE`), served
/// by the service: a first pass with the tile cache empty, then one that finds what it kept.
fn proofs(file: &str, seconds: u64, rows: &mut Vec<(String, String)>) {
    let config = Config {
        database_url: format!("sqlite://{file}"),
        bind: "127.0.0.1:0".into(),
        origin: Some("bench.example/log".into()),
        ..Config::default()
    };
    let state = AppState::open(&config).expect("opens");
    let size = state.log.latest_checkpoint().expect("a checkpoint").size;
    let (addr, handle, server_thread) = serve(state.clone());
    for pass in ["cache cold at start", "cache warm"] {
        let (n, latencies, _) =
            actix_web::rt::System::new().block_on(load(addr, seconds, move |i| {
                // A random leaf (xorshift of the request number).
                let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let path = format!("/v1/log/proof/inclusion?index={}&size={size}", x % size);
                request("GET", &path, "none", None)
            }));
        rows.push((
            format!(
                "SQLite: inclusion proofs/s at {:.0}M leaves, {pass}",
                size as f64 / 1e6
            ),
            format!("{:.0}", n as f64 / seconds as f64),
        ));
        rows.push((
            format!("SQLite: proof latency p50 / p99, {pass}"),
            p50_p99(&latencies),
        ));
    }
    actix_web::rt::System::new().block_on(handle.stop(true));
    server_thread.join().unwrap();
    state.log.shutdown();
}

/// The ceiling of this machine in this run: a bare actix handler (no database, no log) under the
/// same load generator, answering each opt-in-sized POST with a small JSON 201. Rates are
/// reported as a ratio to it, which stays comparable when the shared machine is slower or faster.
fn bare(seconds: u64) -> u64 {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let (tx, rx) = std::sync::mpsc::channel();
    let server_thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(|| {
                App::new().route(
                    "/v1/events",
                    web::post().to(|body: web::Bytes| async move {
                        HttpResponse::Created()
                            .json(serde_json::json!({"ok": true, "bytes": body.len()}))
                    }),
                )
            })
            .bind("127.0.0.1:0")
            .unwrap();
            let addr = server.addrs()[0];
            let server = server.run();
            tx.send((addr, server.handle())).unwrap();
            server.await.unwrap();
        })
    });
    let (addr, handle) = rx.recv().unwrap();
    let (n, _, _) = actix_web::rt::System::new().block_on(load(addr, seconds, |i| {
        let body = format!(
            r#"{{"event":"opt_in","email":"bare{i}@example.jp","purposes":["newsletter"],"method":"web_form","received_by":{{"role":"sender","name":"Bench"}}}}"#
        );
        request("POST", "/v1/events", "bare", Some(&body))
    }));
    actix_web::rt::System::new().block_on(handle.stop(true));
    server_thread.join().unwrap();
    n
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .map_or(10, |v| v.parse().unwrap());
    let skip_pg = args.iter().any(|a| a == "--skip-pg");
    // `--only decisions|batch`: record events for `seconds`, then measure just that phase
    // (for profiling one path).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    // `--proofs FILE`: only inclusion proofs over a log kept in FILE, and the ceiling.
    let proofs_file = args
        .iter()
        .position(|a| a == "--proofs")
        .and_then(|i| args.get(i + 1));
    if let Some(file) = proofs_file {
        eprintln!("inclusion proofs from {file} …");
        proofs(file, seconds, &mut rows);
    } else {
        // The ceiling is measured after the service: the bare handler's many closed connections
        // would otherwise still be winding down while the service is measured.
        eprintln!("SQLite …");
        run(
            "SQLite",
            &format!("sqlite://{}", dir.path().join("http.db").display()),
            seconds,
            only,
            &mut rows,
        );
    }
    if !skip_pg && proofs_file.is_none() {
        eprintln!("PostgreSQL (fsync on) …");
        std::env::set_var("CONSENT_LEDGER_PG_FSYNC", "on");
        run(
            "PostgreSQL",
            &pg::fresh_database(),
            seconds,
            only,
            &mut rows,
        );
    }
    eprintln!("a bare handler, for the ceiling …");
    let ceiling = bare(seconds) as f64 / seconds as f64;
    rows.push((
        format!("bare actix handler: requests/s, {CLIENTS} clients (the ceiling)"),
        format!("{ceiling:.0}"),
    ));
    // Each rate as a share of the ceiling measured in this run.
    let ratios: Vec<(String, String)> = rows
        .iter()
        .filter(|(k, _)| k.ends_with("/s") || k.contains("/s "))
        .filter(|(k, _)| !k.starts_with("bare"))
        .filter_map(|(k, v)| {
            let rate: f64 = v.parse().ok()?;
            Some((
                format!("{k} ÷ bare handler"),
                format!("{:.3}", rate / ceiling),
            ))
        })
        .collect();
    rows.extend(ratios);
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("\n{:width$}  value", "measure");
    println!("{}  {}", "-".repeat(width), "-".repeat(24));
    for (k, v) in rows {
        println!("{k:width$}  {v}");
    }
}
