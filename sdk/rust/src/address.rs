//! E-mail addresses as the ledger keys them: [`EmailAddress::parse`] validates and normalises.
//! One rule for the server and both verifiers (the TypeScript SDK ports it; both are checked on
//! `sdk/vectors/addresses.json`).
//!
//! The rule (documented in `docs/log-format.md`): trim surrounding whitespace; split at the last
//! `@`; the domain is converted to ASCII (IDNA/UTS 46, so `例え.jp` → `xn--r8jz45g.jp`) and
//! lower-cased; the local part is put in Unicode NFC and lower-cased too. RFC 5321 lets a server treat local parts
//! case-sensitively, but practically none do, and folding case means an opt-out given as
//! `Taro@…` also stops mail to `taro@…`, which is what the recipient means. No other folding
//! (dots, `+tags`) is done: those are different mailboxes at many providers. Quoted local parts and
//! IP-literal domains are refused.
//!
//! The local part is an RFC 5322 dot-atom, with one exception: on the Japanese mobile carriers'
//! mail domains ([`LEGACY_DOMAINS`] and their subdomains) its dots may also stand anywhere —
//! consecutive (`taro..hanako`), before `@` (`taro.@`) or first (`.taro`) — as NTT docomo and
//! au issued until 2009 and Japanese mail systems accept. Those dots are kept exactly: `a..b`
//! and `a.b` are different mailboxes. A quoted local part whose content is such a dot-atom
//! (`"taro..hanako"@docomo.ne.jp`, how a mail header writes it) is the same address unquoted;
//! [`EmailAddress::header_form`] writes it back that way.

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

/// The mail domains of Japan's mobile carriers where addresses that break the dot-atom rule
/// were issued (NTT docomo and au until 2009: consecutive dots, dots before `@` or at the
/// start), with their subdomains (`biz.ezweb.ne.jp`); `au.com` because au's customers kept
/// their ezweb local parts when it opened (2018). SoftBank, Vodafone, Willcom and EMOBILE
/// never issued such addresses, so their domains keep the strict rule.
pub const LEGACY_DOMAINS: &[&str] = &["docomo.ne.jp", "ezweb.ne.jp", "au.com"];

/// Whether `domain` (ASCII, lower case) is a carrier's, where legacy local parts are accepted.
pub fn is_legacy_domain(domain: &str) -> bool {
    LEGACY_DOMAINS.iter().any(|d| {
        domain == *d
            || domain
                .strip_suffix(d)
                .is_some_and(|head| head.ends_with('.'))
    })
}

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

/// Whether a top-level label reads as a number, as the WHATWG URL host parser reads it (its
/// "ends in a number" rule: decimal digits, or `0x` and hex digits): such a name is an IPv4
/// address to a browser, not a domain, so the TypeScript port refuses it too.
fn looks_like_a_number(label: &str) -> bool {
    let hex = label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"));
    match hex {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_hexdigit()),
        None => label.bytes().all(|b| b.is_ascii_digit()),
    }
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
        // `"taro..hanako"@…` is how a header writes a legacy local part: the same mailbox.
        let local = match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
            Some(inner) if !inner.is_empty() && !inner.contains(['"', '\\']) => inner,
            _ => local,
        };
        if local.is_empty() {
            return Err(AddressError("the part before '@' must be 1–64 bytes"));
        }
        if local.starts_with('"') || local.chars().all(|c| c == '.') {
            return Err(AddressError(
                "the part before '@' is not a plain dot-atom (no quotes, no leading, trailing or double dots)",
            ));
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
        let dotted = local.starts_with('.') || local.ends_with('.') || local.contains("..");
        if dotted && !is_legacy_domain(&domain.to_ascii_lowercase()) {
            return Err(AddressError(
                "the part before '@' is not a plain dot-atom (no quotes, no leading, trailing or double dots; \
                 those are accepted only on the Japanese mobile carriers' domains)",
            ));
        }
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
        if labels.last().is_some_and(|tld| looks_like_a_number(tld)) {
            return Err(AddressError("the domain must be a name like example.jp"));
        }
        // One spelling per mailbox: NFC (é as one code point, not e + a combining accent), then lower case.
        let local = icu_normalizer::ComposingNormalizerBorrowed::new_nfc()
            .normalize(local)
            .to_lowercase();
        // The limits hold for the normalised form (a decomposed spelling is longer).
        if local.len() > 64 {
            return Err(AddressError("the part before '@' must be 1–64 bytes"));
        }
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

    /// The address as a mail header writes it (RFC 5322 `addr-spec`): as it is, or with a
    /// legacy local part (consecutive dots, a dot before `@`) as a quoted string,
    /// `"taro..hanako"@docomo.ne.jp`.
    pub fn header_form(&self) -> String {
        let (local, domain) = self
            .0
            .rsplit_once('@')
            .expect("a parsed address has an '@'");
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            format!("\"{local}\"@{domain}")
        } else {
            self.0.clone()
        }
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
            "\"q r\"@example.jp",
            "\"\"@example.jp",
            ".a@example.jp",
            "a.@example.jp",
            "a..b@example.jp",
            "a..b@notdocomo.ne.jp",
            "a..b@softbank.ne.jp",
            "..@docomo.ne.jp",
            "\"a b\"@docomo.ne.jp",
            "\"a..b\"@example.jp",
            "a..b@docomo.ne.jp.example.com",
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

    #[test]
    fn keeps_the_carriers_legacy_local_parts_exactly() {
        for (input, normalised) in [
            ("taro..hanako@docomo.ne.jp", "taro..hanako@docomo.ne.jp"),
            ("Taro.@EZweb.ne.jp", "taro.@ezweb.ne.jp"),
            ("A...b.@docomo.ne.jp", "a...b.@docomo.ne.jp"),
            ("x..y@biz.ezweb.ne.jp", "x..y@biz.ezweb.ne.jp"),
            (".taro@au.com", ".taro@au.com"),
            ("\"taro..hanako\"@docomo.ne.jp", "taro..hanako@docomo.ne.jp"),
            ("\"taro\"@example.jp", "taro@example.jp"),
        ] {
            assert_eq!(EmailAddress::parse(input).unwrap().as_str(), normalised);
        }
        assert_ne!(
            EmailAddress::parse("a..b@docomo.ne.jp").unwrap(),
            EmailAddress::parse("a.b@docomo.ne.jp").unwrap(),
            "no dot folding: two mailboxes"
        );
    }

    #[test]
    fn a_legacy_local_part_is_quoted_in_headers() {
        let legacy = EmailAddress::parse("taro..hanako@docomo.ne.jp").unwrap();
        assert_eq!(legacy.header_form(), "\"taro..hanako\"@docomo.ne.jp");
        let plain = EmailAddress::parse("taro.hanako@docomo.ne.jp").unwrap();
        assert_eq!(plain.header_form(), "taro.hanako@docomo.ne.jp");
    }

    /// The golden vectors the TypeScript port is checked on too.
    #[test]
    fn normalises_the_golden_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/addresses.json");
        let vectors: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for case in vectors["cases"].as_array().unwrap() {
            let input = case["input"].as_str().unwrap();
            let got = EmailAddress::parse(input).ok();
            assert_eq!(
                got.as_ref().map(EmailAddress::as_str),
                case["normalised"].as_str(),
                "{input:?}"
            );
        }
    }
}
