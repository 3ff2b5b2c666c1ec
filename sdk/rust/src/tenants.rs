//! The tenants' maps, which prove a tenant's whole set of subjects. For each tenant there is a
//! map built exactly like the subject map (`map.rs`: 65,536 buckets by a key's first two bytes,
//! entries `key ‖ u64be(head)` in key order, the RFC 9162 tree over the bucket contents) of the
//! keys its leaves name: every `subject` of a `consent_event`, `erasure` or `relabel` leaf whose
//! `tenant` is the tenant, with the same head as in the subject map. The **directory** commits to
//! them all: 256 buckets by a tenant key's first byte (`tenant_key`), entries `tenant key ‖ map
//! root ‖ u64be(subjects)` in key order, the RFC 9162 tree over the bucket contents. The
//! `subject_map` leaf states its root as `tenants`, so a bundle of a whole tenant can prove that
//! none of its subjects is missing, and that a tenant has none.
//!
//! A tenant's map is sparse in memory (only non-empty buckets and nodes); [`RootBuilder`]
//! recomputes a root from a stream of entries in key order in constant memory, as a verifier of a
//! streamed export does. No SQL here.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::hash::{leaf_hash, node_hash, Hash};
use super::map::{bucket_of, changed_nodes, put, BUCKETS, HEIGHT};
use super::proof::verify_inclusion;

/// Buckets of the directory (a perfect tree of height 8).
pub const DIRECTORY_BUCKETS: usize = 256;
/// The directory tree's height.
pub const DIRECTORY_HEIGHT: usize = 8;
/// Bytes of one directory entry: the tenant key, its map's root, its subject count.
pub const DIRECTORY_ENTRY_BYTES: usize = 72;

/// A tenant's key in the directory: `SHA-256("consent-ledger/tenant/v1" ‖ u64be(len(id)) ‖ id)`.
pub fn tenant_key(tenant_id: &str) -> Hash {
    Sha256::new()
        .chain_update(b"consent-ledger/tenant/v1")
        .chain_update((tenant_id.len() as u64).to_be_bytes())
        .chain_update(tenant_id.as_bytes())
        .finalize()
        .into()
}

/// The tenant whose map a leaf's subject belongs to: its top-level `tenant`, if its `type` is
/// `consent_event`, `erasure` or `relabel`.
pub fn leaf_tenant(leaf: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Owned<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<&'a str>,
        #[serde(default)]
        tenant: Option<String>,
    }
    let owned: Owned<'_> = serde_json::from_slice(leaf).ok()?;
    matches!(owned.kind, Some("consent_event" | "erasure" | "relabel"))
        .then_some(owned.tenant)
        .flatten()
}

/// The hashes of empty subtrees: `[0]` an empty bucket's leaf hash, `[l + 1]` two of `[l]`.
static EMPTY: LazyLock<Vec<Hash>> = LazyLock::new(|| {
    let mut empty = vec![leaf_hash(&[])];
    for level in 0..HEIGHT {
        let below = empty[level];
        empty.push(node_hash(&below, &below));
    }
    empty
});

/// The root of a map with no subjects (a tenant the directory does not hold).
pub fn empty_map_root() -> Hash {
    EMPTY[HEIGHT]
}

/// One tenant's map, sparse: its non-empty buckets and the nodes above them.
#[derive(Clone, Debug, Default)]
pub struct TenantMap {
    count: u64,
    buckets: BTreeMap<usize, Vec<(Hash, u64)>>,
    /// Per level, the nodes that are not the empty subtree's hash.
    nodes: Vec<HashMap<usize, Hash>>,
}

/// A tenant map's changes, not applied yet.
#[derive(Debug)]
struct StagedMap {
    count: u64,
    buckets: BTreeMap<usize, Vec<(Hash, u64)>>,
    nodes: Vec<BTreeMap<usize, Hash>>,
}

impl StagedMap {
    fn root(&self) -> Hash {
        self.nodes[HEIGHT][&0]
    }
}

impl TenantMap {
    fn node(&self, level: usize, i: usize) -> Hash {
        self.nodes
            .get(level)
            .and_then(|n| n.get(&i))
            .copied()
            .unwrap_or(EMPTY[level])
    }

    /// The map's root.
    pub fn root(&self) -> Hash {
        self.node(HEIGHT, 0)
    }

