//! Bearer tokens against the log's read API restricted to token holders: valid tokens pass;
//! missing, forged, tampered, expired, not-yet-valid, future-issued, overlong, wrong-audience,
//! wrong-issuer and `alg`-swapped tokens get a 401 problem; key rotation keeps old tokens valid
//! until their key is retired, and a key rotated in by another process works at once.

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use consent_ledger::api::AppState;
use consent_ledger::auth::Role;
use consent_ledger::config::ReadAccess;
use consent_ledger::store::Store;

use crate::common::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    restricted_log_admits_only_valid_tokens,
    rotation_keeps_tokens_valid_until_retired,
    a_key_rotated_by_another_process_is_accepted_at_once,
    no_token_is_issued_beyond_the_lifetime_cap
);

const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn sign(kid: &str, seed: &[u8], claims: serde_json::Value) -> String {
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend_from_slice(seed);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&der),
    )
    .unwrap()
}

fn unsigned(header: serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string()),
        B64URL.encode(signature)
    )
}

async fn get_with(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
) -> (u16, String, serde_json::Value) {
    let client = awc::Client::default();
    let mut req = client.get(format!("{}{}", app.base, path));
    if let Some(token) = token {
        req = req.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut res = req.send().await.unwrap();
    let body = res.body().await.unwrap();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        res.status().as_u16(),
        challenge,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

async fn restricted_log_admits_only_valid_tokens(db: TestDb) {
    let mut config = db.config();
    config.log_read_access = ReadAccess::Authenticated;
    let state = AppState::open(&config).unwrap();
    let good = state
        .authority
        .issue(Role::Regulator, None, "officer", Duration::from_secs(600))
        .unwrap();
    let sender = state
        .authority
        .issue(Role::Sender, Some("t1"), "acme", Duration::from_secs(600))
        .unwrap();
    state.log.shutdown();
    let app = TestApp::start_with(config).await;

    for token in [&good, &sender] {
        for path in [
            "/checkpoint",
            "/v1/log/verifier-key",
            "/v1/log/checkpoints",
            "/tile/entries/000.p/1",
        ] {
            let (status, _, _) = get_with(&app, path, Some(token)).await;
            assert!(status == 200 || status == 404, "{path}: {status}");
        }
    }
    assert_eq!(get_with(&app, "/checkpoint", Some(&good)).await.0, 200);
    let res = awc::Client::default()
        .get(format!("{}/v1/log/checkpoints/0", app.base))
        .insert_header(("Authorization", format!("Bearer {good}")))
        .send()
        .await
        .unwrap();
    let cache = res
        .headers()
        .get("cache-control")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        cache.starts_with("private"),
        "shared caches must not keep token-gated answers: {cache}"
    );
    assert_eq!(
        get_with(&app, "/healthz", None).await.0,
        200,
        "health stays open"
    );

    // The real key, read from the database as only an insider could, to test claim checks.
    let store = Store::connect(&db.url, 2).unwrap();
    let key = store
        .read(|r| Ok::<_, consent_ledger::log::LogError>(r.active_auth_keys()?))
        .unwrap()
        .remove(0);
    let now = consent_ledger::now_millis() as u64 / 1000;
    let claims = |over: serde_json::Value| {
        let mut c = serde_json::json!({"iss": "test.example/log", "aud": "consent-ledger", "sub": "x",
                                       "role": "regulator", "iat": now, "exp": now + 600});
        c.as_object_mut()
            .unwrap()
            .extend(over.as_object().unwrap().clone());
        c
    };
    assert_eq!(
        get_with(
            &app,
            "/checkpoint",
            Some(&sign(&key.kid, &key.seed, claims(serde_json::json!({}))))
        )
        .await
        .0,
        200
    );

    let base = claims(serde_json::json!({}));
    let mut tampered = good.clone();
    let middle = tampered.find('.').unwrap() + 5;
    tampered.replace_range(
        middle..middle + 1,
        if &good[middle..middle + 1] == "A" {
            "B"
        } else {
            "A"
        },
    );
    let forged: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("garbage", Some("not.a.token".into())),
        (
            "alg none",
            Some(unsigned(
                serde_json::json!({"alg": "none", "typ": "JWT"}),
                &base,
                b"",
            )),
        ),
        (
            "HS256",
            Some({
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
                h.kid = Some(key.kid.clone());
                jsonwebtoken::encode(
                    &h,
                    &base,
                    &jsonwebtoken::EncodingKey::from_secret(b"guess").unwrap(),
                )
                .unwrap()
            }),
        ),
        (
            "unknown key",
            Some(sign("nobody", &[9u8; 32], base.clone())),
        ),
        (
            "our kid, other key",
            Some(sign(&key.kid, &[9u8; 32], base.clone())),
        ),
        ("tampered", Some(tampered)),
        (
            "expired",
            Some(sign(
                &key.kid,
                &key.seed,
                claims(serde_json::json!({"exp": now - 3600})),
            )),
        ),
        (
            "wrong audience",
            Some(sign(
                &key.kid,
                &key.seed,
                claims(serde_json::json!({"aud": "someone-else"})),
            )),
        ),
        (
            "wrong issuer",
            Some(sign(
                &key.kid,
                &key.seed,
                claims(serde_json::json!({"iss": "evil.example/log"})),
            )),
        ),
        (
            "sender without tenant",
            Some(sign(
                &key.kid,
                &key.seed,
                claims(serde_json::json!({"role": "sender"})),
            )),
        ),
        (
            "not valid before tomorrow (nbf)",
            Some(sign(
                &key.kid,
                &key.seed,
                claims(serde_json::json!({"nbf": now + 86_400})),
            )),
        ),
        (
            "issued in the future (iat)",
            Some(sign(
                &key.kid,
                &key.seed,
                claims(serde_json::json!({"iat": now + 3600, "exp": now + 4200})),
            )),
        ),
        (
            "no iat",
            Some(sign(
                &key.kid,
                &key.seed,
                claims(serde_json::json!({"iat": null})),
            )),
        ),
        (
            "exp 2^63",
            Some(sign(
                &key.kid,
                &key.seed,
                claims(serde_json::json!({"exp": 1u64 << 63})),
            )),
        ),
        (
            "a lifetime beyond the 90-day cap",
            Some(sign(
                &key.kid,
                &key.seed,
                claims(serde_json::json!({"exp": now + 91 * 86_400})),
            )),
        ),
        (
            "unknown role",
            Some(sign(
                &key.kid,
                &key.seed,
                claims(serde_json::json!({"role": "root"})),
            )),
        ),
    ];
    for (what, token) in forged {
        let (status, challenge, problem) = get_with(&app, "/checkpoint", token.as_deref()).await;
        assert_eq!(status, 401, "{what} was accepted");
        assert!(
            challenge.starts_with("Bearer"),
            "{what}: no WWW-Authenticate"
        );
        assert_eq!(problem["status"], 401, "{what}");
        assert_eq!(problem["type"], "/problems/unauthorized", "{what}");
    }
    app.stop().await;
}

