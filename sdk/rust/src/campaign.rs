//! Campaign receipts (`docs/log-format.md`, "campaign_check"): what a campaign's pre-flight check
//! was told, committed in one leaf. Each checked address gives one 41-byte entry — its subject
//! key, the status of the purpose, the deciding leaf — and the leaf holds the RFC 9162 root over
//! the entries in key order. Here: the leaf, the entries, their root and paths. Verifying a
//! receipt's proof is in [`crate::evidence::verify::verify_campaign`].

use serde::{Deserialize, Serialize};

use crate::consent::Status;
use crate::hash::{bounded_root, leaf_hash, Hash};
use crate::proof::{inclusion_proof, NodeSource};

/// The `type` of a campaign leaf.
pub const CAMPAIGN_LEAF_TYPE: &str = "campaign_check";
/// The format name of a campaign receipt's proof for one address.
pub const CAMPAIGN_PROOF_FORMAT: &str = "consent-ledger/campaign-proof/v1";
/// Bytes of an encoded entry: key (32) ‖ status (1) ‖ uint64_be(deciding leaf + 1, 0 for none).
pub const ENTRY_BYTES: usize = 41;

/// A `campaign_check` leaf (`v` = 1): the campaign's tenant, id, purpose, how many addresses were
/// checked, and the root over their entries. Its decisions are as of the leaves before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignLeaf {
    /// Always `campaign_check`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always 1.
    pub v: u64,
    /// The tenant.
    pub tenant: String,
    /// The campaign check's id.
    pub id: String,
    /// The purpose checked.
    pub purpose: String,
    /// How many entries (distinct valid addresses).
    pub addresses: u64,
    /// Hex RFC 9162 root over the entries in key order.
    pub root: String,
    /// RFC 3339 UTC: when sequenced.
    pub recorded_at: String,
}

impl CampaignLeaf {
    /// Parses a leaf strictly: exactly these members, `type` and `v` right, the bytes canonical.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let leaf: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if leaf.kind != CAMPAIGN_LEAF_TYPE || leaf.v != 1 {
            return Err(format!("not a {CAMPAIGN_LEAF_TYPE} leaf of version 1"));
        }
        let canonical = serde_json::to_value(&leaf)
            .ok()
            .and_then(|v| crate::jcs::canonicalize(&v).ok());
        if canonical.as_deref().map(str::as_bytes) != Some(bytes) {
            return Err("not the canonical form of a campaign_check leaf".into());
        }
        Ok(leaf)
    }
}

/// One checked address: its subject key, the purpose's status (`None`: no event, may not send)
/// and the leaf that decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The subject key (the address's label, or an older history's salted commitment).
    pub key: Hash,
    /// The status of the purpose, `None` for none.
    pub status: Option<Status>,
    /// The deciding leaf's index.
    pub deciding: Option<u64>,
}

fn status_code(status: Option<Status>) -> u8 {
    match status {
        None => 0,
        Some(Status::Pending) => 1,
        Some(Status::Granted) => 2,
        Some(Status::Withdrawn) => 3,
    }
}

impl Entry {
    /// May the campaign mail the address?
    pub fn may_send(&self) -> bool {
        self.status == Some(Status::Granted)
    }

    /// The 41 bytes: key ‖ status (0 none, 1 pending, 2 granted, 3 withdrawn) ‖
    /// uint64_be(deciding + 1), 0 when no leaf decided.
    pub fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[..32].copy_from_slice(&self.key);
        out[32] = status_code(self.status);
        let deciding = self.deciding.map_or(0, |i| i + 1);
        out[33..].copy_from_slice(&deciding.to_be_bytes());
        out
    }

    /// The entry of 41 bytes, if they are one (a known status; a deciding leaf exactly when
    /// there is a status).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; ENTRY_BYTES] = bytes.try_into().ok()?;
        let status = match bytes[32] {
            0 => None,
            1 => Some(Status::Pending),
            2 => Some(Status::Granted),
            3 => Some(Status::Withdrawn),
            _ => return None,
        };
        let deciding = u64::from_be_bytes(bytes[33..].try_into().ok()?);
        let deciding = deciding.checked_sub(1);
        if status.is_some() != deciding.is_some() {
            return None;
        }
        Some(Self {
            key: bytes[..32].try_into().ok()?,
            status,
            deciding,
        })
    }
}

/// Sorts entries by key and drops repeated keys (an address checked twice is one entry).
pub fn sorted(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by_key(|e| e.key);
    entries.dedup_by(|a, b| a.key == b.key);
    entries
}

/// The entries' leaf hashes, in their order.
fn hashes(entries: &[Entry]) -> Vec<Hash> {
    entries.iter().map(|e| leaf_hash(&e.encode())).collect()
}

/// The RFC 9162 root over `entries` (sorted, see [`sorted`]), each encoded as a leaf.
pub fn root(entries: &[Entry]) -> Hash {
    bounded_root(&hashes(entries))
}

struct InMemory(Vec<Hash>);

impl NodeSource for InMemory {
    type Error = std::convert::Infallible;

    fn node(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        let width = 1usize << level;
        let start = index as usize * width;
        Ok(bounded_root(&self.0[start..start + width]))
    }
}

/// The RFC 9162 inclusion path of entry `index` among `entries` (sorted).
pub fn path(entries: &[Entry], index: usize) -> Vec<Hash> {
    let mut nodes = InMemory(hashes(entries));
    let Ok(path) = inclusion_proof(&mut nodes, index as u64, entries.len() as u64);
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::verify_inclusion;
    use proptest::prelude::*;

    fn entry(n: u8, status: Option<Status>) -> Entry {
        Entry {
            key: [n; 32],
            status,
            deciding: status.map(|_| u64::from(n) * 7),
        }
    }

    #[test]
    fn an_entry_round_trips_through_its_41_bytes() {
        for status in [
            None,
            Some(Status::Pending),
            Some(Status::Granted),
            Some(Status::Withdrawn),
        ] {
            let e = entry(3, status);
            assert_eq!(Entry::decode(&e.encode()), Some(e));
        }
    }

    #[test]
    fn a_status_without_a_deciding_leaf_is_no_entry() {
        let mut bytes = entry(3, Some(Status::Granted)).encode();
        bytes[33..].copy_from_slice(&0u64.to_be_bytes());
        assert_eq!(Entry::decode(&bytes), None);
        bytes[32] = 9;
        assert_eq!(Entry::decode(&bytes), None);
    }

    #[test]
    fn an_address_checked_twice_is_one_entry() {
        let e = entry(1, None);
        assert_eq!(sorted(vec![entry(2, None), e, e]), vec![e, entry(2, None)]);
    }

    proptest! {
        /// Every entry's path leads to the root, for trees of every shape.
        #[test]
        fn every_path_verifies(n in 1usize..70) {
            let entries = sorted((0..n).map(|i| entry(i as u8, Some(Status::Granted))).collect());
            let root = root(&entries);
            for (i, e) in entries.iter().enumerate() {
                let p = path(&entries, i);
                prop_assert!(verify_inclusion(&leaf_hash(&e.encode()), i as u64, n as u64, &p, &root));
            }
        }
    }
}
