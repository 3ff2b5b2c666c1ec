//! The subject map: for every subject commitment a leaf names (a top-level `"subject"` member of
//! 64 lower-case hex digits), the index of the latest leaf naming it. Every checkpoint commits to
//! the map as of its tree, in a `subject_map` leaf that is the checkpoint's last leaf, so a bundle
//! can prove it holds *every* event of an address, not only that its events exist.
//!
//! Construction (`docs/evidence-format.md`): the 2^256 keys fall into 65,536 buckets by their
//! first two bytes; bucket `b`'s content is its entries `key ‖ u64be(index)` sorted by key; the
//! map root is the RFC 9162 tree hash over the 65,536 bucket contents as leaves. A map proof is
//! a bucket's content and its RFC 9162 inclusion path (16 hashes): it shows the value of a key,
//! or that the key is absent. Held in memory (about 70 bytes per key), rebuilt at start from the
//! subjects' chain heads; the sequencer stages changes and applies them only once committed.
//! No SQL here: the sequencer feeds it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::hash::{leaf_hash, node_hash, Hash};
use super::proof::verify_inclusion;
use super::tenants::{StagedTenants, TenantMaps};

/// Buckets in the map tree (a perfect tree of height 16).
pub const BUCKETS: usize = 1 << 16;
/// The map tree's height: a bucket's path has this many hashes.
pub const HEIGHT: usize = 16;
/// Bytes of one bucket entry: the 32-byte key and a big-endian `u64` leaf index.
pub const ENTRY_BYTES: usize = 40;
/// The `type` of the leaf that commits to the map.
pub const MAP_LEAF_TYPE: &str = "subject_map";

/// The bucket of a key: its first two bytes, big-endian.
pub fn bucket_of(key: &Hash) -> usize {
    usize::from(u16::from_be_bytes([key[0], key[1]]))
}

/// The subject a leaf names, if it has a top-level `"subject"` string of 64 lower-case hex
/// digits.
pub fn leaf_subject(leaf: &[u8]) -> Option<Hash> {
    #[derive(Deserialize)]
    struct Named<'a> {
        #[serde(borrow, default)]
        subject: Option<&'a str>,
    }
    let named: Named<'_> = serde_json::from_slice(leaf).ok()?;
    crate::unhex32(named.subject?)
}

/// The leaf a leaf names as its subject's previous one: its top-level `"prev"` (`None` when
/// absent or `null`, the subject's first leaf), or `Err` when `prev` is there but not a leaf
/// index. Checked by auditors against the map's head for the subject just before the leaf.
pub fn leaf_prev(leaf: &[u8]) -> Result<Option<u64>, String> {
    #[derive(Deserialize)]
    struct Linked {
        #[serde(default)]
        prev: Option<serde_json::Value>,
    }
    let linked: Linked = serde_json::from_slice(leaf).map_err(|e| e.to_string())?;
    match linked.prev {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("prev is {v}, not a leaf index")),
    }
}

/// The map leaf document for a map of `subjects` keys with `root`, covering leaves `0..covers`
/// (the map leaf itself goes at index `covers`), and the root of the tenants' directory
/// (`crate::tenants`).
pub fn map_leaf_document(
    covers: u64,
    root: &Hash,
    subjects: u64,
    tenants: &Hash,
) -> serde_json::Value {
    serde_json::json!({
        "type": MAP_LEAF_TYPE,
        "v": 1,
        "covers": covers,
        "root": crate::hex(root),
        "subjects": subjects,
        "tenants": crate::hex(tenants),
    })
}

/// What a `subject_map` leaf states: the leaves it covers and the map root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapLeaf {
    /// It covers leaves `0..covers` (and sits at index `covers`).
    pub covers: u64,
    /// The map root.
    pub root: Hash,
    /// The root of the tenants' directory; `None` in a map leaf from before it.
    pub tenants: Option<Hash>,
}

