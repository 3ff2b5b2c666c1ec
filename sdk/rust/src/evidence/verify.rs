//! Offline verification of an evidence bundle, with nothing but the log's verifier key (and,
//! if the regulator has one, a checkpoint it already trusts with a consistency proof to it).
//! Pure: no database, no network, no clock — shared by the CLI (`verify evidence`) and the SDKs.
//!
//! Checked, each as its own item of the [`Report`]: the checkpoint's signature and origin; for
//! every leaf its hash, its inclusion proof, and its `tlog-proof@v1` text; that every event leaf
//! belongs to the tenant and names the opened address (its VRF label, checked by its proof under
//! the log's VRF key, which the log's one `log_parameters` leaf states; or, for a history begun
//! before that leaf, the `SHA-256` commitment recomputed from address and salt); the per-address
//! chain (`prev` links each event to the one before, the
//! first to none); every template's content against its hash and its id; that the decisions
//! follow from the events (replayed by the consent rules, [`crate::consent`]); completeness (the checkpoint's subject
//! map names the bundle's last event as the subject's latest); and consistency with a trusted
//! checkpoint.

use std::collections::HashMap;

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Bundle, CampaignProof, PurposeDecision, DECISION_FORMAT, FORMAT};
use crate::campaign::{CampaignLeaf, Entry, CAMPAIGN_PROOF_FORMAT};
use crate::consent::{
    self, CollectionPointRetiredLeaf, ConsentLeaf, ErasureLeaf, EventKind, LegalHoldLeaf,
    RelabelLeaf, SubjectState,
};
use crate::hash::{leaf_hash, Hash};
use crate::hex;
use crate::label::{self, LogParameters};
use crate::map;
use crate::note::{Checkpoint, NoteVerifier};
use crate::policy::Policy;
use crate::proof::{verify_consistency, verify_inclusion};

/// The first line of a C2SP `tlog-proof@v1`.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// The C2SP `tlog-proof@v1` text of an inclusion proof: header, `index N`, the path (one base64
/// hash a line), a blank line, the signed checkpoint.
pub fn tlog_proof(index: u64, path: &[Hash], checkpoint_note: &str) -> String {
    let mut text = format!("{TLOG_PROOF_HEADER}\nindex {index}\n");
    for h in path {
        text.push_str(&B64.encode(h));
        text.push('\n');
    }
    text.push('\n');
    text.push_str(checkpoint_note);
    text
}

/// A parsed `tlog-proof@v1`: index, path, signed checkpoint (and opaque extra data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Leaf index.
    pub index: u64,
    /// Inclusion path.
    pub path: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// The `extra` data, if any.
    pub extra: Option<Vec<u8>>,
}

/// Parses `tlog-proof@v1` text.
pub fn parse_tlog_proof(text: &str) -> Result<TlogProof, String> {
    let (head, checkpoint) = text
        .split_once("\n\n")
        .ok_or("no blank line before the checkpoint")?;
    let mut lines = head.split('\n');
    if lines.next() != Some(TLOG_PROOF_HEADER) {
        return Err(format!("the first line is not {TLOG_PROOF_HEADER}"));
    }
    let mut line = lines.next().ok_or("no index line")?;
    let mut extra = None;
    if let Some(data) = line.strip_prefix("extra ") {
        extra = Some(B64.decode(data).map_err(|_| "extra is not base64")?);
        line = lines.next().ok_or("no index line")?;
    }
    let index = line
        .strip_prefix("index ")
        .and_then(crate::parse_decimal)
        .ok_or("no valid index line (a decimal number, no leading zeroes)")?;
    let path = lines
        .map(|l| {
            B64.decode(l)
                .ok()
                .and_then(|h| Hash::try_from(h).ok())
                .ok_or_else(|| format!("not a base64 hash: {l:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if path.len() > 63 {
        return Err("more than 63 hashes: no tree is that deep".into());
    }
    Ok(TlogProof {
        index,
        path,
        checkpoint: checkpoint.to_string(),
        extra,
    })
}

/// One verified claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What was checked.
    pub what: String,
    /// Whether it holds.
    pub ok: bool,
    /// Why not, or a note.
    pub detail: String,
}

/// The verdict on a bundle, item by item.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every check, in order.
    pub items: Vec<Item>,
    /// What the checks do not prove, for the reader.
    pub notes: Vec<String>,
    /// The witnesses' bounds on each event's recording time (with a policy), by leaf index:
    /// what a report prints as "witnessed no later than" and "not before".
    pub bounds: std::collections::BTreeMap<u64, TimeBound>,
}

/// When the witnesses bound an event's recording: the cosignature times (Unix milliseconds)
/// and the witness of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeBound {
    /// Recorded no later than this: the cosignature of the earliest witnessed tree holding it.
    pub no_later_than: Option<(i64, String)>,
    /// Recorded after this: the cosignature of the latest witnessed tree without it.
    pub not_before: Option<(i64, String)>,
}

impl Report {
    pub(crate) fn check(
        &mut self,
        what: impl Into<String>,
        ok: bool,
        detail: impl Into<String>,
    ) -> bool {
        self.items.push(Item {
            what: what.into(),
            ok,
            detail: detail.into(),
        });
        ok
    }

    /// True when every item holds (and there is at least one).
    pub fn passed(&self) -> bool {
        !self.items.is_empty() && self.items.iter().all(|i| i.ok)
    }

    /// What failed, by name, in order.
    pub fn failed(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter(|i| !i.ok)
            .map(|i| i.what.as_str())
            .collect()
    }
}

/// A checkpoint the regulator already trusts, and the consistency proof from it to the bundle's.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// The trusted signed checkpoint note.
    pub checkpoint: String,
    /// The consistency proof between the two sizes (empty when equal).
    pub consistency: Vec<Hash>,
    /// Accept a bundle older than the trusted checkpoint (a historical look).
    pub allow_older: bool,
}

/// A base64 hash, if it is one.
pub fn b64_hash(text: &str) -> Option<Hash> {
    B64.decode(text).ok().and_then(|h| Hash::try_from(h).ok())
}

/// Verifies a signed checkpoint note with `verifier`: its body parsed.
pub fn open_checkpoint(verifier: &NoteVerifier, note: &str) -> Result<Checkpoint, String> {
    verifier.checkpoint(note)
}

/// The first checks of every document: its `format` is `want`, the verifier key parses, and the
/// checkpoint note is signed by it. `None` when one fails (nothing after can be checked).
pub(crate) fn open_signed(
    report: &mut Report,
    (want, format): (&str, &str),
    vkey: &str,
    note: &str,
) -> Option<(NoteVerifier, Checkpoint)> {
    let format_ok = format == want;
    if !report.check(
        "format",
        format_ok,
        if format_ok {
            want.to_string()
        } else {
            format!("expected {want}, found {format}")
        },
    ) {
        return None;
    }
    let verifier = match NoteVerifier::parse(vkey) {
        Ok(v) => v,
        Err(e) => {
            report.check("verifier key", false, e.to_string());
            return None;
        }
    };
    match open_checkpoint(&verifier, note) {
        Ok(cp) => {
            report.check(
                "checkpoint",
                true,
                format!("signed by {}, size {}", cp.origin, cp.size),
            );
            Some((verifier, cp))
        }
        Err(e) => {
            report.check("checkpoint", false, e);
            None
        }
    }
}

/// Verifies `bundle` (its JSON bytes) against the verifier key `vkey`.
pub fn verify(
    bundle: &[u8],
    vkey: &str,
    trusted: Option<&Trusted>,
    policy: Option<&Policy>,
) -> Report {
    let mut report = Report::default();
    let bundle: Bundle = match serde_json::from_slice(bundle) {
        Ok(b) => b,
        Err(e) => {
            report.check("bundle", false, format!("not an evidence bundle: {e}"));
            return report;
        }
    };
    let Some((verifier, cp)) = open_signed(
        &mut report,
        (FORMAT, &bundle.format),
        vkey,
        &bundle.checkpoint,
    ) else {
        return report;
    };
    if let Some(trusted) = trusted {
        check_trusted(&mut report, &verifier, &cp, trusted);
    }
    check_witnessed(
        &mut report,
        (bundle.witnessed.as_ref(), &bundle.checkpoint),
        &verifier,
        &cp,
        policy,
    );
    report.notes.push(guarantees(trusted, policy.is_some()));

    let map_root = check_map_leaf(
        &mut report,
        &bundle.completeness.map_leaf,
        &bundle.checkpoint,
        &cp,
    )
    .map(|m| m.root);
    let parameters = map_root.and_then(|root| {
        check_parameters(
            &mut report,
            bundle.parameters.as_ref(),
            &bundle.checkpoint,
            &cp,
            &root,
        )
    });
    let commitment = check_opening(&mut report, &bundle.subject, &bundle.tenant.id, parameters);
    let (events, erasures, relabel, last) = check_events(
        &mut report,
        &bundle.events,
        &bundle.tenant.id,
        Some(&bundle.checkpoint),
        &cp,
        &commitment,
    );
    let holds = map_root.and_then(|root| {
        check_holds(
            &mut report,
            bundle.holds.as_ref(),
            &bundle.tenant.id,
            &bundle.checkpoint,
            &cp,
            &root,
        )
    });
    check_erasures(&mut report, &events, &erasures, holds.as_deref());
    check_evidence(&mut report, &bundle.subject, &events, &erasures);
    note_exceptions(&mut report, &bundle, &events);
    if let Some(root) = map_root {
        if let Some(relabel) = &relabel {
            check_relabel(
                &mut report,
                RelabelParts {
                    tenant_id: &bundle.tenant.id,
                    opening: Some(&bundle.subject),
                    chain: &bundle.events,
                    closed: Closed::Bucket(bundle.relabelled.as_ref()),
                },
                &root,
                parameters,
                relabel,
                &erasures,
            );
        }
        check_completeness(&mut report, &bundle, &root, &cp, &commitment, last);
    }
    check_templates(&mut report, &bundle, &cp, map_root.as_ref(), &events);
    check_decisions(&mut report, &bundle, &cp, &events);
    check_times(
        &mut report,
        &bundle,
        &verifier,
        &cp,
        policy,
        &events,
        &erasures,
    );
    report
}

