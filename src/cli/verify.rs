//! The regulator's offline tools: `verify evidence` (a bundle, with the published verifier key)
//! and `monitor` (following a log's checkpoints). Reading files and fetching over HTTP here; the
//! judgement is in `crate::evidence::verify` and `crate::log::monitor`.

use anyhow::{anyhow, bail, Context};
use std::path::Path;
use std::time::Duration;

use crate::evidence::verify::{self, Trusted};
use crate::evidence::DECISION_FORMAT;
use crate::log::audit::MapAuditor;
use crate::log::hash::Hash;
use crate::log::monitor::{Alarm, Monitor, Observation};
use crate::log::note::NoteVerifier;
use crate::log::policy::Policy;
use consent_ledger_sdk::campaign::CAMPAIGN_PROOF_FORMAT;

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))
}

/// A consistency proof from the API's JSON (`{"path": [...]}`) or base64 lines.
fn parse_proof(text: &str) -> anyhow::Result<Vec<Hash>> {
    let lines: Vec<String> = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(json) => json["path"]
            .as_array()
            .context("the JSON has no \"path\"")?
            .iter()
            .map(|h| h.as_str().unwrap_or_default().to_string())
            .collect(),
        Err(_) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    };
    lines
        .iter()
        .map(|l| verify::b64_hash(l).ok_or_else(|| anyhow!("not a base64 hash: {l:?}")))
        .collect()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// GETs `url` (with a bearer token if given): its bytes, up to 64 MiB (a full entry tile).
fn fetch_bytes(agent: &ureq::Agent, url: &str, token: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    request
        .call()
        .with_context(|| url.to_string())?
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .with_context(|| url.to_string())
}

/// GETs `url` (with a bearer token if given) as text.
fn fetch(agent: &ureq::Agent, url: &str, token: Option<&str>) -> anyhow::Result<String> {
    String::from_utf8(fetch_bytes(agent, url, token)?).map_err(|_| anyhow!("{url}: not UTF-8"))
}

fn fetch_consistency(
    agent: &ureq::Agent,
    base: &str,
    token: Option<&str>,
    from: u64,
    to: u64,
) -> anyhow::Result<Vec<Hash>> {
    let base = base.trim_end_matches('/');
    parse_proof(&fetch(
        agent,
        &format!("{base}/v1/log/proof/consistency?from={from}&to={to}"),
        token,
    )?)
}

/// How a trusted checkpoint is brought in, and where a report goes.
pub struct EvidenceOptions<'a> {
    /// A signed checkpoint the regulator trusts.
    pub trusted_checkpoint: Option<&'a Path>,
    /// The consistency proof to it, from a file…
    pub consistency_proof: Option<&'a Path>,
    /// …or fetched from the log at this base URL…
    pub url: Option<&'a str>,
    /// …with this bearer token.
    pub token: Option<&'a str>,
    /// Accept a bundle older than the trusted checkpoint.
    pub allow_older: bool,
    /// Write the printable report here, in this language.
    pub html: Option<(&'a Path, &'a str)>,
    /// A C2SP tlog-policy file: the witnesses' cosignatures the checkpoint needs.
    pub policy: Option<&'a Path>,
    /// The address asked about (normalised here, as the service does).
    pub email: Option<&'a str>,
}

