//! The log: its identity, tree state, leaves, tiles and checkpoints. No hashing or proof logic here.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel::QueryResult;

use super::schema::{checkpoints, leaves, log_meta, log_state, tiles};
use super::{at_most_one, exactly_one, LeafIndex, Repo};

/// The log's identity row.
#[derive(Debug, Clone, Queryable)]
pub struct LogMetaRow {
    /// The checkpoint origin (also the signing key's name).
    pub origin: String,
    /// The Ed25519 seed of the checkpoint key.
    pub signing_seed: Vec<u8>,
    /// The VRF secret key that labels subjects (`None` in a log from before labels, until it
    /// opens once).
    pub vrf_secret: Option<Vec<u8>>,
    /// The index of the leaf committing to the VRF public key, once appended.
    pub parameters_leaf: Option<LeafIndex>,
}

/// The committed tree state.
#[derive(Debug, Clone, Queryable)]
pub struct StateRow {
    /// Number of leaves.
    pub tree_size: LeafIndex,
    /// Root hash of those leaves.
    pub root_hash: Vec<u8>,
}

/// One published checkpoint.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = checkpoints)]
pub struct CheckpointRow {
    /// Tree size signed.
    pub tree_size: LeafIndex,
    /// Root hash signed.
    pub root_hash: Vec<u8>,
    /// The whole signed note.
    pub note: String,
    /// When it was published (Unix ms).
    pub published_at: i64,
}

/// A leaf to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = leaves)]
pub struct NewLeaf<'a> {
    /// Its index in the log.
    pub leaf_index: LeafIndex,
    /// `SHA-256(0x00 || data)`.
    pub leaf_hash: &'a [u8],
    /// The canonical leaf bytes.
    pub data: &'a [u8],
}

/// Rows per multi-row INSERT: well under SQLite's 32,766 bound parameters (3 per row).
const INSERT_CHUNK: usize = 5_000;

