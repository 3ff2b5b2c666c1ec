//! Log benchmark: prints a table of durable appends/s through the sequencer (SQLite and
//! PostgreSQL), acknowledgement latency, acknowledgement-to-checkpoint latency, inclusion and
//! consistency proofs/s at 1M and 10M leaves, peak RSS, and the subject map at 1M addresses
//! (`-- --map-only` for that alone).
//!
//! `cargo bench --bench log` (all of it), or `cargo bench --bench log -- --leaves 1000000 --skip-pg`;
//! `-- --proofs-only FILE` grows a SQLite log kept in FILE to `--leaves` and measures its proofs.

#[allow(dead_code)]
#[path = "../tests/it/common/pg.rs"]
mod pg;

use std::time::{Duration, Instant};

use consent_ledger::log::{Leaf, Log, LogSettings};
use consent_ledger::store::Store;

fn settings() -> LogSettings {
    LogSettings {
        origin: Some("bench.example/log".into()),
        new_origin: Some("bench.example/log".into()),
        checkpoint_interval: Duration::from_millis(100),
        max_batch: 4096,
        witnesses: Vec::new(),
        clock_offset_ms: 0,
        pre_labels: false,
    }
}

fn open(url: &str) -> Log {
    let store = Store::connect(url, 8).expect("connect");
    store.migrate().expect("migrate");
    Log::open(store, settings()).expect("open log")
}

fn leaf(tag: &str, n: u64) -> Leaf {
    Leaf::from_json(&serde_json::json!({"type": "bench", "tag": tag, "n": n})).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `clients` concurrent appenders, one leaf per append, `total` leaves: appends/s, ack latency,
/// and the delay from each ack to the first checkpoint covering it.
fn durable_appends(
    rt: &tokio::runtime::Runtime,
    log: &Log,
    clients: usize,
    total: u64,
    rows: &mut Vec<(String, String)>,
    name: &str,
) {
    // What a client sees: a thread polls the stored latest checkpoint every millisecond.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen: Vec<(u64, Instant)> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let size = log.latest_checkpoint().expect("checkpoint").size;
                if seen.last().is_none_or(|(s, _)| *s < size) {
                    seen.push((size, Instant::now()));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            seen
        })
    };
    let (acks, elapsed) = rt.block_on(async {
        let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (log, next, name) = (log.clone(), next.clone(), name.to_string());
            tasks.spawn(async move {
                let mut acks = Vec::new();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= total {
                        return acks;
                    }
                    let sent = Instant::now();
                    let range = log.append(vec![leaf(&name, n)]).await.expect("append");
                    acks.push((range.start, sent, Instant::now()));
                }
            });
        }
        let start = Instant::now();
        let mut acks = Vec::new();
        while let Some(a) = tasks.join_next().await {
            acks.extend(a.unwrap());
        }
        (acks, start.elapsed())
    });
    let size = acks.iter().map(|a| a.0).max().unwrap() + 1;
    while log.latest_checkpoint().unwrap().size < size {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(5));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let published = poller.join().unwrap();
    let mut latency: Vec<Duration> = acks.iter().map(|(_, sent, acked)| *acked - *sent).collect();
    latency.sort();
    let mut to_checkpoint: Vec<Duration> = acks
        .iter()
        .filter_map(|(index, _, acked)| {
            published
                .iter()
                .find(|(size, _)| *size > *index)
                .map(|(_, at)| at.saturating_duration_since(*acked))
        })
        .collect();
    to_checkpoint.sort();
    rows.push((
        format!("{name}: durable appends/s ({clients} clients, 1 leaf each)"),
        format!("{:.0}", total as f64 / elapsed.as_secs_f64()),
    ));
    rows.push((
        format!("{name}: ack latency p50 / p99"),
        format!(
            "{} / {}",
            ms(percentile(&latency, 0.5)),
            ms(percentile(&latency, 0.99))
        ),
    ));
    if !to_checkpoint.is_empty() {
        rows.push((
            format!("{name}: ack -> covering checkpoint p50 / p99"),
            format!(
                "{} / {}",
                ms(percentile(&to_checkpoint, 0.5)),
                ms(percentile(&to_checkpoint, 0.99))
            ),
        ));
    }
}

/// Appends in requests of 1,000 leaves, 8 in flight, until the log holds `target` leaves.
fn grow(rt: &tokio::runtime::Runtime, log: &Log, target: u64) -> f64 {
    let start_size = log.latest_checkpoint().unwrap().size;
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        let mut n = start_size;
        let mut last_report = Instant::now();
        while n < target {
            while tasks.len() < 8 && n < target {
                let count = 1000.min(target - n);
                let leaves: Vec<Leaf> = (n..n + count).map(|i| leaf("grow", i)).collect();
                let log = log.clone();
                tasks.spawn(async move { log.append(leaves).await.expect("append") });
                n += count;
            }
            tasks.join_next().await.unwrap().unwrap();
            if last_report.elapsed() > Duration::from_secs(10) {
                eprintln!(
                    "  … {n} leaves ({:.0}/s)",
                    (n - start_size) as f64 / started.elapsed().as_secs_f64()
                );
                last_report = Instant::now();
            }
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    });
    (target - start_size) as f64 / started.elapsed().as_secs_f64()
}

