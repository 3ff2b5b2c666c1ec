//! A map auditor: what makes the subject map worth trusting. It reads every leaf of the log in
//! order (from the entry tiles), rebuilds the subject map itself, and checks each `subject_map`
//! leaf against the map of the leaves before it — a log that leaves an address's newest event
//! out of its map (to let a bundle hide it) is caught here, and so is an event whose `prev` is
//! not its subject's latest leaf before it (a chain that skips an opt-out). It also recomputes
//! the tree's root from the leaves, so the leaves it audited are the ones the checkpoints sign.
//! And it replays the consent rules for every subject and the tenants' legal holds, so that an
//! `erasure` leaf the law did not allow (consent in force, the retention period not run, a period
//! its tenant's holds do not give) is caught even for an address no bundle will ever show.
//! Its memory (the map entries, the tree's right edge, the subjects' states and the holds) lives
//! in a file in the monitor's state directory.
//! Fetching is the caller's; no network, no database.

use consent_ledger_sdk::consent::{
    self, erasure_refused, ConsentLeaf, ErasureLeaf, ErasureRefused, LegalHoldLeaf, PurposeState,
    RelabelLeaf, Status, SubjectState,
};
use consent_ledger_sdk::evidence::verify::{strict_millis, TIME_GRACE_MS};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::hash::{empty_root, leaf_hash, node_hash, Hash};
use super::map::{self, SubjectMap};
use super::monitor::Alarm;
use super::note::Checkpoint;

/// The auditor of one log.
pub struct MapAuditor {
    map: SubjectMap,
    /// The right edge of the tree: perfect subtrees `(height, hash)`, largest first.
    edge: Vec<(u32, Hash)>,
    size: u64,
    /// Heads of the leaves read since the last map leaf (kept across a failed fetch, so that a
    /// half-done pass goes on where it stopped).
    pending: HashMap<Hash, (u64, Option<String>)>,
    /// Whether the last leaf audited is a `subject_map` leaf (as every checkpoint's must be).
    ends_with_map: bool,
    /// Whether the auditor's tenant maps hold every subject's tenant (it audited from leaf 0,
    /// or its state file kept them): only then is a map leaf's `tenants` compared.
    tenants_known: bool,
    /// Whether a map leaf already stated `tenants`: a later one may not leave it out.
    tenants_stated: bool,
    /// What the consent rules say of each subject so far.
    subjects: HashMap<Hash, Subject>,
    /// Hold keys whose latest `legal_hold` leaf is on.
    /// Tenants' hold keys with a hold in force, and its order's date (midnight UTC, Unix ms;
    /// `None` from a state file written before orders were kept: the longer wait).
    holds: std::collections::HashMap<Hash, Option<i64>>,
    /// Salted commitments a `relabel` leaf moved to a label: no leaf may name them again.
    closed: std::collections::HashSet<Hash>,
    path: PathBuf,
}

/// The pending heads, taken out as the map stages them.
fn drained(
    pending: &mut HashMap<Hash, (u64, Option<String>)>,
) -> impl Iterator<Item = (Hash, u64, Option<String>)> + '_ {
    pending
        .drain()
        .map(|(key, (index, tenant))| (key, index, tenant))
}

