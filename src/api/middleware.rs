//! What wraps every request before a handler sees it: the request id (the client's
//! `x-request-id`, or a new one) put on the request and on the response, and the access log's
//! line that names it; and the query string's encoding (percent-decoded it must be UTF-8, or the request
//! is a 400 problem instead of being read with replacement characters); and each request's
//! count and latency in the metrics. Routing, errors and
//! authentication are elsewhere (`mod.rs`, `error.rs`, `access.rs`).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use super::error::ApiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A new request id: this process's random prefix and a counter (unique without a system call
/// per request).
fn new_request_id() -> HeaderValue {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        let _ = getrandom::fill(&mut bytes);
        u32::from_le_bytes(bytes)
    });
    let id = format!("{prefix:08x}{:08x}", NEXT.fetch_add(1, Ordering::Relaxed));
    HeaderValue::from_str(&id).expect("hex is a valid header value")
}

/// Takes the client's `x-request-id` (1–128 of `A–Z a–z 0–9 . _ : -`, so it cannot forge
/// fields of the access log's line) or makes one, puts it on the request for the access log and
/// on the response; and counts the request in the metrics, by its route's pattern.
pub async fn request_id(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(b))
        })
        .cloned()
        .unwrap_or_else(new_request_id);
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let mut res = next.call(req).await?;
    let took = started.elapsed();
    let route = res.request().match_pattern();
    let status = res.status().as_u16();
    crate::metrics::request(
        route.as_deref().unwrap_or("unmatched"),
        method.as_str(),
        status,
        took,
    );
    // The access log: the route's pattern, not the path (recipients' links carry capabilities in
    // theirs, query strings carry addresses); an unmatched path as it came (it reached nothing).
    tracing::info!(
        target: "consent_ledger::access",
        method = %method,
        path = %route.as_deref().unwrap_or(res.request().path()),
        status,
        duration_ms = took.as_secs_f64() * 1000.0,
        request_id = %id.to_str().unwrap_or_default(),
        "request"
    );
    res.headers_mut().insert(REQUEST_ID, id);
    Ok(res)
}

/// Whether a query string percent-decodes to UTF-8 (a `%` not followed by two hex digits stays
/// itself, as form decoding leaves it).
fn decodes_to_utf8(query: &str) -> bool {
    percent_encoding::percent_decode_str(query)
        .decode_utf8()
        .is_ok()
}

/// Refuses a request whose query string does not decode to UTF-8 (`email=%FF%FE`) with a 400
/// problem, before any extractor reads it lossily.
pub async fn query_is_utf8<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if decodes_to_utf8(req.query_string()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let error = ApiError::BadRequest(
        "the query string is not UTF-8 once percent-decoded: encode text as UTF-8 before \
         percent-encoding it (e.g. %E3%81%82 for あ)"
            .into(),
    );
    Ok(req
        .into_response(error.error_response())
        .map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::decodes_to_utf8;

    #[test]
    fn queries_must_decode_to_utf8() {
        for good in [
            "",
            "email=taro%40example.jp&purpose=newsletter",
            "q=%E3%81%82",
            "q=100%",
            "q=%zz",
            "q=a+b",
        ] {
            assert!(decodes_to_utf8(good), "{good}");
        }
        for bad in ["email=%FF%FE", "q=%E3%81", "q=%c0%af"] {
            assert!(!decodes_to_utf8(bad), "{bad}");
        }
    }
}
