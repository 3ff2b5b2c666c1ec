//! C2SP `tlog-tiles` addressing (tile height 8) and the log's right edge (the *frontier*).
//!
//! A tile at level `L`, index `N` holds up to 256 hashes of level-`8L` nodes: level 0 holds leaf
//! hashes, level 1 holds roots of 256-leaf subtrees, and so on. Full tiles never change; the
//! right-most tile of each level grows until full. The frontier keeps exactly those growing
//! tiles in memory (at most 255 hashes per level), which is all an append needs.
//! Proofs over stored tiles are in `proof.rs`.

use super::hash::{bounded_root, empty_root, node_hash, Hash};

/// Tile height: each tile spans 8 tree levels and holds up to 256 hashes.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// The deepest tile level a 64-bit tree size can need (C2SP allows levels 0–63).
pub const MAX_TILE_LEVEL: u8 = 63;

/// Which tile a URL names: a hash tile at a level, or the data (entries) tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileKind {
    /// `tile/<L>/…`: hashes at level `8L`.
    Hashes(u8),
    /// `tile/entries/…`: the leaves themselves, as an entry bundle.
    Entries,
}

/// A tile named by a `tlog-tiles` path: kind, index and width (256 = full).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRef {
    /// Hash tile level or entries.
    pub kind: TileKind,
    /// The tile index `N`.
    pub index: u64,
    /// Number of entries: 256 for a full tile, 1–255 for a partial `.p/<W>` tile.
    pub width: u16,
}

/// Why a tile path is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid tile path: {0}")]
pub struct TilePathError(pub &'static str);

impl TileRef {
    /// Parses the part of a URL after `tile/`, e.g. `0/x001/234`, `1/005.p/7`, `entries/000`.
    pub fn parse(path: &str) -> Result<Self, TilePathError> {
        let (level, rest) = path
            .split_once('/')
            .ok_or(TilePathError("expected <level>/<index>"))?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            let lvl: u8 = parse_decimal(level, 2).ok_or(TilePathError("level must be 0–63"))?;
            if lvl > MAX_TILE_LEVEL {
                return Err(TilePathError("level must be 0–63"));
            }
            TileKind::Hashes(lvl)
        };
        let (index_path, width) = match rest.split_once(".p/") {
            None => (rest, TILE_WIDTH as u16),
            Some((index_path, w)) => {
                let w: u16 =
                    parse_decimal(w, 3).ok_or(TilePathError("partial width must be 1–255"))?;
                if !(1..TILE_WIDTH as u16).contains(&w) {
                    return Err(TilePathError("partial width must be 1–255"));
                }
                (index_path, w)
            }
        };
        Ok(Self {
            kind,
            index: parse_index(index_path)?,
            width,
        })
    }

    /// The path after `tile/` for this tile.
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hashes(l) => l.to_string(),
            TileKind::Entries => "entries".to_string(),
        };
        let mut path = format!("{level}/{}", format_index(self.index));
        if u64::from(self.width) < TILE_WIDTH {
            path.push_str(&format!(".p/{}", self.width));
        }
        path
    }
}

/// A plain decimal without sign or superfluous leading zeros, of at most `max_len` digits.
fn parse_decimal<T: std::str::FromStr>(s: &str, max_len: usize) -> Option<T> {
    let canonical = !s.is_empty()
        && s.len() <= max_len
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// `N` as path elements of three digits, all but the last prefixed `x`: 1234067 → `x001/x234/067`.
pub fn format_index(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

fn parse_index(path: &str) -> Result<u64, TilePathError> {
    const BAD: TilePathError = TilePathError("index must be 3-digit groups like x001/x234/067");
    let elements: Vec<&str> = path.split('/').collect();
    if elements.len() > 7 {
        return Err(BAD);
    }
    let mut n: u64 = 0;
    for (i, element) in elements.iter().enumerate() {
        let last = i + 1 == elements.len();
        let digits = if last {
            Some(*element)
        } else {
            element.strip_prefix('x')
        };
        let digits = digits
            .filter(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(BAD)?;
        // A leading all-zero group would make two paths for one index.
        if i == 0 && !last && digits == "000" {
            return Err(BAD);
        }
        n = n
            .checked_mul(1000)
            .and_then(|n| n.checked_add(digits.parse::<u64>().expect("three digits")))
            .ok_or(TilePathError("index is too large"))?;
    }
    Ok(n)
}

/// A tile to be written: level, index and its hashes concatenated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileWrite {
    /// Tile level.
    pub level: u8,
    /// Tile index at that level.
    pub index: u64,
    /// The tile's hashes, 32 bytes each.
    pub hashes: Vec<u8>,
}

/// Splits concatenated tile bytes into hashes; `None` when the length is not a multiple of 32.
pub fn split_hashes(bytes: &[u8]) -> Option<Vec<Hash>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect(),
    )
}

