//! Whole-tenant evidence (`consent-ledger/tenant-evidence/v1`, `docs/evidence-format.md`): the
//! JSON lines the service streams for every subject of one tenant as of one checkpoint, and
//! their streaming verifier. The first line is a [`TenantHeader`]: the checkpoint, its subject
//! map leaf, the directory's bucket for the tenant (its map's root and subject count), the log's
//! VRF key. Each further line is a [`SubjectRecord`], in strictly increasing key order: a key,
//! its head as of the checkpoint, its chain of leaves with inclusion proofs, and the subject's
//! opening where it is kept. The verifier recomputes the tenant's map root from the lines
//! (`tenants::RootBuilder`, constant memory) and compares it with the directory's: a subject
//! left out, added, or shown with an older head fails. Pure, as `verify.rs`.

use std::collections::HashMap;

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde::{Deserialize, Serialize};

use super::verify::{
    check_erasures, check_events, check_evidence, check_holds, check_map_leaf, check_opening,
    check_parameters, check_relabel, check_trusted, check_witnessed, decision, open_signed, Closed,
    LogKey, RelabelParts, Report, Trusted,
};
use super::{
    Holds, LogIdentity, Opening, Parameters, ProvenLeaf, PurposeDecision, TenantIdentity, Witnessed,
};
use crate::consent::{self, LegalHoldLeaf};
use crate::hash::Hash;
use crate::note::Checkpoint;
use crate::policy::Policy;
use crate::tenants::{verify_directory_proof, RootBuilder};

/// The `format` of a whole-tenant export's header.
pub const TENANT_FORMAT: &str = "consent-ledger/tenant-evidence/v1";

/// How many failing subjects a report lists one by one (the rest are counted).
const LISTED_FAILURES: usize = 50;

/// The first line of a whole-tenant export.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantHeader {
    /// Always `consent-ledger/tenant-evidence/v1`.
    pub format: String,
    /// When the export began (RFC 3339).
    pub generated_at: String,
    /// The log: origin and verifier key.
    pub log: LogIdentity,
    /// The signed checkpoint every proof is against (C2SP signed note); it ends with a
    /// `subject_map` leaf.
    pub checkpoint: String,
    /// The sender.
    pub tenant: TenantIdentity,
    /// The checkpoint's last leaf, the `subject_map` leaf, with its proof: its `tenants` is the
    /// directory's root.
    pub map_leaf: ProvenLeaf,
    /// The directory's bucket for the tenant: its map's root and subject count.
    pub directory: DirectoryBucket,
    /// How many subject lines follow: the directory's count.
    pub subjects: u64,
    /// The log's VRF key, proven its only one (as in a bundle).
    pub parameters: Parameters,
    /// The tenant's legal holds up to the checkpoint, proven complete (as in a bundle): what
    /// each erasure's retention period had to wait for.
    pub holds: Holds,
    /// When the log has witnesses: a checkpoint they cosigned that extends this one (as in a
    /// bundle), for `--policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<Witnessed>,
}

/// A directory bucket with its path (`tenants::DirectoryProof`, base64).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectoryBucket {
    /// The bucket: the first byte of the tenant's key.
    pub bucket: u32,
    /// The bucket's entries (`tenant key ‖ map root ‖ u64be(subjects)`, in key order), base64.
    pub entries: String,
    /// The bucket's RFC 9162 inclusion path in the directory tree, base64, 8 hashes.
    pub path: Vec<String>,
}

/// One subject of the tenant as of the header's checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectRecord {
    /// The subject key (hex): what its leaves name as `subject`.
    pub key: String,
    /// Its latest leaf as of the checkpoint (what the tenant's map holds for it).
    pub head: u64,
    /// Its chain as the log links it, oldest first, ending at `head`, each leaf with its proof.
    pub events: Vec<ProvenLeaf>,
    /// The opening (address, VRF proof, salt, evidence); `null` only when the address was
    /// erased (the chain holds an erasure leaf), or for a salted commitment whose history began
    /// before the log's VRF key.
    pub subject: Option<Opening>,
}

