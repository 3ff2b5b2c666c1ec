//! HTTP handlers for the log's read API: the checkpoint, C2SP tiles, the verifier key, proofs and
//! the checkpoint history. Thin: parse, call [`crate::log::Log`] on the blocking pool, render.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::LogReader;
use super::error::{ApiError, Problem};
use super::AppState;
use crate::config::ReadAccess;
use crate::log::hash::Hash;
use crate::log::tiles::{TileKind, TileRef};
use crate::log::SignedCheckpoint;

/// Cache headers for content that never changes: shared caches may keep it when the log is
/// public; when reads need a token, only the client's own cache may (RFC 9111 `private`).
fn immutable(state: &AppState) -> &'static str {
    match state.log_read_access {
        ReadAccess::Public => "public, max-age=31536000, immutable",
        ReadAccess::Authenticated => "private, max-age=31536000, immutable",
    }
}

/// Cache-Control for what a cache may keep but must check again before each use (a checkpoint
/// whose note gains cosignature lines); private when the log is restricted to token holders.
fn revalidated(state: &AppState) -> &'static str {
    match state.log_read_access {
        ReadAccess::Public => "public, no-cache",
        ReadAccess::Authenticated => "private, no-cache",
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

fn b64(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

/// Latest signed checkpoint
///
/// The latest signed checkpoint (C2SP tlog-checkpoint in a signed note).
#[utoipa::path(get, path = "/checkpoint", tag = "log", security((), ("bearer" = [])),
    responses(
        (status = 401, description = "The operator restricted the log to token holders, and the token was missing or refused", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The latest checkpoint, signed", content_type = "text/plain; charset=utf-8", body = String,
         example = "localhost/consent-ledger\n3\nU2NNRz7YCGtSNWkEm6CQ5Hs1xEBKgxhBPjJXlMx7ogY=\n\n— localhost/consent-ledger Az3grlg…\n"),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json")))]
#[get("/checkpoint")]
pub async fn checkpoint(
    _reader: LogReader,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let log = state.log.clone();
    let cp = super::short_query(&state.store, move || log.latest_checkpoint()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, TEXT))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(cp.note))
}

/// Log tile (C2SP tlog-tiles)
///
/// A C2SP tlog-tiles tile: `tile/<L>/<N>[.p/<W>]` (hashes) or `tile/entries/<N>[.p/<W>]`
/// (leaves, each prefixed with its length as a big-endian uint16).
#[utoipa::path(get, path = "/tile/{tile_path}", tag = "log", security((), ("bearer" = [])),
    params(("tile_path" = String, Path, description = "`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`; N in 3-digit groups, e.g. `0/x001/234`", example = "0/000.p/3")),
    responses(
        (status = 401, description = "The operator restricted the log to token holders, and the token was missing or refused", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The tile bytes; immutable", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "Malformed tile path", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The tile is beyond the latest checkpoint", body = Problem, content_type = "application/problem+json")))]
#[get("/tile/{tile_path:.*}")]
pub async fn tile(
    _reader: LogReader,
    state: web::Data<AppState>,
    tile_path: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tile = TileRef::parse(&tile_path).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let log = state.log.clone();
    // A hash tile is 8 KiB: a short read. An entries tile holds up to 256 leaves (MiBs): not
    // on the HTTP worker.
    let data = if tile.kind == TileKind::Entries {
        web::block(move || log.tile(tile)).await??
    } else {
        super::short_query(&state.store, move || log.tile(tile)).await?
    };
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, "application/octet-stream"))
        // Every tile, partial ones too, holds bytes that never change.
        .insert_header((header::CACHE_CONTROL, immutable(&state)));
    if tile.kind != TileKind::Entries {
        return Ok(response.body(data.bytes));
    }
    // "Entry bundles SHOULD be compressed at the HTTP layer. Logs MAY use `Content-Encoding:
    // gzip` with no negotiation, or any compression algorithm requested by the client with
    // `Accept-Encoding`." (C2SP tlog-tiles) — gzip when asked for; hashes do not compress.
    response.insert_header((header::VARY, "Accept-Encoding"));
    if !accepts_gzip(&request) {
        return Ok(response.body(data.bytes));
    }
    let compressed = web::block(move || gzip(&data.bytes))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(response
        .insert_header((header::CONTENT_ENCODING, "gzip"))
        .body(compressed))
}