/// `verify evidence`: prints a verdict per item; an error if any fails.
pub fn evidence(file: &Path, vkey: &str, options: EvidenceOptions<'_>) -> anyhow::Result<()> {
    let EvidenceOptions {
        trusted_checkpoint,
        consistency_proof,
        url,
        token,
        allow_older,
        html,
        policy,
        email,
    } = options;
    let policy = policy
        .map(|path| Policy::parse(&read(path)?).map_err(|e| anyhow!("{}: {e}", path.display())))
        .transpose()?;
    let file_bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
    // A decision with its proof (`verify decision`) and a campaign entry's proof (`verify
    // campaign`) carry their bundle as `proof`.
    let doc = serde_json::from_slice::<serde_json::Value>(&file_bytes).ok();
    let wrapper = doc
        .as_ref()
        .and_then(|doc| doc["format"].as_str())
        .filter(|f| [DECISION_FORMAT, CAMPAIGN_PROOF_FORMAT].contains(f))
        .map(str::to_string);
    let bundle = match (&wrapper, &doc) {
        (Some(_), Some(doc)) => serde_json::to_vec(&doc["proof"])?,
        _ => file_bytes.clone(),
    };
    // Freshness: with --url alone, the log's latest checkpoint is the anchor (the bundle must be
    // of the same log, a prefix of what it serves now).
    let fetched = match (trusted_checkpoint, url) {
        (None, Some(url)) => Some(fetch(
            &agent(),
            &format!("{}/checkpoint", url.trim_end_matches('/')),
            token,
        )?),
        _ => None,
    };
    let anchored = trusted_checkpoint.is_some() || fetched.is_some();
    let trusted = trusted_anchor(
        trusted_checkpoint,
        fetched,
        consistency_proof,
        url,
        token,
        vkey,
        &bundle,
        allow_older,
    )?;
    let report = match wrapper.as_deref() {
        Some(DECISION_FORMAT) => {
            verify::verify_decision(&file_bytes, vkey, trusted.as_ref(), policy.as_ref())
        }
        Some(_) => verify::verify_campaign(&file_bytes, vkey, trusted.as_ref(), policy.as_ref()),
        None => verify::verify(&bundle, vkey, trusted.as_ref(), policy.as_ref()),
    };
    let mut report = report;
    if let Some(asked) = email {
        let asked = crate::consent::address::EmailAddress::parse(asked).context("--email")?;
        verify::check_address(&mut report, &bundle, asked.as_str());
    }
    print_items(&report);
    if let Some((path, lang)) = html {
        let anchor = match (trusted_checkpoint.is_some(), anchored) {
            (true, _) => crate::evidence::report::Anchor::Trusted,
            (false, true) => crate::evidence::report::Anchor::Latest,
            (false, false) => crate::evidence::report::Anchor::None,
        };
        write_report(path, lang, &bundle, &report, anchor)?;
    }
    print_verdict(
        &report,
        &bundle,
        anchored,
        trusted_checkpoint.is_some(),
        url,
    )
}

/// The trusted anchor of a bundle, if any: a checkpoint from a file (`trusted_checkpoint`) or
/// fetched from the log, with the consistency proof from the bundle's tree to it (from a file,
/// or fetched from `url`).
#[allow(clippy::too_many_arguments)]
fn trusted_anchor(
    trusted_checkpoint: Option<&Path>,
    fetched: Option<String>,
    consistency_proof: Option<&Path>,
    url: Option<&str>,
    token: Option<&str>,
    vkey: &str,
    bundle: &[u8],
    allow_older: bool,
) -> anyhow::Result<Option<Trusted>> {
    Ok(match (trusted_checkpoint, fetched) {
        (None, None) => None,
        (path, fetched) => {
            let note = match (path, fetched) {
                (Some(path), _) => read(path)?,
                (None, fetched) => fetched.expect("fetched when no file is given"),
            };
            let allow_older = allow_older || path.is_none();
            let consistency = match (consistency_proof, url) {
                (Some(proof), _) => parse_proof(&read(proof)?)?,
                (None, Some(url)) => {
                    // The sizes: the trusted one, and the bundle's (both verified below).
                    let verifier = NoteVerifier::parse(vkey)?;
                    let old = verifier.checkpoint(&note).map_err(anyhow::Error::msg)?;
                    let json: serde_json::Value = serde_json::from_slice(bundle)?;
                    let new = verifier
                        .checkpoint(json["checkpoint"].as_str().unwrap_or_default())
                        .map_err(anyhow::Error::msg)?;
                    let (from, to) = (old.size.min(new.size), old.size.max(new.size));
                    if from == to || from == 0 {
                        Vec::new()
                    } else {
                        fetch_consistency(&agent(), url, token, from, to)?
                    }
                }
                (None, None) => Vec::new(),
            };
            Some(Trusted {
                checkpoint: note,
                consistency,
                allow_older,
            })
        }
    })
}

/// Prints a verdict per item, then the notes.
fn print_items(report: &verify::Report) {
    for item in &report.items {
        let mark = if item.ok { "ok  " } else { "FAIL" };
        if item.detail.is_empty() {
            println!("{mark}  {}", item.what);
        } else {
            println!("{mark}  {} — {}", item.what, item.detail);
        }
    }
    for note in &report.notes {
        println!("note  {note}");
    }
}

