//! The committed OpenAPI document must match the code. To refresh it after an API change:
//! `cargo run -- openapi --out openapi/openapi.json`.

#[test]
fn committed_openapi_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = consent_ledger::api::openapi_json();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date: run `cargo run -- openapi --out openapi/openapi.json` and commit it"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    for path in [
        "/checkpoint",
        "/tile/{tile_path}",
        "/v1/log/verifier-key",
        "/v1/log/proof/inclusion",
        "/v1/log/proof/consistency",
        "/v1/log/checkpoints",
        "/v1/log/checkpoints/{size}",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} is missing from the OpenAPI document"
        );
    }
}
