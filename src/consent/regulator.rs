//! Regulator reads: each read of a tenant's records by a regulator is recorded before it is
//! answered, and the tenant can list them. Not here: the evidence itself (`evidence`).

use super::model::*;
use super::{known_purposes, new_id};
use crate::error::DomainError;

use crate::store::{Repo, Store};
use crate::{now_millis, rfc3339};

/// Records that a regulator read a tenant's records (before the read is answered).
pub fn record_regulator_read(
    store: &Store,
    tenant_id: &str,
    regulator: &str,
    operation: &str,
) -> Result<(), DomainError> {
    let row = crate::store::RegulatorReadRow {
        id: new_id(),
        tenant_id: tenant_id.to_string(),
        regulator: regulator.to_string(),
        operation: operation.to_string(),
        read_at: now_millis(),
    };
    store.write(|r: &mut Repo<'_>| {
        known_purposes(r, tenant_id)?; // an unknown tenant is a 404, never a stored oddity
        Ok::<_, DomainError>(r.insert_regulator_read(&row)?)
    })
}

/// A tenant's recorded regulator reads, newest first.
pub fn regulator_reads(
    store: &Store,
    tenant_id: &str,
    limit: u32,
) -> Result<Vec<RegulatorRead>, DomainError> {
    store.read(|r| {
        known_purposes(r, tenant_id)?;
        Ok(r.regulator_reads(tenant_id, i64::from(limit))?
            .into_iter()
            .map(|row| RegulatorRead {
                regulator: row.regulator,
                operation: row.operation,
                read_at: rfc3339(row.read_at),
            })
            .collect())
    })
}