/// When the verifier is told which address the bundle must be of (normalised as the service
/// keeps addresses, `docs/log-format.md`): the item *"subject: the address asked about"*, the
/// bundle's `subject.email` being exactly it — a look-alike address has a history of its own,
/// complete and valid, that is not the one asked about.
pub fn check_address(report: &mut Report, bundle: &[u8], asked: &str) {
    let given = serde_json::from_slice::<Value>(bundle)
        .ok()
        .and_then(|b| b["subject"]["email"].as_str().map(str::to_string));
    let asked = match crate::address::EmailAddress::parse(asked) {
        Ok(address) => address.as_str().to_string(),
        Err(e) => {
            let detail = format!("{asked:?} is not an address: {e}");
            report.check("subject: the address asked about", false, detail);
            return;
        }
    };
    let ok = given.as_deref() == Some(asked.as_str());
    report.check(
        "subject: the address asked about",
        ok,
        match given {
            Some(_) if ok => format!("the bundle is of {asked}"),
            Some(g) => format!("the bundle is of {g:?}, not of {asked:?}"),
            None => "the bundle names no address".into(),
        },
    );
}

/// How far an event's times may lie outside what the witnesses saw: the log's clock against
/// theirs, a checkpoint's interval, and a witness's retries.
pub const TIME_GRACE_MS: i64 = 5 * 60 * 1000;

/// An event claimed this long before it was recorded is shown as back-dated.
const BACKDATED_MS: i64 = 24 * 60 * 60 * 1000;

fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Something whose times the witnesses bound: an event, or a campaign leaf.
struct Timed {
    /// How the report names it, e.g. `event 0 (leaf 5)`.
    what: String,
    index: u64,
    occurred: i64,
    recorded: i64,
}

/// The events' times, and the notes on events claimed long before they were recorded.
fn event_times(report: &mut Report, events: &[(u64, ConsentLeaf)]) -> Vec<Timed> {
    let mut times = Vec::new();
    let mut malformed = Vec::new();
    for (n, (index, leaf)) in events.iter().enumerate() {
        let what = format!("event {n} (leaf {index})");
        match (
            strict_millis(&leaf.occurred_at),
            strict_millis(&leaf.recorded_at),
        ) {
            (Some(occurred), Some(recorded)) => times.push(Timed {
                what,
                index: *index,
                occurred,
                recorded,
            }),
            _ => malformed.push(what),
        }
    }
    if !malformed.is_empty() {
        report.check(
            "time: every time is RFC 3339",
            false,
            format!(
                "not YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM): {}",
                malformed.join(", ")
            ),
        );
    }
    for t in &times {
        if t.recorded - t.occurred > BACKDATED_MS {
            report.notes.push(format!(
                "{}: claimed to have occurred at {}, {} day(s) before it was recorded ({}): \
                 back-dated",
                t.what,
                rfc3339_ms(t.occurred),
                (t.recorded - t.occurred) / BACKDATED_MS,
                rfc3339_ms(t.recorded)
            ));
        }
    }
    times
}

/// Unix milliseconds of an RFC 3339 time written as `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`
/// (upper-case `T` and `Z`, 1–9 fraction digits), as both verifiers read it; `None` otherwise.
pub fn strict_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |from: usize, to: usize| {
        b.get(from..to)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let head = digits(0, 4)
        && at(4, b'-')
        && digits(5, 7)
        && at(7, b'-')
        && digits(8, 10)
        && at(10, b'T')
        && digits(11, 13)
        && at(13, b':')
        && digits(14, 16)
        && at(16, b':')
        && digits(17, 19);
    // No leap second (60): both verifiers refuse it, as JavaScript's Date cannot hold one.
    if !head || &b[17..19] > b"59".as_slice() {
        return None;
    }
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return None;
        }
        rest = &rest[1 + n..];
    }
    let zone = rest == b"Z"
        || (rest.len() == 6
            && (rest[0] == b'+' || rest[0] == b'-')
            && rest[1..3].iter().all(u8::is_ascii_digit)
            && rest[3] == b':'
            && rest[4..6].iter().all(u8::is_ascii_digit));
    if !zone {
        return None;
    }
    consent::millis(text)
}

/// The first of the items with the largest (or, with `least`, the smallest) time: ties go to
/// the earlier in order, in both verifiers.
fn extreme<T>(items: impl IntoIterator<Item = (T, u64)>, least: bool) -> Option<(T, u64)> {
    let mut best: Option<(T, u64)> = None;
    for (item, t) in items {
        let better = match &best {
            None => true,
            Some((_, b)) => (least && t < *b) || (!least && t > *b),
        };
        if better {
            best = Some((item, t));
        }
    }
    best
}

/// Time bounds from the witnesses (with a policy): every event's times no later than the
/// cosignatures of the policy's quorum on the earliest witnessed tree that holds it (the latest
/// of them; a checkpoint of `earlier`, or the witnessed one), and no event recorded before a
/// witness cosigned a tree without it (the earliest cosignature on the latest such checkpoint in
/// `earlier`), each within [`TIME_GRACE_MS`]. Without a policy the witnesses' keys are unknown:
/// a note says so. Events claimed long before they were recorded are noted as back-dated.
#[allow(clippy::too_many_arguments)]
fn check_times(
    report: &mut Report,
    bundle: &Bundle,
    verifier: &NoteVerifier,
    cp: &Checkpoint,
    policy: Option<&Policy>,
    events: &[(u64, ConsentLeaf)],
    erasures: &[(u64, ErasureLeaf)],
) {
    let mut times = event_times(report, events);
    // An erasure's time is bounded as an event's is: its retention period is counted to it.
    for (index, erasure) in erasures {
        let what = format!("erasure at leaf {index}");
        match strict_millis(&erasure.recorded_at) {
            Some(at) => times.push(Timed {
                what,
                index: *index,
                occurred: at,
                recorded: at,
            }),
            None => {
                report.check(
                    "time: every time is RFC 3339",
                    false,
                    format!("not YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM): {what}"),
                );
            }
        }
    }
    times.sort_by_key(|t| t.index);
    check_time_bounds(report, "time", bundle, verifier, cp, policy, &times);
}

/// The witnesses' bounds on `times` (items named `<prefix>: …`), as [`check_times`] says.
fn check_time_bounds(
    report: &mut Report,
    prefix: &str,
    bundle: &Bundle,
    verifier: &NoteVerifier,
    cp: &Checkpoint,
    policy: Option<&Policy>,
    times: &[Timed],
) {
    let Some(policy) = policy else {
        if bundle.witnessed.is_some() && prefix == "time" {
            report.notes.push(
                "the witnesses' cosignature times bound the events' times only with --policy (their keys)"
                    .into(),
            );
        }
        return;
    };
    let earlier = witnessed_prefixes(report, prefix, bundle, verifier, cp, policy);
    check_upper_bounds(
        report, prefix, bundle, verifier, cp, policy, times, &earlier,
    );
    check_lower_bounds(report, prefix, times, &earlier);
}

/// An earlier checkpoint the witnesses cosigned, a prefix of the bundle's: its size, its
/// earliest cosignature (time, witness) and, when the policy's quorum cosigned it, its latest.
type Prefix = (u64, u64, String, Option<(String, u64)>);

/// The witnessed prefixes of the bundle's checkpoint (`earlier`), checked. The earliest
/// cosignature on one bounds from below the leaves it lacks; the latest, with the policy's
/// quorum, bounds from above the leaves it holds.
fn witnessed_prefixes(
    report: &mut Report,
    prefix: &str,
    bundle: &Bundle,
    verifier: &NoteVerifier,
    cp: &Checkpoint,
    policy: &Policy,
) -> Vec<Prefix> {
    let mut earlier = Vec::new();
    let mut unnamed = 0;
    for w in &bundle.earlier {
        let before = verifier.checkpoint(&w.checkpoint).ok();
        let proof: Option<Vec<Hash>> = w.consistency.iter().map(|h| b64_hash(h)).collect();
        let consistent = match (&before, proof) {
            (Some(b), _) if b.size > cp.size || b.size == 0 => false,
            (Some(b), _) if b.size == cp.size => b.root == cp.root && w.consistency.is_empty(),
            (Some(b), Some(p)) => verify_consistency(b.size, cp.size, &b.root, &cp.root, &p),
            _ => false,
        };
        let first = extreme(policy.cosigned_times(&w.checkpoint), true);
        let last = policy
            .quorum(&w.checkpoint)
            .satisfied
            .then(|| extreme(policy.cosigned_times(&w.checkpoint), false))
            .flatten();
        match (before, first) {
            (Some(b), Some((name, t))) if consistent => earlier.push((b.size, t, name, last)),
            // Cosigned by witnesses the policy does not name: no bound, and nothing false.
            (Some(_), None) if consistent => unnamed += 1,
            _ => {
                report.check(
                    format!("{prefix}: earlier witnessed checkpoint"),
                    false,
                    "not the log's, or not a prefix of the bundle's checkpoint",
                );
            }
        }
    }
    if unnamed > 0 {
        report.notes.push(format!(
            "{prefix}: {unnamed} earlier checkpoint(s) cosigned by no witness of the policy: no \
             bound from them"
        ));
    }
    earlier
}