/// Writes the printable report of `bundle` in `lang` (`ja` unless `en`) to `path`.
fn write_report(
    path: &Path,
    lang: &str,
    bundle: &[u8],
    report: &verify::Report,
    anchor: crate::evidence::report::Anchor,
) -> anyhow::Result<()> {
    let parsed: crate::evidence::Bundle =
        serde_json::from_slice(bundle).context("no report: the bundle does not parse")?;
    let lang = if lang == "en" {
        crate::evidence::report::Lang::En
    } else {
        crate::evidence::report::Lang::Ja
    };
    std::fs::write(
        path,
        crate::evidence::report::render(&parsed, report, lang, anchor),
    )
    .with_context(|| format!("{}", path.display()))?;
    println!("report: {}", path.display());
    Ok(())
}

/// Prints the verdict line; an error when an item failed.
fn print_verdict(
    report: &verify::Report,
    bundle: &[u8],
    anchored: bool,
    trusted_file: bool,
    url: Option<&str>,
) -> anyhow::Result<()> {
    let failed = report.items.iter().filter(|i| !i.ok).count();
    if report.passed() && anchored {
        println!(
            "verdict: VALID ({} checks passed; consistent with {})",
            report.items.len(),
            if trusted_file {
                "the trusted checkpoint".to_string()
            } else {
                format!("the latest checkpoint of {}", url.unwrap_or_default())
            }
        );
        Ok(())
    } else if report.passed() {
        let size = serde_json::from_slice::<serde_json::Value>(bundle)
            .ok()
            .and_then(|b| {
                let note = b["checkpoint"].as_str()?.to_string();
                crate::log::note::Checkpoint::parse(note.split("\n\n").next()?).ok()
            })
            .map_or(0, |cp| cp.size);
        println!(
            "verdict: VALID as of checkpoint {size}, not anchored to a later one ({} checks \
             passed): give --url (the log's latest checkpoint) or --trusted-checkpoint to \
             check it is the log everyone sees and how recent it is",
            report.items.len()
        );
        Ok(())
    } else {
        println!(
            "verdict: INVALID ({failed} of {} checks failed)",
            report.items.len()
        );
        Err(anyhow!("{failed} check(s) failed"))
    }
}

/// What `verify tenant` is given besides the export.
pub struct TenantOptions<'a> {
    /// A signed checkpoint saved earlier.
    pub trusted_checkpoint: Option<&'a Path>,
    /// The consistency proof from the export's checkpoint to it (or the reverse).
    pub consistency_proof: Option<&'a Path>,
    /// Where to write one row per subject: its address, key and decision per purpose.
    pub csv: Option<&'a Path>,
    /// A C2SP tlog-policy file: the export must carry a checkpoint its quorum cosigned.
    pub policy: Option<&'a Path>,
    /// The tenant asked for: the export must be of exactly it.
    pub tenant: Option<&'a str>,
}

/// The longest line `verify tenant` reads (a subject with a very long history: some 30,000
/// events).
const MAX_LINE: u64 = 64 << 20;

/// Lines `verify tenant` checks at once (on every core), and the most bytes a batch holds.
const BATCH: usize = 2048;
const BATCH_BYTES: usize = 64 << 20;