/// What the verifier found of one subject line.
#[derive(Clone, Debug)]
pub struct SubjectOutcome {
    /// The key (hex) the line gives, as given.
    pub key: String,
    /// The opened address, if any.
    pub email: Option<String>,
    /// The decisions its events give for each of the tenant's purposes (the consent rules).
    pub decisions: Vec<PurposeDecision>,
    /// Whether every check of the line held.
    pub ok: bool,
}

/// What a whole-tenant export is checked against, besides itself.
#[derive(Clone, Copy, Default)]
pub struct Anchors<'a> {
    /// A checkpoint the regulator already trusts, with the consistency proof to it.
    pub trusted: Option<&'a Trusted>,
    /// A C2SP tlog-policy: the export must carry a checkpoint its quorum cosigned.
    pub policy: Option<&'a Policy>,
    /// The tenant asked for: the export must be of exactly it.
    pub tenant: Option<&'a str>,
}

/// One line's own checks, before what links it to the others.
#[derive(Default)]
struct Checked {
    report: Report,
    parsed: bool,
    key: String,
    parsed_key: Option<Hash>,
    head: u64,
    email: Option<String>,
    decisions: Vec<PurposeDecision>,
    unopened: bool,
    /// A salted commitment's line from before labels: its key and head.
    salted: Option<(Hash, u64)>,
    /// A relabelling in the chain: the salted commitment and the relabel's `prev`.
    relabelled: Option<(Hash, u64)>,
}

/// Verifies a whole-tenant export line by line, in memory that does not grow with the tenant
/// (only with its relabelled histories from before the log's VRF key whose two lines are apart:
/// 40 bytes each, until the second is read).
pub struct TenantVerifier {
    report: Report,
    cp: Checkpoint,
    tenant: String,
    purposes: Vec<String>,
    key: LogKey,
    map_root: Hash,
    holds: Option<Vec<(u64, LegalHoldLeaf)>>,
    expected: Option<(Hash, u64)>,
    stated: u64,
    builder: Option<RootBuilder>,
    /// Relabellings whose salted commitment's line is still to come: commitment → the leaf its
    /// history must end at (the relabel's `prev`).
    relabels: HashMap<Hash, u64>,
    /// Salted commitments' lines read before a relabelling named them: commitment → head.
    salted: HashMap<Hash, u64>,
    lines: u64,
    failed: u64,
    unopened: u64,
    noted: u64,
}

impl TenantVerifier {
    /// Checks the header line against the verifier key `vkey` and the `anchors`. A header that
    /// does not hold gives its report as the error: nothing after it can be checked.
    pub fn new(header: &[u8], vkey: &str, anchors: Anchors<'_>) -> Result<Self, Report> {
        let mut report = Report::default();
        let header: TenantHeader = match serde_json::from_slice(header) {
            Ok(h) => h,
            Err(e) => {
                report.check("header", false, format!("not a whole-tenant export: {e}"));
                return Err(report);
            }
        };
        let Some((verifier, cp)) = open_signed(
            &mut report,
            (TENANT_FORMAT, &header.format),
            vkey,
            &header.checkpoint,
        ) else {
            return Err(report);
        };
        if let Some(asked) = anchors.tenant {
            report.check(
                "tenant: the one asked about",
                header.tenant.id == asked,
                format!(
                    "the export is of tenant {}, asked: {asked}",
                    header.tenant.id
                ),
            );
        }
        if let Some(trusted) = anchors.trusted {
            check_trusted(&mut report, &verifier, &cp, trusted);
        }
        check_witnessed(
            &mut report,
            (header.witnessed.as_ref(), &header.checkpoint),
            &verifier,
            &cp,
            anchors.policy,
        );
        let map = check_map_leaf(&mut report, &header.map_leaf, &header.checkpoint, &cp);
        let key = map.and_then(|m| {
            check_parameters(
                &mut report,
                Some(&header.parameters),
                &header.checkpoint,
                &cp,
                &m.root,
            )
        });
        let expected = match map.map(|m| m.tenants) {
            None => None,
            Some(None) => {
                report.check(
                    "tenant directory",
                    false,
                    "the map leaf states no tenants' root (a log from before it): the set of \
                     the tenant's subjects cannot be proven",
                );
                None
            }
            Some(Some(root)) => directory(&mut report, &header, &root),
        };
        let holds = map.and_then(|m| {
            check_holds(
                &mut report,
                Some(&header.holds),
                &header.tenant.id,
                &header.checkpoint,
                &cp,
                &m.root,
            )
        });
        if !report.passed() {
            return Err(report);
        }
        Ok(TenantVerifier {
            report,
            cp,
            tenant: header.tenant.id,
            purposes: header
                .tenant
                .purposes
                .into_iter()
                .map(|p| p.purpose)
                .collect(),
            key,
            map_root: map.map(|m| m.root).unwrap_or_default(),
            holds,
            expected: expected.flatten(),
            stated: header.subjects,
            builder: Some(RootBuilder::new()),
            relabels: HashMap::new(),
            salted: HashMap::new(),
            lines: 0,
            failed: 0,
            unopened: 0,
            noted: 0,
        })
    }