/// Whether the request's `Accept-Encoding` takes gzip (RFC 9110 §12.5.3): `gzip` or its alias
/// `x-gzip` with a non-zero weight; or, when neither is listed, `*` with one.
fn accepts_gzip(request: &HttpRequest) -> bool {
    let mut named = None;
    let mut any = None;
    for coding in request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, q)| q.trim().parse::<f32>().ok());
        let accepted = weight.is_some_and(|q| q > 0.0);
        match name.as_str() {
            "gzip" | "x-gzip" => named = Some(named.unwrap_or(false) || accepted),
            "*" => any = Some(accepted),
            _ => {}
        }
    }
    named.or(any).unwrap_or(false)
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// Verifier key of the log
///
/// The verifier key of the log's checkpoint signatures: `<origin>+<key id>+<key>`.
#[utoipa::path(get, path = "/v1/log/verifier-key", tag = "log", security((), ("bearer" = [])),
    responses(
        (status = 401, description = "The operator restricted the log to token holders, and the token was missing or refused", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The verifier key", content_type = "text/plain; charset=utf-8", body = String,
        example = "localhost/consent-ledger+4d0c2a4b+AZhN0mWOyk0Yb1C5vHZ4gnK0g3u+Y4p6AYxYrR9pGfZs")))]
#[get("/v1/log/verifier-key")]
pub async fn verifier_key(_reader: LogReader, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, TEXT))
        .body(format!("{}\n", state.log.verifier_key()))
}

/// Which leaf to prove: by `index` or by leaf `hash`, in the tree of `size` leaves.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// Leaf index (give this or `hash`).
    pub index: Option<u64>,
    /// Base64 RFC 9162 leaf hash, `SHA-256(0x00 || leaf)` (give this or `index`).
    pub hash: Option<String>,
    /// Tree size, at most the latest checkpoint's.
    pub size: u64,
}

/// An RFC 9162 inclusion proof.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"leaf_index": 2, "tree_size": 3, "path": ["+sVCA+fMaWzw38tCySodnbr3Ctnm..."]}))]
pub struct InclusionProof {
    /// The leaf's index.
    pub leaf_index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The audit path, base64 hashes, leaf to root.
    pub path: Vec<String>,
}

/// Inclusion proof (RFC 9162)
///
/// The inclusion proof of a leaf (RFC 9162 §2.1.3), by index or by leaf hash.
#[utoipa::path(get, path = "/v1/log/proof/inclusion", tag = "log", security((), ("bearer" = [])), params(InclusionQuery),
    responses(
        (status = 401, description = "The operator restricted the log to token holders, and the token was missing or refused", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The proof", body = InclusionProof),
        (status = 400, description = "Bad parameters, or a size beyond the latest checkpoint", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No leaf with that hash", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/log/proof/inclusion")]
pub async fn inclusion_proof(
    _reader: LogReader,
    state: web::Data<AppState>,
    query: web::Query<InclusionQuery>,
) -> Result<HttpResponse, ApiError> {
    let InclusionQuery { index, hash, size } = query.into_inner();
    let log = state.log.clone();
    let (leaf_index, path) = match (index, hash) {
        (Some(index), None) => (
            index,
            super::short_query(&state.store, move || log.inclusion_proof(index, size)).await?,
        ),
        (None, Some(hash)) => {
            let hash: Hash = B64
                .decode(hash.trim())
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "hash must be a base64 SHA-256 leaf hash (32 bytes)".into(),
                    )
                })?;
            super::short_query(&state.store, move || {
                log.inclusion_proof_by_hash(&hash, size)
            })
            .await?
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of index and hash".into(),
            ))
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, immutable(&state)))
        .json(InclusionProof {
            leaf_index,
            tree_size: size,
            path: b64(&path),
        }))
}

/// The two tree sizes of a consistency proof.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older tree size, at least 1.
    pub from: u64,
    /// The newer tree size, at most the latest checkpoint's.
    pub to: u64,
}

/// An RFC 9162 consistency proof.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"from": 2, "to": 3, "path": ["rrbL/idLcKFPsGel5VeCZNsPqbUa9eC6FZFY8ynga3c="]}))]
pub struct ConsistencyProof {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
    /// The proof, base64 hashes.
    pub path: Vec<String>,
}

