//! Witnesses' cosignatures of checkpoints.

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::cosignatures;
use super::{LeafIndex, Repo};

impl Repo<'_> {
    /// Stores a witness's cosignature line of a checkpoint (replacing an older one).
    pub fn put_cosignature(
        &mut self,
        tree_size: u64,
        witness: &str,
        line: &str,
        now: i64,
    ) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::delete(
                cosignatures::table
                    .filter(cosignatures::tree_size.eq(LeafIndex(tree_size)))
                    .filter(cosignatures::witness.eq(witness)),
            )
            .execute(c)?;
            diesel::insert_into(cosignatures::table)
                .values((
                    cosignatures::tree_size.eq(LeafIndex(tree_size)),
                    cosignatures::witness.eq(witness),
                    cosignatures::line.eq(line),
                    cosignatures::received_at.eq(now),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    /// The cosignature lines of a checkpoint, by witness name.
    pub fn cosignatures(&mut self, tree_size: u64) -> QueryResult<Vec<String>> {
        db_run!(self, |c| {
            cosignatures::table
                .filter(cosignatures::tree_size.eq(LeafIndex(tree_size)))
                .order(cosignatures::witness)
                .select(cosignatures::line)
                .load(c)
        })
    }

    /// The cosignature lines of the checkpoints of sizes `first..=last`, with their sizes.
    pub fn cosignatures_between(
        &mut self,
        first: u64,
        last: u64,
    ) -> QueryResult<Vec<(LeafIndex, String)>> {
        db_run!(self, |c| {
            cosignatures::table
                .filter(cosignatures::tree_size.between(LeafIndex(first), LeafIndex(last)))
                .order((cosignatures::tree_size, cosignatures::witness))
                .select((cosignatures::tree_size, cosignatures::line))
                .load(c)
        })
    }

    /// The largest checkpoint size a witness cosigned.
    pub fn latest_cosigned(&mut self, witness: &str) -> QueryResult<Option<LeafIndex>> {
        db_run!(self, |c| {
            cosignatures::table
                .filter(cosignatures::witness.eq(witness))
                .select(diesel::dsl::max(cosignatures::tree_size))
                .first(c)
        })
    }

    /// The checkpoint size of every cosignature at or above `at_least` (one per cosignature).
    pub fn cosigned_sizes(&mut self, at_least: u64) -> QueryResult<Vec<LeafIndex>> {
        db_run!(self, |c| {
            cosignatures::table
                .filter(cosignatures::tree_size.ge(LeafIndex(at_least)))
                .select(cosignatures::tree_size)
                .load(c)
        })
    }

    /// The largest cosigned checkpoint size in `1..=at_most`, if any.
    pub fn latest_cosigned_at_most(&mut self, at_most: u64) -> QueryResult<Option<LeafIndex>> {
        db_run!(self, |c| {
            cosignatures::table
                .filter(cosignatures::tree_size.le(LeafIndex(at_most)))
                .filter(cosignatures::tree_size.gt(0))
                .select(diesel::dsl::max(cosignatures::tree_size))
                .first(c)
        })
    }

    /// The smallest cosigned checkpoint size in `above+1..=at_most`, if any.
    pub fn earliest_cosigned_above(
        &mut self,
        above: u64,
        at_most: u64,
    ) -> QueryResult<Option<LeafIndex>> {
        db_run!(self, |c| {
            cosignatures::table
                .filter(cosignatures::tree_size.gt(LeafIndex(above)))
                .filter(cosignatures::tree_size.le(LeafIndex(at_most)))
                .select(diesel::dsl::min(cosignatures::tree_size))
                .first(c)
        })
    }
}