    /// The tenant's id, as the header and every leaf name it.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The tenant's purposes, in the header's order (the columns of a subjects table).
    pub fn purposes(&self) -> &[String] {
        &self.purposes
    }

    /// Checks one subject line.
    pub fn push(&mut self, line: &[u8]) -> SubjectOutcome {
        let checked = self.check(line);
        self.absorb(checked)
    }

    /// Checks subject lines in order, the checks of each line alone on every core (its VRF
    /// proof and inclusion proofs are most of the work), what links them in order.
    pub fn push_all(&mut self, lines: &[Vec<u8>]) -> Vec<SubjectOutcome> {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let size = lines.len().div_ceil(workers).max(1);
        let checked: Vec<Checked> = std::thread::scope(|scope| {
            let this = &*self;
            let parts: Vec<_> = lines
                .chunks(size)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|l| this.check(l)).collect::<Vec<_>>())
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        checked.into_iter().map(|c| self.absorb(c)).collect()
    }

    /// What links a checked line to the others, in order: its key after the one before (and
    /// into the map being rebuilt), a relabelling matched with its salted commitment's line; then
    /// its failures and notes into the report.
    fn absorb(&mut self, mut c: Checked) -> SubjectOutcome {
        self.lines += 1;
        let report = &mut c.report;
        let in_order = match (&c.parsed_key, self.builder.as_mut()) {
            (Some(key), Some(builder)) => builder.push(key, c.head),
            _ if !c.parsed => Ok(()),
            _ => Err(format!("{:?} is not a 32-byte hex key", c.key)),
        };
        if let Err(e) = in_order {
            report.check("key order", false, e);
        }
        if c.unopened {
            self.unopened += 1;
        }
        if let Some((key, head)) = c.salted {
            match self.relabels.remove(&key) {
                Some(prev) => closed(report, &key, head, prev),
                None => {
                    self.salted.insert(key, head);
                }
            }
        }
        if let Some((from, prev)) = c.relabelled {
            match self.salted.remove(&from) {
                Some(head) => closed(report, &from, head, prev),
                None => {
                    self.relabels.insert(from, prev);
                }
            }
        }
        let ok = report.passed();
        let at = format!("line {} (subject {})", self.lines + 1, c.key);
        if !ok {
            self.failed += 1;
            if self.failed as usize <= LISTED_FAILURES {
                for item in c.report.items.into_iter().filter(|i| !i.ok) {
                    self.report
                        .check(format!("{at}: {}", item.what), false, item.detail);
                }
            }
        }
        // What the bundle verifier notes of a subject (evidence withheld, imported or back-dated
        // events, exception bases): the first subjects' notes, the rest counted.
        if !c.report.notes.is_empty() {
            self.noted += 1;
            if self.noted as usize <= LISTED_FAILURES {
                let notes = c.report.notes.into_iter().map(|n| format!("{at}: {n}"));
                self.report.notes.extend(notes);
            }
        }
        SubjectOutcome {
            key: c.key,
            email: c.email,
            decisions: c.decisions,
            ok,
        }
    }

