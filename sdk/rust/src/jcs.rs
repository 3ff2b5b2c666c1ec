//! RFC 8785 (JCS) canonical JSON for log leaves, restricted to what leaves use: objects, arrays,
//! strings, booleans, null and integers of magnitude at most 2^53. Floating-point numbers are
//! refused rather than risk ECMAScript number formatting differences.
//!
//! Why our own: with floats excluded, JCS is "sort keys by UTF-16 code units, print strings the
//! way serde_json already does" — a few lines, tested here, instead of another dependency.

use serde_json::Value;

/// Why a JSON value cannot be put in canonical form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JcsError {
    /// A non-integer number, or an integer beyond ±2^53, was found.
    #[error("number {0} is not allowed in a leaf: only integers of magnitude at most 2^53")]
    UnsupportedNumber(String),
}

/// The largest integer every JSON reader reads exactly (RFC 7493 I-JSON).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The RFC 8785 canonical serialisation of `value`.
pub fn canonicalize(value: &Value) -> Result<String, JcsError> {
    let mut out = String::new();
    write_value(value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut String) -> Result<(), JcsError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let safe = n.as_u64().is_some_and(|u| u <= MAX_SAFE_INTEGER)
                || n.as_i64()
                    .is_some_and(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER);
            if !safe {
                return Err(JcsError::UnsupportedNumber(n.to_string()));
            }
            out.push_str(&n.to_string());
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(item, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// serde_json escapes exactly what JCS (ECMAScript `JSON.stringify`) escapes for valid Unicode:
/// `"`, `\`, the short forms `\b \f \n \r \t`, other controls as lower-case `\u00xx`.
fn write_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).expect("a string always serialises"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let v = json!({"b": [1, {"z": null, "a": true}], "a": "x"});
        assert_eq!(
            canonicalize(&v).unwrap(),
            r#"{"a":"x","b":[1,{"a":true,"z":null}]}"#
        );
    }

    #[test]
    fn sorts_by_utf16_code_units_not_bytes() {
        // U+FB01 (one UTF-16 unit 0xFB01) sorts after U+1F600 (surrogates 0xD83D…) in UTF-16,
        // but before it in UTF-8 byte order. RFC 8785 §3.2.3 demands UTF-16 order.
        let v = json!({"\u{fb01}": 1, "\u{1f600}": 2});
        assert_eq!(
            canonicalize(&v).unwrap(),
            "{\"\u{1f600}\":2,\"\u{fb01}\":1}"
        );
    }

    #[test]
    fn escapes_like_json_stringify() {
        let v = json!("a\u{0}\u{1f}\n\t\"\\/é\u{7f}");
        assert_eq!(
            canonicalize(&v).unwrap(),
            "\"a\\u0000\\u001f\\n\\t\\\"\\\\/é\u{7f}\""
        );
    }

    #[test]
    fn refuses_floats_and_unsafe_integers() {
        assert!(canonicalize(&json!(1.5)).is_err());
        assert!(canonicalize(&json!(1u64 << 53)).is_err());
        assert!(canonicalize(&json!(-(1i64 << 53))).is_err());
        assert_eq!(
            canonicalize(&json!(-(1i64 << 52))).unwrap(),
            "-4503599627370496"
        );
    }
}