/// No later than: each of `times` is bounded by the earliest witnessed tree that holds it, by
/// the latest cosignature of the policy's quorum on it. The witnessed checkpoint and the
/// bundle's own checkpoint (if it carries the quorum) hold them all, so every event has a bound.
#[allow(clippy::too_many_arguments)]
fn check_upper_bounds(
    report: &mut Report,
    prefix: &str,
    bundle: &Bundle,
    verifier: &NoteVerifier,
    cp: &Checkpoint,
    policy: &Policy,
    times: &[Timed],
    earlier: &[Prefix],
) {
    let quorum_time = |text: &str| {
        let tree = verifier.checkpoint(text).ok()?;
        (tree.size >= cp.size && policy.quorum(text).satisfied)
            .then(|| extreme(policy.cosigned_times(text), false))
            .flatten()
    };
    let latest = extreme(
        bundle
            .witnessed
            .as_ref()
            .and_then(|w| quorum_time(&w.checkpoint))
            .into_iter()
            .chain(quorum_time(&bundle.checkpoint))
            .map(|(name, t)| ((name, t), t)),
        true,
    )
    .map(|(latest, _)| latest);
    let mut late = Vec::new();
    let mut unbounded_above = Vec::new();
    let mut bounded_above: Option<(String, u64)> = None;
    for timed in times {
        let candidates = earlier
            .iter()
            .filter(|(size, ..)| *size > timed.index)
            .filter_map(|(.., last)| last.clone())
            .chain(latest.clone())
            .map(|(name, t)| ((name, t), t));
        let Some(((name, seconds), _)) = extreme(candidates, true) else {
            unbounded_above.push(timed.what.clone());
            continue;
        };
        let bound = seconds as i64 * 1000;
        if prefix == "time" {
            report.bounds.entry(timed.index).or_default().no_later_than =
                Some((bound, name.clone()));
        }
        if timed.recorded > bound + TIME_GRACE_MS {
            late.push(format!(
                "{} claims {}, after witness {name} saw it, at {}",
                timed.what,
                rfc3339_ms(timed.recorded),
                rfc3339_ms(bound)
            ));
        }
        if bounded_above.as_ref().is_none_or(|(_, t)| seconds > *t) {
            bounded_above = Some((name, seconds));
        }
    }
    // A quorum that needs no witness (`quorum none`) bounds nothing, and claims nothing.
    let needs_witnesses = !(policy.quorum(&bundle.checkpoint).satisfied
        && policy.cosigned_times(&bundle.checkpoint).is_empty());
    if !unbounded_above.is_empty() && needs_witnesses {
        report.check(
            format!("{prefix}: every event bounded by a tree the witnesses cosigned"),
            false,
            format!(
                "no checkpoint cosigned by the policy's quorum holds {}",
                unbounded_above.join(", ")
            ),
        );
    }
    if let Some((name, seconds)) = bounded_above {
        report.check(
            format!("{prefix}: no event claims a time after the witnesses saw it"),
            late.is_empty(),
            if late.is_empty() {
                format!(
                    "each recorded no later than a tree the witnesses cosigned; the last by {} \
                     (witness {name})",
                    rfc3339_ms(seconds as i64 * 1000)
                )
            } else {
                late.join("; ")
            },
        );
    }
}

/// Not before: each of `times` is bounded by the latest witnessed tree without it.
fn check_lower_bounds(report: &mut Report, prefix: &str, times: &[Timed], earlier: &[Prefix]) {
    let mut bounded = 0;
    let mut early = Vec::new();
    let mut unbounded = Vec::new();
    for timed in times {
        let candidates = earlier
            .iter()
            .filter(|(size, ..)| *size <= timed.index)
            .map(|e| (e, e.0));
        let Some(((size, t, name, _), _)) = extreme(candidates, false) else {
            unbounded.push(timed.what.clone());
            continue;
        };
        bounded += 1;
        let bound = *t as i64 * 1000;
        if prefix == "time" {
            report.bounds.entry(timed.index).or_default().not_before = Some((bound, name.clone()));
        }
        if timed.recorded < bound - TIME_GRACE_MS {
            early.push(format!(
                "{} says recorded {}, but witness {name} cosigned a tree of {size} leaves \
                 without it at {}",
                timed.what,
                rfc3339_ms(timed.recorded),
                rfc3339_ms(bound)
            ));
        }
    }
    if !unbounded.is_empty() {
        report.notes.push(format!(
            "{prefix}: not bounded from below (the bundle carries no witnessed checkpoint without \
             it; an auditing witness refuses back-dated leaves itself): {}",
            unbounded.join(", ")
        ));
    }
    if bounded > 0 {
        report.check(
            format!("{prefix}: no event recorded before the witnesses saw a tree without it"),
            early.is_empty(),
            if early.is_empty() {
                format!("{bounded} event(s) bounded from below by a witnessed checkpoint")
            } else {
                early.join("; ")
            },
        );
    }
}

/// What the verdict rests on, by who vouches for the checkpoint (`docs/threat-model.md`).
fn guarantees(trusted: Option<&Trusted>, policy: bool) -> String {
    let mut held = vec![
        "the verifier alone: the bundle is what the log signed, complete as the \
                         log's subject map states it",
    ];
    match trusted {
        Some(t) if t.allow_older => held.push(
            "a trusted checkpoint: the same log the regulator saw; older bundles allowed, so \
             not that it is recent (a checkpoint holds no time)",
        ),
        Some(_) => {
            held.push("a trusted checkpoint: the same log the regulator saw, no older than it")
        }
        None => {}
    }
    if policy {
        held.push(
            "the policy's witnesses: one view of the log; if they audit (`witness serve \
             --audit`), the map and every chain were replayed, so completeness holds against \
             the operator",
        );
    } else {
        held.push(
            "not audited here: completeness holds against the operator only if someone audits \
             the log (a policy of auditing witnesses, or `monitor --audit-map`)",
        );
    }
    format!("guarantees — {}", held.join("; "))
}

/// Verifies a send decision with its proof ([`super::ProvenDecision`], its JSON bytes): the proof
/// as an evidence bundle ([`verify`]), and that the decision is the one the bundle's events give
/// for its purpose (item *"the decision follows from the proof"*).
pub fn verify_decision(
    answer: &[u8],
    vkey: &str,
    trusted: Option<&Trusted>,
    policy: Option<&Policy>,
) -> Report {
    let parsed: Result<serde_json::Value, _> = serde_json::from_slice(answer);
    let (format, decision, proof) = match &parsed {
        Ok(doc) => (
            doc["format"].as_str(),
            serde_json::from_value::<PurposeDecision>(doc["decision"].clone()).ok(),
            serde_json::to_vec(&doc["proof"]).unwrap_or_default(),
        ),
        Err(_) => (None, None, Vec::new()),
    };
    let decision = decision.filter(|d| d.purpose != consent::ALL);
    let (Some(DECISION_FORMAT), Some(decision)) = (format, decision) else {
        let mut report = Report::default();
        report.check(
            "decision",
            false,
            format!("not a {DECISION_FORMAT} document with a decision"),
        );
        return report;
    };
    let mut report = verify(&proof, vkey, trusted, policy);
    let bundle: Option<Bundle> = serde_json::from_slice(&proof).ok();
    let proven = bundle
        .as_ref()
        .and_then(|b| b.decisions.iter().find(|d| d.purpose == decision.purpose));
    report.check(
        "the decision follows from the proof",
        proven == Some(&decision),
        match proven {
            Some(p) if *p == decision => format!(
                "{}: may_send {} ({}), as of tree size {}",
                decision.purpose,
                decision.may_send,
                decision.status,
                bundle
                    .as_ref()
                    .and_then(|b| b.checkpoint.lines().nth(1).map(str::to_string))
                    .unwrap_or_default()
            ),
            Some(p) => format!(
                "the proof gives may_send {} ({}), the answer says {} ({})",
                p.may_send, p.status, decision.may_send, decision.status
            ),
            None => format!("the proof has no decision for {}", decision.purpose),
        },
    );
    report
}

/// Verifies a campaign receipt's proof for one address ([`CampaignProof`], its JSON bytes): the
/// bundle ([`verify`]), the `campaign_check` leaf in the bundle's checkpoint, the address's entry
/// in the leaf's root, the entry naming the bundle's subject, and the entry's decision being the
/// one the address's events before the campaign leaf give.
pub fn verify_campaign(
    document: &[u8],
    vkey: &str,
    trusted: Option<&Trusted>,
    policy: Option<&Policy>,
) -> Report {
    // Read as a JSON value first, as the TypeScript verifier reads it (a repeated member: the
    // last one), then typed.
    let doc = match serde_json::from_slice::<Value>(document)
        .and_then(serde_json::from_value::<CampaignProof>)
    {
        Ok(doc) if doc.format == CAMPAIGN_PROOF_FORMAT => doc,
        _ => {
            let mut report = Report::default();
            report.check(
                "campaign proof",
                false,
                format!("not a {CAMPAIGN_PROOF_FORMAT} document"),
            );
            return report;
        }
    };
    let bundle = serde_json::to_vec(&doc.proof).unwrap_or_default();
    let mut report = verify(&bundle, vkey, trusted, policy);
    let Some(cp) = NoteVerifier::parse(vkey)
        .ok()
        .and_then(|v| open_checkpoint(&v, &doc.proof.checkpoint).ok())
    else {
        return report;
    };
    if check_leaf(
        &mut report,
        "campaign",
        &doc.campaign,
        &cp,
        &doc.proof.checkpoint,
    )
    .is_none()
    {
        return report;
    }
    let Some(leaf) = campaign_leaf(&mut report, &doc) else {
        return report;
    };
    check_campaign_time(&mut report, &doc, &leaf, vkey, &cp, policy);
    let Some(entry) = campaign_entry(&mut report, &doc, &leaf) else {
        return report;
    };
    check_campaign_decision(&mut report, &doc, &leaf, &entry);
    report
}

/// The campaign leaf, checked: a `campaign_check` of a purpose (not all), of the bundle's tenant.
fn campaign_leaf(report: &mut Report, doc: &CampaignProof) -> Option<CampaignLeaf> {
    let bytes = B64.decode(&doc.campaign.leaf).unwrap_or_default();
    let leaf = match CampaignLeaf::parse(&bytes) {
        Ok(leaf) if leaf.purpose == consent::ALL => {
            report.check("campaign: leaf", false, "its purpose is not a purpose");
            return None;
        }
        Ok(leaf) => leaf,
        Err(e) => {
            report.check("campaign: leaf", false, e);
            return None;
        }
    };
    report.check(
        "campaign: leaf",
        true,
        format!(
            "{} for {}, {} address(es), recorded {} (leaf {})",
            leaf.id, leaf.purpose, leaf.addresses, leaf.recorded_at, doc.campaign.leaf_index
        ),
    );
    report.check(
        "campaign: tenant",
        leaf.tenant == doc.proof.tenant.id,
        format!("the campaign's tenant is {:?}", leaf.tenant),
    );
    Some(leaf)
}