    /// The checks of one line alone (nothing of the lines around it).
    fn check(&self, line: &[u8]) -> Checked {
        let mut c = Checked::default();
        let report = &mut c.report;
        let record: SubjectRecord = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                report.check("subject line", false, format!("not a subject record: {e}"));
                return c;
            }
        };
        c.parsed = true;
        c.parsed_key = crate::unhex32(&record.key);
        c.head = record.head;
        let last = record.events.last().map(|e| e.leaf_index);
        report.check(
            "head",
            last == Some(record.head),
            format!(
                "the line's head is leaf {}, its chain ends at {last:?}",
                record.head
            ),
        );
        let (events, erasures, relabel, _) = check_events(
            report,
            &record.events,
            &self.tenant,
            None,
            &self.cp,
            &record.key,
        );
        c.email = match &record.subject {
            Some(opening) => {
                let named = check_opening(report, opening, &self.tenant, self.key);
                report.check(
                    "subject label is the line's key",
                    named == record.key,
                    format!("the opening is of {named}, the line of {}", record.key),
                );
                check_evidence(report, opening, &events, &erasures);
                Some(opening.email.clone())
            }
            None => {
                // Only an erased address, or a history under a salted commitment begun before
                // the log's VRF key, has no opening: any other would hide whose events they are.
                let first = record.events.first().map(|e| e.leaf_index);
                let pre_label = relabel.is_none()
                    && match self.key {
                        Some(Some((parameters, _))) => first.is_some_and(|f| f < parameters),
                        Some(None) => true,
                        None => false,
                    };
                let erased = !erasures.is_empty();
                report.check(
                    "opening",
                    erased || pre_label,
                    if erased {
                        "none: the address was erased"
                    } else if pre_label {
                        "none: a salted commitment from before the log's VRF key"
                    } else {
                        "none, though the address was not erased: whose events they are is \
                         withheld"
                    },
                );
                c.unopened = true;
                if pre_label {
                    c.salted = c.parsed_key.map(|key| (key, record.head));
                }
                None
            }
        };
        if let Some(relabel) = &relabel {
            check_relabel(
                report,
                RelabelParts {
                    tenant_id: &self.tenant,
                    opening: record.subject.as_ref(),
                    chain: &record.events,
                    closed: Closed::Line,
                },
                &self.map_root,
                self.key,
                relabel,
                &erasures,
            );
            c.relabelled = crate::unhex32(&relabel.1.from).map(|from| (from, relabel.1.prev));
        }
        check_erasures(report, &events, &erasures, self.holds.as_deref());
        // Every purpose the events set a state for is one of the tenant's: else the table of
        // decisions would leave it out.
        let state = consent::replay(events.iter().map(|(i, leaf)| (*i, leaf)));
        for purpose in state.keys().filter(|p| p.as_str() != consent::ALL) {
            report.check(
                format!("purpose {purpose}"),
                self.purposes.contains(purpose),
                "the events set a state for it; the header's tenant does not list it",
            );
        }
        c.decisions = self.purposes.iter().map(|p| decision(&state, p)).collect();
        c.key = record.key;
        c
    }

    /// The report: the header's checks, each failing line's, and the completeness of the set —
    /// the lines' keys and heads give the root and count the directory states.
    pub fn finish(mut self) -> Report {
        let (root, count) = self
            .builder
            .take()
            .map(RootBuilder::finish)
            .unwrap_or_default();
        for (from, prev) in std::mem::take(&mut self.relabels) {
            self.failed += 1;
            self.report.check(
                "relabelling: the salted commitment is closed",
                false,
                format!(
                    "{} was relabelled after leaf {prev}, but no line of the export has it",
                    crate::hex(&from)
                ),
            );
        }
        self.report.check(
            "subjects",
            self.failed == 0,
            if self.failed == 0 {
                format!(
                    "{} lines: each chain proven in the checkpoint and linked, each label \
                     opened by its VRF proof",
                    self.lines
                )
            } else {
                format!(
                    "{} of {} lines fail (the first {LISTED_FAILURES} are listed above)",
                    self.failed, self.lines
                )
            },
        );
        let (want_root, want_count) = self
            .expected
            .unwrap_or((crate::tenants::empty_map_root(), 0));
        let complete = root == want_root && count == want_count && count == self.stated;
        self.report.check(
            "complete: every subject of the tenant, none missing",
            complete,
            if complete {
                format!(
                    "{count} subjects give the root of the tenant's map in the directory of the \
                     checkpoint of size {}",
                    self.cp.size
                )
            } else {
                format!(
                    "{count} lines give a map the directory does not state (it states {want_count} \
                     subjects, the header {}): subjects are missing, added or out of date, or the \
                     export was cut short (resume it with size= and after=)",
                    self.stated
                )
            },
        );
        if self.noted as usize > LISTED_FAILURES {
            self.report.notes.push(format!(
                "{} subjects have notes; those of the first {LISTED_FAILURES} are shown",
                self.noted
            ));
        }
        if self.unopened > 0 {
            self.report.notes.push(format!(
                "{} subject(s) without an opening (the address erased, or a salted commitment \
                 from before the log's VRF key): their events are shown, not whose they were",
                self.unopened
            ));
        }
        self.report.notes.push(
            "guarantees — the verifier alone: these are all the tenant's subjects the log's \
             subject map states at this checkpoint, each history complete and replayed by the \
             consent rules; against the operator only if someone audits the log (auditing \
             witnesses with --policy, or `monitor --audit-map`), and as recent as a trusted \
             checkpoint only with --trusted-checkpoint. Not checked here: the screens \
             (collection points) and the witnesses' bounds on each event's time — an address's \
             bundle (GET /v1/evidence) carries those"
                .into(),
        );
        self.report
    }
}