fn proofs(log: &Log, rows: &mut Vec<(String, String)>, label: &str) {
    // Wait until a checkpoint covers the whole tree.
    let mut size = log.latest_checkpoint().unwrap().size;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        size = log.latest_checkpoint().unwrap().size;
    }
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut measure = |kind: &str, f: &mut dyn FnMut(u64) -> usize| {
        let started = Instant::now();
        let mut done = 0u64;
        while started.elapsed() < Duration::from_secs(3) {
            f(rand());
            done += 1;
        }
        let rate = done as f64 / started.elapsed().as_secs_f64();
        rows.push((
            format!("{kind} proofs/s at {label} leaves (1 thread, SQLite)"),
            format!("{rate:.0}"),
        ));
    };
    // The first pass starts with the tile cache empty (as after a restart); the second finds
    // what the first kept.
    for kind in ["inclusion (cache cold at start)", "inclusion"] {
        measure(kind, &mut |r| {
            log.inclusion_proof(r % size, size).expect("proof").len()
        });
    }
    measure("consistency", &mut |r| {
        log.consistency_proof(1 + r % (size - 1), size)
            .expect("proof")
            .len()
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let big: u64 = value("--leaves").map_or(10_000_000, |v| v.parse().expect("--leaves N"));
    let skip_pg = args.iter().any(|a| a == "--skip-pg");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<(String, String)> = Vec::new();

    // `--proofs-only FILE`: grow the SQLite log in FILE to `--leaves` (kept between runs, so
    // a 10M-leaf log is built once) and measure only its proofs.
    if let Some(file) = value("--proofs-only") {
        let log = open(&format!("sqlite://{file}"));
        let size = log.latest_checkpoint().map_or(0, |c| c.size);
        if size < big {
            eprintln!("growing {file} from {size} to {big} leaves …");
            grow(&rt, &log, big);
        }
        proofs(&log, &mut rows, &format!("{:.0}M", big as f64 / 1e6));
        log.shutdown();
        print_rows(rows);
        return;
    }

    subject_map(&mut rows);
    if args.iter().any(|a| a == "--map-only") {
        print_rows(rows);
        return;
    }

    eprintln!("durable appends, SQLite …");
    let log = open(&format!(
        "sqlite://{}",
        dir.path().join("appends.db").display()
    ));
    durable_appends(&rt, &log, 256, 200_000, &mut rows, "SQLite");
    log.shutdown();

    if !skip_pg {
        eprintln!("durable appends, PostgreSQL (fsync on) …");
        std::env::set_var("CONSENT_LEDGER_PG_FSYNC", "on");
        let log = open(&pg::fresh_database());
        durable_appends(&rt, &log, 256, 100_000, &mut rows, "PostgreSQL");
        log.shutdown();
    }

    eprintln!("growing a SQLite log to 1M leaves …");
    let log = open(&format!("sqlite://{}", dir.path().join("big.db").display()));
    let rate = grow(&rt, &log, 1_000_000.min(big));
    rows.push((
        "SQLite: bulk appends/s to 1M (1,000-leaf requests)".into(),
        format!("{rate:.0}"),
    ));
    proofs(&log, &mut rows, "1M");
    if big > 1_000_000 {
        eprintln!("growing to {big} leaves …");
        let rate = grow(&rt, &log, big);
        rows.push((
            format!("SQLite: bulk appends/s 1M -> {big}"),
            format!("{rate:.0}"),
        ));
        proofs(&log, &mut rows, &format!("{}M", big / 1_000_000));
    }
    log.shutdown();
    rows.push((
        format!("peak RSS of this process (log of {big} leaves)"),
        format!("{:.0} MiB", peak_rss_mib()),
    ));

    print_rows(rows);
}

fn print_rows(rows: Vec<(String, String)>) {
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("\n{:width$}  value", "measure");
    println!("{}  {}", "-".repeat(width), "-".repeat(24));
    for (k, v) in rows {
        println!("{k:width$}  {v}");
    }
}

/// The subject map at a million addresses: rebuilding it (what a start costs), its memory, one
/// checkpoint's update (1,200 changed addresses: 12,000 events/s, a checkpoint every 100 ms) and
/// a proof.
fn subject_map(rows: &mut Vec<(String, String)>) {
    use consent_ledger::log::map::SubjectMap;
    use sha2::{Digest, Sha256};
    eprintln!("subject map of 1M addresses …");
    let key = |i: u64| -> [u8; 32] { Sha256::digest(i.to_be_bytes()).into() };
    let before = current_rss_mib();
    let started = Instant::now();
    let mut map = SubjectMap::from_heads(1_000_000, (0..1_000_000u64).map(|i| (key(i), i)));
    rows.push((
        "subject map: rebuild of 1M addresses".into(),
        format!("{:.0} ms", started.elapsed().as_secs_f64() * 1e3),
    ));
    rows.push((
        "subject map: memory for 1M addresses".into(),
        format!("{:.0} MiB", current_rss_mib() - before),
    ));
    let rounds = 50u64;
    let started = Instant::now();
    for round in 0..rounds {
        let base = 1_000_000 + round * 1_200;
        let next = map.stage(
            base + 1_200,
            (base..base + 1_200).map(|i| (key(i % 1_500_000), i)),
        );
        map.apply(next);
    }
    rows.push((
        "subject map: one checkpoint's update (1,200 addresses)".into(),
        format!(
            "{:.2} ms",
            started.elapsed().as_secs_f64() * 1e3 / rounds as f64
        ),
    ));
    let started = Instant::now();
    for i in 0..10_000u64 {
        std::hint::black_box(map.prove(&key(i)));
    }
    rows.push((
        "subject map: proofs/s".into(),
        format!("{:.0}", 10_000.0 / started.elapsed().as_secs_f64()),
    ));
}

/// Resident memory now, MiB (Linux).
fn current_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