    /// How many subjects.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Every subject with its head, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&Hash, u64)> + '_ {
        self.buckets.values().flatten().map(|(k, i)| (k, *i))
    }

    /// The subjects from `after` (exclusive) on, in key order, at most `limit`.
    pub fn page(&self, after: Option<&Hash>, limit: usize) -> Vec<(Hash, u64)> {
        let from = after.map_or(0, bucket_of);
        self.buckets
            .range(from..)
            .flat_map(|(_, entries)| entries.iter())
            .filter(|(k, _)| after.is_none_or(|a| k > a))
            .take(limit)
            .copied()
            .collect()
    }

    fn stage(&self, changes: &[(Hash, u64)]) -> StagedMap {
        let mut buckets: BTreeMap<usize, Vec<(Hash, u64)>> = BTreeMap::new();
        let mut count = self.count;
        for (key, index) in changes {
            let b = bucket_of(key);
            let bucket = buckets
                .entry(b)
                .or_insert_with(|| self.buckets.get(&b).cloned().unwrap_or_default());
            if put(bucket, *key, *index) {
                count += 1;
            }
        }
        let nodes = changed_nodes(&buckets, |level, i| self.node(level, i));
        StagedMap {
            count,
            buckets,
            nodes,
        }
    }

    fn apply(&mut self, staged: StagedMap) {
        self.nodes.resize_with(HEIGHT + 1, HashMap::new);
        for (b, entries) in staged.buckets {
            self.buckets.insert(b, entries);
        }
        for (level, nodes) in staged.nodes.into_iter().enumerate() {
            for (i, hash) in nodes {
                if hash == EMPTY[level] {
                    self.nodes[level].remove(&i);
                } else {
                    self.nodes[level].insert(i, hash);
                }
            }
        }
        self.count = staged.count;
    }
}

/// Every tenant's map, and the directory over them.
#[derive(Clone, Debug, Default)]
pub struct TenantMaps {
    maps: HashMap<String, TenantMap>,
    /// Tenant key → (tenant, map root, subjects), in key order.
    directory: BTreeMap<Hash, (String, Hash, u64)>,
    root: Hash,
}

/// Changes to the tenants' maps computed and not applied yet (the transaction may still fail).
#[derive(Debug)]
pub struct StagedTenants {
    maps: Vec<(String, StagedMap)>,
    root: Hash,
}

impl StagedTenants {
    /// The directory root the maps will have.
    pub fn root(&self) -> Hash {
        self.root
    }
}

/// The root of a directory of `entries` (tenant key → map root and subjects).
fn directory_root<'a>(entries: impl Iterator<Item = (&'a Hash, &'a Hash, u64)>) -> Hash {
    let mut buckets = vec![Vec::new(); DIRECTORY_BUCKETS];
    for (key, root, count) in entries {
        let bucket: &mut Vec<u8> = &mut buckets[usize::from(key[0])];
        bucket.extend_from_slice(key);
        bucket.extend_from_slice(root);
        bucket.extend_from_slice(&count.to_be_bytes());
    }
    let mut level: Vec<Hash> = buckets.iter().map(|b| leaf_hash(b)).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

impl TenantMaps {
    /// The maps of tenants' subjects with their heads: (tenant, key, head).
    pub fn from_heads(heads: impl IntoIterator<Item = (String, Hash, u64)>) -> Self {
        let empty = TenantMaps {
            root: directory_root(std::iter::empty()),
            ..Default::default()
        };
        let staged = empty.stage(heads);
        let mut maps = empty;
        maps.apply(staged);
        maps
    }

    /// The directory's root (what the `subject_map` leaf states as `tenants`).
    pub fn root(&self) -> Hash {
        self.root
    }