impl MapAuditor {
    /// The auditor remembering in `dir/subject-map.audit` (a fresh one starts at leaf 0).
    pub fn open(dir: &Path) -> Result<Self, Alarm> {
        let path = dir.join("subject-map.audit");
        let state = |e: String| Alarm::State(format!("{}: {e}", path.display()));
        let mut auditor = Self {
            map: SubjectMap::from_heads(0, []),
            edge: Vec::new(),
            size: 0,
            pending: HashMap::new(),
            ends_with_map: false,
            tenants_known: true,
            tenants_stated: false,
            subjects: HashMap::new(),
            holds: Default::default(),
            closed: Default::default(),
            path: path.clone(),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(auditor),
            Err(e) => return Err(state(e.to_string())),
        };
        let mut heads = Vec::new();
        let mut tenants: HashMap<Hash, String> = HashMap::new();
        // A state file from before the tenants' maps holds none of them.
        auditor.tenants_known = false;
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let hash =
                |w: &str| crate::unhex32(w).ok_or_else(|| state(format!("bad line {line:?}")));
            let number = |w: &str| {
                w.parse::<u64>()
                    .map_err(|_| state(format!("bad line {line:?}")))
            };
            match words.as_slice() {
                ["size", n] => auditor.size = number(n)?,
                ["ends_with_map"] => auditor.ends_with_map = true,
                ["tenants_known"] => auditor.tenants_known = true,
                ["tenants_stated"] => auditor.tenants_stated = true,
                ["edge", h, hash_hex] => auditor.edge.push((number(h)? as u32, hash(hash_hex)?)),
                ["head", key, index] => heads.push((hash(key)?, number(index)?)),
                ["tenant", key, tenant] => {
                    tenants.insert(hash(key)?, tenant.to_string());
                }
                ["hold", key] => {
                    auditor.holds.insert(hash(key)?, None);
                }
                ["hold", key, order] => {
                    let order = order
                        .parse::<i64>()
                        .map_err(|_| state(format!("bad line {line:?}")))?;
                    auditor.holds.insert(hash(key)?, Some(order));
                }
                ["closed", key] => {
                    auditor.closed.insert(hash(key)?);
                }
                ["subject", key, ..] => {
                    // The rest of the line is one JSON value (the log's strings stay inside it).
                    let json = line.splitn(3, ' ').nth(2).unwrap_or_default();
                    let subject =
                        read_subject(json).ok_or_else(|| state(format!("bad line {line:?}")))?;
                    auditor.subjects.insert(hash(key)?, subject);
                }
                _ => return Err(state(format!("bad line {line:?}"))),
            }
        }
        auditor.map = SubjectMap::from_named_heads(
            auditor.size,
            heads
                .into_iter()
                .map(|(key, index)| (key, index, tenants.remove(&key))),
        );
        Ok(auditor)
    }

    /// Leaves audited so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the last leaf audited is a `subject_map` leaf: then the checkpoint of that size
    /// commits to a map the auditor checked, and bundles against it are complete.
    pub fn ends_with_map(&self) -> bool {
        self.ends_with_map
    }

    fn root(&self) -> Hash {
        let mut parts = self.edge.iter().rev();
        let Some((_, last)) = parts.next() else {
            return empty_root();
        };
        parts.fold(*last, |right, (_, left)| node_hash(left, &right))
    }

    /// Audits the leaves up to the checkpoint `cp` (`fetch(start, end)` gives leaves
    /// `start..end`, in chunks it chooses) and remembers how far it got. Returns how many subject
    /// map leaves it checked.
    pub fn advance(
        &mut self,
        cp: &Checkpoint,
        fetch: impl FnMut(u64, u64) -> Result<Vec<Vec<u8>>, String>,
    ) -> Result<u64, Alarm> {
        self.advance_since(cp, fetch, None)
    }

    /// As [`MapAuditor::advance`], for an auditing witness whose clock says `clock`: the time
    /// it last cosigned (Unix seconds, a tree without the new leaves), if it has, and now. A new
    /// leaf whose `recorded_at` is more than [`TIME_GRACE_MS`] before the former is back-dated
    /// (`Alarm::BackDated`); one more than that after now is future-dated (`Alarm::FutureDated`).
    pub fn advance_since(
        &mut self,
        cp: &Checkpoint,
        mut fetch: impl FnMut(u64, u64) -> Result<Vec<Vec<u8>>, String>,
        clock: Option<(Option<u64>, u64)>,
    ) -> Result<u64, Alarm> {
        if cp.size < self.size {
            return Err(Alarm::Shrank {
                seen: self.size,
                now: cp.size,
            });
        }
        let mut checked = 0;
        while self.size < cp.size {
            let leaves = fetch(self.size, cp.size).map_err(Alarm::Fetch)?;
            if leaves.is_empty() {
                return Err(Alarm::Fetch(format!("no leaves from {}", self.size)));
            }
            for leaf in leaves.into_iter().take((cp.size - self.size) as usize) {
                let index = self.size;
                if let Some((cosigned, now)) = clock {
                    out_of_time(index, &leaf, cosigned, now)?;
                }
                self.ends_with_map = false;
                if let Some(stated) = map::map_leaf(&leaf) {
                    self.ends_with_map = true;
                    let next = self.map.stage_named(index, drained(&mut self.pending));
                    // A map leaf from before the tenants' directory states none; once one
                    // stated it, every later one must.
                    let tenants_ok = match stated.tenants {
                        Some(t) => !self.tenants_known || t == next.tenants_root(),
                        None => !self.tenants_stated,
                    };
                    if stated.covers != index || stated.root != next.root() || !tenants_ok {
                        return Err(Alarm::MapMismatch(index));
                    }
                    self.tenants_stated |= stated.tenants.is_some();
                    self.map.apply(next);
                    checked += 1;
                } else if let Some(key) = map::leaf_subject(&leaf) {
                    self.take_subject_leaf(index, key, &leaf)?;
                }
                self.push(&leaf);
            }
        }
        if self.root() != cp.root {
            return Err(Alarm::EntriesMismatch(cp.size));
        }
        // Subjects named after the last map leaf go into the map now (it covers every leaf read).
        let next = self.map.stage_named(self.size, drained(&mut self.pending));
        self.map.apply(next);
        self.save()?;
        Ok(checked)
    }

    /// Takes in leaf `index`, which names subject `key`, after checking it. The chain rule: an
    /// event names its subject's latest event before it; a relabelling, the latest leaf of the
    /// salted commitment it closes (and its label has none: it begins the label's chain).
    fn take_subject_leaf(&mut self, index: u64, key: Hash, leaf: &[u8]) -> Result<(), Alarm> {
        let prev = map::leaf_prev(leaf).map_err(|e| Alarm::MalformedChain(index, e))?;
        if self.closed.contains(&key) {
            return Err(Alarm::MalformedChain(
                index,
                format!(
                    "it names the salted commitment {}, which a relabel leaf moved \
                     to a label: a second history of the address",
                    crate::hex(&key)
                ),
            ));
        }
        let relabel = RelabelLeaf::parse(leaf).ok();
        let head_of = |k: &Hash| {
            self.pending
                .get(k)
                .map(|(i, _)| *i)
                .or_else(|| self.map.head(k))
        };
        if let Some(head) = relabel.as_ref().and_then(|_| head_of(&key)) {
            return Err(Alarm::MalformedChain(
                index,
                format!(
                    "a relabel leaf for a label whose chain began at or before leaf \
                     {head}: two histories joined"
                ),
            ));
        }
        let from = match &relabel {
            Some(r) => Some(
                crate::unhex32(&r.from)
                    .ok_or_else(|| Alarm::MalformedChain(index, "its from is not a key".into()))?,
            ),
            None => None,
        };
        let head = head_of(from.as_ref().unwrap_or(&key));
        if prev != head {
            return Err(Alarm::ChainBroken {
                leaf: index,
                prev,
                head,
            });
        }
        // Judged before it is taken in, so that a refused leaf leaves no trace.
        self.apply_rules(index, &key, leaf)?;
        if let (Some(from), Some(relabel)) = (from, relabel) {
            // The subject's state goes on under its label.
            match self.subjects.remove(&from) {
                Some(s) if s.tenant == relabel.tenant => {
                    self.subjects.insert(key, s);
                }
                _ => {
                    return Err(Alarm::MalformedChain(
                        index,
                        "a relabel leaf for a commitment with no event of its tenant".into(),
                    ))
                }
            }
            self.closed.insert(from);
        }
        self.pending
            .insert(key, (index, consent_ledger_sdk::tenants::leaf_tenant(leaf)));
        Ok(())
    }

    /// Adds a leaf to the tree's right edge.
    fn push(&mut self, leaf: &[u8]) {
        let mut node = (0u32, leaf_hash(leaf));
        while let Some(&(height, left)) = self.edge.last() {
            if height != node.0 {
                break;
            }
            self.edge.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.edge.push(node);
        self.size += 1;
    }

    fn save(&self) -> Result<(), Alarm> {
        let state = |e: std::io::Error| Alarm::State(format!("{}: {e}", self.path.display()));
        let mut text = format!("size {}\n", self.size);
        if self.ends_with_map {
            text.push_str("ends_with_map\n");
        }
        if self.tenants_known {
            text.push_str("tenants_known\n");
        }
        if self.tenants_stated {
            text.push_str("tenants_stated\n");
        }
        for (h, hash) in &self.edge {
            text.push_str(&format!("edge {h} {}\n", crate::hex(hash)));
        }
        for (key, index) in self.map.entries() {
            text.push_str(&format!("head {} {index}\n", crate::hex(key)));
        }
        for (tenant, key) in self.map.tenants().members() {
            text.push_str(&format!("tenant {} {tenant}\n", crate::hex(key)));
        }
        for (key, order) in &self.holds {
            match order {
                Some(order) => text.push_str(&format!("hold {} {order}\n", crate::hex(key))),
                None => text.push_str(&format!("hold {}\n", crate::hex(key))),
            }
        }
        for key in &self.closed {
            text.push_str(&format!("closed {}\n", crate::hex(key)));
        }
        for (key, subject) in &self.subjects {
            text.push_str(&format!(
                "subject {} {}\n",
                crate::hex(key),
                write_subject(subject)
            ));
        }
        crate::write_atomically(&self.path, text.as_bytes()).map_err(state)
    }
}

