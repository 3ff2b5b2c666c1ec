//! The log's side of C2SP `tlog-witness`: a thread that offers each new checkpoint to the
//! configured witnesses (`POST <url>/add-checkpoint` with `old <size>`, the consistency proof
//! from that size, and the signed checkpoint), checks the cosignature lines they answer with,
//! and stores them; the log serves checkpoints with them appended. Witnesses are asked about the
//! latest checkpoint only (a busy log publishes ten a second): a bundle proves its own checkpoint
//! consistent with a later cosigned one. Failures are logged and retried with back-off; a
//! witness that refuses a checkpoint (422: inconsistent, a fork, a failed audit) is logged as an
//! error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::{engine::general_purpose::STANDARD as B64, Engine};

use super::cosign::CosignatureVerifier;
use super::{latest_checkpoint, proof, tile_nodes, LogError};
use crate::store::{LeafIndex, Repo, Store};

/// How often the thread looks for a new checkpoint.
const POLL: Duration = Duration::from_millis(200);

/// A witness the log asks for cosignatures: its key and its submission prefix.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct WitnessEndpoint {
    /// The witness's verifier key (cosignature/v1).
    pub key: CosignatureVerifier,
    /// The submission prefix, e.g. `https://witness.example.jp/w1`.
    pub url: String,
}

impl std::str::FromStr for WitnessEndpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }
}

impl TryFrom<String> for WitnessEndpoint {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl WitnessEndpoint {
    /// Parses `<vkey> <submission prefix URL>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (vkey, url) = text
            .trim()
            .split_once(' ')
            .ok_or("a witness is written '<vkey> <url>'")?;
        let key = CosignatureVerifier::parse(vkey).map_err(|e| e.to_string())?;
        let url = url.trim().trim_end_matches('/').to_string();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("the witness URL {url:?} is not http(s)"));
        }
        Ok(Self { key, url })
    }
}

/// The running thread; stops when dropped.
pub(super) struct Cosigning {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Cosigning {
    /// Starts asking `witnesses` to cosign the checkpoints in `store`.
    pub fn start(store: Store, witnesses: Vec<WitnessEndpoint>) -> Result<Self, LogError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("log-cosigning".into())
            .spawn(move || run(&store, &witnesses, &flag))
            .map_err(|e| LogError::Spawn("cosigning", e))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Cosigning {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One witness's progress as the log sees it.
struct Progress {
    /// The size the witness last cosigned (the `old` to send).
    size: u64,
    /// Not before this instant after a failure.
    retry_at: Instant,
    failures: u32,
}

fn run(store: &Store, witnesses: &[WitnessEndpoint], stop: &AtomicBool) {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut progress: Vec<Progress> = witnesses
        .iter()
        .map(|w| Progress {
            size: store
                .read(|r| Ok::<_, LogError>(r.latest_cosigned(&w.key.label())?))
                .ok()
                .flatten()
                .map_or(0, LeafIndex::get),
            retry_at: Instant::now(),
            failures: 0,
        })
        .collect();
    let mut last_pass = false;
    while !last_pass {
        // Asked to stop: one last pass, so the final checkpoint (published just before) is
        // offered too; a witness in back-off is left alone (each request is bounded anyway).
        last_pass = stop.load(Ordering::Relaxed);
        if !last_pass {
            std::thread::sleep(POLL);
        }
        let Ok(latest) = store.read(latest_checkpoint) else {
            continue;
        };
        if latest.size == 0 {
            continue;
        }
        for (witness, p) in witnesses.iter().zip(&mut progress) {
            if p.size >= latest.size || Instant::now() < p.retry_at {
                continue;
            }
            // A 409 tells the size the witness holds; one retry with it.
            for _ in 0..2 {
                match offer(store, &agent, witness, p.size, &latest) {
                    Ok(Offer::Cosigned) => {
                        p.size = latest.size;
                        p.failures = 0;
                    }
                    Ok(Offer::WitnessHolds(size)) if size <= latest.size && size != p.size => {
                        p.size = size;
                        continue;
                    }
                    Ok(Offer::WitnessHolds(size)) => {
                        tracing::error!(
                            witness = witness.key.name(),
                            size,
                            "the witness holds a checkpoint this log cannot extend: a fork, or another log under this origin"
                        );
                        back_off(p);
                    }
                    Err(class) => {
                        tracing::warn!(
                            witness = witness.key.name(),
                            error = class,
                            "cosignature not obtained"
                        );
                        back_off(p);
                    }
                }
                break;
            }
        }
    }
}

fn back_off(p: &mut Progress) {
    p.failures += 1;
    p.retry_at = Instant::now() + Duration::from_secs(1 << p.failures.min(6));
}

enum Offer {
    Cosigned,
    WitnessHolds(u64),
}

/// Offers `latest` to a witness that holds `old`.
fn offer(
    store: &Store,
    agent: &ureq::Agent,
    witness: &WitnessEndpoint,
    old: u64,
    latest: &super::SignedCheckpoint,
) -> Result<Offer, &'static str> {
    let proof = if old == 0 || old == latest.size {
        Vec::new()
    } else {
        store
            .read(|r: &mut Repo<'_>| proof::consistency_proof(&mut tile_nodes(r), old, latest.size))
            .map_err(|_| "no consistency proof from the witness's size")?
    };
    let mut body = format!("old {old}\n");
    for h in &proof {
        body.push_str(&B64.encode(h));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(&latest.note);
    let mut response = agent
        .post(&format!("{}/add-checkpoint", witness.url))
        .content_type("text/plain; charset=utf-8")
        .send(body.as_bytes())
        .map_err(|_| "the witness could not be reached")?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    match status {
        200 => {
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| {
                    witness
                        .key
                        .cosigned_at(&format!("{}{l}\n", latest.note))
                        .is_some()
                })
                .collect();
            let line = lines
                .first()
                .ok_or("the witness's answer holds no valid cosignature")?;
            store
                .write(|r: &mut Repo<'_>| {
                    Ok::<_, LogError>(r.put_cosignature(
                        latest.size,
                        &witness.key.label(),
                        &format!("{line}\n"),
                        crate::now_millis(),
                    )?)
                })
                .map_err(|_| "the cosignature could not be stored")?;
            Ok(Offer::Cosigned)
        }
        409 => match text.trim().parse::<u64>() {
            Ok(size) => Ok(Offer::WitnessHolds(size)),
            Err(_) => Err("the witness answered 409 without its size"),
        },
        404 => Err("the witness does not follow this log (404)"),
        403 => Err("the witness does not accept this log's signature (403)"),
        422 => Err("the witness refused the checkpoint (422): an inconsistent proof, a fork, or its audit failed — see its log"),
        400 => Err("the witness found the request malformed (400)"),
        _ => Err("the witness failed (unexpected status)"),
    }
}