    /// Every (tenant, subject key) of the maps.
    pub fn members(&self) -> impl Iterator<Item = (&str, &Hash)> + '_ {
        self.maps
            .iter()
            .flat_map(|(t, m)| m.entries().map(move |(k, _)| (t.as_str(), k)))
    }

    /// A tenant's map, if it has subjects.
    pub fn map(&self, tenant: &str) -> Option<&TenantMap> {
        self.maps.get(tenant)
    }

    /// The maps after `changes` (tenant, key, leaf index; any order).
    pub fn stage(&self, changes: impl IntoIterator<Item = (String, Hash, u64)>) -> StagedTenants {
        let mut by_tenant: BTreeMap<String, Vec<(Hash, u64)>> = BTreeMap::new();
        for (tenant, key, index) in changes {
            by_tenant.entry(tenant).or_default().push((key, index));
        }
        let empty = TenantMap::default();
        let maps: Vec<(String, StagedMap)> = by_tenant
            .into_iter()
            .map(|(tenant, changes)| {
                let staged = self.maps.get(&tenant).unwrap_or(&empty).stage(&changes);
                (tenant, staged)
            })
            .collect();
        let mut directory: BTreeMap<Hash, (Hash, u64)> = self
            .directory
            .iter()
            .map(|(k, (_, root, count))| (*k, (*root, *count)))
            .collect();
        for (tenant, staged) in &maps {
            directory.insert(tenant_key(tenant), (staged.root(), staged.count));
        }
        let root = directory_root(directory.iter().map(|(k, (r, c))| (k, r, *c)));
        StagedTenants { maps, root }
    }

    /// Applies staged changes (once the transaction that logged their root committed).
    pub fn apply(&mut self, staged: StagedTenants) {
        for (tenant, changes) in staged.maps {
            let map = self.maps.entry(tenant.clone()).or_default();
            map.apply(changes);
            self.directory
                .insert(tenant_key(&tenant), (tenant, map.root(), map.count()));
        }
        self.root = staged.root;
    }

    /// The directory's proof for `tenant`: its bucket's content and inclusion path.
    pub fn prove(&self, tenant: &str) -> DirectoryProof {
        let key = tenant_key(tenant);
        let mut buckets = vec![Vec::new(); DIRECTORY_BUCKETS];
        for (k, (_, root, count)) in &self.directory {
            let bucket: &mut Vec<u8> = &mut buckets[usize::from(k[0])];
            bucket.extend_from_slice(k);
            bucket.extend_from_slice(root);
            bucket.extend_from_slice(&count.to_be_bytes());
        }
        let bucket = usize::from(key[0]);
        let mut level: Vec<Hash> = buckets.iter().map(|b| leaf_hash(b)).collect();
        let mut path = Vec::new();
        let mut at = bucket;
        while level.len() > 1 {
            path.push(level[at ^ 1]);
            level = level
                .chunks(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            at /= 2;
        }
        DirectoryProof {
            bucket,
            entries: std::mem::take(&mut buckets[bucket]),
            path,
        }
    }
}

/// A directory bucket with its inclusion path: what the directory says of one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryProof {
    /// The tenant key's bucket (its first byte).
    pub bucket: usize,
    /// The bucket's content: entries of [`DIRECTORY_ENTRY_BYTES`], in key order.
    pub entries: Vec<u8>,
    /// Its RFC 9162 inclusion path in the directory tree, from the bucket up.
    pub path: Vec<Hash>,
}

/// Verifies a directory proof against the `tenants` root of a map leaf: the tenant's map root
/// and subject count, or `None` when the directory holds no such tenant (it has no subjects).
pub fn verify_directory_proof(
    root: &Hash,
    tenant: &str,
    entries: &[u8],
    path: &[Hash],
) -> Result<Option<(Hash, u64)>, String> {
    let key = tenant_key(tenant);
    let bucket = usize::from(key[0]);
    if !entries.len().is_multiple_of(DIRECTORY_ENTRY_BYTES) {
        return Err(format!(
            "the directory bucket is {} bytes, not a multiple of {DIRECTORY_ENTRY_BYTES}",
            entries.len()
        ));
    }
    let mut found = None;
    let mut previous: Option<&[u8]> = None;
    for entry in entries.chunks(DIRECTORY_ENTRY_BYTES) {
        let k = &entry[..32];
        if previous.is_some_and(|p| p >= k) || usize::from(k[0]) != bucket {
            return Err("the directory bucket's entries are out of order or misplaced".into());
        }
        previous = Some(k);
        if k == key {
            let root: Hash = entry[32..64].try_into().expect("32 bytes");
            let count = u64::from_be_bytes(entry[64..72].try_into().expect("8 bytes"));
            found = Some((root, count));
        }
    }
    if path.len() != DIRECTORY_HEIGHT
        || !verify_inclusion(
            &leaf_hash(entries),
            bucket as u64,
            DIRECTORY_BUCKETS as u64,
            path,
            root,
        )
    {
        return Err("the directory bucket is not in the tree with the map leaf's root".into());
    }
    Ok(found)
}

/// Recomputes a tenant map's root from its entries streamed in strictly increasing key order,
/// in constant memory (the 65,536 bucket hashes).
pub struct RootBuilder {
    leaves: Vec<Hash>,
    bucket: Option<(usize, Vec<u8>)>,
    last: Option<Hash>,
    count: u64,
}

