//! RS256 tokens against a JWKS file: the check the local server and the
//! API Gateway authorizer make. The fixture key pair is a test key (the DER
//! private key signs here; the JWKS holds its public half).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::path::PathBuf;
use tideline_realtime::auth::{Claims, TokenError, TokenVerifier, hs256_token};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rs256(claims: &Claims, kid: Option<&str>) -> String {
    let der = std::fs::read(fixture("test-rsa.der")).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&der)).unwrap()
}

fn claims(exp: u64) -> Claims {
    Claims {
        sub: "user-9".into(),
        exp,
        iss: Some("https://auth.example".into()),
        topics: vec!["OrderPlaced".into()],
        entities: vec!["order-1".into()],
    }
}

#[test]
fn an_rs256_token_verifies_against_the_jwks_file_and_a_forgery_does_not() {
    let v = TokenVerifier::jwks_file(
        &fixture("test-jwks.json"),
        Some("https://auth.example".into()),
    )
    .unwrap();
    let c = claims(2_000);
    assert_eq!(v.verify(&rs256(&c, Some("test-key-1")), 1_000).unwrap(), c);
    assert!(matches!(
        v.verify(&rs256(&c, Some("test-key-1")), 5_000),
        Err(TokenError::Expired { .. })
    ));
    assert_eq!(
        v.verify(&rs256(&c, Some("other-key")), 1_000),
        Err(TokenError::UnknownKey(Some("other-key".into())))
    );
    // One key and no kid: that key.
    assert!(v.verify(&rs256(&c, None), 1_000).is_ok());
    // An HS256 token "signed" with anything is refused before any check.
    let hs = hs256_token(&c, b"the public key, perhaps").unwrap();
    assert!(matches!(
        v.verify(&hs, 1_000),
        Err(TokenError::WrongAlgorithm { .. } | TokenError::UnknownKey(_))
    ));
    // A tampered payload breaks the signature.
    let token = rs256(&c, Some("test-key-1"));
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut other = c.clone();
    other.entities = vec!["*".into()];
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&other).unwrap());
    assert_eq!(
        v.verify(&parts.join("."), 1_000),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn a_missing_or_empty_jwks_file_is_a_clear_configuration_error() {
    let e = TokenVerifier::jwks_file(&fixture("absent.json"), None).unwrap_err();
    assert!(e.to_string().contains("absent.json"), "{e}");
    let dir = std::env::temp_dir().join(format!("tl-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.json");
    std::fs::write(&empty, r#"{"keys":[]}"#).unwrap();
    let e = TokenVerifier::jwks_file(&empty, None).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
