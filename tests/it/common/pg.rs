//! A throw-away PostgreSQL cluster for the test binary: `initdb` into a temp dir, `pg_ctl start` on
//! a free loopback port, one fresh database per test. A watchdog stops the cluster and removes its
//! files when the test process exits. The PostgreSQL variants are `#[ignore]`d (cargo reports them
//! as ignored, never as passed) and run with `--include-ignored`, as CI does; then a missing
//! PostgreSQL is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use diesel::{Connection, PgConnection, RunQueryDsl};

struct Cluster {
    port: u16,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

fn find_bin(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        dirs.extend(versions.into_iter().rev());
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root (initdb refuses root).
fn pg_command(bin: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start() -> Cluster {
    let (Some(initdb), Some(pg_ctl)) = (find_bin("initdb"), find_bin("pg_ctl")) else {
        panic!(
            "PostgreSQL's initdb/pg_ctl were not found: install postgresql, or run `cargo test` \
             without --include-ignored to leave the PostgreSQL variants out"
        );
    };
    let root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("consent-ledger-pg-")
        .tempdir()
        .unwrap()
        .keep();
    if root {
        let ok = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown of the cluster directory failed");
    }
    let data = dir.join("data");
    let out = pg_command(&initdb, root)
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
        .output()
        .expect("initdb runs");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    // Tests run with fsync off (they kill our process, not the server's); benchmarks set
    // CONSENT_LEDGER_PG_FSYNC=on to measure durable commits.
    let fsync = std::env::var("CONSENT_LEDGER_PG_FSYNC").unwrap_or_else(|_| "off".into());
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={fsync} -c max_connections=300",
        dir.display()
    );
    let out = pg_command(&pg_ctl, root)
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("server.log"))
        .args(["-o", &options, "-w", "-t", "60", "start"])
        .output()
        .expect("pg_ctl runs");
    assert!(
        out.status.success(),
        "pg_ctl start failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Stop the cluster and remove it once this test process is gone.
    let runas = if root { "runuser -u postgres -- " } else { "" };
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runas}{pg_ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        pg_ctl = pg_ctl.display(),
        data = data.display(),
        dir = dir.display(),
    );
    // `setsid -f` forks the watchdog into its own session and returns at once.
    let status = Command::new("setsid")
        .args(["-f", "sh", "-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("watchdog starts");
    assert!(status.success(), "the cluster watchdog did not start");
    Cluster { port }
}

/// A fresh, empty database on the shared cluster (started on first use).
pub fn fresh_database() -> String {
    let cluster = CLUSTER.get_or_init(start);
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let mut conn = PgConnection::establish(&admin).expect("connect to the test cluster");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create database");
    format!("postgres://postgres@127.0.0.1:{}/{name}", cluster.port)
}
