//! The `consent-ledger` binary: everything lives in the library; see `cli`.

fn main() {
    std::process::exit(consent_ledger::cli::run());
}
