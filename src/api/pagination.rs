//! The one pagination style of every list: `after` (the cursor: `next_after` of the previous
//! page) and `limit` in the query; `next_after` in the body, absent on the last page; and a
//! `Link: <…>; rel="next"` header (RFC 8288) with the next page's URL, the request's own with
//! `after` replaced.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

/// The query of a list: where to start, how many.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_after` of the previous page (absent: the first page).
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// The next page's URL (path and query, relative to the service): the request's with the query
/// parameter `cursor` (`after`, or a feed's own name) set to `value`.
pub fn next_url(req: &HttpRequest, cursor: &str, value: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if name != cursor {
            query.append_pair(&name, &value);
        }
    }
    query.append_pair(cursor, value);
    format!("{}?{}", req.path(), query.finish())
}

/// How a list is answered: a JSON page (the default), JSON lines or CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    /// `application/json`: the page object.
    Json,
    /// `application/x-ndjson`: one item a line.
    Jsonl,
    /// `text/csv`: a header row, one item a row.
    Csv,
}

impl ListFormat {
    /// The `format` query value (`json`, `jsonl`, `csv`; absent: JSON).
    pub fn parse(format: Option<&str>) -> Result<Self, super::error::ApiError> {
        match format {
            None | Some("json") => Ok(Self::Json),
            Some("jsonl") => Ok(Self::Jsonl),
            Some("csv") => Ok(Self::Csv),
            Some(other) => Err(super::error::ApiError::BadRequest(format!(
                "format must be json, jsonl or csv, not {other:?}"
            ))),
        }
    }
}

/// A 200 answer with one page in `format`: the page object as JSON, or its `items` as JSON
/// lines or as the CSV `csv` makes; the next page's `Link` either way (and, for the line
/// formats, which have no body field for it, `x-next-after`). `next` is the next page's cursor
/// as (query parameter, value): `after` for lists, another name for a feed.
pub fn page_as<T: Serialize, I: Serialize>(
    req: &HttpRequest,
    format: ListFormat,
    next: Option<(&str, &str)>,
    body: &T,
    items: &[I],
    csv: impl FnOnce(&[I]) -> String,
) -> HttpResponse {
    let (content_type, text) = match format {
        ListFormat::Json => (
            "application/json",
            serde_json::to_string(body).expect("serialises"),
        ),
        ListFormat::Jsonl => (
            "application/x-ndjson",
            items
                .iter()
                .map(|i| serde_json::to_string(i).expect("serialises") + "\n")
                .collect(),
        ),
        ListFormat::Csv => ("text/csv; charset=utf-8", csv(items)),
    };
    let mut answer = HttpResponse::Ok();
    answer
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some((param, value)) = next {
        if format != ListFormat::Json {
            answer.insert_header(("x-next-after", value));
        }
        answer.insert_header((
            header::LINK,
            format!("<{}>; rel=\"next\"", next_url(req, param, value)),
        ));
    }
    answer.body(text)
}

/// A 200 JSON answer with one page: `body`, and the `Link` to the page after `next_after`.
pub fn page<T: Serialize>(req: &HttpRequest, next_after: Option<&str>, body: &T) -> HttpResponse {
    let no_items: &[()] = &[];
    page_as(
        req,
        ListFormat::Json,
        next_after.map(|n| ("after", n)),
        body,
        no_items,
        |_| String::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_next_url_keeps_the_query_and_replaces_after() {
        let req = TestRequest::get()
            .uri("/v1/tokens?tenant=t%201&after=tok_1&limit=2")
            .to_http_request();
        assert_eq!(
            next_url(&req, "after", "tok_3"),
            "/v1/tokens?tenant=t+1&limit=2&after=tok_3"
        );
    }

    #[test]
    fn the_last_page_has_no_link() {
        let req = TestRequest::get().uri("/v1/tokens").to_http_request();
        let answer = page(&req, None, &serde_json::json!({"tokens": []}));
        assert!(answer.headers().get(header::LINK).is_none());
        let answer = page(&req, Some("tok_9"), &serde_json::json!({"tokens": []}));
        assert_eq!(
            answer.headers().get(header::LINK).unwrap(),
            "</v1/tokens?after=tok_9>; rel=\"next\""
        );
    }
}