/// Consistency proof (RFC 9162)
///
/// The consistency proof between two tree sizes (RFC 9162 §2.1.4).
#[utoipa::path(get, path = "/v1/log/proof/consistency", tag = "log", security((), ("bearer" = [])), params(ConsistencyQuery),
    responses(
        (status = 401, description = "The operator restricted the log to token holders, and the token was missing or refused", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The proof", body = ConsistencyProof),
        (status = 400, description = "Bad parameters, or a size beyond the latest checkpoint", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/log/proof/consistency")]
pub async fn consistency_proof(
    _reader: LogReader,
    state: web::Data<AppState>,
    query: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, ApiError> {
    let ConsistencyQuery { from, to } = query.into_inner();
    let log = state.log.clone();
    let path = super::short_query(&state.store, move || log.consistency_proof(from, to)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, immutable(&state)))
        .json(ConsistencyProof {
            from,
            to,
            path: b64(&path),
        }))
}

/// A page of the checkpoint history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckpointsQuery {
    /// Only checkpoints with a larger tree size: the cursor, `next_after` of the previous page.
    /// Absent: from the first checkpoint (size 0).
    pub after: Option<u64>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One published checkpoint.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"tree_size": 813, "root_hash": "m8Xl0tCkqL6c4dR1v9Zs2eWb7yQh3nJ5fA0uKoP1xgE=", "published_at": "2026-12-07T10:00:00.200Z", "checkpoint": "ledger.example.jp/consent\n813\nm8Xl0tCkqL6c4dR1v9Zs2eWb7yQh3nJ5fA0uKoP1xgE=\n\n— ledger.example.jp/consent Az3k9w…\n"}))]
pub struct CheckpointEntry {
    /// Tree size.
    pub tree_size: u64,
    /// Root hash, base64.
    pub root_hash: String,
    /// When it was published, RFC 3339 UTC.
    pub published_at: String,
    /// The signed checkpoint note, exactly as signed.
    pub checkpoint: String,
}

impl From<SignedCheckpoint> for CheckpointEntry {
    fn from(cp: SignedCheckpoint) -> Self {
        Self {
            tree_size: cp.size,
            root_hash: B64.encode(cp.root),
            published_at: crate::rfc3339(cp.published_at),
            checkpoint: cp.note,
        }
    }
}

/// A page of checkpoints, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"checkpoints": [{"tree_size": 813, "root_hash": "m8Xl0tCkqL6c4dR1v9Zs2eWb7yQh3nJ5fA0uKoP1xgE=", "published_at": "2026-12-07T10:00:00.200Z", "checkpoint": "ledger.example.jp/consent\n813\nm8Xl0tCkqL6c4dR1v9Zs2eWb7yQh3nJ5fA0uKoP1xgE=\n\n— ledger.example.jp/consent Az3k9w…\n"}]}))]
pub struct CheckpointPage {
    /// The checkpoints.
    pub checkpoints: Vec<CheckpointEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// List published checkpoints
///
/// The history of published checkpoints, oldest first, paginated by tree size.
#[utoipa::path(get, path = "/v1/log/checkpoints", tag = "log", security((), ("bearer" = [])), params(CheckpointsQuery),
    responses(
        (status = 401, description = "The operator restricted the log to token holders, and the token was missing or refused", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "A page of checkpoints", body = CheckpointPage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/log/checkpoints")]
pub async fn checkpoints(
    _reader: LogReader,
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    query: web::Query<CheckpointsQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = query.after;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be 1–1000".into()));
    }
    let log = state.log.clone();
    let page = web::block(move || log.checkpoints(after, limit)).await??;
    let next_after = (page.len() == limit as usize)
        .then(|| page.last().map(|c| c.size))
        .flatten();
    let next = next_after.map(|n| n.to_string());
    let page = CheckpointPage {
        checkpoints: page.into_iter().map(Into::into).collect(),
        next_after,
    };
    Ok(super::pagination::page(&req, next.as_deref(), &page))
}

/// Checkpoint of one tree size
///
/// The checkpoint published for one tree size.
#[utoipa::path(get, path = "/v1/log/checkpoints/{size}", tag = "log", security((), ("bearer" = [])),
    params(("size" = u64, Path, description = "Tree size")),
    responses(
        (status = 401, description = "The operator restricted the log to token holders, and the token was missing or refused", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The checkpoint", body = CheckpointEntry),
        (status = 404, description = "No checkpoint of that size", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/log/checkpoints/{size}")]
pub async fn checkpoint_by_size(
    _reader: LogReader,
    state: web::Data<AppState>,
    size: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let log = state.log.clone();
    let size = size.into_inner();
    let cp = super::short_query(&state.store, move || log.checkpoint(size)).await?;
    // Not immutable: witnesses' cosignature lines join the note as they arrive, and a cache
    // must not keep a copy without them.
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, revalidated(&state)))
        .json(CheckpointEntry::from(cp)))
}
