//! HTTP for evidence: the bundle a regulator verifies offline, the proof of an address's entry
//! in a recorded campaign check, and the whole-tenant export (streamed JSON lines). The rules
//! are in `crate::evidence`.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::access::{Access, Caller};
use super::error::{ApiError, Problem};
use super::AppState;
use crate::error::DomainError;
use crate::evidence::{Bundle, CampaignProof};

/// Whose evidence.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvidenceQuery {
    /// The address.
    pub email: String,
    /// The tenant (regulators and admins).
    pub tenant: Option<String>,
    /// `bundle` (default: the verifiable bundle), `kantara` (a Kantara Consent Receipt v1.1 of
    /// the current consent) or `dpv` (W3C DPV JSON-LD consent records, ISO/IEC TS 27560 shape).
    pub format: Option<String>,
}

/// Evidence bundle of an address
///
/// The evidence bundle of an address: its opening, every event as exact leaf bytes with an
/// inclusion proof against one signed checkpoint (also as C2SP `tlog-proof@v1`), the collection
/// points they name, and the decisions. Verify it offline with `consent-ledger verify evidence`.
/// A sender for its own tenant; a regulator for any tenant (`tenant=`; the read is recorded).
/// `format=kantara` or `format=dpv` renders the same evidence for consent-record systems.
#[utoipa::path(get, path = "/v1/evidence", tag = "consent", security(("bearer" = [])), params(EvidenceQuery),
    responses((status = 200, body = Bundle), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No events for this address, or its data was erased", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`format=kantara` for a tenant without the contacts a receipt requires", body = Problem, content_type = "application/problem+json"),
              ))]
#[get("/v1/evidence")]
pub async fn bundle(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<EvidenceQuery>,
) -> Result<HttpResponse, ApiError> {
    let EvidenceQuery {
        email,
        tenant,
        format,
    } = query.into_inner();
    let render: fn(&Bundle) -> Result<serde_json::Value, DomainError> = match format.as_deref() {
        None | Some("bundle") => |b| Ok(serde_json::to_value(b).expect("a bundle serialises")),
        Some("kantara") => crate::evidence::receipt::kantara,
        Some("dpv") => crate::evidence::receipt::dpv,
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "format is bundle, kantara or dpv, not {other:?}"
            )))
        }
    };
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Read)?;
    caller.audit(&state, &tenant_id, "evidence").await?;
    let (store, log) = (state.store.clone(), state.log.clone());
    let bundle =
        web::block(move || crate::evidence::bundle(&store, &log, &tenant_id, &email)).await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"evidence.json\"",
        ))
        .json(render(&bundle)?))
}

/// Whose entry in a campaign check.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignProofQuery {
    /// The address.
    pub email: String,
    /// The tenant (regulators and admins).
    pub tenant: Option<String>,
}

/// Proof of an address in a campaign check
///
/// The proof that an address was in a recorded campaign check (`POST /v1/consent:check` with
/// `"record": true`) with its decision: the `campaign_check` leaf, the address's entry with its
/// path to the leaf's root, and the address's evidence bundle at a checkpoint covering both.
/// Verify it offline with `consent-ledger verify campaign`. A sender for its own tenant; a
/// regulator for any (`tenant=`; the read is recorded).
#[utoipa::path(get, path = "/v1/campaign-checks/{id}/proof", tag = "consent", security(("bearer" = [])),
    params(("id" = String, Path, description = "The campaign check's id"), CampaignProofQuery),
    responses((status = 200, body = CampaignProof), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such campaign check, the address was not in it, or it has no events (its decision was none)", body = Problem, content_type = "application/problem+json"),
              ))]
#[get("/v1/campaign-checks/{id}/proof")]
pub async fn campaign_proof(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<CampaignProofQuery>,
) -> Result<HttpResponse, ApiError> {
    let CampaignProofQuery { email, tenant } = query.into_inner();
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Read)?;
    caller.audit(&state, &tenant_id, "campaign_proof").await?;
    let (store, log, id) = (state.store.clone(), state.log.clone(), id.into_inner());
    let proof =
        web::block(move || crate::evidence::campaign_proof(&store, &log, &tenant_id, &id, &email))
            .await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(proof))
}

/// Which tenant's whole evidence, and where an interrupted export goes on.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantEvidenceQuery {
    /// The tenant (regulators and admins).
    pub tenant: Option<String>,
    /// To resume: the checkpoint size of the export's header (with `after`).
    pub size: Option<u64>,
    /// To resume: the `key` of the last subject line received (64 hex digits; with `size`).
    pub after: Option<String>,
}