/// The statement of a leaf, if it is a well-formed `subject_map` leaf (`v` 1).
pub fn map_leaf(leaf: &[u8]) -> Option<MapLeaf> {
    let doc: serde_json::Value = serde_json::from_slice(leaf).ok()?;
    if doc["type"] != MAP_LEAF_TYPE || doc["v"] != 1 {
        return None;
    }
    let tenants = match &doc["tenants"] {
        serde_json::Value::Null => None,
        value => Some(crate::unhex32(value.as_str()?)?),
    };
    Some(MapLeaf {
        covers: doc["covers"].as_u64()?,
        root: crate::unhex32(doc["root"].as_str()?)?,
        tenants,
    })
}

/// The content of a bucket: its entries, `key ‖ u64be(index)`, in key order.
pub(crate) fn bucket_bytes(entries: &[(Hash, u64)]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for (key, index) in entries {
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(&index.to_be_bytes());
    }
    bytes
}

/// Sets `key`'s value in a bucket kept in key order (a later index wins); true when the key is
/// new to it.
pub(crate) fn put(bucket: &mut Vec<(Hash, u64)>, key: Hash, index: u64) -> bool {
    match bucket.binary_search_by(|(k, _)| k.cmp(&key)) {
        Ok(at) => {
            bucket[at].1 = bucket[at].1.max(index);
            false
        }
        Err(at) => {
            bucket.insert(at, (key, index));
            true
        }
    }
}

/// The nodes of the map tree that change with the `buckets` given (their new contents), level
/// by level up to the root; `node(level, i)` is a node as it is now.
pub(crate) fn changed_nodes(
    buckets: &BTreeMap<usize, Vec<(Hash, u64)>>,
    node: impl Fn(usize, usize) -> Hash,
) -> Vec<BTreeMap<usize, Hash>> {
    let mut nodes = vec![BTreeMap::new(); HEIGHT + 1];
    nodes[0] = buckets
        .iter()
        .map(|(b, entries)| (*b, leaf_hash(&bucket_bytes(entries))))
        .collect();
    for level in 0..HEIGHT {
        let mut parents: Vec<usize> = nodes[level].keys().map(|i| i / 2).collect();
        parents.dedup();
        for parent in parents {
            let child = |i: usize| {
                nodes[level]
                    .get(&i)
                    .copied()
                    .unwrap_or_else(|| node(level, i))
            };
            let hash = node_hash(&child(2 * parent), &child(2 * parent + 1));
            nodes[level + 1].insert(parent, hash);
        }
    }
    nodes[HEIGHT].entry(0).or_insert_with(|| node(HEIGHT, 0));
    nodes
}

/// The map of the first `size` leaves of the log.
pub struct SubjectMap {
    size: u64,
    count: u64,
    buckets: Vec<Vec<(Hash, u64)>>,
    /// `levels[0]` the bucket leaf hashes, `levels[HEIGHT]` the root alone.
    levels: Vec<Vec<Hash>>,
    /// Each tenant's map of its subjects, and the directory over them.
    tenants: TenantMaps,
}

/// Changes computed against a map and not applied yet (the transaction may still fail).
pub struct Staged {
    size: u64,
    count: u64,
    buckets: BTreeMap<usize, Vec<(Hash, u64)>>,
    /// Changed nodes per level.
    nodes: Vec<BTreeMap<usize, Hash>>,
    tenants: StagedTenants,
}

impl Staged {
    /// The tenants' directory root the map will have.
    pub fn tenants_root(&self) -> Hash {
        self.tenants.root()
    }

    /// The root the map will have.
    pub fn root(&self) -> Hash {
        self.nodes[HEIGHT][&0]
    }

    /// How many keys the map will hold.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// What the map says about one key, with the proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapProof {
    /// The leaves the map covers.
    pub size: u64,
    /// The key's bucket.
    pub bucket: usize,
    /// The bucket's content (entries of [`ENTRY_BYTES`]).
    pub entries: Vec<u8>,
    /// The bucket's inclusion path in the map tree, from the bucket upwards.
    pub path: Vec<Hash>,
    /// The key's value: the index of the latest leaf naming it.
    pub value: Option<u64>,
}

