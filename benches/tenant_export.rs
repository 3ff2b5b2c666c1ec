//! Whole-tenant export at scale: a tenant of N subjects (default 1,000,000, `-- --subjects N`)
//! imported into the real `serve` process on a SQLite file, then `GET /v1/evidence:tenant`
//! streamed to a file and `verify tenant` run on it. Reported: the export's rate (subjects/s,
//! MB/s) and, as the machine is shared, its ratio to a bare actix handler streaming the same
//! bytes in the same run; the server's anonymous resident memory (`RssAnon`: its heap, not the
//! SQLite file it maps) before the export and its peak during it, sampled every 20 ms (the
//! export must not grow with the tenant); the verifier's rate and peak memory.
//!
//! `cargo bench --bench tenant_export [-- --subjects N]`.

use std::io::{BufRead, Read, Write};
use std::time::{Duration, Instant};

use consent_ledger::api::AppState;
use consent_ledger::auth::Role;
use consent_ledger::config::Config;
use consent_ledger::consent::{
    self,
    model::{NewTenant, PurposeDefinition},
};

/// Lines per import request (the service's limit).
const IMPORT_LINES: usize = 100_000;

/// A resident-memory figure of a process, in MiB (`RssAnon`, `VmRSS`, …).
fn memory(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024.0
}

/// Streams `url` into `out`: bytes and seconds.
fn download(url: &str, token: Option<&str>, out: &mut impl Write) -> (u64, f64) {
    let started = Instant::now();
    let mut request = ureq::get(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().unwrap();
    let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
    let bytes = std::io::copy(&mut reader, out).unwrap();
    (bytes, started.elapsed().as_secs_f64())
}

/// A bare actix handler streaming `total` bytes in 64 KiB chunks: the ceiling of this machine's
/// HTTP streaming in this run.
fn bare(total: u64) -> f64 {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new().route(
                    "/bytes",
                    web::get().to(move || async move {
                        let chunk = web::Bytes::from(vec![b'x'; 64 << 10]);
                        let chunks = total.div_ceil(64 << 10);
                        let body = futures_stream(chunk, chunks);
                        HttpResponse::Ok().streaming(body)
                    }),
                )
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
            let addr = server.addrs()[0];
            let server = server.run();
            tx.send((addr, server.handle())).unwrap();
            server.await.unwrap();
        })
    });
    let (addr, handle) = rx.recv().unwrap();
    let (bytes, seconds) = download(&format!("http://{addr}/bytes"), None, &mut std::io::sink());
    actix_web::rt::System::new().block_on(handle.stop(true));
    server.join().unwrap();
    bytes as f64 / seconds
}

/// `n` copies of `chunk` as a response body.
fn futures_stream(
    chunk: actix_web::web::Bytes,
    n: u64,
) -> impl futures_core::Stream<Item = Result<actix_web::web::Bytes, std::io::Error>> {
    struct Repeat(actix_web::web::Bytes, u64);
    impl futures_core::Stream for Repeat {
        type Item = Result<actix_web::web::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.1 == 0 {
                return std::task::Poll::Ready(None);
            }
            self.1 -= 1;
            std::task::Poll::Ready(Some(Ok(self.0.clone())))
        }
    }
    Repeat(chunk, n)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let subjects: usize = args
        .iter()
        .position(|a| a == "--subjects")
        .and_then(|i| args.get(i + 1))
        .map_or(1_000_000, |v| v.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("export.db").display());
    let (tenant, token, vkey) = {
        let state = AppState::open(&Config {
            database_url: url.clone(),
            ..Config::default()
        })
        .unwrap();
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
                Duration::from_secs(86_400),
            )
            .unwrap();
        let vkey = state.log.verifier_key();
        state.log.shutdown();
        (tenant.id, token, vkey)
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_consent-ledger"))
        .env("CONSENT_LEDGER_DATABASE_URL", &url)
        .env_remove("CONSENT_LEDGER_CONFIG")
        .args(["--bind", "127.0.0.1:0", "serve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = format!(
        "http://{}",
        first
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap()
    );
    let pid = child.id();

    let started = Instant::now();
    let mut last_leaf = 0;
    for from in (0..subjects).step_by(IMPORT_LINES) {
        let mut body = String::new();
        for i in from..(from + IMPORT_LINES).min(subjects) {
            body.push_str(&format!(
                r#"{{"event":"opt_in","email":"user{i}@example.jp","purposes":["newsletter"],"method":"web_form","received_by":{{"role":"sender","name":"Bench K.K."}},"occurred_at":"2024-04-01T10:00:00+09:00"}}"#
            ));
            body.push('\n');
        }
        let mut response = ureq::post(&format!("{base}/v1/events:import?format=jsonl"))
            .header("Authorization", format!("Bearer {token}"))
            .send(body.as_bytes())
            .unwrap();
        let summary: serde_json::Value =
            serde_json::from_reader(response.body_mut().as_reader()).unwrap();
        last_leaf = summary["last_leaf_index"].as_u64().unwrap();
        eprint!(
            "\rimported {} subjects",
            (from + IMPORT_LINES).min(subjects)
        );
    }
    eprintln!(" in {:.0} s", started.elapsed().as_secs_f64());
    // Wait for a checkpoint (with its subject map) past the last import.
    loop {
        let mut response = ureq::get(&format!("{base}/checkpoint")).call().unwrap();
        let mut note = String::new();
        response
            .body_mut()
            .as_reader()
            .read_to_string(&mut note)
            .unwrap();
        let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
        if size > last_leaf + 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let before = memory(pid, "RssAnon:");
    // The peak of the heap while the export runs, sampled.
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = std::thread::spawn({
        let running = running.clone();
        move || {
            let mut peak = 0f64;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(memory(pid, "RssAnon:"));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        }
    });
    let file = dir.path().join("tenant.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let (bytes, seconds) = download(
        &format!("{base}/v1/evidence:tenant"),
        Some(&token),
        &mut out,
    );
    out.flush().unwrap();
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let ceiling = bare(bytes);
    let _ = tenant;

    let started = Instant::now();
    let verified = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_consent-ledger"))
        .args(["verify", "tenant"])
        .arg(&file)
        .args(["--vkey", &vkey])
        .output()
        .unwrap();
    let verify_seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&verified.stdout);
    let stderr = String::from_utf8_lossy(&verified.stderr);
    let verify_kb: f64 = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(verified.status.success(), "{stdout}\n{stderr}");
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("verdict:"))
        .unwrap_or_default()
        .to_string();

    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();

    let mb = bytes as f64 / 1e6;
    println!("whole-tenant export, {subjects} subjects, SQLite");
    println!(
        "  export: {mb:.0} MB in {seconds:.1} s = {:.0} subjects/s, {:.1} MB/s ({:.3} of a bare handler streaming the same bytes, {:.0} MB/s)",
        subjects as f64 / seconds,
        mb / seconds,
        (bytes as f64 / seconds) / ceiling,
        ceiling / 1e6
    );
    println!(
        "  server heap (RssAnon): {before:.0} MiB before, peak {peak:.0} MiB during the export (+{:.0} MiB)",
        peak - before
    );
    println!(
        "  verify tenant: {verify_seconds:.1} s = {:.0} subjects/s, peak {:.0} MiB resident",
        subjects as f64 / verify_seconds,
        verify_kb / 1024.0
    );
    println!("  {verdict}");
}
