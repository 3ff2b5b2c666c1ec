//! Collection points (the screens and forms consent was given on), by version.

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::collection_points;
use super::{at_most_one, LeafIndex, Repo};

/// A registered collection point version.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = collection_points)]
pub struct CollectionPointRow {
    /// Content-addressed id (hex SHA-256).
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Name shared by its versions.
    pub name: String,
    /// Channel.
    pub channel: String,
    /// MIME type of the content.
    pub content_type: String,
    /// The exact content shown.
    pub content: Vec<u8>,
    /// Sender name shown to the person.
    pub sender_name_shown: String,
    /// Whether the consent box was pre-checked.
    pub prechecked: bool,
    /// Language.
    pub language: String,
    /// Its leaf.
    pub leaf_index: LeafIndex,
    /// Start of its period of use, Unix ms.
    pub registered_at: i64,
    /// End of its period of use (its retirement), Unix ms.
    pub superseded_at: Option<i64>,
    /// The `collection_point_retired` leaf that ended it.
    pub retired_leaf_index: Option<LeafIndex>,
}

impl Repo<'_> {
    /// A collection point version.
    pub fn collection_point(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> QueryResult<Option<CollectionPointRow>> {
        db_run!(self, |c| {
            collection_points::table
                .find((tenant_id, id))
                .load(c)
                .map(at_most_one)
        })
    }

    /// Ends a version's period of use at `at`, by the retirement leaf `leaf` (if it is in use).
    pub fn retire_collection_point(
        &mut self,
        tenant_id: &str,
        id: &str,
        at: i64,
        leaf: u64,
    ) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::update(
                collection_points::table
                    .find((tenant_id, id))
                    .filter(collection_points::retired_leaf_index.is_null()),
            )
            .set((
                collection_points::superseded_at.eq(at),
                collection_points::retired_leaf_index.eq(LeafIndex(leaf)),
            ))
            .execute(c)
            .map(drop)
        })
    }

    /// A page of a tenant's versions in registration order: those registered after leaf
    /// `after`, at most `limit`, optionally only those named `name`.
    pub fn collection_points(
        &mut self,
        tenant_id: &str,
        name: Option<&str>,
        after: Option<u64>,
        limit: i64,
    ) -> QueryResult<Vec<CollectionPointRow>> {
        let from = LeafIndex::first_after(after);
        db_run!(self, |c| {
            let mut query = collection_points::table
                .filter(collection_points::tenant_id.eq(tenant_id))
                .filter(collection_points::leaf_index.ge(from))
                .order(collection_points::leaf_index)
                .limit(limit)
                .into_boxed();
            if let Some(name) = name {
                query = query.filter(collection_points::name.eq(name));
            }
            query.load(c)
        })
    }

    /// Inserts a collection point version.
    pub fn insert_collection_point(&mut self, row: &CollectionPointRow) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(collection_points::table)
                .values(row)
                .execute(c)
                .map(drop)
        })
    }
}
