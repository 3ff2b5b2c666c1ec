//! RFC 9162 §2.1.3–2.1.4: building inclusion and consistency proofs from stored hashes, and
//! verifying them. Building reads perfect-subtree hashes through [`NodeSource`], so proofs over a
//! 100-million-leaf log read a handful of tiles, never the whole tree.

use std::collections::HashMap;
use std::sync::Arc;

use super::hash::{node_hash, split_point, Hash};
use super::tiles::{TILE_HEIGHT, TILE_WIDTH};

/// Gives the hash of a perfect subtree: level `h` (2^h leaves), index `k` (leaves
/// `k·2^h .. (k+1)·2^h`). Callers only ask for subtrees inside the tree.
pub trait NodeSource {
    /// The error a read can fail with.
    type Error;
    /// The hash of perfect subtree `(level, index)`.
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// A stored tile with every perfect subtree inside it hashed once: `levels[h]` holds the nodes
/// of height `h` within the tile (`levels[0]`: its stored hashes), as many as are whole. A full
/// tile never changes (the log only appends), so one can be kept and shared between proofs.
#[derive(Debug)]
pub struct TileTree {
    levels: Vec<Vec<Hash>>,
}

impl TileTree {
    /// The tree over a tile's stored hashes (254 hashes for a full tile).
    pub fn new(hashes: Vec<Hash>) -> Self {
        let mut levels = vec![hashes];
        for _ in 1..TILE_HEIGHT {
            let below = levels.last().expect("level 0");
            let above = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(above);
        }
        TileTree { levels }
    }

    /// Whether the tile is full (all [`TILE_WIDTH`] hashes): then it is final.
    pub fn is_full(&self) -> bool {
        self.levels[0].len() as u64 == TILE_WIDTH
    }

    /// How many stored hashes the tile has ([`TILE_WIDTH`] when full).
    pub fn width(&self) -> usize {
        self.levels[0].len()
    }

    /// The node of `height` within the tile whose first hash is at `offset`, if whole.
    pub fn node(&self, height: u32, offset: usize) -> Option<Hash> {
        self.levels
            .get(height as usize)?
            .get(offset >> height)
            .copied()
    }
}

/// Where perfect subtree `(level, index)` lies in the tiles: tile `(tile_level, tile)`, as the
/// node of `height` within it whose first hash is at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InTile {
    /// The tile's level.
    pub tile_level: u8,
    /// The tile's index.
    pub tile: u64,
    /// The node's height within the tile (0: a stored hash).
    pub height: u32,
    /// The position of the node's first hash among the tile's.
    pub offset: usize,
}

impl InTile {
    /// The place of perfect subtree `(level, index)`.
    pub fn of(level: u32, index: u64) -> Self {
        let height = level % TILE_HEIGHT;
        let first = index << height;
        InTile {
            tile_level: (level / TILE_HEIGHT) as u8,
            tile: first / TILE_WIDTH,
            height,
            offset: (first % TILE_WIDTH) as usize,
        }
    }

    /// One past the position of the node's last hash among the tile's.
    pub fn end(&self) -> usize {
        self.offset + (1 << self.height)
    }
}

/// A [`NodeSource`] over stored tiles: each tile is fetched once per proof, as a [`TileTree`]
/// (C2SP tiles store only every 8th level; the levels between are hashed once per tile).
pub struct TileNodes<F> {
    fetch: F,
    cache: HashMap<(u8, u64), Arc<TileTree>>,
}

impl<F, E> TileNodes<F>
where
    F: FnMut(u8, u64) -> Result<Arc<TileTree>, E>,
{
    /// Nodes read through `fetch(level, index)`, which returns a tile's tree.
    pub fn new(fetch: F) -> Self {
        Self {
            fetch,
            cache: HashMap::new(),
        }
    }
}

/// Why a stored tile cannot give the node asked for: the store is missing data it must have.
#[derive(Debug, thiserror::Error)]
#[error("tile {level}/{index} is missing or too short for node {node_level}/{node_index}")]
pub struct MissingTile {
    /// Tile level.
    pub level: u8,
    /// Tile index.
    pub index: u64,
    /// Node level asked for.
    pub node_level: u32,
    /// Node index asked for.
    pub node_index: u64,
}

impl<F, E> NodeSource for TileNodes<F>
where
    F: FnMut(u8, u64) -> Result<Arc<TileTree>, E>,
    E: From<MissingTile>,
{
    type Error = E;

    fn node(&mut self, level: u32, index: u64) -> Result<Hash, E> {
        let InTile {
            tile_level,
            tile: tile_index,
            height: height_in_tile,
            offset,
        } = InTile::of(level, index);
        if !self.cache.contains_key(&(tile_level, tile_index)) {
            let tree = (self.fetch)(tile_level, tile_index)?;
            self.cache.insert((tile_level, tile_index), tree);
        }
        let tile = &self.cache[&(tile_level, tile_index)];
        Ok(tile.node(height_in_tile, offset).ok_or(MissingTile {
            level: tile_level,
            index: tile_index,
            node_level: level,
            node_index: index,
        })?)
    }
}

