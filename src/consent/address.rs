//! E-mail addresses as the ledger keys them: [`EmailAddress::parse`] validates and normalises.
//!
//! The rule (documented in `docs/log-format.md`): trim surrounding whitespace; split at the last
//! `@`; the domain is converted to ASCII (IDNA/UTS 46, so `例え.jp` → `xn--r8jz45g.jp`) and
//! lower-cased; the local part is put in Unicode NFC and lower-cased too. RFC 5321 lets a server treat local parts
//! case-sensitively, but practically none do, and folding case means an opt-out given as
//! `Taro@…` also stops mail to `taro@…`, which is what the recipient means. No other folding
//! (dots, `+tags`) is done: those are different mailboxes at many providers. Quoted local parts and
//! IP-literal domains are refused.

use std::fmt;

/// A validated, normalised e-mail address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct EmailAddress(String);

impl std::str::FromStr for EmailAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text).map_err(|e| format!("{text:?} is not an e-mail address: {e}"))
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

/// Why an address was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid e-mail address: {0}")]
pub struct AddressError(pub &'static str);

const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";

/// Unicode's default-ignorable code points (format and bidi controls, zero-width characters,
/// variation selectors, fillers, tags): shown as nothing, so never part of an address.
fn invisible(c: char) -> bool {
    matches!(u32::from(c),
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF)
}

impl EmailAddress {
    /// Validates and normalises an address.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(AddressError("it is empty"));
        }
        if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(AddressError("it contains spaces or control characters"));
        }
        let (local, domain) = input
            .rsplit_once('@')
            .ok_or(AddressError("there is no '@'"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(AddressError("the part before '@' must be 1–64 bytes"));
        }
        if local.starts_with('"')
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(AddressError("the part before '@' is not a plain dot-atom (no quotes, no leading, trailing or double dots)"));
        }
        // Any script, but no invisible, format or bidi characters, which would make one address
        // look like another and get its own label (a second history under a name that reads
        // the same).
        let local_ok = local.chars().all(|c| {
            (c.is_alphanumeric() || c == '.' || ATEXT_SPECIALS.contains(c) || !c.is_ascii())
                && !invisible(c)
        });
        if !local_ok {
            return Err(AddressError(
                "the part before '@' has a character addresses cannot have",
            ));
        }
        if domain.starts_with('[') {
            return Err(AddressError("IP-literal domains are not accepted"));
        }
        let domain = idna::domain_to_ascii(domain)
            .map_err(|_| AddressError("the domain is not a valid domain name"))?;
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if domain.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(AddressError("the domain must be a name like example.jp"));
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(AddressError("the domain must be a name like example.jp"));
        }
        // One spelling per mailbox: NFC (é as one code point, not e + a combining accent), then lower case.
        let local = icu_normalizer::ComposingNormalizerBorrowed::new_nfc()
            .normalize(local)
            .to_lowercase();
        let address = format!("{local}@{}", domain.to_ascii_lowercase());
        if address.len() > 254 {
            return Err(AddressError("it is longer than 254 bytes"));
        }
        Ok(Self(address))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_whitespace_and_idn() {
        assert_eq!(
            EmailAddress::parse("  Taro.Yamada+news@Example.JP ")
                .unwrap()
                .as_str(),
            "taro.yamada+news@example.jp"
        );
        assert_eq!(
            EmailAddress::parse("info@例え.jp").unwrap().as_str(),
            "info@xn--r8jz45g.jp"
        );
        assert_eq!(
            EmailAddress::parse("ユーザー@example.jp").unwrap().as_str(),
            "ユーザー@example.jp"
        );
        assert_eq!(EmailAddress::parse("a@b.co").unwrap().as_str(), "a@b.co");
        assert_eq!(
            EmailAddress::parse("jose\u{301}@example.jp").unwrap(),
            EmailAddress::parse("jos\u{e9}@example.jp").unwrap(),
            "combining and precomposed accents are one mailbox"
        );
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.jp",
            "a@",
            "a@localhost",
            "a b@example.jp",
            "a@exa mple.jp",
            "\"q\"@example.jp",
            ".a@example.jp",
            "a.@example.jp",
            "a..b@example.jp",
            "a@[127.0.0.1]",
            "a@-x.jp",
            "a@x-.jp",
            "a@x..jp",
            "a@1.2.3.4",
            "a\u{0}@example.jp",
            "a(b)@example.jp",
            "a@exa_mple.jp",
            "taro\u{200b}@example.jp",
            "ta\u{202e}ro@example.jp",
            "taro\u{2060}@example.jp",
        ] {
            assert!(
                EmailAddress::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(EmailAddress::parse(&format!("{}@example.jp", "a".repeat(65))).is_err());
    }
}