/// `verify tenant FILE`: checks a whole-tenant export line by line in bounded memory, with a
/// progress line; prints the header's checks, each failing line's and the completeness of the
/// set; an error if any fails.
pub fn tenant(file: &Path, vkey: &str, options: TenantOptions<'_>) -> anyhow::Result<()> {
    use consent_ledger_sdk::evidence::tenant::{Anchors, TenantVerifier};
    use std::io::{BufRead, Read};
    let input = std::fs::File::open(file).with_context(|| format!("{}", file.display()))?;
    let mut input = std::io::BufReader::with_capacity(1 << 20, input);
    let mut line = Vec::new();
    let mut line_no = 1u64;
    // One line, at most MAX_LINE bytes: a file is not trusted to be small.
    let mut read_line = |input: &mut std::io::BufReader<std::fs::File>, line: &mut Vec<u8>| {
        line.clear();
        let n = input.by_ref().take(MAX_LINE).read_until(b'\n', line)?;
        if n as u64 == MAX_LINE && line.last() != Some(&b'\n') {
            bail!("line {line_no} is longer than {MAX_LINE} bytes: not an export");
        }
        line_no += 1;
        Ok(n)
    };
    read_line(&mut input, &mut line)?;
    let policy = options
        .policy
        .map(|path| Policy::parse(&read(path)?).map_err(|e| anyhow!("{}: {e}", path.display())))
        .transpose()?;
    let trusted = match options.trusted_checkpoint {
        None => None,
        Some(path) => Some(Trusted {
            checkpoint: read(path)?,
            consistency: match options.consistency_proof {
                Some(proof) => parse_proof(&read(proof)?)?,
                None => Vec::new(),
            },
            allow_older: false,
        }),
    };
    let anchors = Anchors {
        trusted: trusted.as_ref(),
        policy: policy.as_ref(),
        tenant: options.tenant,
    };
    let mut verifier = match TenantVerifier::new(&line, vkey, anchors) {
        Ok(v) => v,
        Err(report) => {
            print_items(&report);
            println!("verdict: INVALID (the header does not hold: nothing after it is checked)");
            bail!("the export's header does not hold");
        }
    };
    let mut csv = match options.csv {
        Some(path) => {
            let mut csv = csv::WriterBuilder::new()
                .quote_style(csv::QuoteStyle::Always)
                .from_path(path)
                .with_context(|| format!("{}", path.display()))?;
            let mut head = vec!["email".to_string(), "key".into(), "valid".into()];
            head.extend(verifier.purposes().iter().cloned());
            csv.write_record(head.into_iter().map(crate::consent::import::inert))?;
            Some(csv)
        }
        None => None,
    };
    let (mut lines, mut invalid) = (0u64, 0u64);
    // A batch of lines at a time: checked on every core, then linked in order.
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut more = true;
    while more {
        batch.clear();
        let mut bytes = 0;
        while batch.len() < BATCH && bytes < BATCH_BYTES {
            if read_line(&mut input, &mut line)? == 0 {
                more = false;
                break;
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                bytes += line.len();
                batch.push(std::mem::take(&mut line));
            }
        }
        for outcome in verifier.push_all(&batch) {
            lines += 1;
            if !outcome.ok {
                invalid += 1;
            }
            if let Some(csv) = csv.as_mut() {
                let mut row = vec![
                    outcome.email.unwrap_or_default(),
                    outcome.key,
                    outcome.ok.to_string(),
                ];
                row.extend(outcome.decisions.iter().map(|d| d.status.clone()));
                csv.write_record(row.into_iter().map(crate::consent::import::inert))?;
            }
        }
        eprint!("\rverified {lines} subjects · {invalid} invalid");
    }
    eprintln!("\rverified {lines} subjects · {invalid} invalid");
    if let Some(mut csv) = csv {
        csv.flush()?;
        println!("subjects: {}", options.csv.expect("a path").display());
    }
    let verifier_tenant = verifier.tenant().to_string();
    let report = verifier.finish();
    print_items(&report);
    let failed = report.items.iter().filter(|i| !i.ok).count();
    if report.passed() {
        println!(
            "verdict: VALID (tenant {}: {lines} subjects, its every one as of its checkpoint{})",
            verifier_tenant,
            if trusted.is_some() {
                "; consistent with the trusted checkpoint"
            } else {
                ", not anchored to a later one: give --trusted-checkpoint to check it is the \
                 log everyone sees"
            }
        );
        Ok(())
    } else {
        println!("verdict: INVALID ({failed} checks failed)");
        bail!("{failed} check(s) failed")
    }
}

/// How `monitor` runs.
pub struct MonitorOptions<'a> {
    /// Time between checks.
    pub interval: Duration,
    /// Check once and exit.
    pub once: bool,
    /// Bearer token for a log with authenticated reads.
    pub token: Option<&'a str>,
    /// Rebuild the subject map from every leaf and check each map leaf.
    pub audit_map: bool,
}