/// When the check was recorded: the operator's word, unless the witnesses bound it (with a
/// policy).
fn check_campaign_time(
    report: &mut Report,
    doc: &CampaignProof,
    leaf: &CampaignLeaf,
    vkey: &str,
    cp: &Checkpoint,
    policy: Option<&Policy>,
) {
    match (strict_millis(&leaf.recorded_at), NoteVerifier::parse(vkey)) {
        (Some(recorded), Ok(verifier)) if policy.is_some() => {
            let timed = [Timed {
                what: format!("the campaign leaf (leaf {})", doc.campaign.leaf_index),
                index: doc.campaign.leaf_index,
                occurred: recorded,
                recorded,
            }];
            check_time_bounds(
                report,
                "campaign: time",
                &doc.proof,
                &verifier,
                cp,
                policy,
                &timed,
            );
        }
        _ => report.notes.push(
            "the campaign's recorded_at is the operator's word: with --policy the witnesses' \
             cosignature times bound it"
                .into(),
        ),
    }
}

/// The address's entry, checked: included in the campaign leaf's root (`None` when it is not).
fn campaign_entry(report: &mut Report, doc: &CampaignProof, leaf: &CampaignLeaf) -> Option<Entry> {
    let entry = B64
        .decode(&doc.entry.entry)
        .ok()
        .and_then(|b| Entry::decode(&b));
    let path: Option<Vec<Hash>> = doc.entry.path.iter().map(|h| b64_hash(h)).collect();
    let included = match (&entry, &path, crate::unhex32(&leaf.root)) {
        (Some(e), Some(p), Some(root)) => verify_inclusion(
            &leaf_hash(&e.encode()),
            doc.entry.index,
            leaf.addresses,
            p,
            &root,
        ),
        _ => false,
    };
    report.check(
        "campaign: entry",
        included,
        if entry.is_none() {
            "not a 41-byte entry".to_string()
        } else {
            format!(
                "entry {} of {} in the campaign's root",
                doc.entry.index, leaf.addresses
            )
        },
    );
    entry.filter(|_| included)
}

/// The entry names the bundle's subject, and its decision is the one the address's events
/// before the campaign leaf give.
fn check_campaign_decision(
    report: &mut Report,
    doc: &CampaignProof,
    leaf: &CampaignLeaf,
    entry: &Entry,
) {
    report.check(
        "campaign: the entry names this address",
        hex(&entry.key) == doc.proof.subject.commitment,
        "its key is the bundle's subject key",
    );
    let before: Vec<(u64, ConsentLeaf)> = doc
        .proof
        .events
        .iter()
        .filter(|e| e.leaf_index < doc.campaign.leaf_index)
        .filter_map(|e| {
            let bytes = B64.decode(&e.leaf).ok()?;
            Some((e.leaf_index, ConsentLeaf::parse(&bytes).ok()?))
        })
        .collect();
    let state = consent::replay(before.iter().map(|(i, leaf)| (*i, leaf)));
    let replayed = consent::effective(&state, &leaf.purpose);
    let expected = Entry {
        key: entry.key,
        status: replayed.map(|s| s.status),
        deciding: replayed.map(|s| s.leaf_index),
    };
    let name = |e: &Entry| {
        format!(
            "may_send {} ({}{})",
            e.may_send(),
            e.status.map_or(consent::NO_STATUS, |s| s.as_str()),
            e.deciding.map_or(String::new(), |i| format!(", leaf {i}"))
        )
    };
    report.check(
        "campaign: the decision follows from the events before it",
        expected == *entry,
        if expected == *entry {
            format!("{}: {}", leaf.purpose, name(entry))
        } else {
            format!(
                "the events before leaf {} give {}, the campaign recorded {}",
                doc.campaign.leaf_index,
                name(&expected),
                name(entry)
            )
        },
    );
}

/// The log's VRF key, as the bundle's map states it: `Some(Some((index, key)))` for its
/// parameters leaf (the map names it as the parameters key's latest, and it names no `prev`: the
/// log's only one), `Some(None)` for a log with none yet, `None` when that does not hold.
pub(crate) type LogKey = Option<Option<(u64, [u8; 32])>>;

pub(crate) fn check_parameters(
    report: &mut Report,
    parameters: Option<&super::Parameters>,
    checkpoint_note: &str,
    cp: &Checkpoint,
    root: &Hash,
) -> LogKey {
    let what = "log parameters";
    let Some(p) = parameters else {
        report.check(
            what,
            false,
            "the bundle does not prove the log's VRF key (a bundle from an older version: \
             ask the operator for a new one)",
        );
        return None;
    };
    let key = label::parameters_key();
    let value = map_value(root, &key, p.bucket, &p.bucket_entries, &p.bucket_path);
    let (index, leaf) = match (value, &p.leaf) {
        (Err(e), _) => {
            report.check(format!("{what}: in the subject map"), false, e);
            return None;
        }
        (Ok(None), None) => {
            report.check(
                what,
                true,
                "the log has no VRF key at this checkpoint: its subjects have salted commitments",
            );
            return Some(None);
        }
        (Ok(Some(index)), Some(leaf)) if leaf.leaf_index == index => (index, leaf),
        (Ok(stated), _) => {
            report.check(
                format!("{what}: in the subject map"),
                false,
                format!(
                    "the map names leaf {stated:?} as the log's parameters, the bundle gives {:?}",
                    p.leaf.as_ref().map(|l| l.leaf_index)
                ),
            );
            return None;
        }
    };
    check_leaf(report, what, leaf, cp, checkpoint_note)?;
    let parsed = LogParameters::parse(&B64.decode(&leaf.leaf).unwrap_or_default()).and_then(|p| {
        match p.prev {
            None => p.public_key(),
            Some(prev) => Err(format!(
                "it follows leaf {prev}: the log changed its VRF key, and a second key can \
                 give an address a second history"
            )),
        }
    });
    match parsed {
        Ok(public_key) => {
            report.check(
                what,
                true,
                format!(
                    "leaf {index}: the log's one VRF key ({})",
                    B64.encode(public_key)
                ),
            );
            Some(Some((index, public_key)))
        }
        Err(e) => {
            report.check(what, false, format!("leaf {index}: {e}"));
            None
        }
    }
}

/// The opening: the label checked against its VRF proof under the log's key (a bundle without
/// one fails: subjects from before labels are shown through their relabel leaf); returns the
/// subject key (hex).
pub(crate) fn check_opening(
    report: &mut Report,
    s: &super::Opening,
    tenant_id: &str,
    key: LogKey,
) -> String {
    if let Some(proof) = &s.vrf_proof {
        let proof = B64
            .decode(proof)
            .ok()
            .and_then(|p| <[u8; label::PROOF_BYTES]>::try_from(p).ok());
        let label = match (key, proof) {
            (Some(Some((_, public_key))), Some(proof)) => {
                label::verify_label(&public_key, tenant_id, &s.email, &proof)
            }
            _ => None,
        };
        let ok = label.is_some_and(|l| hex(&l) == s.commitment);
        report.check(
            "subject label",
            ok,
            match label {
                Some(_) if ok => format!(
                    "{} has the label {} under the log's VRF key: its only label",
                    s.email, s.commitment
                ),
                Some(l) => format!(
                    "the VRF proof gives {} the label {}, not {}",
                    s.email,
                    hex(&l),
                    s.commitment
                ),
                None => "the VRF proof does not verify under the log's VRF key".to_string(),
            },
        );
        return s.commitment.clone();
    }
    report.check(
        "subject label",
        false,
        "the bundle names the subject by a salted commitment, not by its label: a history \
         begun before the log's VRF key is shown only through its relabel leaf, under the \
         label (a bundle from before the relabelling: ask the operator for a new one)",
    );
    s.commitment.clone()
}

/// The evidence in the opening: each names one of the bundle's events, once, and hashes with the
/// salt to the `evidence_sha256` that event's leaf commits to. Evidence left out (erased, or
/// never recorded) is noted, not failed: it is the sender's proof that is the weaker for it.
pub(crate) fn check_evidence(
    report: &mut Report,
    opening: &super::Opening,
    events: &[(u64, ConsentLeaf)],
    erasures: &[(u64, ErasureLeaf)],
) {
    let salt = B64.decode(&opening.salt).unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for given in &opening.evidence {
        let n = events.iter().position(|(i, _)| *i == given.leaf_index);
        let what = format!("evidence of leaf {}", given.leaf_index);
        let Some(n) = n.filter(|_| seen.insert(given.leaf_index)) else {
            report.check(
                what,
                false,
                "names no event of the bundle, or one named before",
            );
            continue;
        };
        let hash = crate::jcs::canonicalize(&given.evidence)
            .ok()
            .filter(|_| given.evidence.is_object())
            .map(|c| hex(&Sha256::new().chain_update(&salt).chain_update(c).finalize()));
        let stated = events[n].1.evidence_sha256.as_deref();
        let ok = hash.is_some() && hash.as_deref() == stated;
        report.check(
            format!("event {n}: evidence"),
            ok,
            if ok {
                given.evidence.to_string()
            } else {
                format!(
                    "with the salt it hashes to {}, the leaf commits to {}",
                    hash.as_deref().unwrap_or("nothing (not a JSON object)"),
                    stated.unwrap_or("none")
                )
            },
        );
    }
    let erased: std::collections::HashSet<u64> = erasures
        .iter()
        .flat_map(|(_, e)| e.evidence_erased.iter().copied())
        .collect();
    let missing = |erased_ones: bool| {
        events
            .iter()
            .filter(|(i, leaf)| leaf.evidence_sha256.is_some() && !seen.contains(i))
            .filter(|(i, _)| erased.contains(i) == erased_ones)
            .count()
    };
    if missing(true) > 0 {
        report.notes.push(format!(
            "{} event(s) committed to evidence that an erasure leaf of the log says was erased: \
             how they were given is no longer shown",
            missing(true)
        ));
    }
    let missing = missing(false);
    if missing > 0 {
        report.notes.push(format!(
            "{missing} event(s) committed to evidence the bundle does not carry (erased, or \
             withheld): how they were given is not shown"
        ));
    }
}

/// A chain that runs through a `relabel` leaf: its salted commitment (`from`) opens with the
/// address and salt (unless the address was erased after it: its salt went with it), its
/// history began before the log's VRF key (one begun after could be a second history of an
/// address that has a label), and the map names the relabel's `prev` as the commitment's latest
/// leaf (nothing named it after: the older history is all there).
/// What a relabelling is checked against: the tenant, the opening (`None` once the address
/// was erased), the chain, and how the salted commitment is shown closed.
pub(crate) struct RelabelParts<'a> {
    pub tenant_id: &'a str,
    pub opening: Option<&'a super::Opening>,
    pub chain: &'a [super::ProvenLeaf],
    pub closed: Closed<'a>,
}

