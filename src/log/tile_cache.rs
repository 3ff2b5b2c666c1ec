//! The log's cache of tile hashes, shared by every proof the server builds, and the proofs'
//! [`NodeSource`] over it ([`CachedNodes`]). The log only appends, so whatever a stored tile
//! holds never changes: a full tile's inner subtrees, and those inside a partial tile's width,
//! are hashed once while kept, not once per proof.
//!
//! What is kept, bounded (the oldest out first):
//! - **upper tiles** (levels ≥ 1): the whole tree inside each, for [`TREES`] tiles (16 KiB each);
//! - **bottom tiles** (level 0, the leaves' hashes): only their *top*, the 16 roots of their
//!   16-leaf chunks (512 bytes), for [`TOPS`] tiles. A proof's node from the top half of a bottom
//!   tile is a few hashes of the top; one from the bottom half reads the 16 leaf hashes of its
//!   chunk (not the 8 KiB tile, which SQLite reads from overflow pages with a system call each)
//!   and hashes at most 7 of them. 10M leaves' tops fit (39,063 tiles); a 100M-leaf log keeps
//!   a sixth of them;
//! - **the right edge**: per level, the widest partial tile read, as a tree.
//!
//! No SQL here: [`CachedNodes`] reads through the [`Stored`] it is given.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash as MapKey;
use std::sync::{Arc, Mutex};

use super::hash::{node_hash, Hash};
use super::proof::{InTile, MissingTile, NodeSource, TileTree};
use super::tiles::TILE_WIDTH;
use super::LogError;

/// Upper tiles' trees kept: 510 hashes (16 KiB) each, so at most 32 MiB (and the maps' own
/// few dozen bytes an entry).
pub const TREES: usize = 2048;
/// Bottom tiles' tops kept: 16 hashes (512 bytes) each, so at most 32 MiB (and about 40 bytes
/// of bookkeeping each: 2.5 MiB).
pub const TOPS: usize = 65_536;
/// The height of a chunk's root inside a tile: a top holds the nodes of this height.
const CHUNK_HEIGHT: u32 = 4;
/// Hashes in a chunk.
const CHUNK: usize = 1 << CHUNK_HEIGHT;

/// A bottom tile's top: the roots of its 16-hash chunks, left to right.
type Top = [Hash; TILE_WIDTH as usize / CHUNK];

/// Kept tiles; see the module comment.
#[derive(Default)]
pub struct TileCache {
    trees: Bounded<(u8, u64), Arc<TileTree>>,
    tops: Bounded<u64, Arc<Top>>,
    edges: HashMap<u8, (u64, Arc<TileTree>)>,
}

impl TileCache {
    /// A kept tree of tile `(level, index)` holding at least `width` hashes: a full one, or the
    /// level's edge if wide enough.
    fn tree(&self, level: u8, index: u64, width: usize) -> Option<Arc<TileTree>> {
        let edge = match self.edges.get(&level) {
            Some((i, tree)) if *i == index => Some(tree),
            _ => None,
        };
        self.trees
            .get(&(level, index))
            .or(edge)
            .filter(|t| t.width() >= width)
            .cloned()
    }

    /// Drops the level's edge if it is tile `index` (now read full).
    fn forget_edge(&mut self, level: u8, index: u64) {
        if self.edges.get(&level).is_some_and(|(i, _)| *i == index) {
            self.edges.remove(&level);
        }
    }

    /// Keeps a tile's tree: a full one of an upper level, or as its level's right edge a partial
    /// one at least as wide as the edge kept (a full bottom tile keeps only its top).
    fn put_tree(&mut self, level: u8, index: u64, tree: &Arc<TileTree>) {
        if tree.is_full() {
            if level > 0 {
                self.trees.put((level, index), tree.clone(), TREES);
            }
            // The edge it was, now full, is kept no longer.
            self.forget_edge(level, index);
            return;
        }
        let wider = match self.edges.get(&level) {
            Some((i, kept)) => index > *i || (index == *i && tree.width() > kept.width()),
            None => true,
        };
        if wider {
            self.edges.insert(level, (index, tree.clone()));
        }
    }
}