impl MapAuditor {
    /// The consent rules and the holds, leaf by leaf: an event changes its subject's state, a
    /// hold its tenant's, and an erasure must be one the law allowed (as the verifier checks it
    /// in a bundle: `erasure_refused`, and the period the holds give).
    fn apply_rules(&mut self, index: u64, key: &Hash, leaf: &[u8]) -> Result<(), Alarm> {
        let time = |at: &str| {
            strict_millis(at).ok_or_else(|| {
                Alarm::MalformedChain(index, format!("recorded_at {at:?} is not an RFC 3339 time"))
            })
        };
        if let Ok(event) = ConsentLeaf::parse(leaf) {
            time(&event.recorded_at)?;
            let subject = self.subjects.entry(*key).or_insert_with(|| Subject {
                tenant: event.tenant.clone(),
                ..Subject::default()
            });
            if subject.tenant != event.tenant {
                return Err(Alarm::MalformedChain(
                    index,
                    format!(
                        "its tenant {:?} is not its subject's, {:?}",
                        event.tenant, subject.tenant
                    ),
                ));
            }
            let changes = consent::apply(&subject.state, index, &event);
            subject.state.extend(changes);
            subject.last = subject.last.max(time(event.counts_from())?);
        } else if let Ok(hold) = LegalHoldLeaf::parse(leaf) {
            if *key != consent::hold_key(&hold.tenant) {
                return Err(Alarm::MalformedChain(
                    index,
                    "a legal_hold leaf names another key than its tenant's hold key".into(),
                ));
            }
            match hold.on {
                true => self.holds.insert(*key, hold.order_millis()),
                false => self.holds.remove(key),
            };
        } else if let Ok(erasure) = ErasureLeaf::parse(leaf) {
            let unlawful = |why: String| Alarm::UnlawfulErasure { leaf: index, why };
            let Some(subject) = self
                .subjects
                .get(key)
                .filter(|s| s.tenant == erasure.tenant)
            else {
                return Err(unlawful(format!(
                    "it erases a subject with no event of the tenant {:?} before it",
                    erasure.tenant
                )));
            };
            let hold = self.holds.get(&consent::hold_key(&erasure.tenant));
            let due = match hold {
                Some(_) => consent::RETENTION_LEGAL_HOLD_DAYS,
                None => consent::RETENTION_DAYS,
            };
            // At least what the holds give (a longer wait is lawful).
            if erasure.retention_days < due || !KNOWN_PERIODS.contains(&erasure.retention_days) {
                return Err(unlawful(format!(
                    "it states {} days; the tenant's legal holds give {due}",
                    erasure.retention_days
                )));
            }
            let at = time(&erasure.recorded_at)?;
            let order = hold.copied().flatten();
            match erasure_refused(
                &subject.state,
                subject.last,
                erasure.retention_days,
                order,
                at,
            ) {
                None => {}
                Some(ErasureRefused::ConsentInForce(p)) => {
                    return Err(unlawful(format!("consent in force for {}", p.join(", "))))
                }
                Some(ErasureRefused::RetentionRunning(until)) => {
                    return Err(unlawful(format!(
                        "the retention period runs until {}",
                        crate::rfc3339(until)
                    )))
                }
            }
        }
        Ok(())
    }
}