async fn rotation_keeps_tokens_valid_until_retired(db: TestDb) {
    let state = AppState::open(&db.config()).unwrap();
    let authority = &state.authority;
    let old_kid = authority.key_ids()[0].clone();
    let old = authority
        .issue(Role::Admin, None, "a", Duration::from_secs(60))
        .unwrap();
    let new_kid = authority.rotate().unwrap();
    let new = authority
        .issue(Role::Admin, None, "a", Duration::from_secs(60))
        .unwrap();
    let header = jsonwebtoken::decode_header(&new).unwrap();
    assert_eq!(
        header.kid.as_deref(),
        Some(new_kid.as_str()),
        "the new key signs"
    );
    assert!(authority.verify(&old).is_ok() && authority.verify(&new).is_ok());
    assert!(
        authority.retire(&new_kid).is_err(),
        "the signing key cannot be retired"
    );
    authority.retire(&old_kid).unwrap();
    assert!(
        authority.verify(&old).is_err(),
        "a retired key's tokens stop working"
    );
    assert!(authority.verify(&new).is_ok());
    assert!(
        authority
            .issue(Role::Sender, None, "a", Duration::from_secs(60))
            .is_err(),
        "sender needs a tenant"
    );
    assert!(authority
        .issue(Role::Admin, Some("t"), "a", Duration::from_secs(60))
        .is_err());
    // A second process sharing the database sees the rotation.
    let other = AppState::open(&db.config()).unwrap();
    assert!(other.authority.verify(&new).is_ok());
    assert!(other.authority.verify(&old).is_err());
    other.log.shutdown();
    state.log.shutdown();
}

async fn a_key_rotated_by_another_process_is_accepted_at_once(db: TestDb) {
    let mut config = db.config();
    config.log_read_access = ReadAccess::Authenticated;
    let app = TestApp::start_with(config.clone()).await;
    let other = AppState::open(&config).unwrap();
    let before = other
        .authority
        .issue(Role::Regulator, None, "officer", Duration::from_secs(600))
        .unwrap();
    assert_eq!(get_with(&app, "/checkpoint", Some(&before)).await.0, 200);

    other.authority.rotate().unwrap();
    let after = other
        .authority
        .issue(Role::Regulator, None, "officer", Duration::from_secs(600))
        .unwrap();
    let (status, _, problem) = get_with(&app, "/checkpoint", Some(&after)).await;
    assert_eq!(
        status, 200,
        "a token of the new key was refused right after rotation: {problem}"
    );
    other.log.shutdown();
    app.stop().await;
}

async fn no_token_is_issued_beyond_the_lifetime_cap(db: TestDb) {
    let mut config = db.config();
    config.token_max_lifetime_days = 7;
    let state = AppState::open(&config).unwrap();
    let day = Duration::from_secs(86_400);
    assert!(state
        .authority
        .issue(Role::Admin, None, "a", 7 * day)
        .is_ok());
    let refused = state
        .authority
        .issue(Role::Admin, None, "a", 8 * day)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("at most 7 days") && refused.contains("token_max_lifetime_days"),
        "{refused}"
    );
    state.log.shutdown();
}
