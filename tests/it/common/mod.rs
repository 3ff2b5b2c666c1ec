//! Test support: real databases (a SQLite file in a temp dir, a database on a throw-away
//! PostgreSQL cluster), the real app on port 0, an HTTP client, and the both-backends macro.

pub mod pg;
pub mod reference;

use std::time::{Duration, Instant};

use consent_ledger::api::{self, AppState};
use consent_ledger::config::Config;
use consent_ledger::log::{Leaf, Log};

/// The binary as a user runs it, without configuration from the test's environment.
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_consent-ledger"));
    c.env_remove("CONSENT_LEDGER_DATABASE_URL")
        .env_remove("CONSENT_LEDGER_CONFIG");
    c
}

/// The `serve` command as a process, on a free port: its address, read from the line it
/// prints first. Its stdout stays open (the server would fail writing to a closed one); its
/// stderr is piped for the test to read after it ends.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub addr: String,
    _stdout: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl ServeProcess {
    /// Runs `consent-ledger ARGS… --bind 127.0.0.1:0 serve` in `dir`.
    pub fn start(dir: &std::path::Path, args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = bin()
            .current_dir(dir)
            .args(args)
            .args(["--bind", "127.0.0.1:0", "serve"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        Self {
            child,
            addr,
            _stdout: lines,
        }
    }

    /// Sends SIGTERM and waits: whether it exited successfully, and what it wrote to stderr.
    pub fn terminate(mut self) -> (bool, String) {
        use std::io::Read;
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.success(), stderr)
    }
}

/// A database for one test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        Self {
            url,
            _dir: Some(dir),
        }
    }

    /// A SQLite file in `dir`, which the caller owns (a small file system it mounted).
    pub fn sqlite_in(dir: &std::path::Path) -> Self {
        Self {
            url: format!("sqlite://{}", dir.join("ledger.db").display()),
            _dir: None,
        }
    }

    pub fn postgres() -> Self {
        Self {
            url: pg::fresh_database(),
            _dir: None,
        }
    }

    /// The configuration tests use: this database, a test origin, a short checkpoint interval.
    pub fn config(&self) -> Config {
        Config {
            database_url: self.url.clone(),
            bind: "127.0.0.1:0".into(),
            origin: Some("test.example/log".into()),
            checkpoint_interval_ms: 20,
            // The webhook tests' receivers listen on 127.0.0.1.
            webhooks_to_loopback: true,
            ..Config::default()
        }
    }
}

/// Defines `mod NAME { fn sqlite(); fn postgres(); }` running `async fn NAME(db: TestDb)` on each
/// (the PostgreSQL variant ignored unless `--include-ignored`: reported, never a silent pass).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::common::TestDb::sqlite()).await
            }
            #[actix_web::test]
            #[ignore = "needs PostgreSQL (initdb, pg_ctl): run with --include-ignored, as CI does"]
            async fn postgres() {
                super::$name($crate::common::TestDb::postgres()).await
            }
        }
    )*};
}

/// The calendar date `days` from now (negative: ago), `YYYY-MM-DD`.
pub fn date(days: i64) -> String {
    consent_ledger::rfc3339(consent_ledger::now_millis() + days * 86_400_000)[..10].to_string()
}

/// The real service on a free port.
pub struct TestApp {
    pub base: String,
    pub log: Log,
    client: awc::Client,
    server: actix_web::dev::ServerHandle,
    _workers: consent_ledger::workers::Workers,
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

impl TestApp {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db.config()).await
    }

    /// The app with its log's clock `days` off (negative: behind): what it records now, the log
    /// says happened then — how a test lets a retention period run without waiting for it.
    pub async fn start_with_clock(db: &TestDb, days: i64) -> Self {
        Self::start_with(consent_ledger::config::Config {
            clock_offset_secs: days * 86_400,
            ..db.config()
        })
        .await
    }

    /// Stops the app and starts it again with its log's clock `days` off.
    pub async fn restart_with_clock(self, db: &TestDb, days: i64) -> Self {
        self.stop().await;
        Self::start_with_clock(db, days).await
    }

    pub async fn start_with(config: consent_ledger::config::Config) -> Self {
        let state = AppState::open(&config).expect("the app opens");
        // The workers `serve` starts, for as long as the server runs.
        let workers = consent_ledger::workers::Workers::start(&state).expect("workers start");
        let log = state.log.clone();
        let (server, addrs) = api::server(state, "127.0.0.1:0").expect("binds");
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            base: format!("http://{}", addrs[0]),
            log,
            // Longer than the pool's 5 s wait for a connection: a database that is down is
            // answered 503 after that wait, not cut off by the client.
            client: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
            server: handle,
            _workers: workers,
        }
    }

    pub async fn request(&self, method: &str, path: &str) -> Answer {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut res = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let body = res.body().limit(64 << 20).await.unwrap().to_vec();
        Answer {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body,
        }
    }

    /// A request with an optional bearer token, JSON body and extra headers.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let mut res = match body {
            Some(b) => {
                req.insert_header(("Content-Type", "application/json"))
                    .send_body(b.to_string())
                    .await
            }
            None => req.send().await,
        }
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        let body = res.body().limit(64 << 20).await.unwrap().to_vec();
        Answer {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body,
        }
    }

    /// A request with a raw body of `content_type`.
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> Answer {
        self.call_raw_with(method, path, token, content_type, body, &[])
            .await
    }

    /// [`Self::call_raw`] with extra headers.
    pub async fn call_raw_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Answer {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .insert_header(("Content-Type", content_type));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut res = req
            .send_body(body.to_vec())
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let body = res.body().limit(64 << 20).await.unwrap().to_vec();
        Answer {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request("GET", path).await
    }

    pub async fn stop(self) {
        self.server.stop(true).await;
        self.log.shutdown();
    }
}

