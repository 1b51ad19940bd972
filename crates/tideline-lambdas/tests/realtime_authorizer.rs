//! The realtime REQUEST authorizer on API Gateway WebSocket `$connect`
//! fixtures: RS256 tokens checked against a JWKS and an issuer, from the
//! `Authorization` header or the `token` query parameter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::PathBuf;
use tideline_lambdas::realtime::{AuthorizerState, authorizer};
use tideline_realtime::TokenVerifier;
use tideline_realtime::auth::{Claims, hs256_token, now_secs};
use tideline_testkit::fixtures::lambda;

const ISSUER: &str = "https://auth.example";

fn keys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tideline-realtime/tests/fixtures")
}

fn state() -> AuthorizerState {
    let jwks = std::fs::read_to_string(keys().join("test-jwks.json")).unwrap();
    AuthorizerState {
        verifier: TokenVerifier::jwks_json(&jwks, Some(ISSUER.into())).unwrap(),
    }
}

fn claims(exp: u64, iss: &str) -> Claims {
    Claims {
        sub: "user-42".into(),
        exp,
        iss: Some(iss.into()),
        topics: vec!["OrderPlaced".into()],
        entities: vec!["order-1".into()],
    }
}

fn rs256(c: &Claims) -> String {
    let der = std::fs::read(keys().join("test-rsa.der")).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    jsonwebtoken::encode(&header, c, &jsonwebtoken::EncodingKey::from_rsa_der(&der)).unwrap()
}

/// The `$connect` fixture with `token` in the header (or the query string).
fn request(token: &str, in_query: bool) -> Value {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/realtime/connect-request.json"),
    )
    .unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    if in_query {
        v["headers"]
            .as_object_mut()
            .unwrap()
            .remove("Authorization");
        v["multiValueHeaders"]
            .as_object_mut()
            .unwrap()
            .remove("Authorization");
        v["queryStringParameters"]["token"] = token.into();
        v["multiValueQueryStringParameters"]["token"] = serde_json::json!([token]);
    } else {
        let text = v
            .to_string()
            .replace("Bearer TOKEN", &format!("Bearer {token}"));
        v = serde_json::from_str(&text).unwrap();
    }
    v
}

async fn decide(token: &str, in_query: bool) -> Value {
    authorizer(&state(), lambda(request(token, in_query)))
        .await
        .unwrap()
}

fn effect(v: &Value) -> &str {
    v["policyDocument"]["Statement"][0]["Effect"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn a_valid_token_is_allowed_with_its_claims_in_the_context() {
    let c = claims(now_secs() + 600, ISSUER);
    for in_query in [false, true] {
        let v = decide(&rs256(&c), in_query).await;
        assert_eq!(effect(&v), "Allow", "{v}");
        assert_eq!(v["principalId"], "user-42");
        assert_eq!(
            v["policyDocument"]["Statement"][0]["Resource"],
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/live/$connect"
        );
        let passed: Claims =
            serde_json::from_str(v["context"]["claims"].as_str().unwrap()).unwrap();
        assert_eq!(passed, c);
    }
}

#[tokio::test]
async fn expired_forged_foreign_and_missing_tokens_are_denied_with_the_reason() {
    let expired = decide(&rs256(&claims(now_secs() - 600, ISSUER)), false).await;
    assert_eq!(effect(&expired), "Deny");
    assert!(
        expired["context"]["reason"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let foreign = decide(
        &rs256(&claims(now_secs() + 600, "https://evil.example")),
        false,
    )
    .await;
    assert_eq!(effect(&foreign), "Deny");
    assert!(
        foreign["context"]["reason"]
            .as_str()
            .unwrap()
            .contains("issuer")
    );
    let hs = hs256_token(&claims(now_secs() + 600, ISSUER), b"guess").unwrap();
    assert_eq!(effect(&decide(&hs, false).await), "Deny");
    let mut tampered: Vec<String> = rs256(&claims(now_secs() + 600, ISSUER))
        .split('.')
        .map(str::to_string)
        .collect();
    tampered[2] = tampered[2].chars().rev().collect();
    assert_eq!(effect(&decide(&tampered.join("."), false).await), "Deny");
    let missing = decide("", true).await;
    assert_eq!(effect(&missing), "Deny");
    assert!(
        missing["context"]["reason"]
            .as_str()
            .unwrap()
            .contains("Bearer")
    );
}