/// A map of at most a given number of entries; the oldest put goes first.
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: MapKey + Eq + Copy, V> Bounded<K, V> {
    fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    fn put(&mut self, key: K, value: V, limit: usize) {
        if self.map.contains_key(&key) {
            return;
        }
        if self.order.len() >= limit {
            if let Some(oldest) = self.order.pop_front() {
                self.map.remove(&oldest);
            }
        }
        self.map.insert(key, value);
        self.order.push_back(key);
    }
}

/// The root of the perfect subtree over `hashes` (a power of two of them).
fn perfect_root(hashes: &[Hash]) -> Hash {
    if hashes.len() == 1 {
        return hashes[0];
    }
    let (left, right) = hashes.split_at(hashes.len() / 2);
    node_hash(&perfect_root(left), &perfect_root(right))
}

/// A full bottom tile's top.
fn top_of(hashes: &[Hash]) -> Top {
    let mut top = [[0u8; 32]; TILE_WIDTH as usize / CHUNK];
    for (root, chunk) in top.iter_mut().zip(hashes.chunks_exact(CHUNK)) {
        *root = perfect_root(chunk);
    }
    top
}

/// What [`CachedNodes`] reads when the cache lacks it.
pub trait Stored {
    /// The stored hashes of tile `(level, index)`.
    fn tile(&mut self, level: u8, index: u64) -> Result<Vec<Hash>, LogError>;
    /// The hashes of leaves `start..end`, all stored.
    fn leaf_hashes(&mut self, start: u64, end: u64) -> Result<Vec<Hash>, LogError>;
}

/// Perfect subtrees' hashes for proofs, from the log's [`TileCache`] and, for what it does not
/// keep, from the store (each tile or chunk read at most once per source).
pub struct CachedNodes<'c, S> {
    cache: &'c Mutex<TileCache>,
    store: S,
    tiles_read: HashMap<(u8, u64), Arc<Vec<Hash>>>,
    chunks_read: HashMap<u64, Arc<Vec<Hash>>>,
}