impl SubjectMap {
    /// The map of `size` leaves whose subjects' latest leaves are `heads`, each with the tenant
    /// whose map it is in (`crate::tenants::leaf_tenant`), if any.
    pub fn from_named_heads(
        size: u64,
        heads: impl IntoIterator<Item = (Hash, u64, Option<String>)>,
    ) -> Self {
        let mut owned = Vec::new();
        let mut map = Self::from_heads(
            size,
            heads.into_iter().map(|(key, index, tenant)| {
                if let Some(tenant) = tenant {
                    owned.push((key, tenant));
                }
                (key, index)
            }),
        );
        // The tenants' maps hold the same heads as the subject map.
        let named = owned
            .into_iter()
            .filter_map(|(key, tenant)| Some((tenant, key, map.head(&key)?)))
            .collect::<Vec<_>>();
        map.tenants = TenantMaps::from_heads(named);
        map
    }

    /// The map of `size` leaves whose subjects' latest leaves are `heads` (no tenant's).
    pub fn from_heads(size: u64, heads: impl IntoIterator<Item = (Hash, u64)>) -> Self {
        let mut buckets = vec![Vec::new(); BUCKETS];
        for (key, index) in heads {
            buckets[bucket_of(&key)].push((key, index));
        }
        let mut count = 0;
        for bucket in &mut buckets {
            bucket.sort_unstable();
            bucket.dedup_by(|later, earlier| {
                // Keep the latest index of a key listed twice.
                if later.0 == earlier.0 {
                    earlier.1 = earlier.1.max(later.1);
                    true
                } else {
                    false
                }
            });
            count += bucket.len() as u64;
        }
        let mut levels: Vec<Vec<Hash>> = vec![buckets
            .iter()
            .map(|b| leaf_hash(&bucket_bytes(b)))
            .collect()];
        for level in 0..HEIGHT {
            let next = levels[level]
                .chunks(2)
                .map(|pair: &[Hash]| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(next);
        }
        Self {
            size,
            count,
            buckets,
            levels,
            tenants: TenantMaps::from_heads([]),
        }
    }

    /// The tenants' maps and directory.
    pub fn tenants(&self) -> &TenantMaps {
        &self.tenants
    }

    /// The leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root.
    pub fn root(&self) -> Hash {
        self.levels[HEIGHT][0]
    }

    /// How many keys.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Every key with its value, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&Hash, u64)> + '_ {
        self.buckets
            .iter()
            .flatten()
            .map(|(key, index)| (key, *index))
    }

    /// The map after `changes` (key, leaf index; any order), covering `size` leaves (none in a
    /// tenant's map).
    pub fn stage(&self, size: u64, changes: impl IntoIterator<Item = (Hash, u64)>) -> Staged {
        self.stage_named(size, changes.into_iter().map(|(k, i)| (k, i, None)))
    }

    /// The map after `changes` (key, leaf index, the tenant whose map the key is in; any
    /// order), covering `size` leaves.
    pub fn stage_named(
        &self,
        size: u64,
        changes: impl IntoIterator<Item = (Hash, u64, Option<String>)>,
    ) -> Staged {
        let mut buckets: BTreeMap<usize, Vec<(Hash, u64)>> = BTreeMap::new();
        let mut count = self.count;
        let mut named = Vec::new();
        for (key, index, tenant) in changes {
            if let Some(tenant) = tenant {
                named.push((tenant, key, index));
            }
            let b = bucket_of(&key);
            let bucket = buckets.entry(b).or_insert_with(|| self.buckets[b].clone());
            if put(bucket, key, index) {
                count += 1;
            }
        }
        let nodes = changed_nodes(&buckets, |level, i| self.levels[level][i]);
        Staged {
            size,
            count,
            buckets,
            nodes,
            tenants: self.tenants.stage(named),
        }
    }