/// Whole-tenant evidence
///
/// Every subject of a tenant as of one checkpoint, streamed as JSON lines
/// (`consent-ledger/tenant-evidence/v1`): a header line (the checkpoint, its subject map leaf,
/// the tenants' directory bucket proving the tenant's map root and subject count, the log's
/// VRF key), then one line per subject in key order: its key and head, its chain of leaves
/// with inclusion proofs, and its opening (address, VRF proof, salt, evidence) unless erased.
/// Verify it offline with `consent-ledger verify tenant`: the lines must give the directory's
/// root, so none can be missing. An export cut short resumes with `size` (the header's
/// checkpoint size) and `after` (the last line's key): the lines after it, as of that
/// checkpoint, without a header; append them to the file. A sender for its own tenant; a
/// regulator for any (`tenant=`; the read is recorded).
#[utoipa::path(get, path = "/v1/evidence:tenant", tag = "consent", security(("bearer" = [])), params(TenantEvidenceQuery),
    responses((status = 200, description = "JSON lines: a `TenantHeader` (unless resuming), then one `SubjectRecord` per subject", content_type = "application/x-ndjson", body = String),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such tenant, or no checkpoint with a subject map yet", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "`size` without `after` (or the reverse), a key that is not 64 hex digits, or a size that is no export's checkpoint", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "As many exports as the service runs at once are running; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
              ))]
#[get("/v1/evidence:tenant")]
pub async fn tenant_evidence(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<TenantEvidenceQuery>,
) -> Result<HttpResponse, ApiError> {
    let TenantEvidenceQuery {
        tenant,
        size,
        after,
    } = query.into_inner();
    let resume = match (size, after) {
        (None, None) => None,
        (Some(size), Some(after)) => Some(crate::evidence::tenant::Resume {
            size,
            after: crate::unhex32(&after).ok_or_else(|| {
                ApiError::Invalid(format!(
                    "after is the key of the last subject line received (64 hex digits), not {after:?}"
                ))
            })?,
        }),
        _ => {
            return Err(ApiError::Invalid(
                "size and after resume an export together: pass both (the header's checkpoint \
                 size and the last line's key), or neither to begin one"
                    .into(),
            ))
        }
    };
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Read)?;
    let slot = ExportSlot::take().ok_or_else(|| {
        ApiError::Unavailable(format!(
            "{MAX_EXPORTS} whole-tenant exports are running; retry when one has ended"
        ))
    })?;
    caller.audit(&state, &tenant_id, "tenant_evidence").await?;
    let (store, log) = (state.store.clone(), state.log.clone());
    let mut export =
        web::block(move || crate::evidence::tenant::begin(&store, &log, &tenant_id, resume))
            .await??;
    // Produced on a thread of its own, a page at a time; the bounded channel holds it back to
    // the client's pace. A client gone away, or one that stops reading, ends it.
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    std::thread::spawn(move || {
        let _slot = slot;
        loop {
            let chunk = match export.next_chunk() {
                Ok(Some(chunk)) => Chunk::Lines(web::Bytes::from(chunk)),
                Ok(None) => Chunk::End,
                Err(e) => {
                    tracing::error!(error = %e, "a whole-tenant export failed part way");
                    Chunk::Failed(e.to_string())
                }
            };
            let last = !matches!(chunk, Chunk::Lines(_));
            if !send_within(&tx, chunk, STALLED) || last {
                break;
            }
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_TYPE, "application/x-ndjson"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"tenant-evidence.jsonl\"",
        ))
        .streaming(Lines(rx)))
}

/// At most this many whole-tenant exports at once (each holds a thread and a connection).
const MAX_EXPORTS: usize = 4;

/// An export whose client has not taken a chunk for this long is ended.
const STALLED: std::time::Duration = std::time::Duration::from_secs(120);

/// One of the [`MAX_EXPORTS`] places, given back when dropped.
struct ExportSlot;

static EXPORTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl ExportSlot {
    fn take() -> Option<Self> {
        use std::sync::atomic::Ordering;
        EXPORTS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_EXPORTS).then_some(n + 1)
            })
            .ok()
            .map(|_| ExportSlot)
    }
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        EXPORTS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// What the producing thread hands the response.
enum Chunk {
    Lines(web::Bytes),
    End,
    Failed(String),
}

/// Sends `chunk` unless the receiver is gone or takes none for `patience`.
fn send_within(
    tx: &tokio::sync::mpsc::Sender<Chunk>,
    mut chunk: Chunk,
    patience: std::time::Duration,
) -> bool {
    use tokio::sync::mpsc::error::TrySendError;
    let deadline = std::time::Instant::now() + patience;
    loop {
        match tx.try_send(chunk) {
            Ok(()) => return true,
            Err(TrySendError::Closed(_)) => return false,
            Err(TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                chunk = back;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(TrySendError::Full(_)) => {
                tracing::warn!("a whole-tenant export's client stopped reading; ended");
                return false;
            }
        }
    }
}

/// The export's chunks as a response body. It ends cleanly only on the producer's end mark: a
/// producer that failed or vanished part way ends the body with an error, so the client sees
/// a cut connection, not a complete-looking export.
struct Lines(tokio::sync::mpsc::Receiver<Chunk>);

impl futures_core::Stream for Lines {
    type Item = Result<web::Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|chunk| match chunk {
            Some(Chunk::Lines(bytes)) => Some(Ok(bytes)),
            Some(Chunk::End) => None,
            Some(Chunk::Failed(e)) => Some(Err(std::io::Error::other(e))),
            None => Some(Err(std::io::Error::other(
                "the export ended part way; resume it with size= and after=",
            ))),
        })
    }
}