impl Default for RootBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RootBuilder {
    /// An empty map.
    pub fn new() -> Self {
        RootBuilder {
            leaves: vec![EMPTY[0]; BUCKETS],
            bucket: None,
            last: None,
            count: 0,
        }
    }

    /// Adds `key` with its head; `Err` unless keys come in strictly increasing order.
    pub fn push(&mut self, key: &Hash, head: u64) -> Result<(), String> {
        if self.last.is_some_and(|last| &last >= key) {
            return Err(format!(
                "subject {} is not after the one before it: subjects come in key order, once each",
                crate::hex(key)
            ));
        }
        self.last = Some(*key);
        self.count += 1;
        let b = bucket_of(key);
        if self.bucket.as_ref().is_some_and(|(at, _)| *at != b) {
            self.close();
        }
        let (_, bytes) = self.bucket.get_or_insert_with(|| (b, Vec::new()));
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(&head.to_be_bytes());
        Ok(())
    }

    fn close(&mut self) {
        if let Some((b, bytes)) = self.bucket.take() {
            self.leaves[b] = leaf_hash(&bytes);
        }
    }

    /// The root and the number of subjects pushed.
    pub fn finish(mut self) -> (Hash, u64) {
        self.close();
        let mut level = self.leaves;
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
        }
        (level[0], self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::SubjectMap;
    use proptest::prelude::*;

    fn keys() -> impl Strategy<Value = Vec<(Hash, u64)>> {
        proptest::collection::vec((any::<[u8; 32]>(), 0u64..1000), 0..60)
    }

    proptest! {
        /// A tenant's sparse map has the root of the subject map of the same heads, however it
        /// was built up.
        #[test]
        fn a_tenant_map_has_the_subject_map_s_root(first in keys(), then in keys()) {
            let all: Vec<(String, Hash, u64)> = first.iter().chain(&then).map(|(k, i)| ("t".to_string(), *k, *i)).collect();
            let mut maps = TenantMaps::from_heads(first.iter().map(|(k, i)| ("t".to_string(), *k, *i)));
            let staged = maps.stage(then.iter().map(|(k, i)| ("t".to_string(), *k, *i)));
            maps.apply(staged);
            let dense = SubjectMap::from_heads(0, all.iter().map(|(_, k, i)| (*k, *i)));
            let root = maps.map("t").map_or(EMPTY[HEIGHT], TenantMap::root);
            prop_assert_eq!(root, dense.root());
            // Streamed in key order, it gives the same root in constant memory.
            let mut builder = RootBuilder::new();
            for (k, i) in dense.entries() {
                builder.push(k, i).unwrap();
            }
            prop_assert_eq!(builder.finish(), (dense.root(), dense.count()));
        }

        /// The directory proves each tenant's root and count, and that others are absent.
        #[test]
        fn the_directory_proves_each_tenant_and_absence(subjects in proptest::collection::vec((0u8..5, any::<[u8; 32]>()), 1..40)) {
            let maps = TenantMaps::from_heads(subjects.iter().enumerate().map(|(i, (t, k))| (format!("tenant-{t}"), *k, i as u64)));
            for t in 0..7u8 {
                let tenant = format!("tenant-{t}");
                let proof = maps.prove(&tenant);
                let got = verify_directory_proof(&maps.root(), &tenant, &proof.entries, &proof.path).unwrap();
                prop_assert_eq!(got, maps.map(&tenant).map(|m| (m.root(), m.count())));
            }
        }
    }

    #[test]
    fn only_consent_erasure_and_relabel_leaves_belong_to_a_tenant() {
        let leaf = |t: &str| format!(r#"{{"type":"{t}","tenant":"acme","subject":"00"}}"#);
        for t in ["consent_event", "erasure", "relabel"] {
            assert_eq!(leaf_tenant(leaf(t).as_bytes()).as_deref(), Some("acme"));
        }
        for t in ["legal_hold", "collection_point_retired", "log_parameters"] {
            assert_eq!(leaf_tenant(leaf(t).as_bytes()), None);
        }
    }

    #[test]
    fn keys_out_of_order_are_refused() {
        let mut builder = RootBuilder::new();
        builder.push(&[2; 32], 1).unwrap();
        assert!(builder.push(&[1; 32], 1).is_err());
        assert!(builder.push(&[2; 32], 1).is_err());
    }
}