/// The leaves `start..` of the entry tile holding `start`, fetched over HTTP (at most 256).
fn fetch_leaves(
    agent: &ureq::Agent,
    base: &str,
    token: Option<&str>,
    start: u64,
    end: u64,
) -> anyhow::Result<Vec<Vec<u8>>> {
    use crate::log::tiles::{self, TileKind, TileRef, TILE_WIDTH};
    let index = start / TILE_WIDTH;
    let width = (end - index * TILE_WIDTH).min(TILE_WIDTH) as u16;
    let url = format!(
        "{base}/tile/{}",
        TileRef {
            kind: TileKind::Entries,
            index,
            width,
        }
        .path()
    );
    let mut leaves = tiles::split_entry_bundle(&fetch_bytes(agent, &url, token)?)
        .ok_or_else(|| anyhow!("{url}: a truncated entry"))?;
    if leaves.len() != usize::from(width) {
        bail!("{url}: {} entries, not {width}", leaves.len());
    }
    Ok(leaves.split_off((start - index * TILE_WIDTH) as usize))
}

/// The leaves of the log at `url`, read from its entry tiles (for an auditing witness).
pub fn leaf_source(url: &str) -> crate::log::witness::LeafSource {
    let agent = agent();
    let base = url.trim_end_matches('/').to_string();
    Box::new(move |start, end| {
        fetch_leaves(&agent, &base, None, start, end).map_err(|e| format!("{e:#}"))
    })
}

