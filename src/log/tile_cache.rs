//! The log's cache of full tiles' trees (`proof::TileTree`), shared by every proof the server
//! builds: a full tile never changes (the log only appends), so the subtrees inside it are
//! hashed once while it is in use, not once per proof. Bounded: the oldest tile out first.
//! Partial tiles (the tree's right edge) are never kept. No SQL here (`log/mod.rs` reads tiles).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::proof::TileTree;

/// Tiles kept: a full tile's tree is 510 hashes (16 KiB), so at most 32 MiB.
pub const TILES: usize = 2048;

/// Full tiles' trees by (level, index), at most [`TILES`].
#[derive(Default)]
pub struct TileCache {
    trees: HashMap<(u8, u64), Arc<TileTree>>,
    order: VecDeque<(u8, u64)>,
}

impl TileCache {
    /// The tree of tile `(level, index)`, if kept.
    pub fn get(&self, level: u8, index: u64) -> Option<Arc<TileTree>> {
        self.trees.get(&(level, index)).cloned()
    }

    /// Keeps a full tile's tree (a partial one is refused: it will grow).
    pub fn put(&mut self, level: u8, index: u64, tree: Arc<TileTree>) {
        if !tree.is_full() || self.trees.contains_key(&(level, index)) {
            return;
        }
        if self.order.len() >= TILES {
            if let Some(oldest) = self.order.pop_front() {
                self.trees.remove(&oldest);
            }
        }
        self.trees.insert((level, index), tree);
        self.order.push_back((level, index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tiles::TILE_WIDTH;

    fn tree(width: u64) -> Arc<TileTree> {
        Arc::new(TileTree::new(vec![[7u8; 32]; width as usize]))
    }

    #[test]
    fn only_full_tiles_are_kept() {
        let mut cache = TileCache::default();
        cache.put(0, 1, tree(TILE_WIDTH - 1));
        assert!(cache.get(0, 1).is_none());
        cache.put(0, 1, tree(TILE_WIDTH));
        assert!(cache.get(0, 1).is_some());
    }

    #[test]
    fn the_oldest_tile_goes_first_when_full() {
        let mut cache = TileCache::default();
        for i in 0..=TILES as u64 {
            cache.put(0, i, tree(TILE_WIDTH));
        }
        assert!(cache.get(0, 0).is_none());
        assert!(cache.get(0, 1).is_some() && cache.get(0, TILES as u64).is_some());
        assert_eq!(cache.trees.len(), TILES);
    }
}