/// An entry bundle (C2SP tlog-tiles): each leaf as a big-endian `u16` length and its bytes.
pub fn entry_bundle(leaves: &[Vec<u8>]) -> Vec<u8> {
    let mut bundle = Vec::with_capacity(leaves.iter().map(|d| d.len() + 2).sum());
    for leaf in leaves {
        bundle.extend_from_slice(&(leaf.len() as u16).to_be_bytes());
        bundle.extend_from_slice(leaf);
    }
    bundle
}

/// The leaves of an entry bundle; `None` when an entry is cut short.
pub fn split_entry_bundle(mut bundle: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut leaves = Vec::new();
    while !bundle.is_empty() {
        let [a, b, rest @ ..] = bundle else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        leaves.push(rest.get(..len)?.to_vec());
        bundle = &rest[len..];
    }
    Some(leaves)
}

/// The log's right edge: the incomplete tile of every level, enough to append and to compute the
/// root. Memory is bounded (≤ 255 hashes per level, ≤ 8 levels for a 64-bit size).
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    size: u64,
    /// `tiles[L]`: the hashes in the incomplete tile at level `L` (fewer than 256).
    tiles: Vec<Vec<Hash>>,
    /// Levels whose incomplete tile changed since the last [`Frontier::take_writes`].
    touched: Vec<bool>,
    /// Tiles that became full since the last [`Frontier::take_writes`].
    completed: Vec<TileWrite>,
}