/// How a relabelled salted commitment is shown closed (no leaf named it after).
pub(crate) enum Closed<'a> {
    /// By the subject map's bucket for it (a bundle's `relabelled`, if given).
    Bucket(Option<&'a super::Relabelled>),
    /// By its own line in a whole-tenant export, which the caller checks.
    Line,
}

pub(crate) fn check_relabel(
    report: &mut Report,
    parts: RelabelParts<'_>,
    root: &Hash,
    key: LogKey,
    (index, relabel): &(u64, RelabelLeaf),
    erasures: &[(u64, ErasureLeaf)],
) {
    let what = format!("relabelling at leaf {index}");
    let (email, salt) = parts.opening.map_or((String::new(), Vec::new()), |o| {
        (o.email.clone(), B64.decode(&o.salt).unwrap_or_default())
    });
    let opened = hex(&crate::commitment(parts.tenant_id, &email, &salt));
    let erased_after = erasures.iter().any(|(e, _)| e > index);
    report.check(
        format!("{what}: the salted commitment is this address's"),
        opened == relabel.from || erased_after,
        if opened == relabel.from {
            format!("{email} with its salt opens {}", relabel.from)
        } else if erased_after {
            format!(
                "{} cannot be opened: the salt was erased with the address after the \
                 relabelling (its events before the erasure cannot have granted consent)",
                relabel.from
            )
        } else {
            format!("address and salt give {opened}, not {}", relabel.from)
        },
    );
    if let (Some(Some((parameters, _))), Some(first)) = (key, parts.chain.first()) {
        report.check(
            format!("{what}: the older history began before the log's VRF key"),
            first.leaf_index < parameters,
            format!(
                "its history begins at leaf {}, the log's VRF key at leaf {parameters}",
                first.leaf_index
            ),
        );
    }
    let proof = match parts.closed {
        Closed::Line => return,
        Closed::Bucket(proof) => proof,
    };
    let Some(proof) = proof else {
        report.check(
            format!("{what}: the salted commitment is closed"),
            false,
            "the bundle does not prove what the subject map says of the salted commitment",
        );
        return;
    };
    let from = crate::unhex32(&relabel.from).unwrap_or_default();
    let value = map_value(
        root,
        &from,
        proof.bucket,
        &proof.bucket_entries,
        &proof.bucket_path,
    );
    let (ok, detail) = match value {
        Err(e) => (false, e),
        Ok(Some(latest)) if latest == relabel.prev => (
            true,
            format!("the map names leaf {latest}, the relabel's prev, as its latest: no leaf named it after"),
        ),
        Ok(latest) => (
            false,
            format!(
                "the map names {latest:?} as its latest leaf, not the relabel's prev {}: a leaf \
                 named the salted commitment after the relabelling",
                relabel.prev
            ),
        ),
    };
    report.check(
        format!("{what}: the salted commitment is closed"),
        ok,
        detail,
    );
}

/// A leaf of a subject's chain: a consent event, an erasure, or the relabelling of a history
/// begun before labels.
enum ChainLeaf {
    Event(ConsentLeaf),
    Erasure(ErasureLeaf),
    Relabel(RelabelLeaf),
}

impl ChainLeaf {
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let event = match ConsentLeaf::parse(bytes) {
            Ok(leaf) => return Ok(Self::Event(leaf)),
            Err(e) => e,
        };
        let erasure = match ErasureLeaf::parse(bytes) {
            Ok(leaf) => return Ok(Self::Erasure(leaf)),
            Err(e) => e,
        };
        RelabelLeaf::parse(bytes)
            .map(Self::Relabel)
            .map_err(|relabel| {
                format!(
                    "as a consent_event leaf: {event}; as an erasure leaf: {erasure}; as a \
                 relabel leaf: {relabel}"
                )
            })
    }

    fn recorded_at(&self) -> &str {
        match self {
            Self::Event(l) => &l.recorded_at,
            Self::Erasure(l) => &l.recorded_at,
            Self::Relabel(l) => &l.recorded_at,
        }
    }

    fn owner(&self) -> (&str, &str, Option<u64>) {
        match self {
            Self::Event(l) => (&l.tenant, &l.subject, l.prev),
            Self::Erasure(l) => (&l.tenant, &l.subject, Some(l.prev)),
            Self::Relabel(l) => (&l.tenant, &l.subject, Some(l.prev)),
        }
    }
}

/// Every leaf of the subject's chain: its proofs, that it is a consent event, an erasure or (at
/// most once) a relabelling of this tenant and subject, and the chain; the leaves before a
/// relabelling name its salted commitment. Returns the events, the erasures and the
/// relabelling that hold, in order, and the leaf index of the last.
#[allow(clippy::type_complexity)]
pub(crate) fn check_events(
    report: &mut Report,
    chain: &[super::ProvenLeaf],
    tenant_id: &str,
    tlog: Option<&str>,
    cp: &Checkpoint,
    commitment: &str,
) -> (
    Vec<(u64, ConsentLeaf)>,
    Vec<(u64, ErasureLeaf)>,
    Option<(u64, RelabelLeaf)>,
    Option<u64>,
) {
    let mut documents = Vec::new();
    let mut erasures = Vec::new();
    let mut relabel: Option<(u64, RelabelLeaf)> = None;
    let relabels = relabel_points(report, chain);
    let mut previous: Option<u64> = None;
    let mut previous_recorded: Option<i64> = None;
    for (n, event) in chain.iter().enumerate() {
        let what = format!("event {n} (leaf {})", event.leaf_index);
        if check_leaf_in(report, &what, event, cp, tlog).is_none() {
            continue;
        }
        let leaf = match ChainLeaf::parse(&B64.decode(&event.leaf).unwrap_or_default()) {
            Ok(leaf) => leaf,
            Err(e) => {
                report.check(
                    format!("{what}: is a consent_event or erasure leaf"),
                    false,
                    e,
                );
                continue;
            }
        };
        let (tenant, subject, prev) = leaf.owner();
        let expected = match relabels.first() {
            Some((at, from)) if n < *at => from.as_str(),
            _ => commitment,
        };
        let owner_ok = tenant == tenant_id && subject == expected;
        report.check(
            format!("{what}: names this tenant and subject"),
            owner_ok,
            if owner_ok {
                String::new()
            } else {
                format!("tenant {tenant}, subject {subject}")
            },
        );
        check_link(report, &what, prev, previous, event.leaf_index);
        let recorded = strict_millis(leaf.recorded_at());
        check_clock(report, &what, recorded, previous_recorded);
        previous_recorded = recorded.or(previous_recorded);
        previous = Some(event.leaf_index);
        match leaf {
            ChainLeaf::Event(leaf) => documents.push((event.leaf_index, leaf)),
            ChainLeaf::Erasure(leaf) => erasures.push((event.leaf_index, leaf)),
            ChainLeaf::Relabel(leaf) => {
                relabel.get_or_insert((event.leaf_index, leaf));
            }
        }
    }

    (documents, erasures, relabel, previous)
}

/// Where the chain is relabelled: each relabel leaf's position in the bundle and the salted
/// commitment it names (`from`), the key the leaves before it name. More than one fails.
fn relabel_points(report: &mut Report, chain: &[super::ProvenLeaf]) -> Vec<(usize, String)> {
    let relabels: Vec<(usize, String)> = chain
        .iter()
        .enumerate()
        .filter_map(|(n, e)| {
            let leaf = RelabelLeaf::parse(&B64.decode(&e.leaf).ok()?).ok()?;
            Some((n, leaf.from))
        })
        .collect();
    if relabels.len() > 1 {
        report.check(
            "relabelling",
            false,
            format!(
                "the chain holds {} relabel leaves: a history is relabelled once",
                relabels.len()
            ),
        );
    }
    relabels
}

/// The chain rule for leaf `index`: its `prev` is the leaf before it in the bundle (`previous`),
/// an earlier one.
fn check_link(
    report: &mut Report,
    what: &str,
    prev: Option<u64>,
    previous: Option<u64>,
    index: u64,
) {
    let chain_ok = prev == previous && previous.is_none_or(|p| p < index);
    let at = |i: Option<u64>| i.map_or("none".to_string(), |i| format!("leaf {i}"));
    report.check(
        format!("{what}: chain"),
        chain_ok,
        if chain_ok {
            format!("follows {}", at(prev))
        } else {
            format!(
                "its prev is {}, but the event before it in the bundle is {}: an event is missing",
                at(prev),
                at(previous)
            )
        },
    );
}

/// The log's clock runs forward along a chain (within the grace for its clock): a leaf recorded
/// before the one it follows has a time the log did not give it then.
fn check_clock(report: &mut Report, what: &str, recorded: Option<i64>, before: Option<i64>) {
    if let (Some(at), Some(before)) = (recorded, before) {
        if at + TIME_GRACE_MS < before {
            report.check(
                format!("{what}: recorded after the leaf before it"),
                false,
                format!(
                    "recorded at {}, but the leaf before it at {}",
                    rfc3339_ms(at),
                    rfc3339_ms(before)
                ),
            );
        }
    }
}