/// `monitor`: checks the log's checkpoint now and then (once with `once`); on the first alarm,
/// returns an error starting "monitor alarm:" (exit code 2).
pub fn monitor(
    url: &str,
    vkey: &str,
    state: &Path,
    options: MonitorOptions<'_>,
) -> anyhow::Result<()> {
    let MonitorOptions {
        interval,
        once,
        token,
        audit_map,
    } = options;
    let monitor = Monitor::new(vkey, state).map_err(anyhow::Error::msg)?;
    let verifier = NoteVerifier::parse(vkey)?;
    let mut auditor = if audit_map {
        Some(MapAuditor::open(state)?)
    } else {
        None
    };
    let agent = agent();
    let base = url.trim_end_matches('/');
    let mut failures = 0u32;
    loop {
        match fetch(&agent, &format!("{base}/checkpoint"), token) {
            Err(e) if once => bail!("cannot fetch the checkpoint: {e:#}"),
            Err(e) => {
                failures += 1;
                eprintln!("warning: {e:#} ({failures} in a row)");
                // A log that stops serving its checkpoint to a monitor may be hiding a fork.
                if failures >= MAX_FETCH_FAILURES {
                    println!(
                        "ALARM: the log did not serve its checkpoint {failures} times in a row"
                    );
                    bail!("monitor alarm: no checkpoint from {base} {failures} times in a row");
                }
            }
            Ok(note) => {
                failures = 0;
                let judged = monitor.observe(&note, |from, to| {
                    fetch_consistency(&agent, base, token, from, to).map_err(|e| format!("{e:#}"))
                });
                let judged = judged.and_then(|observation| {
                    let Some(auditor) = auditor.as_mut() else {
                        return Ok((observation, None));
                    };
                    let cp = verifier.checkpoint(&note).map_err(Alarm::BadCheckpoint)?;
                    let from = auditor.size();
                    let checked = auditor.advance(&cp, |start, end| {
                        fetch_leaves(&agent, base, token, start, end).map_err(|e| format!("{e:#}"))
                    })?;
                    Ok((observation, Some((from, cp.size, checked))))
                });
                match judged {
                    Ok((observation, audit)) => {
                        match observation {
                            Observation::First(size) => {
                                println!("ok  first checkpoint, size {size}")
                            }
                            Observation::Unchanged(size) => println!("ok  unchanged, size {size}"),
                            Observation::Grew { from, to } => {
                                println!("ok  size {from} → {to}, consistent")
                            }
                        }
                        if let Some((from, to, checked)) = audit {
                            println!(
                                "ok  leaves {from}..{to} audited: {checked} subject map leaf(s) match the leaves before them"
                            );
                        }
                    }
                    Err(Alarm::State(e)) => bail!("the state directory: {e}"),
                    Err(Alarm::Fetch(e)) if !once => eprintln!("warning: {e}"),
                    Err(Alarm::Fetch(e)) => bail!("cannot fetch the leaves: {e}"),
                    Err(alarm) => {
                        println!("ALARM: {alarm}");
                        return Err(anyhow::Error::msg(alarm_message(&alarm)));
                    }
                }
            }
        }
        if once {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

/// Failed fetches in a row after which the monitor alarms.
const MAX_FETCH_FAILURES: u32 = 10;

fn alarm_message(alarm: &Alarm) -> String {
    format!("monitor alarm: {alarm}")
}

/// The bundles named: files as given, and each directory's `*.json` files (sorted).
pub fn bundle_files(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries: Vec<_> = std::fs::read_dir(path)
                .with_context(|| format!("{}", path.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect();
            let mut inside: Vec<_> = entries
                .iter()
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .is_some_and(|x| x.eq_ignore_ascii_case("json"))
                })
                .cloned()
                .collect();
            if entries.len() > inside.len() {
                eprintln!(
                    "{}: skipped {} entries that are not .json files",
                    path.display(),
                    entries.len() - inside.len()
                );
            }
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        bail!("no bundles: the directories hold no .json file");
    }
    Ok(files)
}

/// How a batch is checked and where its summary goes.
pub struct BatchOptions<'a> {
    /// A C2SP tlog-policy file every bundle is held to.
    pub policy: Option<&'a Path>,
    /// The summary as CSV.
    pub csv: Option<&'a Path>,
    /// The summary as an HTML page.
    pub html: Option<&'a Path>,
}

/// One bundle's line of the summary.
#[derive(serde::Serialize)]
struct Checked {
    file: String,
    valid: bool,
    sender: String,
    email: String,
    events: usize,
    checkpoint_size: String,
    /// The checkpoint's origin and root line (to compare bundles of one log).
    #[serde(skip)]
    tree: (String, String),
    failed: Vec<String>,
}

/// Two bundles of one log whose checkpoints have the same size and different roots: the log
/// signed two trees of one size, a split view. Each bundle verifies alone; together they prove
/// the fork, and both fail.
fn flag_forks(rows: &mut [Checked]) {
    let mut seen: std::collections::HashMap<(String, String), (String, usize)> =
        std::collections::HashMap::new();
    let mut forked = Vec::new();
    for (i, r) in rows.iter().enumerate().filter(|(_, r)| r.valid) {
        let key = (r.tree.0.clone(), r.checkpoint_size.clone());
        match seen.get(&key) {
            Some((root, first)) if *root != r.tree.1 => forked.push((*first, i)),
            Some(_) => {}
            None => {
                seen.insert(key, (r.tree.1.clone(), i));
            }
        }
    }
    for (a, b) in forked {
        for (this, other) in [(a, b), (b, a)] {
            let other = rows[other].file.clone();
            let row = &mut rows[this];
            row.valid = false;
            row.failed.push(format!(
                "split view: {other} is of the same log and size with another root"
            ));
        }
    }
}

fn check_one(path: &Path, vkey: &str, policy: Option<&Policy>) -> Checked {
    let bytes = std::fs::read(path).map_err(|e| e.to_string());
    let doc = bytes
        .as_ref()
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
    let wrapper = doc
        .as_ref()
        .and_then(|d| d["format"].as_str())
        .filter(|f| [DECISION_FORMAT, CAMPAIGN_PROOF_FORMAT].contains(f));
    let report = match (&bytes, wrapper) {
        (Err(e), _) => {
            let mut r = verify::Report::default();
            r.items.push(verify::Item {
                what: "file".into(),
                ok: false,
                detail: e.clone(),
            });
            r
        }
        (Ok(b), Some(DECISION_FORMAT)) => verify::verify_decision(b, vkey, None, policy),
        (Ok(b), Some(_)) => verify::verify_campaign(b, vkey, None, policy),
        (Ok(b), None) => verify::verify(b, vkey, None, policy),
    };
    let bundle = match wrapper {
        Some(_) => doc.as_ref().map(|d| &d["proof"]),
        None => doc.as_ref(),
    };
    let s = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).unwrap_or("").to_string();
    Checked {
        file: path.display().to_string(),
        valid: report.passed(),
        sender: s(bundle.map(|b| &b["tenant"]["legal_name"])),
        email: s(bundle.map(|b| &b["subject"]["email"])),
        events: bundle
            .and_then(|b| b["events"].as_array())
            .map_or(0, Vec::len),
        checkpoint_size: s(bundle.map(|b| &b["checkpoint"]))
            .lines()
            .nth(1)
            .unwrap_or("")
            .to_string(),
        tree: {
            let note = s(bundle.map(|b| &b["checkpoint"]));
            let mut lines = note.lines();
            let origin = lines.next().unwrap_or("").to_string();
            (origin, lines.nth(1).unwrap_or("").to_string())
        },
        failed: report.failed().into_iter().map(str::to_string).collect(),
    }
}

