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
    /// End of its period of use, Unix ms.
    pub superseded_at: Option<i64>,
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

    /// Ends the period of use of the current versions named `name`.
    pub fn supersede_collection_points(
        &mut self,
        tenant_id: &str,
        name: &str,
        now: i64,
    ) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::update(
                collection_points::table.filter(
                    collection_points::tenant_id
                        .eq(tenant_id)
                        .and(collection_points::name.eq(name))
                        .and(collection_points::superseded_at.is_null()),
                ),
            )
            .set(collection_points::superseded_at.eq(now))
            .execute(c)
            .map(drop)
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
