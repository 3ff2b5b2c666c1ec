//! Tenants, their display profile and their purposes.

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::{tenant_purposes, tenants};
use super::{at_most_one, Repo};

/// A tenant.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = tenants)]
pub struct TenantRow {
    /// Id.
    pub id: String,
    /// Short name.
    pub name: String,
    /// Legal name as shown to recipients.
    pub legal_name: String,
    /// Postal address.
    pub postal_address: Option<String>,
    /// Complaint contact.
    pub complaint_contact: Option<String>,
    /// Opt-out contact.
    pub optout_contact: Option<String>,
    /// `ja` or `en`.
    pub default_language: String,
    /// A measures order was issued: retention is one year.
    pub legal_hold: bool,
    /// Unix ms.
    pub created_at: i64,
}

impl Repo<'_> {
    /// Inserts a tenant.
    pub fn insert_tenant(&mut self, row: &TenantRow) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(tenants::table)
                .values(row)
                .execute(c)
                .map(drop)
        })
    }

    /// A tenant by id.
    pub fn tenant(&mut self, id: &str) -> QueryResult<Option<TenantRow>> {
        db_run!(self, |c| {
            tenants::table.find(id).load(c).map(at_most_one)
        })
    }

    /// Replaces a tenant's display profile (names, addresses, contacts, language).
    pub fn update_tenant_profile(&mut self, row: &TenantRow) -> QueryResult<bool> {
        db_run!(self, |c| {
            let n = diesel::update(tenants::table.find(&row.id))
                .set((
                    tenants::legal_name.eq(&row.legal_name),
                    tenants::postal_address.eq(&row.postal_address),
                    tenants::complaint_contact.eq(&row.complaint_contact),
                    tenants::optout_contact.eq(&row.optout_contact),
                    tenants::default_language.eq(&row.default_language),
                ))
                .execute(c)?;
            Ok(n == 1)
        })
    }

    /// Adds a purpose (no-op if present).
    pub fn add_purpose(
        &mut self,
        tenant_id: &str,
        purpose: &str,
        description: &str,
        now: i64,
    ) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(tenant_purposes::table)
                .values((
                    tenant_purposes::tenant_id.eq(tenant_id),
                    tenant_purposes::purpose.eq(purpose),
                    tenant_purposes::description.eq(description),
                    tenant_purposes::created_at.eq(now),
                ))
                .on_conflict((tenant_purposes::tenant_id, tenant_purposes::purpose))
                .do_nothing()
                .execute(c)
                .map(drop)
        })
    }

    /// A tenant's purposes, sorted.
    pub fn purposes(&mut self, tenant_id: &str) -> QueryResult<Vec<(String, String)>> {
        db_run!(self, |c| {
            tenant_purposes::table
                .filter(tenant_purposes::tenant_id.eq(tenant_id))
                .order(tenant_purposes::purpose)
                .select((tenant_purposes::purpose, tenant_purposes::description))
                .load(c)
        })
    }
}
