//! kill -9 during heavy appends, repeatedly, with two writer processes sharing the database:
//! every acknowledged leaf is present at its acknowledged index, no index was acknowledged twice,
//! every checkpoint ever published is consistent with the final tree, and appending resumes.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use consent_ledger::api::AppState;
use consent_ledger::log::LogError;
use consent_ledger::store::Store;

use crate::common::reference::{self as r, Hash};
use crate::common::{append_leaves, tree_covering, TestDb};
use crate::on_both_backends;

on_both_backends!(kill_minus_9_loses_no_acknowledged_leaf_and_never_forks);

const ROUNDS: u32 = 4;
const WRITERS: u32 = 2;

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// A small xorshift generator; the seed is printed so a failure can be replayed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

async fn kill_minus_9_loses_no_acknowledged_leaf_and_never_forks(db: TestDb) {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let acks = Arc::new(AtomicU64::new(0));
    for round in 0..ROUNDS {
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let mut child = Command::new(env!("CARGO_BIN_EXE_consent-ledger"))
                .args([
                    "--database-url",
                    &db.url,
                    "--origin",
                    "test.example/log",
                    "--checkpoint-interval-ms",
                    "20",
                ])
                .args([
                    "append-stress",
                    "--count",
                    "1000000000",
                    "--concurrency",
                    "32",
                    "--tag",
                    &format!("r{round}w{w}"),
                ])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("the binary starts");
            let mut stdout = child.stdout.take().unwrap();
            let lines = acks.clone();
            let reader = std::thread::spawn(move || {
                // Everything read, and a count of the whole lines (acknowledgements) so far.
                let mut out = String::new();
                let mut buf = [0u8; 8192];
                while let Ok(n) = stdout.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let chunk = String::from_utf8_lossy(&buf[..n]);
                    lines.fetch_add(chunk.matches('\n').count() as u64, Ordering::Relaxed);
                    out.push_str(&chunk);
                }
                out
            });
            writers.push((child, reader));
        }
        // Kill after a number of acknowledgements, not after a time: the same test on a busy
        // machine and on an idle one.
        let target = acks.load(Ordering::Relaxed) + 300 + next(&mut seed) % 1500;
        while acks.load(Ordering::Relaxed) < target {
            if writers
                .iter_mut()
                .any(|(child, _)| child.try_wait().ok().flatten().is_some())
            {
                break; // a writer died by itself: the assertions below will say so
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        for (child, _) in writers.iter_mut() {
            child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        }
        let mut this_round = 0;
        for (mut child, reader) in writers {
            child.wait().unwrap();
            let out = reader.join().unwrap();
            // A line cut by the kill is not an acknowledgement we can read; only whole lines count.
            let complete = match out.rfind('\n') {
                Some(end) => &out[..end],
                None => "",
            };
            for line in complete.lines() {
                let (index, hash) = line.split_once(' ').expect("'<index> <hash>'");
                let index: u64 = index.parse().unwrap();
                if let Some(previous) = acked.insert(index, hash.to_string()) {
                    panic!("index {index} acknowledged twice ({previous} and {hash}): a fork");
                }
                this_round += 1;
            }
        }
        eprintln!("round {round}: killed after {target} acknowledgements in all, {this_round} read this round");
    }
    assert!(
        acked.len() > 1000,
        "the writers acknowledged too little to test anything: {}",
        acked.len()
    );

    // Every acknowledged leaf is at its index; the stored root is the root of the stored leaves.
    let store = Store::connect(&db.url, 4).unwrap();
    let (size, root) = store
        .read(|repo| Ok::<_, LogError>(repo.log_state()?))
        .map(|s| (s.tree_size.get(), s.root_hash))
        .unwrap();
    let mut hashes: Vec<Hash> = Vec::new();
    while (hashes.len() as u64) < size {
        let start = hashes.len() as u64;
        let chunk = store
            .read(|repo| Ok::<_, LogError>(repo.leaf_data(start, (start + 50_000).min(size))?))
            .unwrap();
        assert!(!chunk.is_empty(), "leaves missing from {start}");
        hashes.extend(chunk.iter().map(|d| r::leaf_hash(d)));
    }
    for (index, hash) in &acked {
        assert!(
            (*index as usize) < hashes.len(),
            "acknowledged index {index} lost (size {size})"
        );
        assert_eq!(
            &hex(&hashes[*index as usize]),
            hash,
            "leaf {index} differs from the acknowledged one"
        );
    }
    assert_eq!(root, r::mth(&hashes).to_vec(), "stored root");

    // Appending resumes, and every checkpoint ever published is consistent with the final tree.
    let state = AppState::open(&db.config()).expect("reopens after the crashes");
    let more = append_leaves(&state.log, "after", 10, 5).await;
    let (last, leaves) = tree_covering(&state.log, hashes.len() as u64, &more).await;
    let all: Vec<Hash> = leaves.iter().map(|l| r::leaf_hash(l)).collect();
    assert_eq!(
        all[..hashes.len()],
        hashes[..],
        "the crashed tree is a prefix"
    );
    assert_eq!(last.root, r::mth(&all));
    let vkey = state.log.verifier_key();
    let mut history = Vec::new();
    let mut after = None;
    loop {
        let page = state.log.checkpoints(after, 1000).unwrap();
        let Some(tail) = page.last() else { break };
        after = Some(tail.size);
        history.extend(page);
    }
    let last = r::verify_checkpoint(&history.last().unwrap().note, &vkey).unwrap();
    for cp in history.iter().filter(|c| c.size > 0) {
        let v = r::verify_checkpoint(&cp.note, &vkey).expect("signature");
        let proof = state.log.consistency_proof(v.size, last.size).unwrap();
        assert!(
            r::consistent(v.size, last.size, &v.root, &last.root, &proof),
            "checkpoint {} forks",
            v.size
        );
    }
    eprintln!(
        "{} leaves, {} acknowledged by killed writers, {} checkpoints: all consistent",
        hashes.len(),
        acked.len(),
        history.len()
    );
    state.log.shutdown();
}
