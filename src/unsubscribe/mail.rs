//! Reading an inbound unsubscribe mail (RFC 5322, as an MTA pipes it): the token the mailto
//! link put in its subject, and the Message-ID as evidence. Header fields may be folded and the
//! subject may be an RFC 2047 encoded word (mail clients encode subjects they think need it).
//! Nothing else of the message is kept.

use base64::{engine::general_purpose::STANDARD, Engine};

/// What an unsubscribe mail says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeMail {
    /// The unsubscribe token.
    pub token: String,
    /// The message's Message-ID, if it has one.
    pub message_id: Option<String>,
}

/// Why a mail could not be read as an unsubscribe.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MailError {
    /// Not a mail: no header section.
    #[error("not an RFC 5322 message: no header section ending in a blank line")]
    NotAMessage,
    /// No token in the subject.
    #[error("no unsubscribe token in the Subject (expected \"unsubscribe <token>\")")]
    NoToken,
}

/// Reads the unsubscribe token from a raw message.
pub fn parse(raw: &[u8]) -> Result<UnsubscribeMail, MailError> {
    let text = String::from_utf8_lossy(raw);
    let text = text.replace("\r\n", "\n");
    let header = match text.find("\n\n") {
        Some(end) => &text[..end],
        None if text.contains(':') => text.as_str(),
        None => return Err(MailError::NotAMessage),
    };
    // Unfold: a line starting with white space continues the previous field.
    let mut fields: Vec<String> = Vec::new();
    for line in header.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.push_str(line);
                continue;
            }
        }
        fields.push(line.to_string());
    }
    let field = |name: &str| {
        fields.iter().find_map(|f| {
            let (n, v) = f.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let subject = decode_words(&field("subject").ok_or(MailError::NoToken)?);
    let token = subject
        .split_whitespace()
        .skip_while(|w| !w.eq_ignore_ascii_case("unsubscribe"))
        .nth(1)
        .filter(|t| {
            t.contains('.')
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .ok_or(MailError::NoToken)?;
    Ok(UnsubscribeMail {
        token: token.to_string(),
        message_id: field("message-id").map(|m| m.chars().take(998).collect()),
    })
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`, UTF-8 and ASCII) in a header value;
/// anything else is left as it is.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let decoded = rest[start + 2..].split_once("?=").and_then(|(word, _)| {
            let mut parts = word.splitn(3, '?');
            let (_charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
            let bytes = match encoding {
                "B" | "b" => STANDARD.decode(text).ok()?,
                "Q" | "q" => q_decode(text),
                _ => return None,
            };
            Some((String::from_utf8_lossy(&bytes).into_owned(), word.len() + 4))
        });
        match decoded {
            Some((text, len)) => {
                let between = &rest[..start];
                // White space between two encoded words is dropped (RFC 2047 §6.2).
                if !between.trim().is_empty() || out.is_empty() {
                    out.push_str(between);
                }
                out.push_str(&text);
                rest = &rest[start + len..];
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn q_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            b'=' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'='),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_from_plain_folded_and_encoded_subjects() {
        let plain = b"From: a@example.jp\r\nTo: unsubscribe@ledger.example.jp\r\nSubject: unsubscribe abc.DEF_-1\r\nMessage-ID: <1@example.jp>\r\n\r\nbody";
        assert_eq!(
            parse(plain).unwrap(),
            UnsubscribeMail {
                token: "abc.DEF_-1".into(),
                message_id: Some("<1@example.jp>".into())
            }
        );
        let folded = b"Subject: Re: unsubscribe\n  abc.def\n\n";
        assert_eq!(parse(folded).unwrap().token, "abc.def");
        let b64 = format!(
            "Subject: =?UTF-8?B?{}?=\n\n",
            STANDARD.encode("配信停止 unsubscribe abc.def")
        );
        assert_eq!(parse(b64.as_bytes()).unwrap().token, "abc.def");
        let q = b"Subject: =?utf-8?Q?unsubscribe_abc.def?=\n\n";
        assert_eq!(parse(q).unwrap().token, "abc.def");
    }

    #[test]
    fn refuses_what_is_not_an_unsubscribe() {
        assert_eq!(parse(b"hello"), Err(MailError::NotAMessage));
        assert_eq!(parse(b"Subject: hello\n\n"), Err(MailError::NoToken));
        assert_eq!(
            parse(b"Subject: unsubscribe <script>\n\n"),
            Err(MailError::NoToken)
        );
        assert_eq!(
            parse(b"From: x\n\nSubject: unsubscribe a.b"),
            Err(MailError::NoToken)
        );
        assert_eq!(
            parse(b"Subject: =?UTF-8?B?!!!?=\n\n"),
            Err(MailError::NoToken)
        );
    }
}
