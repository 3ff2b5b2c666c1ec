//! The small validators every consent operation shares: free text, the language, purpose keys,
//! ids (and new ids), RFC 3339 times. Each returns the value made acceptable or a
//! [`DomainError::Invalid`] a person can act on. No storage here.

use crate::error::DomainError;
use crate::hex;

use crate::now_millis;

/// A new id in UUID version 7 form (RFC 9562): the creation time in milliseconds, then 74
/// random bits. Ids made one after another sort together, so inserts land on the right edge of
/// the indexes instead of on a random page each (the creation time is in the event anyway).
/// Within this process each id is greater than the one before, even in the same millisecond
/// (RFC 9562 §6.2, method 2: the random bits of a repeated millisecond count up), so lists
/// paged by id come in creation order.
pub fn new_id() -> String {
    static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);
    let mut b = [0u8; 16];
    getrandom::fill(&mut b[6..]).expect("the OS has randomness");
    b[..6].copy_from_slice(&now_millis().to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut id = u128::from_be_bytes(b);
    {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if id <= *last {
            // The same millisecond (or a clock stepped back): one more than the last, in the
            // 62 random bits after the variant; their overflow would need 2^62 ids in a
            // millisecond.
            id = *last + 1;
        }
        *last = id;
    }
    let h = hex(&id.to_be_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

pub(crate) fn text(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(DomainError::Invalid(format!(
            "{field} must be 1–{max} characters without control characters"
        )));
    }
    Ok(value.to_string())
}

pub(crate) fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, DomainError> {
    value.map(|v| text(field, v, max)).transpose()
}

pub(crate) fn language(value: Option<&str>) -> Result<String, DomainError> {
    match value.unwrap_or("ja") {
        l @ ("ja" | "en") => Ok(l.to_string()),
        other => Err(DomainError::Invalid(format!(
            "default_language must be ja or en, not {other:?}"
        ))),
    }
}

pub(super) fn check_purpose_key(purpose: &str) -> Result<(), DomainError> {
    let ok = !purpose.is_empty()
        && purpose.len() <= 64
        && purpose
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "purpose {purpose:?} must be 1–64 lower-case letters, digits, '-' or '_'"
        )))
    }
}

/// A date of the calendar written `YYYY-MM-DD`, as that day's midnight UTC in Unix ms (by the
/// verifiers' one reading of times, `strict_millis`).
pub(crate) fn calendar_date(field: &str, text: &str) -> Result<i64, DomainError> {
    (text.len() == 10)
        .then(|| consent_ledger_sdk::evidence::verify::strict_millis(&format!("{text}T00:00:00Z")))
        .flatten()
        .ok_or_else(|| {
            DomainError::Invalid(format!(
                "{field} must be a date of the calendar, like 2026-03-01 (not {text:?})"
            ))
        })
}

/// Ids we issue are short and plain; anything else (control characters, NUL) is not an id.
pub(crate) fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn check_purposes(requested: &[String], known: &[String]) -> Result<(), DomainError> {
    if requested.is_empty() {
        return Err(DomainError::Invalid("give at least one purpose".into()));
    }
    for p in requested {
        if !known.contains(p) {
            return Err(DomainError::Invalid(format!(
                "unknown purpose {p:?}; this tenant's purposes are: {}",
                if known.is_empty() {
                    "(none registered)".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    Ok(())
}

pub(super) fn parse_time(field: &str, value: &str) -> Result<i64, DomainError> {
    let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            DomainError::Invalid(format!(
                "{field} must be an RFC 3339 time like 2026-11-28T10:00:00Z"
            ))
        })?;
    let millis = (t.unix_timestamp_nanos() / 1_000_000) as i64;
    if millis < 0 {
        return Err(DomainError::Invalid(format!(
            "{field} must not be before 1970"
        )));
    }
    Ok(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v7_and_sort_by_time() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert!(a < b, "{a} then {b}");
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!("89ab".contains(&a[19..20]));
        let millis = i64::from_str_radix(&a[..8], 16).unwrap() << 16
            | i64::from_str_radix(&a[9..13], 16).unwrap();
        assert!((now_millis() - millis).abs() < 60_000);
    }

    #[test]
    fn ids_made_in_the_same_millisecond_still_sort_in_order() {
        let ids: Vec<String> = (0..2_000).map(|_| new_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids
            .iter()
            .all(|id| &id[14..15] == "7" && "89ab".contains(&id[19..20])));
    }
}