/// Appends `n` test leaves tagged `tag`, `per_request` per call, the calls concurrent; returns
/// each leaf with the index the log acknowledged it at.
pub async fn append_leaves(
    log: &Log,
    tag: &str,
    n: usize,
    per_request: usize,
) -> Vec<(u64, Vec<u8>)> {
    let mut pending = Vec::new();
    for chunk_start in (0..n).step_by(per_request) {
        let leaves: Vec<Leaf> = (chunk_start..(chunk_start + per_request).min(n))
            .map(|i| {
                Leaf::from_json(&serde_json::json!({"type": "test", "tag": tag, "i": i})).unwrap()
            })
            .collect();
        let log = log.clone();
        pending.push(actix_web::rt::spawn(async move {
            let range = log.append(leaves.clone()).await.expect("append");
            (range, leaves)
        }));
    }
    let mut all = Vec::new();
    for p in pending {
        let (range, leaves) = p.await.unwrap();
        assert_eq!(range.end - range.start, leaves.len() as u64);
        all.extend(range.zip(leaves.into_iter().map(|l| l.bytes().to_vec())));
    }
    all.sort();
    all
}

/// The leaves of the tree of a checkpoint that covers every `appended` leaf, read back through
/// the log's entry tiles. Checks that each appended leaf is at its index and that every other
/// leaf from `first` on is a `subject_map` leaf (the log ends each checkpoint with one).
pub async fn tree_covering(
    log: &Log,
    first: u64,
    appended: &[(u64, Vec<u8>)],
) -> (consent_ledger::log::SignedCheckpoint, Vec<Vec<u8>>) {
    let end = appended.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
    let cp = wait_for_checkpoint(log, end + 1).await;
    let mut leaves = Vec::new();
    for index in 0..cp.size.div_ceil(256) {
        let width = (cp.size - index * 256).min(256) as u16;
        let tile = consent_ledger::log::tiles::TileRef {
            kind: consent_ledger::log::tiles::TileKind::Entries,
            index,
            width,
        };
        leaves.extend(reference::entries(
            &log.tile(tile).expect("entries tile").bytes,
        ));
    }
    assert_eq!(leaves.len() as u64, cp.size);
    let mut mine = appended.iter().peekable();
    for (index, leaf) in leaves.iter().enumerate().skip(first as usize) {
        if let Some((_, bytes)) = mine.next_if(|(i, _)| *i == index as u64) {
            assert_eq!(
                leaf, bytes,
                "leaf {index} is not the one acknowledged there"
            );
        } else {
            let doc: serde_json::Value = serde_json::from_slice(leaf).unwrap();
            let ours = doc["type"] == "subject_map" || doc["type"] == "log_parameters";
            assert!(ours, "leaf {index}: {doc}");
        }
    }
    assert!(mine.next().is_none(), "acknowledged leaves beyond the tree");
    (cp, leaves)
}

/// Waits until a checkpoint of at least `size` is published (at most 10 s).
pub async fn wait_for_checkpoint(log: &Log, size: u64) -> consent_ledger::log::SignedCheckpoint {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cp = log.latest_checkpoint().unwrap();
        if cp.size >= size {
            return cp;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size {size} within 10 s (latest {})",
            cp.size
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs SQL on the test's database behind the service's back, as an operator with write
/// access to its own database could.
pub fn tamper(db: &TestDb, sql: &str) {
    tamper_url(&db.url, sql)
}

/// [`tamper`] by the database's URL (for code that cannot hold the `TestDb`).
pub fn tamper_url(url: &str, sql: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    match url.strip_prefix("sqlite://") {
        // A worker of the stopped server may still be finishing its last poll: wait for it.
        Some(path) => diesel::SqliteConnection::establish(path)
            .unwrap()
            .batch_execute(&format!("PRAGMA busy_timeout = 10000; {sql}"))
            .unwrap(),
        None => diesel::PgConnection::establish(url)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
    }
}

/// Runs `monitor --once --audit-map` against the service at `base` with `state` as its memory.
pub async fn audit_map(base: &str, vkey: &str, state: &std::path::Path) -> std::process::Output {
    let (base, vkey, state) = (base.to_string(), vkey.to_string(), state.to_path_buf());
    actix_web::rt::task::spawn_blocking(move || {
        bin()
            .args([
                "monitor",
                "--url",
                &base,
                "--vkey",
                &vkey,
                "--once",
                "--audit-map",
            ])
            .arg("--state")
            .arg(&state)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}