/// The relabelling item: the salted commitment's head is the relabel's `prev`.
fn closed(report: &mut Report, from: &Hash, head: u64, prev: u64) {
    report.check(
        "relabelling: the salted commitment is closed",
        head == prev,
        format!(
            "{}'s latest leaf is {head}, the relabelling followed leaf {prev}{}",
            crate::hex(from),
            if head == prev {
                ""
            } else {
                ": leaves named it after its relabelling (a second history)"
            }
        ),
    );
}

/// The directory's word on the tenant: its map root and count, `None` when it has none.
fn directory(
    report: &mut Report,
    header: &TenantHeader,
    root: &Hash,
) -> Option<Option<(Hash, u64)>> {
    let d = &header.directory;
    let bucket = crate::tenants::tenant_key(&header.tenant.id)[0];
    if d.bucket != u32::from(bucket) {
        report.check(
            "tenant directory",
            false,
            format!(
                "bucket {} is not the tenant key's bucket {bucket}",
                d.bucket
            ),
        );
        return None;
    }
    let entries = B64.decode(&d.entries).unwrap_or_default();
    let path: Option<Vec<Hash>> = d.path.iter().map(|h| super::verify::b64_hash(h)).collect();
    let found = path
        .ok_or_else(|| "the directory path is not base64 hashes".to_string())
        .and_then(|path| verify_directory_proof(root, &header.tenant.id, &entries, &path));
    match found {
        Ok(found) => {
            report.check(
                "tenant directory",
                true,
                match found {
                    Some((_, count)) => format!("the tenant has {count} subjects"),
                    None => "the tenant has no subjects".to_string(),
                },
            );
            Some(found)
        }
        Err(e) => {
            report.check("tenant directory", false, e);
            None
        }
    }
}