impl<'c, S: Stored> CachedNodes<'c, S> {
    /// Nodes from `cache`, reading what it lacks from `store`.
    pub fn new(cache: &'c Mutex<TileCache>, store: S) -> Self {
        Self {
            cache,
            store,
            tiles_read: HashMap::new(),
            chunks_read: HashMap::new(),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, TileCache> {
        self.cache.lock().expect("tile cache lock")
    }

    /// The stored hashes of a tile.
    fn tile(&mut self, level: u8, index: u64) -> Result<Arc<Vec<Hash>>, LogError> {
        if let Some(hashes) = self.tiles_read.get(&(level, index)) {
            return Ok(hashes.clone());
        }
        let hashes = Arc::new(self.store.tile(level, index)?);
        self.tiles_read.insert((level, index), hashes.clone());
        Ok(hashes)
    }

    /// The 16 leaf hashes of the chunk starting at leaf `start`, of a full bottom tile.
    fn chunk(&mut self, start: u64) -> Result<Arc<Vec<Hash>>, LogError> {
        if let Some(hashes) = self.chunks_read.get(&start) {
            return Ok(hashes.clone());
        }
        let hashes = self.store.leaf_hashes(start, start + CHUNK as u64)?;
        if hashes.len() != CHUNK {
            return Err(LogError::Corrupt(format!(
                "leaves {start}..{} of a full tile are not all stored",
                start + CHUNK as u64
            )));
        }
        let hashes = Arc::new(hashes);
        self.chunks_read.insert(start, hashes.clone());
        Ok(hashes)
    }
}

impl<S: Stored> NodeSource for CachedNodes<'_, S> {
    type Error = LogError;

    fn node(&mut self, level: u32, index: u64) -> Result<Hash, LogError> {
        let place = InTile::of(level, index);
        let InTile {
            tile_level,
            tile,
            height,
            offset,
        } = place;
        let end = place.end();
        let missing = || MissingTile {
            level: tile_level,
            index: tile,
            node_level: level,
            node_index: index,
        };
        if tile_level == 0 {
            let top = self.cache().tops.get(&tile).cloned();
            match top {
                Some(top) if height >= CHUNK_HEIGHT => {
                    return Ok(perfect_root(&top[offset / CHUNK..end / CHUNK]));
                }
                // A full tile (it has a top) not read here: the node's chunk of leaf hashes.
                Some(_) if !self.tiles_read.contains_key(&(0, tile)) => {
                    let within = offset % CHUNK;
                    let chunk = self.chunk(tile * TILE_WIDTH + (offset - within) as u64)?;
                    return Ok(perfect_root(&chunk[within..within + (1 << height)]));
                }
                _ => {}
            }
        }
        if let Some(tree) = self.cache().tree(tile_level, tile, end) {
            return tree.node(height, offset).ok_or_else(|| missing().into());
        }
        let hashes = self.tile(tile_level, tile)?;
        if hashes.len() < end {
            return Err(missing().into());
        }
        if tile_level == 0 && hashes.len() as u64 == TILE_WIDTH {
            let top = self.cache().tops.get(&tile).cloned();
            let top = match top {
                Some(top) => top,
                None => {
                    let top = Arc::new(top_of(&hashes));
                    self.cache().tops.put(tile, top.clone(), TOPS);
                    // A bottom tile that was the edge is full now: only its top is kept.
                    self.cache().forget_edge(0, tile);
                    top
                }
            };
            return Ok(if height < CHUNK_HEIGHT {
                perfect_root(&hashes[offset..end])
            } else {
                perfect_root(&top[offset / CHUNK..end / CHUNK])
            });
        }
        let tree = Arc::new(TileTree::new(hashes.to_vec()));
        self.cache().put_tree(tile_level, tile, &tree);
        tree.node(height, offset).ok_or_else(|| missing().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::hash::leaf_hash;
    use crate::log::proof::{consistency_proof, inclusion_proof, TileNodes};
    use proptest::prelude::*;

    /// The stored tiles of a tree of `size` leaves, as the log writes them.
    fn stored_tiles(size: u64) -> HashMap<(u8, u64), Vec<Hash>> {
        let mut level: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut tiles = HashMap::new();
        for l in 0u8.. {
            if level.is_empty() {
                break;
            }
            for (i, chunk) in level.chunks(TILE_WIDTH as usize).enumerate() {
                tiles.insert((l, i as u64), chunk.to_vec());
            }
            level = level
                .chunks_exact(TILE_WIDTH as usize)
                .map(perfect_root)
                .collect();
        }
        tiles
    }

    /// Stored tiles, and leaf hashes from the bottom ones (as the leaves table holds them).
    struct Fixture<'a>(&'a HashMap<(u8, u64), Vec<Hash>>);

    impl Stored for Fixture<'_> {
        fn tile(&mut self, level: u8, index: u64) -> Result<Vec<Hash>, LogError> {
            self.0.get(&(level, index)).cloned().ok_or_else(|| {
                MissingTile {
                    level,
                    index,
                    node_level: 0,
                    node_index: 0,
                }
                .into()
            })
        }

        fn leaf_hashes(&mut self, start: u64, end: u64) -> Result<Vec<Hash>, LogError> {
            Ok((start..end)
                .filter_map(|i| {
                    self.0
                        .get(&(0, i / TILE_WIDTH))?
                        .get((i % TILE_WIDTH) as usize)
                })
                .copied()
                .collect())
        }
    }

    fn plain(
        tiles: &HashMap<(u8, u64), Vec<Hash>>,
    ) -> TileNodes<impl FnMut(u8, u64) -> Result<Arc<TileTree>, LogError> + '_> {
        let mut stored = Fixture(tiles);
        TileNodes::new(move |l, i| Ok(Arc::new(TileTree::new(stored.tile(l, i)?))))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Proofs through one shared cache, used again and again, equal proofs from the stored
        /// tiles alone: inclusion and consistency, in trees across tile and level edges.
        #[test]
        fn cached_proofs_equal_proofs_from_the_stored_tiles(
            size in 1u64..70_000,
            picks in proptest::collection::vec(any::<u64>(), 1..12),
        ) {
            let tiles = stored_tiles(size);
            let cache = Mutex::new(TileCache::default());
            for pick in picks {
                let index = pick % size;
                let mut cached = CachedNodes::new(&cache, Fixture(&tiles));
                prop_assert_eq!(
                    inclusion_proof(&mut cached, index, size).unwrap(),
                    inclusion_proof(&mut plain(&tiles), index, size).unwrap()
                );
                let from = 1 + pick % size;
                let mut cached = CachedNodes::new(&cache, Fixture(&tiles));
                prop_assert_eq!(
                    consistency_proof(&mut cached, from, size).unwrap(),
                    consistency_proof(&mut plain(&tiles), from, size).unwrap()
                );
            }
        }
    }