    /// Applies staged changes (once the transaction that logged their root committed).
    pub fn apply(&mut self, staged: Staged) {
        for (b, entries) in staged.buckets {
            self.buckets[b] = entries;
        }
        for (level, nodes) in staged.nodes.into_iter().enumerate() {
            for (i, hash) in nodes {
                self.levels[level][i] = hash;
            }
        }
        self.size = staged.size;
        self.count = staged.count;
        self.tenants.apply(staged.tenants);
    }

    /// The key's value: the index of the latest leaf naming it, if any.
    pub fn head(&self, key: &Hash) -> Option<u64> {
        let entries = &self.buckets[bucket_of(key)];
        entries
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .map(|at| entries[at].1)
    }

    /// The proof of `key`'s value (or absence).
    pub fn prove(&self, key: &Hash) -> MapProof {
        let bucket = bucket_of(key);
        let entries = &self.buckets[bucket];
        let value = self.head(key);
        MapProof {
            size: self.size,
            bucket,
            entries: bucket_bytes(entries),
            path: (0..HEIGHT)
                .map(|level| self.levels[level][(bucket >> level) ^ 1])
                .collect(),
            value,
        }
    }
}

/// Verifies that `entries` are the content of `key`'s bucket in the map with `root` (through its
/// inclusion `path`), and returns the key's value: `Some(index)` of its latest leaf, or `None`
/// when the map holds no leaf naming it.
pub fn verify_map_proof(
    root: &Hash,
    key: &Hash,
    entries: &[u8],
    path: &[Hash],
) -> Result<Option<u64>, String> {
    let bucket = bucket_of(key);
    if !entries.len().is_multiple_of(ENTRY_BYTES) {
        return Err(format!(
            "the bucket's content is {} bytes, not a multiple of {ENTRY_BYTES}",
            entries.len()
        ));
    }
    let mut value = None;
    let mut previous: Option<&[u8]> = None;
    for entry in entries.chunks(ENTRY_BYTES) {
        let (k, index) = entry.split_at(32);
        if previous.is_some_and(|p| p >= k) {
            return Err("the bucket's entries are not in strictly increasing key order".into());
        }
        if bucket_of(k.try_into().expect("32 bytes")) != bucket {
            return Err(format!(
                "an entry of the bucket does not belong to bucket {bucket}"
            ));
        }
        if k == key {
            value = Some(u64::from_be_bytes(index.try_into().expect("8 bytes")));
        }
        previous = Some(k);
    }
    if path.len() != HEIGHT
        || !verify_inclusion(
            &leaf_hash(entries),
            bucket as u64,
            BUCKETS as u64,
            path,
            root,
        )
    {
        return Err(format!(
            "the bucket's content and path do not lead to the map root (bucket {bucket})"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    /// The map root computed the plain way: every bucket's content, then RFC 9162 hashing.
    fn reference_root(map: &BTreeMap<Hash, u64>) -> Hash {
        let mut contents = vec![Vec::new(); BUCKETS];
        for (k, v) in map {
            let b = usize::from(k[0]) * 256 + usize::from(k[1]);
            contents[b].extend_from_slice(k);
            contents[b].extend_from_slice(&v.to_be_bytes());
        }
        let mut level: Vec<Hash> = contents
            .iter()
            .map(|c| {
                Sha256::new()
                    .chain_update([0u8])
                    .chain_update(c)
                    .finalize()
                    .into()
            })
            .collect();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|p| {
                    Sha256::new()
                        .chain_update([1u8])
                        .chain_update(p[0])
                        .chain_update(p[1])
                        .finalize()
                        .into()
                })
                .collect();
        }
        level[0]
    }

    fn key(seed: u16, spread: u8) -> Hash {
        // Few buckets, so keys share buckets and paths.
        let mut k: Hash = Sha256::digest(seed.to_be_bytes()).into();
        k[0] = 0;
        k[1] %= spread.max(1);
        k
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn staged_changes_match_the_reference(
            initial in proptest::collection::vec((any::<u16>(), 0u64..1000), 0..40),
            rounds in proptest::collection::vec(
                proptest::collection::vec((any::<u16>(), 0u64..5000), 0..30), 1..4),
            spread in 1u8..8,
        ) {
            let mut reference = BTreeMap::new();
            for (s, v) in &initial {
                let e = reference.entry(key(*s, spread)).or_insert(*v);
                *e = (*e).max(*v);
            }
            let mut map = SubjectMap::from_heads(
                7, initial.iter().map(|(s, v)| (key(*s, spread), *v)));
            prop_assert_eq!(map.root(), reference_root(&reference));
            for (round, changes) in rounds.iter().enumerate() {
                let staged = map.stage(
                    100 + round as u64, changes.iter().map(|(s, v)| (key(*s, spread), *v)));
                for (s, v) in changes {
                    let e = reference.entry(key(*s, spread)).or_insert(*v);
                    *e = (*e).max(*v);
                }
                prop_assert_eq!(staged.root(), reference_root(&reference));
                prop_assert_eq!(staged.count(), reference.len() as u64);
                map.apply(staged);
                prop_assert_eq!(map.root(), reference_root(&reference));
                for (s, _) in changes.iter().chain(&initial).take(10) {
                    let k = key(*s, spread);
                    let proof = map.prove(&k);
                    let value = verify_map_proof(&map.root(), &k, &proof.entries, &proof.path);
                    prop_assert_eq!(value, Ok(reference.get(&k).copied()));
                }
            }
        }
    }

    #[test]
    fn proofs_show_absence_and_refuse_tampering() {
        let present = key(1, 1);
        let absent = key(2, 1);
        assert_eq!(bucket_of(&present), bucket_of(&absent));
        let map = SubjectMap::from_heads(10, [(present, 7), (key(3, 1), 9)]);
        let root = map.root();
        let proof = map.prove(&absent);
        assert_eq!(proof.value, None);
        assert_eq!(
            verify_map_proof(&root, &absent, &proof.entries, &proof.path),
            Ok(None)
        );
        let proof = map.prove(&present);
        assert_eq!(
            verify_map_proof(&root, &present, &proof.entries, &proof.path),
            Ok(Some(7))
        );
        // An earlier index for the key (hiding later events), a dropped entry, a bad path.
        let mut earlier = proof.entries.clone();
        let at = earlier
            .chunks(ENTRY_BYTES)
            .position(|e| e[..32] == present)
            .unwrap();
        earlier[at * ENTRY_BYTES + 39] = 3;
        assert!(verify_map_proof(&root, &present, &earlier, &proof.path).is_err());
        let dropped: Vec<u8> = proof
            .entries
            .chunks(ENTRY_BYTES)
            .filter(|e| e[..32] != present)
            .flatten()
            .copied()
            .collect();
        assert!(verify_map_proof(&root, &present, &dropped, &proof.path).is_err());
        let mut path = proof.path.clone();
        path[15][0] ^= 1;
        assert!(verify_map_proof(&root, &present, &proof.entries, &path).is_err());
        let unsorted: Vec<u8> = proof
            .entries
            .chunks(ENTRY_BYTES)
            .rev()
            .flatten()
            .copied()
            .collect();
        assert!(verify_map_proof(&root, &present, &unsorted, &proof.path).is_err());
    }

    #[test]
    fn only_a_top_level_hex_subject_is_a_key() {
        let hex = "ab".repeat(32);
        assert_eq!(
            leaf_subject(format!(r#"{{"subject":"{hex}","type":"consent_event"}}"#).as_bytes()),
            Some([0xab; 32])
        );
        assert_eq!(leaf_subject(br#"{"type":"test","i":1}"#), None);
        assert_eq!(
            leaf_subject(format!(r#"{{"x":{{"subject":"{hex}"}}}}"#).as_bytes()),
            None
        );
        assert_eq!(
            leaf_subject(format!(r#"{{"subject":"{}"}}"#, "AB".repeat(32)).as_bytes()),
            None
        );
        assert_eq!(leaf_subject(br#"{"subject":5}"#), None);
    }
}