impl Repo<'_> {
    /// The identity row, if the log was initialised.
    pub fn log_meta(&mut self) -> QueryResult<Option<LogMetaRow>> {
        db_run!(self, |c| {
            log_meta::table
                .select((
                    log_meta::origin,
                    log_meta::signing_seed,
                    log_meta::vrf_secret,
                    log_meta::parameters_leaf,
                ))
                .load(c)
                .map(at_most_one)
        })
    }

    /// Initialises the identity and an empty tree state (size 0, `empty_root`).
    pub fn init_log(
        &mut self,
        origin: &str,
        seed: &[u8],
        empty_root: &[u8],
        now: i64,
    ) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(log_meta::table)
                .values((
                    log_meta::id.eq(1),
                    log_meta::origin.eq(origin),
                    log_meta::signing_seed.eq(seed),
                    log_meta::created_at.eq(now),
                ))
                .execute(c)?;
            diesel::insert_into(log_state::table)
                .values((
                    log_state::id.eq(1),
                    log_state::tree_size.eq(0i64),
                    log_state::root_hash.eq(empty_root),
                    log_state::updated_at.eq(now),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    /// Stores the VRF secret key, unless one is stored; false if one was.
    pub fn init_vrf_secret(&mut self, secret: &[u8]) -> QueryResult<bool> {
        db_run!(self, |c| {
            diesel::update(log_meta::table.filter(log_meta::vrf_secret.is_null()))
                .set(log_meta::vrf_secret.eq(secret))
                .execute(c)
                .map(|n| n == 1)
        })
    }

    /// Records the index of the parameters leaf.
    pub fn set_parameters_leaf(&mut self, index: u64) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::update(log_meta::table)
                .set(log_meta::parameters_leaf.eq(LeafIndex(index)))
                .execute(c)
                .map(drop)
        })
    }

    /// Rewrites the log's identity row unchanged: a write that changes nothing, to learn
    /// whether writes succeed again after they failed.
    pub fn rewrite_log_meta(&mut self) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::update(log_meta::table)
                .set(log_meta::origin.eq(log_meta::origin))
                .execute(c)
                .map(drop)
        })
    }

    /// The committed tree state.
    pub fn log_state(&mut self) -> QueryResult<StateRow> {
        db_run!(self, |c| {
            log_state::table
                .select((log_state::tree_size, log_state::root_hash))
                .load(c)
                .and_then(exactly_one)
        })
    }

    /// Moves the state from `from_size` to `to_size` (compare-and-swap); false if it had moved.
    pub fn advance_log_state(
        &mut self,
        from_size: u64,
        to_size: u64,
        root: &[u8],
        now: i64,
    ) -> QueryResult<bool> {
        db_run!(self, |c| {
            let updated = diesel::update(
                log_state::table.filter(log_state::tree_size.eq(LeafIndex(from_size))),
            )
            .set((
                log_state::tree_size.eq(LeafIndex(to_size)),
                log_state::root_hash.eq(root),
                log_state::updated_at.eq(now),
            ))
            .execute(c)?;
            Ok(updated == 1)
        })
    }

    /// Inserts leaves.
    pub fn insert_leaves(&mut self, rows: &[NewLeaf<'_>]) -> QueryResult<()> {
        db_run!(self, |c| {
            for chunk in rows.chunks(INSERT_CHUNK) {
                diesel::insert_into(leaves::table)
                    .values(chunk)
                    .execute(c)?;
            }
            Ok(())
        })
    }

    /// Inserts or replaces a tile.
    pub fn put_tile(&mut self, level: i32, index: u64, hashes: &[u8]) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(tiles::table)
                .values((
                    tiles::level.eq(level),
                    tiles::tile_index.eq(LeafIndex(index)),
                    tiles::hashes.eq(hashes),
                ))
                .on_conflict((tiles::level, tiles::tile_index))
                .do_update()
                .set(tiles::hashes.eq(excluded(tiles::hashes)))
                .execute(c)?;
            Ok(())
        })
    }

    /// A stored tile's bytes.
    pub fn tile(&mut self, level: i32, index: u64) -> QueryResult<Option<Vec<u8>>> {
        db_run!(self, |c| {
            tiles::table
                .filter(
                    tiles::level
                        .eq(level)
                        .and(tiles::tile_index.eq(LeafIndex(index))),
                )
                .select(tiles::hashes)
                .load(c)
                .map(at_most_one)
        })
    }

    /// Leaf data for indexes `start..end`, in order.
    pub fn leaf_data(&mut self, start: u64, end: u64) -> QueryResult<Vec<Vec<u8>>> {
        db_run!(self, |c| {
            leaves::table
                .filter(
                    leaves::leaf_index
                        .ge(LeafIndex(start))
                        .and(leaves::leaf_index.lt(LeafIndex(end))),
                )
                .order(leaves::leaf_index)
                .select(leaves::data)
                .load(c)
        })
    }

    /// Leaf hashes for indexes `start..end`, in order.
    pub fn leaf_hashes(&mut self, start: u64, end: u64) -> QueryResult<Vec<Vec<u8>>> {
        db_run!(self, |c| {
            leaves::table
                .filter(
                    leaves::leaf_index
                        .ge(LeafIndex(start))
                        .and(leaves::leaf_index.lt(LeafIndex(end))),
                )
                .order(leaves::leaf_index)
                .select(leaves::leaf_hash)
                .load(c)
        })
    }

    /// The smallest index below `below` whose leaf hash is `hash`.
    pub fn leaf_index_by_hash(
        &mut self,
        hash: &[u8],
        below: u64,
    ) -> QueryResult<Option<LeafIndex>> {
        db_run!(self, |c| {
            leaves::table
                .filter(
                    leaves::leaf_hash
                        .eq(hash)
                        .and(leaves::leaf_index.lt(LeafIndex(below))),
                )
                .order(leaves::leaf_index)
                .select(leaves::leaf_index)
                .first(c)
                .optional()
        })
    }

    /// The checkpoint with the largest size. Its size, then the row: a query with `LIMIT ?` (an
    /// `ORDER BY … LIMIT 1`) is prepared anew on each run by SQLite, and this one runs for every
    /// checkpoint served.
    pub fn latest_checkpoint(&mut self) -> QueryResult<Option<CheckpointRow>> {
        match self.latest_checkpoint_size()? {
            Some(size) => self.checkpoint(size.get()),
            None => Ok(None),
        }
    }

    /// The size of the largest checkpoint, if any (an index read: no note, no cosignatures).
    pub fn latest_checkpoint_size(&mut self) -> QueryResult<Option<LeafIndex>> {
        db_run!(self, |c| {
            checkpoints::table
                .select(diesel::dsl::max(checkpoints::tree_size))
                .get_result(c)
        })
    }

    /// The checkpoint of one size.
    pub fn checkpoint(&mut self, size: u64) -> QueryResult<Option<CheckpointRow>> {
        db_run!(self, |c| {
            checkpoints::table
                .find(LeafIndex(size))
                .load(c)
                .map(at_most_one)
        })
    }

    /// Up to `limit` checkpoints with size greater than `after` (any, without it), ascending.
    pub fn checkpoints_after(
        &mut self,
        after: Option<u64>,
        limit: i64,
    ) -> QueryResult<Vec<CheckpointRow>> {
        db_run!(self, |c| {
            checkpoints::table
                .filter(checkpoints::tree_size.ge(LeafIndex::first_after(after)))
                .order(checkpoints::tree_size)
                .limit(limit)
                .load(c)
        })
    }

    /// Stores a checkpoint.
    pub fn insert_checkpoint(&mut self, row: &CheckpointRow) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(checkpoints::table)
                .values(row)
                .execute(c)?;
            Ok(())
        })
    }
}