/// `verify evidence FILE… | DIR`: checks every bundle (on every core), prints one line per
/// bundle and a progress line, writes the summary; an error if any is invalid.
pub fn batch(
    files: &[std::path::PathBuf],
    vkey: &str,
    options: BatchOptions<'_>,
) -> anyhow::Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let policy = options
        .policy
        .map(|path| Policy::parse(&read(path)?).map_err(|e| anyhow!("{}: {e}", path.display())))
        .transpose()?;
    let next = AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(files.len()));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (done, invalid) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let checked = check_one(path, vkey, policy.as_ref());
                if !checked.valid {
                    invalid.fetch_add(1, Ordering::Relaxed);
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                // The progress line, on standard error (overwritten in place).
                eprint!(
                    "\rverified {n}/{} · {} invalid",
                    files.len(),
                    invalid.load(Ordering::Relaxed)
                );
                results.lock().expect("no worker panics").push((i, checked));
            });
        }
    });
    eprintln!();
    let mut results = results.into_inner().expect("no worker panics");
    results.sort_by_key(|(i, _)| *i);
    let mut rows: Vec<Checked> = results.into_iter().map(|(_, c)| c).collect();
    flag_forks(&mut rows);
    let mut out = std::io::stdout().lock();
    for r in &rows {
        // As alone without --trusted-checkpoint or --url: valid as of its own checkpoint.
        let verdict = match r.valid {
            true => format!(
                "VALID as of checkpoint {}, not anchored:",
                r.checkpoint_size
            ),
            false => "INVALID".to_string(),
        };
        let failed = match r.failed.is_empty() {
            true => String::new(),
            false => format!(" — {}", r.failed.join("; ")),
        };
        writeln!(out, "{verdict} {} {}{failed}", r.file, r.email)?;
    }
    let bad = rows.iter().filter(|r| !r.valid).count();
    writeln!(
        out,
        "summary: {} bundles, {} valid, {bad} invalid",
        rows.len(),
        rows.len() - bad
    )?;
    if let Some(path) = options.csv {
        std::fs::write(path, summary_csv(&rows)?).with_context(|| format!("{}", path.display()))?;
        writeln!(out, "summary: {}", path.display())?;
    }
    if let Some(path) = options.html {
        let page = crate::templates::render(
            "verify_summary.html",
            minijinja::context! {
                rows => minijinja::value::Serde(&rows),
                total => rows.len(),
                invalid => bad,
                generated => crate::rfc3339(crate::now_millis()),
            },
        );
        std::fs::write(path, page).with_context(|| format!("{}", path.display()))?;
        writeln!(out, "summary: {}", path.display())?;
    }
    if bad > 0 {
        bail!("{bad} of {} bundles are invalid", rows.len());
    }
    Ok(())
}

/// The summary as CSV: every cell quoted and inert against spreadsheet formulas.
fn summary_csv(rows: &[Checked]) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    writer.write_record([
        "file",
        "verdict",
        "sender",
        "email",
        "events",
        "checkpoint_size",
        "failed",
    ])?;
    for r in rows {
        let cells = [
            r.file.clone(),
            if r.valid { "VALID" } else { "INVALID" }.to_string(),
            r.sender.clone(),
            r.email.clone(),
            r.events.to_string(),
            r.checkpoint_size.clone(),
            r.failed.join("; "),
        ];
        writer.write_record(cells.map(crate::consent::import::inert))?;
    }
    Ok(writer.into_inner()?)
}
