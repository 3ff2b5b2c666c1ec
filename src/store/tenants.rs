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
    /// 送信責任者, when it is not the sender itself.
    pub responsible_party: Option<String>,
    /// Telephone number for enquiries.
    pub phone: Option<String>,
    /// Privacy policy URL.
    pub privacy_policy_url: Option<String>,
}

/// A purpose of a tenant, with its labels.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct PurposeRow {
    /// Key.
    pub purpose: String,
    /// What is sent for it.
    pub description: String,
    /// Its label in Japanese.
    pub label_ja: Option<String>,
    /// Its label in English.
    pub label_en: Option<String>,
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

    /// A page of tenants by id (ids sort by creation), after the id `after`.
    pub fn tenants_after(&mut self, after: &str, limit: i64) -> QueryResult<Vec<TenantRow>> {
        db_run!(self, |c| {
            tenants::table
                .filter(tenants::id.gt(after))
                .order(tenants::id)
                .limit(limit)
                .load(c)
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
                    tenants::responsible_party.eq(&row.responsible_party),
                    tenants::phone.eq(&row.phone),
                    tenants::privacy_policy_url.eq(&row.privacy_policy_url),
                ))
                .execute(c)?;
            Ok(n == 1)
        })
    }

    /// Adds a purpose, or replaces the description and labels of one the tenant has.
    pub fn put_purpose(&mut self, tenant_id: &str, p: &PurposeRow, now: i64) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(tenant_purposes::table)
                .values((
                    tenant_purposes::tenant_id.eq(tenant_id),
                    tenant_purposes::purpose.eq(&p.purpose),
                    tenant_purposes::description.eq(&p.description),
                    tenant_purposes::created_at.eq(now),
                    tenant_purposes::label_ja.eq(&p.label_ja),
                    tenant_purposes::label_en.eq(&p.label_en),
                ))
                .on_conflict((tenant_purposes::tenant_id, tenant_purposes::purpose))
                .do_update()
                .set((
                    tenant_purposes::description.eq(&p.description),
                    tenant_purposes::label_ja.eq(&p.label_ja),
                    tenant_purposes::label_en.eq(&p.label_en),
                ))
                .execute(c)
                .map(drop)
        })
    }

    /// A tenant's purposes, sorted.
    pub fn purposes(&mut self, tenant_id: &str) -> QueryResult<Vec<PurposeRow>> {
        db_run!(self, |c| {
            tenant_purposes::table
                .filter(tenant_purposes::tenant_id.eq(tenant_id))
                .order(tenant_purposes::purpose)
                .select((
                    tenant_purposes::purpose,
                    tenant_purposes::description,
                    tenant_purposes::label_ja,
                    tenant_purposes::label_en,
                ))
                .load(c)
        })
    }
}