/// The tenant's legal holds: each a `legal_hold` leaf of the tenant under its hold key, proven,
/// chained by `prev`, the last the one the subject map names. `None` when the bundle has none
/// to give or they do not hold.
pub(crate) fn check_holds(
    report: &mut Report,
    holds: Option<&super::Holds>,
    tenant_id: &str,
    checkpoint_note: &str,
    cp: &Checkpoint,
    root: &Hash,
) -> Option<Vec<(u64, LegalHoldLeaf)>> {
    let holds = holds?;
    let key = consent::hold_key(tenant_id);
    let mut all_ok = true;
    let mut leaves = Vec::new();
    let mut previous: Option<u64> = None;
    for (n, proven) in holds.leaves.iter().enumerate() {
        let what = format!("legal hold {n} (leaf {})", proven.leaf_index);
        if check_leaf(report, &what, proven, cp, checkpoint_note).is_none() {
            all_ok = false;
            continue;
        }
        let leaf = LegalHoldLeaf::parse(&B64.decode(&proven.leaf).unwrap_or_default());
        let ok = leaf.as_ref().is_ok_and(|l| {
            l.tenant == tenant_id
                && l.subject == hex(&key)
                && l.prev == previous
                && previous.is_none_or(|p| p < proven.leaf_index)
        });
        all_ok &= report.check(
            format!("{what}: the tenant's, after the one before"),
            ok,
            match &leaf {
                Ok(l) => format!(
                    "{} on {} ({}), following {:?}",
                    if l.on { "put" } else { "lifted" },
                    l.order_date,
                    l.order_reference,
                    l.prev
                ),
                Err(e) => e.clone(),
            },
        );
        previous = Some(proven.leaf_index);
        if let Ok(leaf) = leaf {
            leaves.push((proven.leaf_index, leaf));
        }
    }
    let value = map_value(
        root,
        &key,
        holds.bucket,
        &holds.bucket_entries,
        &holds.bucket_path,
    );
    let complete = value.as_ref().is_ok_and(|v| *v == previous);
    all_ok &= report.check(
        "legal holds: complete",
        complete,
        match value {
            Ok(v) if complete => format!(
                "{} hold(s); the map names {v:?} as the latest",
                leaves.len()
            ),
            Ok(v) => {
                format!("the map names {v:?} as the latest hold, the bundle ends at {previous:?}")
            }
            Err(e) => e,
        },
    );
    all_ok.then_some(leaves)
}

/// Notes each exception-basis opt-in whose evidence in the bundle does not show the facts its
/// basis rests on (`consent::required_evidence`), and each imported event (its times are the
/// sender's word): the law's judgement, so notes, not checks.
fn note_exceptions(report: &mut Report, bundle: &Bundle, events: &[(u64, ConsentLeaf)]) {
    for (n, (index, leaf)) in events.iter().enumerate() {
        if leaf.imported {
            report.notes.push(format!(
                "event {n} (leaf {index}): imported; it claims {} and was recorded {}",
                leaf.occurred_at, leaf.recorded_at
            ));
        }
        let Some(basis) = leaf.basis.filter(|_| leaf.event == EventKind::OptIn) else {
            continue;
        };
        let given = bundle
            .subject
            .evidence
            .iter()
            .find(|e| e.leaf_index == *index)
            .map(|e| &e.evidence);
        let missing: Vec<&str> = consent::required_evidence(basis)
            .iter()
            .filter(|field| given.is_none_or(|e| e[**field].is_null()))
            .copied()
            .collect();
        if !missing.is_empty() {
            report.notes.push(format!(
                "event {n} (leaf {index}): an opt-in on basis {} whose evidence does not show {}",
                basis.as_str(),
                missing.join(", ")
            ));
        }
    }
}

/// Every erasure: the law allowed it when it was recorded — no consent in force (by the events
/// before it) and the retention period it states run (one month since the last event before it,
/// or under a legal hold a year from the order's date, and at least that month); and the evidence it says it erased is of events before it.
/// It changes no decision: a refusal survives erasure.
pub(crate) fn check_erasures(
    report: &mut Report,
    events: &[(u64, ConsentLeaf)],
    erasures: &[(u64, ErasureLeaf)],
    holds: Option<&[(u64, LegalHoldLeaf)]>,
) {
    for (index, erasure) in erasures {
        let what = format!("erasure at leaf {index}");
        let (ok, detail) = match holds {
            None => (
                false,
                "the bundle does not prove the tenant's legal holds, so which period applied \
                 is unknown"
                    .to_string(),
            ),
            Some(holds) => {
                // At least what the holds give (a longer wait is lawful: the service also
                // keeps a year for a hold set before holds were leaves).
                let due = consent::retention_days_at(holds, *index);
                (
                    erasure.retention_days >= due,
                    format!(
                        "the tenant's legal holds give {due} days; it states {}",
                        erasure.retention_days
                    ),
                )
            }
        };
        report.check(
            format!("{what}: its retention period follows the legal holds"),
            ok,
            detail,
        );
        let before: Vec<&(u64, ConsentLeaf)> = events.iter().filter(|(i, _)| i < index).collect();
        let state = consent::replay(before.iter().map(|(i, leaf)| (*i, leaf)));
        let last = before
            .iter()
            .filter_map(|(_, leaf)| strict_millis(leaf.counts_from()))
            .max();
        let at = strict_millis(&erasure.recorded_at);
        // A measures order's year runs from the order (ordinance Art. 4(2)).
        let order = holds
            .and_then(|holds| consent::hold_at(holds, *index))
            .and_then(LegalHoldLeaf::order_millis);
        let known = [consent::RETENTION_DAYS, consent::RETENTION_LEGAL_HOLD_DAYS];
        let detail = match (last, at) {
            _ if !known.contains(&erasure.retention_days) => Err(format!(
                "it states a retention of {} days, not {} or {}",
                erasure.retention_days, known[0], known[1]
            )),
            (Some(last), Some(at)) => {
                match consent::erasure_refused(&state, last, erasure.retention_days, order, at) {
                    None => Ok(format!(
                        "{}, after {} days without consent in force",
                        erasure.recorded_at, erasure.retention_days
                    )),
                    Some(consent::ErasureRefused::ConsentInForce(p)) => {
                        Err(format!("consent was in force for {}", p.join(", ")))
                    }
                    Some(consent::ErasureRefused::RetentionRunning(until)) => Err(format!(
                        "recorded {}, but the retention period ran until {}",
                        erasure.recorded_at,
                        rfc3339_ms(until)
                    )),
                }
            }
            _ => Err("its time, or the last event's, is not RFC 3339".into()),
        };
        report.check(
            format!("{what}: the law allowed it"),
            detail.is_ok(),
            detail.unwrap_or_else(|e| e),
        );
        let ascending = erasure.evidence_erased.windows(2).all(|w| w[0] < w[1]);
        let named_ok = ascending
            && erasure.evidence_erased.iter().all(|e| {
                before
                    .iter()
                    .any(|(i, leaf)| i == e && leaf.evidence_sha256.is_some())
            });
        report.check(
            format!("{what}: erased the evidence of earlier events"),
            named_ok,
            format!("leaves {:?}", erasure.evidence_erased),
        );
    }
}

