//! The log's queries: identity, tree state, leaves, tiles and checkpoints. Written once, compiled
//! for SQLite and PostgreSQL by `impl_log_rows!`. No hashing or proof logic here.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel::{PgConnection, QueryResult, SqliteConnection};

use super::schema::{checkpoints, cosignatures, leaves, log_meta, log_state, subjects, tiles};
use super::{at_most_one, exactly_one};

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
    pub parameters_leaf: Option<i64>,
}

/// The committed tree state.
#[derive(Debug, Clone, Queryable)]
pub struct StateRow {
    /// Number of leaves.
    pub tree_size: i64,
    /// Root hash of those leaves.
    pub root_hash: Vec<u8>,
}

/// One published checkpoint.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = checkpoints)]
pub struct CheckpointRow {
    /// Tree size signed.
    pub tree_size: i64,
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
    pub leaf_index: i64,
    /// `SHA-256(0x00 || data)`.
    pub leaf_hash: &'a [u8],
    /// The canonical leaf bytes.
    pub data: &'a [u8],
}

/// Rows per multi-row INSERT: well under SQLite's 32,766 bound parameters (3 per row).
const INSERT_CHUNK: usize = 5_000;

/// The log's queries.
pub trait LogRows {
    /// The identity row, if the log was initialised.
    fn log_meta(&mut self) -> QueryResult<Option<LogMetaRow>>;
    /// Initialises the identity and an empty tree state (size 0, `empty_root`).
    fn init_log(
        &mut self,
        origin: &str,
        seed: &[u8],
        empty_root: &[u8],
        now: i64,
    ) -> QueryResult<()>;
    /// Stores the VRF secret key, unless one is stored; false if one was.
    fn init_vrf_secret(&mut self, secret: &[u8]) -> QueryResult<bool>;
    /// Records the index of the parameters leaf.
    fn set_parameters_leaf(&mut self, index: i64) -> QueryResult<()>;
    /// Rewrites the log's identity row unchanged: a write that changes nothing, to learn
    /// whether writes succeed again after they failed.
    fn rewrite_log_meta(&mut self) -> QueryResult<()>;
    /// The committed tree state.
    fn log_state(&mut self) -> QueryResult<StateRow>;
    /// Moves the state from `from_size` to `to_size` (compare-and-swap); false if it had moved.
    fn advance_log_state(
        &mut self,
        from_size: i64,
        to_size: i64,
        root: &[u8],
        now: i64,
    ) -> QueryResult<bool>;
    /// Inserts leaves.
    fn insert_leaves(&mut self, rows: &[NewLeaf<'_>]) -> QueryResult<()>;
    /// Inserts or replaces a tile.
    fn put_tile(&mut self, level: i32, index: i64, hashes: &[u8]) -> QueryResult<()>;
    /// A stored tile's bytes.
    fn tile(&mut self, level: i32, index: i64) -> QueryResult<Option<Vec<u8>>>;
    /// Leaf data for indexes `start..end`, in order.
    fn leaf_data(&mut self, start: i64, end: i64) -> QueryResult<Vec<Vec<u8>>>;
    /// Leaf hashes for indexes `start..end`, in order.
    fn leaf_hashes(&mut self, start: i64, end: i64) -> QueryResult<Vec<Vec<u8>>>;
    /// The smallest index below `below` whose leaf hash is `hash`.
    fn leaf_index_by_hash(&mut self, hash: &[u8], below: i64) -> QueryResult<Option<i64>>;
    /// The checkpoint with the largest size.
    fn latest_checkpoint(&mut self) -> QueryResult<Option<CheckpointRow>>;
    /// The checkpoint of one size.
    fn checkpoint(&mut self, size: i64) -> QueryResult<Option<CheckpointRow>>;
    /// Up to `limit` checkpoints with size greater than `after`, ascending.
    fn checkpoints_after(&mut self, after: i64, limit: i64) -> QueryResult<Vec<CheckpointRow>>;
    /// Stores a checkpoint.
    fn insert_checkpoint(&mut self, row: &CheckpointRow) -> QueryResult<()>;
    /// Every subject commitment with the index of its latest leaf (the subjects' chain heads):
    /// the contents of the subject map (`log::map`), read when the log opens.
    fn subject_heads(&mut self) -> QueryResult<Vec<(Vec<u8>, i64)>>;
    /// Stores a witness's cosignature line of a checkpoint (replacing an older one).
    fn put_cosignature(
        &mut self,
        tree_size: i64,
        witness: &str,
        line: &str,
        now: i64,
    ) -> QueryResult<()>;
    /// The cosignature lines of a checkpoint, by witness name.
    fn cosignatures(&mut self, tree_size: i64) -> QueryResult<Vec<String>>;
    /// The cosignature lines of the checkpoints of sizes `first..=last`, with their sizes.
    fn cosignatures_between(&mut self, first: i64, last: i64) -> QueryResult<Vec<(i64, String)>>;
    /// The largest checkpoint size a witness cosigned.
    fn latest_cosigned(&mut self, witness: &str) -> QueryResult<Option<i64>>;
    /// The checkpoint size of every cosignature at or above `at_least` (one per cosignature).
    fn cosigned_sizes(&mut self, at_least: i64) -> QueryResult<Vec<i64>>;
    /// The largest cosigned checkpoint size in `1..=at_most`, if any.
    fn latest_cosigned_at_most(&mut self, at_most: i64) -> QueryResult<Option<i64>>;
    /// The smallest cosigned checkpoint size in `above+1..=at_most`, if any.
    fn earliest_cosigned_above(&mut self, above: i64, at_most: i64) -> QueryResult<Option<i64>>;
}

macro_rules! impl_log_rows {
    ($conn:ty) => {
        impl LogRows for $conn {
            fn log_meta(&mut self) -> QueryResult<Option<LogMetaRow>> {
                log_meta::table
                    .select((
                        log_meta::origin,
                        log_meta::signing_seed,
                        log_meta::vrf_secret,
                        log_meta::parameters_leaf,
                    ))
                    .load(self)
                    .map(at_most_one)
            }

            fn init_vrf_secret(&mut self, secret: &[u8]) -> QueryResult<bool> {
                diesel::update(log_meta::table.filter(log_meta::vrf_secret.is_null()))
                    .set(log_meta::vrf_secret.eq(secret))
                    .execute(self)
                    .map(|n| n == 1)
            }

            fn rewrite_log_meta(&mut self) -> QueryResult<()> {
                diesel::update(log_meta::table)
                    .set(log_meta::origin.eq(log_meta::origin))
                    .execute(self)
                    .map(drop)
            }

            fn set_parameters_leaf(&mut self, index: i64) -> QueryResult<()> {
                diesel::update(log_meta::table)
                    .set(log_meta::parameters_leaf.eq(index))
                    .execute(self)
                    .map(drop)
            }

            fn init_log(
                &mut self,
                origin: &str,
                seed: &[u8],
                empty_root: &[u8],
                now: i64,
            ) -> QueryResult<()> {
                diesel::insert_into(log_meta::table)
                    .values((
                        log_meta::id.eq(1),
                        log_meta::origin.eq(origin),
                        log_meta::signing_seed.eq(seed),
                        log_meta::created_at.eq(now),
                    ))
                    .execute(self)?;
                diesel::insert_into(log_state::table)
                    .values((
                        log_state::id.eq(1),
                        log_state::tree_size.eq(0i64),
                        log_state::root_hash.eq(empty_root),
                        log_state::updated_at.eq(now),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn log_state(&mut self) -> QueryResult<StateRow> {
                log_state::table
                    .select((log_state::tree_size, log_state::root_hash))
                    .load(self)
                    .and_then(exactly_one)
            }

            fn advance_log_state(
                &mut self,
                from_size: i64,
                to_size: i64,
                root: &[u8],
                now: i64,
            ) -> QueryResult<bool> {
                let updated =
                    diesel::update(log_state::table.filter(log_state::tree_size.eq(from_size)))
                        .set((
                            log_state::tree_size.eq(to_size),
                            log_state::root_hash.eq(root),
                            log_state::updated_at.eq(now),
                        ))
                        .execute(self)?;
                Ok(updated == 1)
            }

            fn insert_leaves(&mut self, rows: &[NewLeaf<'_>]) -> QueryResult<()> {
                for chunk in rows.chunks(INSERT_CHUNK) {
                    diesel::insert_into(leaves::table)
                        .values(chunk)
                        .execute(self)?;
                }
                Ok(())
            }

            fn put_tile(&mut self, level: i32, index: i64, hashes: &[u8]) -> QueryResult<()> {
                diesel::insert_into(tiles::table)
                    .values((
                        tiles::level.eq(level),
                        tiles::tile_index.eq(index),
                        tiles::hashes.eq(hashes),
                    ))
                    .on_conflict((tiles::level, tiles::tile_index))
                    .do_update()
                    .set(tiles::hashes.eq(excluded(tiles::hashes)))
                    .execute(self)?;
                Ok(())
            }

            fn tile(&mut self, level: i32, index: i64) -> QueryResult<Option<Vec<u8>>> {
                tiles::table
                    .filter(tiles::level.eq(level).and(tiles::tile_index.eq(index)))
                    .select(tiles::hashes)
                    .load(self)
                    .map(at_most_one)
            }

            fn leaf_data(&mut self, start: i64, end: i64) -> QueryResult<Vec<Vec<u8>>> {
                leaves::table
                    .filter(leaves::leaf_index.ge(start).and(leaves::leaf_index.lt(end)))
                    .order(leaves::leaf_index)
                    .select(leaves::data)
                    .load(self)
            }

            fn leaf_hashes(&mut self, start: i64, end: i64) -> QueryResult<Vec<Vec<u8>>> {
                leaves::table
                    .filter(leaves::leaf_index.ge(start).and(leaves::leaf_index.lt(end)))
                    .order(leaves::leaf_index)
                    .select(leaves::leaf_hash)
                    .load(self)
            }

            fn leaf_index_by_hash(&mut self, hash: &[u8], below: i64) -> QueryResult<Option<i64>> {
                leaves::table
                    .filter(leaves::leaf_hash.eq(hash).and(leaves::leaf_index.lt(below)))
                    .order(leaves::leaf_index)
                    .select(leaves::leaf_index)
                    .first(self)
                    .optional()
            }

            fn latest_checkpoint(&mut self) -> QueryResult<Option<CheckpointRow>> {
                checkpoints::table
                    .order(checkpoints::tree_size.desc())
                    .first(self)
                    .optional()
            }

            fn checkpoint(&mut self, size: i64) -> QueryResult<Option<CheckpointRow>> {
                checkpoints::table.find(size).load(self).map(at_most_one)
            }

            fn checkpoints_after(
                &mut self,
                after: i64,
                limit: i64,
            ) -> QueryResult<Vec<CheckpointRow>> {
                checkpoints::table
                    .filter(checkpoints::tree_size.gt(after))
                    .order(checkpoints::tree_size)
                    .limit(limit)
                    .load(self)
            }

            fn insert_checkpoint(&mut self, row: &CheckpointRow) -> QueryResult<()> {
                diesel::insert_into(checkpoints::table)
                    .values(row)
                    .execute(self)?;
                Ok(())
            }

            fn put_cosignature(
                &mut self,
                tree_size: i64,
                witness: &str,
                line: &str,
                now: i64,
            ) -> QueryResult<()> {
                diesel::delete(
                    cosignatures::table
                        .filter(cosignatures::tree_size.eq(tree_size))
                        .filter(cosignatures::witness.eq(witness)),
                )
                .execute(self)?;
                diesel::insert_into(cosignatures::table)
                    .values((
                        cosignatures::tree_size.eq(tree_size),
                        cosignatures::witness.eq(witness),
                        cosignatures::line.eq(line),
                        cosignatures::received_at.eq(now),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn cosignatures(&mut self, tree_size: i64) -> QueryResult<Vec<String>> {
                cosignatures::table
                    .filter(cosignatures::tree_size.eq(tree_size))
                    .order(cosignatures::witness)
                    .select(cosignatures::line)
                    .load(self)
            }

            fn cosignatures_between(
                &mut self,
                first: i64,
                last: i64,
            ) -> QueryResult<Vec<(i64, String)>> {
                cosignatures::table
                    .filter(cosignatures::tree_size.between(first, last))
                    .order((cosignatures::tree_size, cosignatures::witness))
                    .select((cosignatures::tree_size, cosignatures::line))
                    .load(self)
            }

            fn latest_cosigned(&mut self, witness: &str) -> QueryResult<Option<i64>> {
                cosignatures::table
                    .filter(cosignatures::witness.eq(witness))
                    .select(diesel::dsl::max(cosignatures::tree_size))
                    .first(self)
            }

            fn latest_cosigned_at_most(&mut self, at_most: i64) -> QueryResult<Option<i64>> {
                cosignatures::table
                    .filter(cosignatures::tree_size.le(at_most))
                    .filter(cosignatures::tree_size.gt(0))
                    .select(diesel::dsl::max(cosignatures::tree_size))
                    .first(self)
            }

            fn earliest_cosigned_above(
                &mut self,
                above: i64,
                at_most: i64,
            ) -> QueryResult<Option<i64>> {
                cosignatures::table
                    .filter(cosignatures::tree_size.gt(above))
                    .filter(cosignatures::tree_size.le(at_most))
                    .select(diesel::dsl::min(cosignatures::tree_size))
                    .first(self)
            }

            fn cosigned_sizes(&mut self, at_least: i64) -> QueryResult<Vec<i64>> {
                cosignatures::table
                    .filter(cosignatures::tree_size.ge(at_least))
                    .select(cosignatures::tree_size)
                    .load(self)
            }

            fn subject_heads(&mut self) -> QueryResult<Vec<(Vec<u8>, i64)>> {
                subjects::table
                    .filter(subjects::last_leaf_index.is_not_null())
                    .select((
                        subjects::commitment,
                        subjects::last_leaf_index.assume_not_null(),
                    ))
                    .load(self)
            }
        }
    };
}

impl_log_rows!(SqliteConnection);
impl_log_rows!(PgConnection);
