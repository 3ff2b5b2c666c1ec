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

/// The operations of the document: (method, path, operation).
fn operations(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "post", "put", "patch", "delete", "options"].contains(&method.as_str()) {
                ops.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    ops
}

/// Whether a media type object shows an example (its own, or its schema's).
fn shows_example(doc: &serde_json::Value, media: &serde_json::Value) -> bool {
    if media.get("example").is_some() || media.get("examples").is_some() {
        return true;
    }
    let schema = &media["schema"];
    let named = schema["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .map(|name| &doc["components"]["schemas"][name]);
    named.is_some_and(|s| s.get("example").is_some() || s.get("examples").is_some())
        || schema.get("example").is_some()
}

/// Every operation has a summary and a description; every request body, JSON success answer
/// and problem answer shows an example (problems one of their own status); a server is named.
#[test]
fn every_operation_is_described_with_examples() {
    let doc: serde_json::Value =
        serde_json::from_str(&consent_ledger::api::openapi_json()).unwrap();
    assert!(doc["servers"].as_array().is_some_and(|s| !s.is_empty()));
    for (method, path, op) in operations(&doc) {
        let what = format!("{method} {path}");
        let summary = op["summary"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && !summary.contains('\n'),
            "{what}: a one-line summary"
        );
        assert!(
            op["description"]
                .as_str()
                .is_some_and(|d| d.len() > summary.len()),
            "{what}: a description"
        );
        if let Some(body) = op.get("requestBody") {
            for (media_type, media) in body["content"].as_object().unwrap() {
                assert!(shows_example(&doc, media), "{what}: request {media_type}");
            }
        }
        for (code, response) in op["responses"].as_object().unwrap() {
            let Some(content) = response["content"].as_object() else {
                continue;
            };
            for (media_type, media) in content {
                let json_success = code.starts_with('2') && media_type == "application/json";
                if json_success {
                    assert!(shows_example(&doc, media), "{what}: {code} {media_type}");
                }
                if media_type == "application/problem+json" {
                    assert_eq!(
                        media["example"]["status"].as_u64(),
                        code.parse::<u64>().ok(),
                        "{what}: {code} shows a problem of its status"
                    );
                }
            }
        }
    }
}