/// Every template: its content against its hash, its id recomputed, and its period of use (its
/// registration leaf, and its retirement leaf if the map names one: the map's bucket for its
/// retirement key proves there is no other); and that every event's collection point is among
/// them and was in use at the event (`consent::in_use`). A bundle without the bucket (made
/// before periods of use were proven) gets a note instead: the period is not proven.
fn check_templates(
    report: &mut Report,
    bundle: &Bundle,
    cp: &Checkpoint,
    root: Option<&Hash>,
    documents: &[(u64, ConsentLeaf)],
) {
    // Per valid template: its registration leaf, and its retirement time (`Some(None)`: in use
    // at the checkpoint; `None`: the bundle does not prove the period).
    let mut templates: HashMap<&str, (u64, Option<Option<i64>>)> = HashMap::new();
    for t in &bundle.collection_points {
        let what = format!("collection point {}", t.id);
        let Some(doc) = check_leaf(report, &what, &t.proof, cp, &bundle.checkpoint) else {
            continue;
        };
        let ok = template_content(report, bundle, t, &doc, &what);
        if t.retirement.is_none() {
            report.notes.push(format!(
                "{what}: the bundle does not prove its period of use (no map bucket for its \
                 retirement key: a bundle made before periods were proven); ask for a new one"
            ));
            if ok {
                templates.insert(t.id.as_str(), (t.proof.leaf_index, None));
            }
            continue;
        }
        let registered_at = doc["registered_at"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let period = template_period(report, bundle, cp, root, t, &what);
        if let (true, Some(retired)) = (ok, period) {
            report.check(
                format!("{what}: its period of use"),
                true,
                match retired {
                    Some(at) => format!("from {registered_at} to {}", rfc3339_ms(at)),
                    None => format!("from {registered_at}, in use at the checkpoint"),
                },
            );
            templates.insert(t.id.as_str(), (t.proof.leaf_index, Some(retired)));
        }
    }
    for (n, (index, leaf)) in documents.iter().enumerate() {
        let Some(id) = leaf.collection_point.as_deref() else {
            continue;
        };
        let found = templates.get(id);
        report.check(
            format!("event {n}: its collection point is in the bundle"),
            found.is_some(),
            id,
        );
        let Some(&(registered, Some(retired))) = found else {
            continue;
        };
        report.check(
            format!("event {n}: its collection point was in use"),
            consent::in_use(leaf, *index, registered, retired),
            match retired {
                Some(at) => format!(
                    "{id}, retired {}; the event claims {}",
                    rfc3339_ms(at),
                    leaf.occurred_at
                ),
                None => format!("{id}, registered at leaf {registered}, not retired"),
            },
        );
    }
}

/// A template's content against its leaf's hash, and its id recomputed from the leaf.
fn template_content(
    report: &mut Report,
    bundle: &Bundle,
    t: &crate::evidence::ProvenTemplate,
    doc: &Value,
    what: &str,
) -> bool {
    let content = B64.decode(&t.content).unwrap_or_default();
    let content_sha256 = hex(&Sha256::digest(&content));
    let described = serde_json::json!({
        "tenant": doc["tenant"], "name": doc["name"], "channel": doc["channel"],
        "content_type": doc["content_type"], "content_sha256": doc["content_sha256"],
        "sender_name_shown": doc["sender_name_shown"], "prechecked": doc["prechecked"],
        "language": doc["language"],
    });
    let id = crate::jcs::canonicalize(&described)
        .map(|c| hex(&Sha256::digest(c)))
        .unwrap_or_default();
    let ok = doc["type"] == "collection_point"
        && doc["tenant"] == bundle.tenant.id.as_str()
        && doc["content_type"] == t.content_type.as_str()
        && doc["content_sha256"] == content_sha256.as_str()
        && doc["id"] == t.id.as_str()
        && id == t.id;
    report.check(
        format!("{what}: content and id"),
        ok,
        if ok {
            format!("{} bytes of {}", content.len(), t.content_type)
        } else {
            "the content or the id does not match its leaf".to_string()
        },
    )
}

/// A template's end of use as the bundle proves it: `Some(None)` in use at the checkpoint,
/// `Some(Some(retired_at))` retired by then, `None` when not proven (no map, or a retirement
/// leaf that is not this version's, or one the map does not name).
fn template_period(
    report: &mut Report,
    bundle: &Bundle,
    cp: &Checkpoint,
    root: Option<&Hash>,
    t: &crate::evidence::ProvenTemplate,
    what: &str,
) -> Option<Option<i64>> {
    let key = consent::collection_point_key(&bundle.tenant.id, &t.id);
    let named = match (root, &t.retirement) {
        (Some(root), Some(b)) => map_value(root, &key, b.bucket, &b.bucket_entries, &b.bucket_path),
        _ => Err("no subject map to prove its period of use against".into()),
    };
    let retired = match &t.retired {
        None => None,
        Some(proven) => {
            let what = format!("{what}: its retirement");
            check_leaf(report, &what, proven, cp, &bundle.checkpoint)?;
            let at =
                CollectionPointRetiredLeaf::parse(&B64.decode(&proven.leaf).unwrap_or_default())
                    .ok()
                    .filter(|l| {
                        l.tenant == bundle.tenant.id
                            && l.id == t.id
                            && l.subject == hex(&key)
                            && l.prev.is_none()
                    })
                    .and_then(|l| strict_millis(&l.retired_at));
            let leaf_ok = report.check(
                format!("{what}: this version's collection_point_retired leaf"),
                at.is_some(),
                format!("leaf {}", proven.leaf_index),
            );
            Some((proven.leaf_index, at.filter(|_| leaf_ok)?))
        }
    };
    let complete = named.as_ref().is_ok_and(|v| *v == retired.map(|(i, _)| i));
    report.check(
        format!("{what}: its retirement, complete"),
        complete,
        match named {
            Ok(v) => format!(
                "the map names {v:?} as its retirement; the bundle gives {:?}",
                retired.map(|(i, _)| i)
            ),
            Err(e) => e,
        },
    );
    complete.then_some(retired.map(|(_, at)| at))
}

/// The decisions: replayed from the events by the consent rules, every purpose the events touch
/// listed once, each as the bundle gives it.
fn check_decisions(
    report: &mut Report,
    bundle: &Bundle,
    cp: &Checkpoint,
    documents: &[(u64, ConsentLeaf)],
) {
    report.check(
        "events",
        !bundle.events.is_empty(),
        format!("{} event(s) of this address", bundle.events.len()),
    );
    // The decisions follow from the events, and every purpose the events touch has one.
    let replayed = consent::replay(documents.iter().map(|(i, leaf)| (*i, leaf)));
    for purpose in replayed.keys().filter(|p| p.as_str() != consent::ALL) {
        let listed = bundle
            .decisions
            .iter()
            .filter(|d| &d.purpose == purpose)
            .count();
        report.check(
            format!("decision for {purpose} is given"),
            listed == 1,
            format!("the events set a state for it; the bundle lists it {listed} time(s)"),
        );
    }
    report.notes.push(format!(
        "decisions and history are as of tree size {}: an event recorded later is not covered; \
         check a newer checkpoint with --trusted-checkpoint to know how recent that is",
        cp.size
    ));
    for given in &bundle.decisions {
        let expected = decision(&replayed, &given.purpose);
        report.check(
            format!("decision for {}", given.purpose),
            expected == *given,
            if expected == *given {
                format!("may_send {} ({})", given.may_send, given.status)
            } else {
                format!(
                    "the events give may_send {} ({}), the bundle says {} ({})",
                    expected.may_send, expected.status, given.may_send, given.status
                )
            },
        );
    }
}

/// The checkpoint's last leaf is a `subject_map` leaf covering every leaf before it; returns
/// the map root it states.
pub(crate) fn check_map_leaf(
    report: &mut Report,
    map_leaf: &super::ProvenLeaf,
    checkpoint_note: &str,
    cp: &Checkpoint,
) -> Option<map::MapLeaf> {
    let what = "subject map";
    let last_leaf = cp.size.checked_sub(1);
    if !report.check(
        format!("{what}: is the checkpoint's last leaf"),
        Some(map_leaf.leaf_index) == last_leaf,
        format!("leaf {} of {}", map_leaf.leaf_index, cp.size),
    ) {
        return None;
    }
    let doc = check_leaf(report, what, map_leaf, cp, checkpoint_note)?;
    let stated = B64
        .decode(&map_leaf.leaf)
        .ok()
        .and_then(|bytes| map::map_leaf(&bytes))
        .filter(|m| m.covers == map_leaf.leaf_index);
    report.check(
        format!("{what}: leaf"),
        stated.is_some(),
        if stated.is_some() {
            format!(
                "covers leaves 0..{}, {} subjects",
                map_leaf.leaf_index, doc["subjects"]
            )
        } else {
            "not a subject_map leaf covering every leaf before it".to_string()
        },
    );
    stated
}

/// What the map with `root` says of `key`, from a bucket proof as bundles carry it.
fn map_value(
    root: &Hash,
    key: &Hash,
    bucket: u32,
    entries: &str,
    path: &[String],
) -> Result<Option<u64>, String> {
    let entries = B64
        .decode(entries)
        .map_err(|_| "the bucket is not base64")?;
    let path: Vec<Hash> = path
        .iter()
        .map(|h| b64_hash(h))
        .collect::<Option<_>>()
        .ok_or("the bucket path is not base64 hashes")?;
    if bucket as usize != map::bucket_of(key) {
        return Err(format!(
            "bucket {bucket} is not the key's bucket {}",
            map::bucket_of(key)
        ));
    }
    map::verify_map_proof(root, key, &entries, &path)
}

/// Checks that the bundle's events are all the subject's events up to the checkpoint: the map
/// (with `root`) names the bundle's last event as the subject's latest (the chain, checked
/// before, links it back to the first).
fn check_completeness(
    report: &mut Report,
    bundle: &Bundle,
    root: &Hash,
    cp: &Checkpoint,
    commitment: &str,
    last_event: Option<u64>,
) {
    let c = &bundle.completeness;
    let key = crate::unhex32(commitment).unwrap_or_default();
    let value = map_value(root, &key, c.bucket, &c.bucket_entries, &c.bucket_path);
    let at = |i: Option<u64>| i.map_or("none".to_string(), |i| format!("leaf {i}"));
    let (ok, detail) = match value {
        Err(e) => (false, e),
        Ok(latest) if latest == last_event => (
            true,
            format!(
                "the map names {} as the subject's latest event; with the chain, the bundle \
                 holds every event of this address up to tree size {}",
                at(latest),
                cp.size
            ),
        ),
        Ok(latest) => (
            false,
            format!(
                "the map names {} as the subject's latest event, but the bundle ends at {}: \
                 events are missing",
                at(latest),
                at(last_event)
            ),
        ),
    };
    report.check("complete: no event of this address is missing", ok, detail);
}

/// Checks a proven leaf; returns its JSON document when it holds.
fn check_leaf(
    report: &mut Report,
    what: &str,
    leaf: &super::ProvenLeaf,
    cp: &Checkpoint,
    checkpoint_note: &str,
) -> Option<Value> {
    check_leaf_in(report, what, leaf, cp, Some(checkpoint_note))
}

/// [`check_leaf`], where `tlog` is the checkpoint note the leaf's `tlog-proof@v1` text must
/// hold, or `None` for a leaf that carries none (a whole-tenant export's subject lines: their
/// checkpoint is the header's, once).
fn check_leaf_in(
    report: &mut Report,
    what: &str,
    leaf: &super::ProvenLeaf,
    cp: &Checkpoint,
    tlog: Option<&str>,
) -> Option<Value> {
    let Ok(bytes) = B64.decode(&leaf.leaf) else {
        report.check(format!("{what}: leaf"), false, "not base64");
        return None;
    };
    // An index every JSON reader reads alike (RFC 7493 I-JSON: integers within ±(2^53 − 1)), so
    // that a reader with only doubles, as JavaScript's, does not prove another leaf.
    if leaf.leaf_index > crate::jcs::MAX_SAFE_INTEGER {
        report.check(
            format!("{what}: leaf index"),
            false,
            format!(
                "{} is beyond 2^53 − 1, which not every JSON reader reads exactly (RFC 7493)",
                leaf.leaf_index
            ),
        );
        return None;
    }
    let hash = leaf_hash(&bytes);
    if !report.check(
        format!("{what}: leaf hash"),
        Some(hash) == b64_hash(&leaf.leaf_hash),
        "RFC 9162 hash of the leaf bytes",
    ) {
        return None;
    }
    let path: Option<Vec<Hash>> = leaf.inclusion_proof.iter().map(|h| b64_hash(h)).collect();
    let included = path
        .as_ref()
        .is_some_and(|p| verify_inclusion(&hash, leaf.leaf_index, cp.size, p, &cp.root));
    report.check(
        format!("{what}: inclusion"),
        included,
        format!("in the tree of size {}", cp.size),
    );
    if let Some(checkpoint_note) = tlog {
        let tlog = parse_tlog_proof(&leaf.tlog_proof);
        let same = tlog.as_ref().is_ok_and(|t| {
            t.index == leaf.leaf_index
                && Some(&t.path) == path.as_ref()
                && t.checkpoint == checkpoint_note
        });
        report.check(
            format!("{what}: tlog-proof@v1"),
            same,
            match &tlog {
                Err(e) => e.clone(),
                Ok(_) if !same => "differs from the JSON proof or checkpoint".into(),
                Ok(_) => String::new(),
            },
        );
    }
    // Canonical (RFC 8785, integers only), as the log writes every leaf: no duplicate member,
    // no fraction, no stray whitespace or CRLF for two readers to read differently.
    let doc: Option<Value> = serde_json::from_slice(&bytes).ok();
    let canonical = doc
        .as_ref()
        .and_then(|d| crate::jcs::canonicalize(d).ok())
        .is_some_and(|c| c.as_bytes() == bytes.as_slice());
    report.check(
        format!("{what}: leaf is canonical JSON"),
        canonical,
        if canonical {
            ""
        } else {
            "not the RFC 8785 form of a JSON object with integer numbers only"
        },
    );
    doc.filter(|_| included && canonical)
}

/// With a policy: the bundle's witnessed checkpoint is signed by the log (one the policy lists),
/// cosigned by the policy's quorum, and extends the bundle's checkpoint.
pub(crate) fn check_witnessed(
    report: &mut Report,
    (witnessed, checkpoint_note): (Option<&super::Witnessed>, &str),
    verifier: &NoteVerifier,
    cp: &Checkpoint,
    policy: Option<&Policy>,
) {
    let Some(policy) = policy else {
        if witnessed.is_some() {
            report.notes.push(
                "the bundle carries witness cosignatures; give --policy to require them".into(),
            );
        }
        return;
    };
    if !policy.logs.is_empty() {
        let listed = policy
            .logs
            .iter()
            .any(|l| l.public_key() == verifier.public_key() && l.name() == verifier.name());
        report.check("the log is one the policy accepts", listed, verifier.name());
    }
    let what = "witnessed checkpoint";
    let Some(witnessed) = witnessed else {
        let none_needed = policy.quorum(checkpoint_note).satisfied;
        report.check(
            format!("{what}: quorum {}", policy.describe()),
            none_needed,
            "the bundle carries no checkpoint cosigned by witnesses",
        );
        return;
    };
    let later = match verifier.checkpoint(&witnessed.checkpoint) {
        Ok(later) => later,
        Err(e) => {
            report.check(format!("{what}: signed by the log"), false, e);
            return;
        }
    };
    let quorum = policy.quorum(&witnessed.checkpoint);
    report.check(
        format!("{what}: quorum {}", policy.describe()),
        quorum.satisfied,
        format!(
            "size {} cosigned by {}",
            later.size,
            if quorum.cosigned_by.is_empty() {
                "no witness of the policy".to_string()
            } else {
                quorum.cosigned_by.join(", ")
            }
        ),
    );
    let proof: Option<Vec<Hash>> = witnessed.consistency.iter().map(|h| b64_hash(h)).collect();
    let consistent = match proof {
        _ if later.size < cp.size => false,
        _ if later.size == cp.size => later.root == cp.root && witnessed.consistency.is_empty(),
        Some(proof) => verify_consistency(cp.size, later.size, &cp.root, &later.root, &proof),
        None => false,
    };
    if later.size > cp.size {
        report.notes.push(format!(
            "the witnesses' checkpoint (size {}) shows the bundle's tree (size {}) was not a split \
             view; events recorded after size {} are not in the bundle",
            later.size, cp.size, cp.size
        ));
    }
    report.check(
        format!("{what}: extends the bundle's checkpoint"),
        consistent,
        format!(
            "size {} is a prefix of the witnessed size {}",
            cp.size, later.size
        ),
    );
}

pub(crate) fn check_trusted(
    report: &mut Report,
    verifier: &NoteVerifier,
    cp: &Checkpoint,
    trusted: &Trusted,
) {
    let old = match open_checkpoint(verifier, &trusted.checkpoint) {
        Ok(old) => old,
        Err(e) => {
            report.check("trusted checkpoint", false, e);
            return;
        }
    };
    let (ok, detail) = if old.size > cp.size {
        // The bundle is older than what the regulator already trusts: events after its size
        // (an opt-out, say) would be missing from it.
        let consistent =
            verify_consistency(cp.size, old.size, &cp.root, &old.root, &trusted.consistency);
        report.check(
            "bundle is as recent as the trusted checkpoint",
            trusted.allow_older,
            format!(
                "the bundle's tree ({}) is older than the trusted one ({}): events since are not in it{}",
                cp.size,
                old.size,
                if trusted.allow_older { " (allowed)" } else { "; ask for a new bundle" }
            ),
        );
        (
            consistent,
            format!(
                "size {} is a prefix of the trusted size {}",
                cp.size, old.size
            ),
        )
    } else if old.size == cp.size {
        (
            old.root == cp.root,
            format!(
                "same size {}: the roots must be equal (else the log forked)",
                cp.size
            ),
        )
    } else if old.size == 0 {
        (
            old.root == crate::hash::empty_root() && trusted.consistency.is_empty(),
            "the trusted checkpoint is the empty tree".to_string(),
        )
    } else {
        (
            verify_consistency(old.size, cp.size, &old.root, &cp.root, &trusted.consistency),
            format!("size {} extends the trusted size {}", cp.size, old.size),
        )
    };
    report.check("consistent with the trusted checkpoint", ok, detail);
}

/// The decisions for `purposes` that the event leaves (in log order, with their indexes) give
/// by the consent rules ([`crate::consent`]) — how the bundle's decisions are made, and checked.
pub fn decisions_from_leaves(
    events: &[(u64, ConsentLeaf)],
    purposes: &[String],
) -> Vec<PurposeDecision> {
    let state = consent::replay(events.iter().map(|(i, leaf)| (*i, leaf)));
    purposes.iter().map(|p| decision(&state, p)).collect()
}

/// The decision for `purpose` from a replayed state.
pub(crate) fn decision(state: &SubjectState, purpose: &str) -> PurposeDecision {
    match consent::effective(state, purpose) {
        None => PurposeDecision {
            purpose: purpose.into(),
            may_send: false,
            status: consent::NO_STATUS.into(),
            event_id: None,
        },
        Some(s) => PurposeDecision {
            purpose: purpose.into(),
            may_send: s.may_send(),
            status: s.status.as_str().into(),
            event_id: Some(s.event_id.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{Policy, Report};

    /// The times both verifiers refuse and accept (`sdk/vectors/times.json`, which the
    /// TypeScript suite reads too).
    #[test]
    fn strict_times_refuse_impossible_dates() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/times.json");
        let vectors: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for bad in vectors["refused"].as_array().unwrap() {
            let bad = bad.as_str().unwrap();
            assert_eq!(super::strict_millis(bad), None, "{bad}");
        }
        for good in vectors["accepted"].as_array().unwrap() {
            let good = good.as_str().unwrap();
            assert!(super::strict_millis(good).is_some(), "{good}");
        }
    }

    type Verifier = fn(&[u8], &str, Option<&super::Trusted>, Option<&Policy>) -> Report;

    /// Checks every case of a golden file (`sdk/vectors/<file>`): `verifier` on its `member`
    /// (under the file's `policy`, if it has one) gives the verdict recorded when it was
    /// written — passed, and the failed items' names. The TypeScript suite reads the same files.
    fn golden(file: &str, member: &str, verifier: Verifier) -> usize {
        let vectors = read_vectors(file);
        let vkey = vectors["vkey"].as_str().unwrap();
        let policy = vectors["policy"]
            .as_str()
            .map(|text| Policy::parse(text).unwrap());
        let cases = vectors["cases"].as_array().unwrap();
        for case in cases {
            let document = serde_json::to_vec(&case[member]).unwrap();
            let report = verifier(&document, vkey, None, policy.as_ref());
            assert_eq!(
                serde_json::json!({"passed": report.passed(), "failed": report.failed()}),
                case["verdict"],
                "{file}: {}",
                case["name"]
            );
        }
        cases.len()
    }

    /// A golden file of `sdk/vectors/`, parsed.
    fn read_vectors(file: &str) -> serde_json::Value {
        let path = format!("{}/../vectors/{file}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// A number written with a fraction or an exponent is refused (the TypeScript verifier's
    /// test does the same to the same vector).
    #[test]
    fn a_bundle_whose_number_is_written_49_0_is_refused() {
        let vectors = read_vectors("bundles.json");
        let vkey = vectors["vkey"].as_str().unwrap();
        let valid = vectors["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["verdict"]["passed"] == true)
            .unwrap();
        let text = serde_json::to_string(&valid["bundle"]).unwrap();
        assert!(super::verify(text.as_bytes(), vkey, None, None).passed());
        let at = text.find("\"leaf_index\":").unwrap() + "\"leaf_index\":".len();
        let digits = text[at..].find(|c: char| !c.is_ascii_digit()).unwrap();
        for form in [".0", "e0", "E0"] {
            let written = format!("{}{form}{}", &text[..at + digits], &text[at + digits..]);
            let report = super::verify(written.as_bytes(), vkey, None, None);
            assert_eq!(report.failed(), ["bundle"], "{form}");
        }
    }

    /// Times are read strictly, the same in both verifiers.
    #[test]
    fn only_strict_rfc3339_times_are_read() {
        assert_eq!(
            super::strict_millis("2026-01-05T00:00:00Z"),
            Some(1_767_571_200_000)
        );
        assert_eq!(
            super::strict_millis("2026-01-05T09:00:00.5+09:00"),
            Some(1_767_571_200_500)
        );
        for bad in [
            "2026-01-05T00:00:00",
            "2026-01-05 00:00:00Z",
            "2026-01-05t00:00:00z",
            "2026-13-05T00:00:00Z",
            "2026-01-05T00:00:00.Z",
        ] {
            assert_eq!(super::strict_millis(bad), None, "{bad}");
        }
    }

    /// Bundles from a real log, valid, tampered and with leaves that are not canonical JSON.
    #[test]
    fn verdicts_on_the_golden_vectors_are_stable() {
        assert!(golden("bundles.json", "bundle", super::verify) > 10);
    }

    /// Bundles of a history begun before labels, through its relabelling, and altered.
    #[test]
    fn verdicts_on_the_golden_relabelled_bundles_are_stable() {
        assert!(golden("relabelled.json", "bundle", super::verify) >= 5);
    }

    /// Send decisions with their proofs as the server gave them, and altered.
    #[test]
    fn verdicts_on_the_golden_decisions_are_stable() {
        assert!(golden("decisions.json", "answer", super::verify_decision) > 3);
    }

    /// Entries in a recorded campaign check as served, altered, malformed, and answered from
    /// edited rows.
    #[test]
    fn verdicts_on_the_golden_campaign_proofs_are_stable() {
        assert!(golden("campaigns.json", "proof", super::verify_campaign) > 5);
    }

    /// Under the policy naming the log's witness, an honest bundle or campaign proof passes the
    /// time bounds and a back-dated one fails them.
    #[test]
    fn verdicts_on_the_golden_witnessed_documents_are_stable() {
        // The third: the back-dated bundle with its earlier checkpoints left out passes (with a
        // note): only an auditing witness catches that.
        assert_eq!(
            golden("witnessed-events.json", "document", super::verify),
            3
        );
        assert_eq!(
            golden(
                "witnessed-campaigns.json",
                "document",
                super::verify_campaign
            ),
            2
        );
        // A future-dated erasure fails whichever trees the bundle carries.
        assert_eq!(
            golden("witnessed-future.json", "document", super::verify),
            3
        );
    }
}