    #[test]
    fn a_kept_edge_serves_a_smaller_tree_and_a_grown_one_is_read_again() {
        let small = stored_tiles(300);
        let grown = stored_tiles(400);
        let cache = Mutex::new(TileCache::default());
        let mut nodes = CachedNodes::new(&cache, Fixture(&small));
        inclusion_proof(&mut nodes, 299, 300).unwrap();
        // The tree has grown: the edge kept (44 hashes wide) is too narrow for size 400.
        let mut nodes = CachedNodes::new(&cache, Fixture(&grown));
        assert_eq!(
            inclusion_proof(&mut nodes, 5, 400).unwrap(),
            inclusion_proof(&mut plain(&grown), 5, 400).unwrap()
        );
        // And the wider edge now kept still serves the smaller tree.
        let nothing_stored = HashMap::new();
        let mut nodes = CachedNodes::new(&cache, Fixture(&nothing_stored));
        assert_eq!(
            inclusion_proof(&mut nodes, 299, 300).unwrap(),
            inclusion_proof(&mut plain(&small), 299, 300).unwrap()
        );
    }

    #[test]
    fn a_bottom_tile_keeps_only_its_top_and_an_upper_one_its_tree() {
        let tiles = stored_tiles(70_000);
        let cache = Mutex::new(TileCache::default());
        let mut nodes = CachedNodes::new(&cache, Fixture(&tiles));
        inclusion_proof(&mut nodes, 1000, 70_000).unwrap();
        let kept = cache.lock().unwrap();
        assert!(kept.tops.get(&3).is_some(), "leaf 1000's tile's top");
        assert!(
            kept.trees.get(&(0, 3)).is_none(),
            "no tree of a bottom tile"
        );
        assert!(kept.trees.get(&(1, 0)).is_some(), "the full upper tile");
    }

    #[test]
    fn an_edge_read_again_full_is_served_whole_and_no_longer_kept_as_the_edge() {
        let mut kept = TileCache::default();
        let hashes = |n: usize| Arc::new(TileTree::new(vec![[7u8; 32]; n]));
        kept.put_tree(1, 0, &hashes(3));
        assert!(kept.tree(1, 0, 3).is_some() && kept.tree(1, 0, 4).is_none());
        kept.put_tree(1, 0, &hashes(TILE_WIDTH as usize));
        assert!(kept.tree(1, 0, TILE_WIDTH as usize).is_some());
        assert!(kept.edges.is_empty());
    }

    #[test]
    fn the_oldest_goes_first_when_full() {
        let mut kept = Bounded::default();
        for i in 0..=3u64 {
            kept.put(i, i, 3);
        }
        assert!(kept.get(&0).is_none());
        assert!(kept.get(&1).is_some() && kept.get(&3).is_some());
        assert_eq!(kept.map.len(), 3);
    }
}