/// `MTH(D[start:end])` for `0 <= start < end`, from perfect subtrees.
pub fn subtree_hash<S: NodeSource>(src: &mut S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return src.node(n.trailing_zeros(), start / n);
    }
    let k = split_point(n);
    let left = subtree_hash(src, start, start + k)?;
    let right = subtree_hash(src, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// `PATH(index, D[0:size])`, RFC 9162 §2.1.3.1. Requires `index < size`.
pub fn inclusion_proof<S: NodeSource>(
    src: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    assert!(
        index < size,
        "inclusion_proof: index {index} outside a tree of {size}"
    );
    let mut path = Vec::new();
    inclusion_path(src, index, 0, size, &mut path)?;
    Ok(path)
}

fn inclusion_path<S: NodeSource>(
    src: &mut S,
    m: u64,
    start: u64,
    end: u64,
    path: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        inclusion_path(src, m, start, start + k, path)?;
        path.push(subtree_hash(src, start + k, end)?);
    } else {
        inclusion_path(src, m - k, start + k, end, path)?;
        path.push(subtree_hash(src, start, start + k)?);
    }
    Ok(())
}

/// `PROOF(from, D[0:to])`, RFC 9162 §2.1.4.1. Requires `0 < from <= to`.
pub fn consistency_proof<S: NodeSource>(
    src: &mut S,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, S::Error> {
    assert!(
        0 < from && from <= to,
        "consistency_proof: need 0 < {from} <= {to}"
    );
    let mut path = Vec::new();
    subproof(src, from, 0, to, true, &mut path)?;
    Ok(path)
}

fn subproof<S: NodeSource>(
    src: &mut S,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    path: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !complete {
            path.push(subtree_hash(src, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(src, m, start, start + k, complete, path)?;
        path.push(subtree_hash(src, start + k, end)?);
    } else {
        subproof(src, m - k, start + k, end, false, path)?;
        path.push(subtree_hash(src, start, start + k)?);
    }
    Ok(())
}

/// Verifies an inclusion proof, RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// Verifies a consistency proof between trees of `size1` and `size2` leaves, RFC 9162 §2.1.4.2.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    path: &[Hash],
) -> bool {
    if size1 == 0 || size1 > size2 {
        return false;
    }
    if size1 == size2 {
        return path.is_empty() && root1 == root2;
    }
    let mut proof: Vec<Hash> = path.to_vec();
    if size1.is_power_of_two() {
        proof.insert(0, *root1);
    }
    let Some((first, rest)) = proof.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *root1 && sr == *root2 && sn == 0
}

#[cfg(test)]
mod tests {
    //! Property tests: proofs built from frontier-written tiles, checked against a plain
    //! recursive implementation of the RFC 9162 definitions written here, and against `rs_merkle`.
    use super::*;
    use crate::hash::{bounded_root, empty_root, leaf_hash};
    use crate::tiles::{split_hashes, Frontier};
    use proptest::prelude::*;

    /// MTH(D[n]) straight from RFC 9162 §2.1.1, over leaf hashes.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// PATH(m, D[n]) straight from RFC 9162 §2.1.3.1.
    fn ref_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n == 1 {
            return vec![];
        }
        let k = split_point(n as u64) as usize;
        if m < k {
            let mut p = ref_path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = ref_path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    /// SUBPROOF(m, D[n], b) straight from RFC 9162 §2.1.4.1.
    fn ref_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b { vec![] } else { vec![mth(leaves)] };
        }
        let k = split_point(n as u64) as usize;
        if m <= k {
            let mut p = ref_subproof(m, &leaves[..k], b);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = ref_subproof(m - k, &leaves[k..], false);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    /// Tiles as the sequencer would store them, written in batches of `batch` leaves.
    fn tiles_for(leaves: &[Hash], batch: usize) -> HashMap<(u8, u64), Vec<u8>> {
        let mut f = Frontier::empty();
        let mut stored = HashMap::new();
        for chunk in leaves.chunks(batch.max(1)) {
            for l in chunk {
                f.push(*l);
            }
            for w in f.take_writes() {
                stored.insert((w.level, w.index), w.hashes);
            }
        }
        stored
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n as u32)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    fn source(
        stored: &HashMap<(u8, u64), Vec<u8>>,
    ) -> TileNodes<impl FnMut(u8, u64) -> Result<Arc<TileTree>, MissingTile> + '_> {
        TileNodes::new(move |l, n| {
            stored
                .get(&(l, n))
                .map(|b| Arc::new(TileTree::new(split_hashes(b).unwrap())))
                .ok_or(MissingTile {
                    level: l,
                    index: n,
                    node_level: 0,
                    node_index: 0,
                })
        })
    }

    #[test]
    fn rfc6962_reference_tree_root() {
        // The 8-leaf test tree of RFC 6962 implementations (certificate-transparency-go).
        let data: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let mut f = Frontier::empty();
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (h, expected) in hashes.iter().zip(roots) {
            f.push(*h);
            let hex: String = f.root().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, expected, "root of size {}", f.size());
        }
        assert_eq!(mth(&hashes), f.root());
        // Consistency 6 -> 8 from the same vectors.
        let stored = tiles_for(&hashes, 8);
        let p = consistency_proof(&mut source(&stored), 6, 8).unwrap();
        let hex: String = p[0].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn roots_match_reference_and_rs_merkle(n in 0usize..3000, batch in 1usize..700) {
            let l = leaves(n);
            let mut f = Frontier::empty();
            for chunk in l.chunks(batch) {
                chunk.iter().for_each(|h| f.push(*h));
                let _ = f.take_writes();
                prop_assert_eq!(f.root(), mth(&l[..f.size() as usize]));
            }
            prop_assert_eq!(bounded_root(&l), mth(&l));
        }

        #[test]
        fn inclusion_proofs_verify_and_match_reference(n in 1usize..3000, batch in 1usize..700, picks in proptest::collection::vec((any::<u64>(), any::<u64>()), 8)) {
            let l = leaves(n);
            let stored = tiles_for(&l, batch);
            let mut src = source(&stored);
            for (a, b) in picks {
                let size = 1 + (a % n as u64);
                let index = b % size;
                let path = inclusion_proof(&mut src, index, size).unwrap();
                prop_assert_eq!(&path, &ref_path(index as usize, &l[..size as usize]));
                let root = mth(&l[..size as usize]);
                prop_assert!(verify_inclusion(&l[index as usize], index, size, &path, &root));
                // Tampering anywhere makes it fail. (The size is bound by the signed root, not
                // by the path: a path can verify for several sizes against one root.)
                if !path.is_empty() {
                    let mut bad = path.clone();
                    let i = (a as usize) % bad.len();
                    bad[i][0] ^= 1;
                    prop_assert!(!verify_inclusion(&l[index as usize], index, size, &bad, &root));
                    prop_assert!(!verify_inclusion(&l[index as usize], index, size, &path[..path.len() - 1], &root));
                }
                if size > 1 {
                    prop_assert!(!verify_inclusion(&l[index as usize], (index + 1) % size, size, &path, &root));
                }
            }
        }

        #[test]
        fn consistency_proofs_verify_and_match_reference(n in 1usize..3000, batch in 1usize..700, picks in proptest::collection::vec((any::<u64>(), any::<u64>()), 8)) {
            let l = leaves(n);
            let stored = tiles_for(&l, batch);
            let mut src = source(&stored);
            for (a, b) in picks {
                let to = 1 + (a % n as u64);
                let from = 1 + (b % to);
                let path = consistency_proof(&mut src, from, to).unwrap();
                prop_assert_eq!(&path, &ref_subproof(from as usize, &l[..to as usize], true));
                let (r1, r2) = (mth(&l[..from as usize]), mth(&l[..to as usize]));
                prop_assert!(verify_consistency(from, to, &r1, &r2, &path));
                if !path.is_empty() {
                    let mut bad = path.clone();
                    let i = (a as usize) % bad.len();
                    bad[i][31] ^= 0x80;
                    prop_assert!(!verify_consistency(from, to, &r1, &r2, &bad));
                }
                if from < to {
                    let other = mth(&l[..to as usize - 1]);
                    prop_assert!(!verify_consistency(from, to, &r1, &other, &path) || other == r2);
                    let mut r1bad = r1;
                    r1bad[0] ^= 1;
                    prop_assert!(!verify_consistency(from, to, &r1bad, &r2, &path));
                }
            }
        }
    }

    #[test]
    fn every_pair_in_a_small_tree() {
        let l = leaves(70);
        let stored = tiles_for(&l, 3);
        let mut src = source(&stored);
        for size in 1..=70u64 {
            let root = mth(&l[..size as usize]);
            for index in 0..size {
                let p = inclusion_proof(&mut src, index, size).unwrap();
                assert!(verify_inclusion(&l[index as usize], index, size, &p, &root));
            }
            for from in 1..=size {
                let p = consistency_proof(&mut src, from, size).unwrap();
                assert!(
                    verify_consistency(from, size, &mth(&l[..from as usize]), &root, &p),
                    "{from}->{size}"
                );
            }
        }
    }
}
