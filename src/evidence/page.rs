//! The verifier with no install: one static HTML page (`templates/verify.html`) with the
//! TypeScript verifier inlined (`sdk/typescript/browser/verify-page.js`, built by `npm run
//! bundle` and committed), served at `GET /verify` and written by `consent-ledger verify page`
//! as one self-contained file that works offline from disk. Its Content-Security-Policy allows
//! that one script by its hash and nothing from the network. Not here: the checks themselves
//! (the TypeScript SDK's `verify.ts`, a port of `sdk/rust/src/evidence/verify.rs`).

use std::sync::LazyLock;

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use sha2::{Digest, Sha256};

use crate::templates;

/// The page's script (an ES module).
const SCRIPT: &str = include_str!("../../sdk/typescript/browser/verify-page.js");

/// The page's Content-Security-Policy: its own script (by hash), inline styles, and `data:`
/// images, PDFs and frames for the screens; no network at all.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; img-src data:; \
         object-src data:; frame-src data:; base-uri 'none'; form-action 'none'",
        B64.encode(Sha256::digest(SCRIPT.as_bytes()))
    )
});

/// The page, with `vkey` (the log's verifier key, or empty) filled in.
pub fn verify_page(vkey: &str) -> String {
    // The bundle is minified ES: it never closes a script element itself.
    debug_assert!(!SCRIPT.contains("</script"));
    templates::render(
        "verify.html",
        minijinja::context! {
            vkey,
            csp => CSP.as_str(),
            script => minijinja::Value::from_safe_string(SCRIPT.to_string()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_the_whole_verifier_and_allows_only_it() {
        let page = verify_page("log.example+1234abcd+AQID");
        assert!(page.contains(SCRIPT));
        assert!(page.contains("value=\"log.example+1234abcd+AQID\""));
        assert_eq!(page.matches("</script>").count(), 1);
        // In its meta element, escaped as an attribute value.
        assert!(page.contains(&crate::escape_html(&CSP)));
    }
}