const KNOWN_PERIODS: [u64; 2] = [consent::RETENTION_DAYS, consent::RETENTION_LEGAL_HOLD_DAYS];

/// What the auditor keeps of a subject: its tenant (from its first event), its state by the
/// consent rules, and its last event's `recorded_at` (Unix ms).
#[derive(Debug, Default)]
struct Subject {
    tenant: String,
    state: SubjectState,
    last: i64,
}

/// A subject as the auditor's file keeps it: one JSON value on one line (the log's strings,
/// whatever they hold, escaped inside it).
fn write_subject(subject: &Subject) -> String {
    let states: Vec<serde_json::Value> = subject
        .state
        .iter()
        .map(|(purpose, s)| {
            serde_json::json!([
                purpose,
                s.status.as_str(),
                s.basis.map(|b| b.as_str()),
                s.event_id,
                s.leaf_index,
                s.occurred_at,
                s.recorded_at
            ])
        })
        .collect();
    serde_json::json!({"tenant": subject.tenant, "last": subject.last, "states": states})
        .to_string()
}

fn read_subject(json: &str) -> Option<Subject> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let mut state = SubjectState::new();
    for s in v["states"].as_array()? {
        state.insert(
            s[0].as_str()?.to_string(),
            PurposeState {
                status: Status::parse(s[1].as_str()?)?,
                basis: match &s[2] {
                    serde_json::Value::Null => None,
                    b => Some(consent::Basis::parse(b.as_str()?)?),
                },
                event_id: s[3].as_str()?.to_string(),
                leaf_index: s[4].as_u64()?,
                occurred_at: s[5].as_i64()?,
                recorded_at: s[6].as_i64()?,
            },
        );
    }
    Some(Subject {
        tenant: v["tenant"].as_str()?.to_string(),
        state,
        last: v["last"].as_i64()?,
    })
}