impl Frontier {
    /// The frontier of the empty log.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from stored tiles. `read_tile(level, index)`
    /// returns the tile's stored hashes (at least as many as the tree needs).
    pub fn load<E>(
        size: u64,
        mut read_tile: impl FnMut(u8, u64) -> Result<Vec<Hash>, E>,
    ) -> Result<Self, E> {
        let mut frontier = Self {
            size,
            ..Self::default()
        };
        let mut level = 0u8;
        while u64::from(level) * u64::from(TILE_HEIGHT) < 64
            && (size >> (u32::from(level) * TILE_HEIGHT)) > 0
        {
            let nodes = size >> (u32::from(level) * TILE_HEIGHT);
            let width = (nodes % TILE_WIDTH) as usize;
            let mut hashes = Vec::new();
            if width > 0 {
                hashes = read_tile(level, nodes / TILE_WIDTH)?;
                hashes.truncate(width);
            }
            frontier.tiles.push(hashes);
            frontier.touched.push(false);
            level += 1;
        }
        Ok(frontier)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash; completed tiles are remembered for [`Frontier::take_writes`].
    pub fn push(&mut self, leaf_hash: Hash) {
        self.size += 1;
        let mut node = leaf_hash;
        let mut level = 0usize;
        loop {
            if self.tiles.len() <= level {
                self.tiles.push(Vec::new());
                self.touched.push(false);
            }
            self.tiles[level].push(node);
            self.touched[level] = true;
            if self.tiles[level].len() < TILE_WIDTH as usize {
                break;
            }
            let full = std::mem::take(&mut self.tiles[level]);
            let nodes = self.size >> (level as u32 * TILE_HEIGHT);
            node = bounded_root(&full);
            self.completed.push(TileWrite {
                level: level as u8,
                index: nodes / TILE_WIDTH - 1,
                hashes: full.concat(),
            });
            level += 1;
        }
    }

    /// The tiles to store since the last call: every tile that became full, then the current
    /// incomplete tile of each level that changed.
    pub fn take_writes(&mut self) -> Vec<TileWrite> {
        let mut writes = std::mem::take(&mut self.completed);
        for (level, touched) in self.touched.iter_mut().enumerate() {
            if std::mem::take(touched) && !self.tiles[level].is_empty() {
                let nodes = self.size >> (level as u32 * TILE_HEIGHT);
                writes.push(TileWrite {
                    level: level as u8,
                    index: nodes / TILE_WIDTH,
                    hashes: self.tiles[level].concat(),
                });
            }
        }
        writes
    }

    /// The RFC 9162 root hash of the tree.
    pub fn root(&self) -> Hash {
        // The tree is the sequence of perfect subtrees given by the bits of `size`, largest (and
        // left-most) first; each lies inside one incomplete tile. Fold them from the right.
        let mut perfect: Vec<Hash> = Vec::new();
        for tile in self.tiles.iter().rev() {
            let mut start = 0;
            for bit in (0..TILE_HEIGHT).rev() {
                let len = 1usize << bit;
                if tile.len() & len != 0 {
                    perfect.push(bounded_root(&tile[start..start + len]));
                    start += len;
                }
            }
        }
        let Some(mut root) = perfect.pop() else {
            return empty_root();
        };
        while let Some(left) = perfect.pop() {
            root = node_hash(&left, &root);
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_follow_c2sp() {
        assert_eq!(format_index(1234067), "x001/x234/067");
        assert_eq!(format_index(5), "005");
        assert_eq!(format_index(1000), "x001/000");
        for n in [0, 5, 999, 1000, 1234067, u64::MAX / 256] {
            assert_eq!(parse_index(&format_index(n)).unwrap(), n);
        }
    }

    #[test]
    fn tile_paths_round_trip_and_reject_tricks() {
        let t = TileRef::parse("1/x001/234.p/7").unwrap();
        assert_eq!(
            t,
            TileRef {
                kind: TileKind::Hashes(1),
                index: 1234,
                width: 7
            }
        );
        assert_eq!(t.path(), "1/x001/234.p/7");
        assert_eq!(
            TileRef::parse("entries/000").unwrap().kind,
            TileKind::Entries
        );
        for bad in [
            "",
            "0",
            "0/",
            "0/1",
            "0/0001",
            "64/000",
            "01/000",
            "0/x000/001",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/07",
            "0/../000",
            "0/x1/000",
            "0/000/",
            "-1/000",
            "0/-01",
            "0/x999/x999/x999/x999/x999/x999/x999/999",
            "0/x018/x446/x744/x073/x709/x551/616",
        ] {
            assert!(TileRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn frontier_reload_matches_live_frontier() {
        let mut live = Frontier::empty();
        let mut stored: std::collections::HashMap<(u8, u64), Vec<u8>> = Default::default();
        for i in 0..70_000u32 {
            live.push(crate::hash::leaf_hash(&i.to_be_bytes()));
            if i % 997 == 0 || i == 69_999 {
                for w in live.take_writes() {
                    stored.insert((w.level, w.index), w.hashes);
                }
                let reloaded = Frontier::load(live.size(), |l, n| {
                    Ok::<_, ()>(split_hashes(&stored[&(l, n)]).unwrap())
                })
                .unwrap();
                assert_eq!(reloaded.root(), live.root());
                assert_eq!(reloaded.tiles, live.tiles);
            }
        }
    }

    #[test]
    fn entry_bundles_round_trip_and_refuse_a_cut() {
        let leaves = vec![b"{}".to_vec(), Vec::new(), vec![7u8; 300]];
        let bundle = entry_bundle(&leaves);
        assert_eq!(bundle.len(), 2 + 2 + 2 + 2 + 300);
        assert_eq!(split_entry_bundle(&bundle), Some(leaves));
        assert_eq!(split_entry_bundle(&bundle[..bundle.len() - 1]), None);
        assert_eq!(split_entry_bundle(&[0]), None);
        assert_eq!(split_entry_bundle(&[]), Some(Vec::new()));
    }
}