/// Refuses a leaf whose top-level `recorded_at` (RFC 3339) is more than [`TIME_GRACE_MS`] before
/// `cosigned` or after `now` (Unix seconds), or is not RFC 3339. Leaves without one are not timed.
fn out_of_time(index: u64, leaf: &[u8], cosigned: Option<u64>, now: u64) -> Result<(), Alarm> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(leaf) else {
        return Ok(());
    };
    let Some(recorded) = doc.get("recorded_at").and_then(|v| v.as_str()) else {
        return Ok(());
    };
    let back_dated = || Alarm::BackDated {
        leaf: index,
        recorded_at: recorded.to_string(),
        cosigned: cosigned.unwrap_or(0),
    };
    let ms = strict_millis(recorded).ok_or_else(back_dated)?;
    if cosigned.is_some_and(|c| ms < c as i64 * 1000 - TIME_GRACE_MS) {
        return Err(back_dated());
    }
    if ms > now as i64 * 1000 + TIME_GRACE_MS {
        return Err(Alarm::FutureDated {
            leaf: index,
            recorded_at: recorded.to_string(),
            now,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log's strings stay inside the subject's JSON: a purpose or event id with spaces or a
    /// newline (which a malicious log may write) neither breaks the file nor adds lines to it.
    #[test]
    fn a_subject_round_trips_whatever_its_strings_hold() {
        let mut state = SubjectState::new();
        state.insert(
            "news\nsize 0\nhead x 1".into(),
            PurposeState {
                status: Status::Withdrawn,
                basis: None,
                event_id: "an id with spaces".into(),
                leaf_index: 7,
                occurred_at: 1,
                recorded_at: 2,
            },
        );
        let subject = Subject {
            tenant: "t 1".into(),
            state,
            last: 2,
        };
        let line = write_subject(&subject);
        assert!(!line.contains('\n'), "{line}");
        let back = read_subject(&line).unwrap();
        assert_eq!((back.tenant.as_str(), back.last), ("t 1", 2));
        assert_eq!(back.state, subject.state);
    }
}
