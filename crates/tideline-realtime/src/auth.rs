//! Bearer tokens (JWT) and what they allow.
//!
//! A connection is opened with a JWT, checked here the same way by the local
//! server and by the API Gateway REQUEST authorizer Lambda: the signature
//! (HS256 with a shared secret, or RS256 against a JWKS), `exp`, and the
//! issuer when one is configured. Its claims say what the connection may
//! subscribe to:
//!
//! - `topics`: event types, or `"*"` for every type;
//! - `entities`: entity ids, `"prefix*"` for ids that start with a prefix, or
//!   `"*"` for every entity (needed to subscribe to a topic without naming
//!   entities).
//!
//! Anything else is refused with a reason ([`Claims::check`]). A token with
//! neither claim allows nothing: the default is closed.

use crate::protocol::RefusalCode;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tideline_core::{Classify, ErrorClass};

/// Clock skew tolerated on `exp`, in seconds (token issuers and this host
/// disagree by a few seconds at most; RFC 7519 suggests "a few minutes").
pub const EXP_LEEWAY_SECS: u64 = 30;

/// The claims a realtime token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token is for (logged, stored with the connection).
    pub sub: String,
    /// Expiry, epoch seconds.
    pub exp: u64,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Event types the holder may subscribe to (`*`: all).
    #[serde(default)]
    pub topics: Vec<String>,
    /// Entities the holder may see (`*`: all; `prefix*`: ids with the prefix).
    #[serde(default)]
    pub entities: Vec<String>,
}

/// Why a subscription is not allowed: the code and a reason for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAllowed {
    /// Machine-readable code.
    pub code: RefusalCode,
    /// The entity concerned, if one.
    pub entity_id: Option<String>,
    /// What the token would need.
    pub reason: String,
}

fn covers(grants: &[String], name: &str) -> bool {
    grants.iter().any(|g| {
        g == "*"
            || g == name
            || g.strip_suffix('*')
                .is_some_and(|prefix| !prefix.is_empty() && name.starts_with(prefix))
    })
}

impl Claims {
    /// Whether these claims allow `topic` for `entities` (empty: every entity).
    pub fn check(&self, topic: &str, entities: &[String]) -> Result<(), NotAllowed> {
        if !covers(&self.topics, topic) {
            return Err(NotAllowed {
                code: RefusalCode::TopicNotAllowed,
                entity_id: None,
                reason: format!(
                    "the token's `topics` claim ({:?}) does not include {topic:?}",
                    self.topics
                ),
            });
        }
        if entities.is_empty() {
            if !self.entities.iter().any(|g| g == "*") {
                return Err(NotAllowed {
                    code: RefusalCode::EntityNotAllowed,
                    entity_id: None,
                    reason: format!(
                        "a subscription to every entity of {topic:?} needs `\"*\"` in the token's `entities` claim ({:?}); name the entities instead",
                        self.entities
                    ),
                });
            }
            return Ok(());
        }
        for entity in entities {
            if !covers(&self.entities, entity) {
                return Err(NotAllowed {
                    code: RefusalCode::EntityNotAllowed,
                    entity_id: Some(entity.clone()),
                    reason: format!(
                        "the token's `entities` claim ({:?}) does not cover entity {entity:?}",
                        self.entities
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether these claims allow one event: its topic and its entity.
    pub fn allows_event(&self, topic: &str, entity: &str) -> bool {
        covers(&self.topics, topic) && covers(&self.entities, entity)
    }
}

/// Why a token was refused (a connection is refused with it, HTTP 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token in the request.
    #[error(
        "no bearer token: send `Authorization: Bearer <JWT>` or `?token=<JWT>` (browsers cannot set headers on a WebSocket)"
    )]
    Missing,
    /// Not a JWT, or claims of the wrong shape.
    #[error("token is not a JWT with the realtime claims (sub, exp, topics, entities): {0}")]
    Malformed(String),
    /// The signature does not verify with the configured key.
    #[error("token signature does not verify with the configured key")]
    BadSignature,
    /// The header's algorithm is not the one configured.
    #[error("token algorithm {found} is not accepted here (expected {expected})")]
    WrongAlgorithm {
        /// The token's `alg`.
        found: String,
        /// What this verifier accepts.
        expected: String,
    },
    /// No key of the JWKS has the token's `kid`.
    #[error("no key in the JWKS has the token's kid {0:?}")]
    UnknownKey(Option<String>),
    /// `exp` is in the past.
    #[error("token expired at {exp} (now {now}); get a fresh token")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// `iss` is not the configured issuer.
    #[error("token issuer {found:?} is not the configured issuer {expected:?}")]
    WrongIssuer {
        /// The token's `iss`.
        found: Option<String>,
        /// The configured issuer.
        expected: String,
    },
}

impl Classify for TokenError {
    fn class(&self) -> ErrorClass {
        // The same token gets the same answer: only a new token helps.
        ErrorClass::Permanent
    }
}

/// A verifier that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VerifierConfigError {
    /// The JWKS file could not be read.
    #[error("JWKS file {path}: {message}")]
    JwksFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An empty HS256 secret.
    #[error("the HS256 secret is empty")]
    EmptySecret,
}

impl Classify for VerifierConfigError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// How tokens are checked.
#[derive(Clone)]
pub enum TokenVerifier {
    /// HS256 with a shared secret.
    Hs256 {
        /// The secret's key.
        key: DecodingKey,
        /// Required `iss`, if any.
        issuer: Option<String>,
    },
    /// RS256 (or another asymmetric algorithm a key declares) against a JWKS.
    Jwks {
        /// The key set.
        keys: JwkSet,
        /// Required `iss`, if any.
        issuer: Option<String>,
    },
    /// Unsigned tokens (`alg: none`) accepted: for a developer's machine only
    /// (`--realtime-insecure-dev-tokens`). `exp` is still checked.
    InsecureDev,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        match self {
            Self::Hs256 { issuer, .. } => write!(f, "Hs256 {{ issuer: {issuer:?} }}"),
            Self::Jwks { keys, issuer } => {
                write!(
                    f,
                    "Jwks {{ keys: {}, issuer: {issuer:?} }}",
                    keys.keys.len()
                )
            }
            Self::InsecureDev => f.write_str("InsecureDev"),
        }
    }
}

impl TokenVerifier {
    /// HS256 with `secret`.
    pub fn hs256(secret: &[u8], issuer: Option<String>) -> Result<Self, VerifierConfigError> {
        if secret.is_empty() {
            return Err(VerifierConfigError::EmptySecret);
        }
        let key = DecodingKey::from_secret(secret).map_err(|_| VerifierConfigError::EmptySecret)?;
        Ok(Self::Hs256 { key, issuer })
    }

    /// A JWKS given as JSON text (`{"keys": [...]}`).
    pub fn jwks_json(text: &str, issuer: Option<String>) -> Result<Self, serde_json::Error> {
        let keys: JwkSet = serde_json::from_str(text)?;
        Ok(Self::Jwks { keys, issuer })
    }

    /// A JWKS read from a file.
    pub fn jwks_file(path: &Path, issuer: Option<String>) -> Result<Self, VerifierConfigError> {
        let fail = |message: String| VerifierConfigError::JwksFile {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let verifier = Self::jwks_json(&text, issuer).map_err(|e| {
            fail(format!(
                "not a JWKS ({{\"keys\": [{{\"kty\":\"RSA\",\"kid\":…,\"n\":…,\"e\":…}}]}}): {e}"
            ))
        })?;
        if let Self::Jwks { keys, .. } = &verifier
            && keys.keys.is_empty()
        {
            return Err(fail("the key set is empty".into()));
        }
        Ok(verifier)
    }

    /// Checks `token` at `now` (epoch seconds) and returns its claims.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let claims = match self {
            Self::InsecureDev => jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token)
                .map_err(|e| TokenError::Malformed(e.to_string()))?,
            Self::Hs256 { key, issuer } => {
                let claims = decode(token, key, Algorithm::HS256)?;
                check_issuer(&claims, issuer.as_deref())?;
                claims
            }
            Self::Jwks { keys, issuer } => {
                let header = jsonwebtoken::decode_header(token)
                    .map_err(|e| TokenError::Malformed(e.to_string()))?;
                let jwk = match &header.kid {
                    Some(kid) => keys.find(kid),
                    // One key and no kid: the key is unambiguous.
                    None if keys.keys.len() == 1 => keys.keys.first(),
                    None => None,
                }
                .ok_or_else(|| TokenError::UnknownKey(header.kid.clone()))?;
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|e| TokenError::Malformed(format!("JWKS key: {e}")))?;
                let expected = match jwk.common.key_algorithm {
                    Some(a) => a.to_string().parse().unwrap_or(Algorithm::RS256),
                    None => Algorithm::RS256,
                };
                let claims = decode(token, &key, expected)?;
                check_issuer(&claims, issuer.as_deref())?;
                claims
            }
        };
        if claims.exp.saturating_add(EXP_LEEWAY_SECS) < now {
            return Err(TokenError::Expired {
                exp: claims.exp,
                now,
            });
        }
        Ok(claims)
    }
}

fn decode(token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Claims, TokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    if header.alg != alg {
        // Checked before the signature: `alg: none` or an HS256 token signed
        // with a public key never reach a verifier of another family.
        return Err(TokenError::WrongAlgorithm {
            found: format!("{:?}", header.alg),
            expected: format!("{alg:?}"),
        });
    }
    let mut validation = Validation::new(alg);
    // `exp` is checked by the caller against its own clock (testable), the
    // issuer against the configuration; the audience is not used.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
            _ => TokenError::Malformed(e.to_string()),
        })
}

fn check_issuer(claims: &Claims, expected: Option<&str>) -> Result<(), TokenError> {
    match expected {
        Some(expected) if claims.iss.as_deref() != Some(expected) => Err(TokenError::WrongIssuer {
            found: claims.iss.clone(),
            expected: expected.to_string(),
        }),
        _ => Ok(()),
    }
}

/// An unsigned token (`alg: none`) for `claims`: what `--realtime-insecure-dev-tokens` accepts.
pub fn insecure_dev_token(claims: &Claims) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    format!("{header}.{body}.")
}

/// An HS256 token for `claims` signed with `secret` (tests, examples, and
/// a server that mints tokens for its users).
pub fn hs256_token(claims: &Claims, secret: &[u8]) -> Result<String, TokenError> {
    let key = jsonwebtoken::EncodingKey::from_secret(secret)
        .map_err(|e| TokenError::Malformed(e.to_string()))?;
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), claims, &key)
        .map_err(|e| TokenError::Malformed(e.to_string()))
}

/// The current time in epoch seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(topics: &[&str], entities: &[&str]) -> Claims {
        Claims {
            sub: "user-1".into(),
            exp: 2_000,
            iss: Some("https://issuer.example".into()),
            topics: topics.iter().map(|s| s.to_string()).collect(),
            entities: entities.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn claims_cover_named_prefixed_and_wildcard_entities_only() {
        let c = claims(&["OrderPlaced"], &["order-1", "cust-7-*"]);
        assert!(c.check("OrderPlaced", &["order-1".into()]).is_ok());
        assert!(c.check("OrderPlaced", &["cust-7-a".into()]).is_ok());
        let e = c.check("OrderPlaced", &["order-2".into()]).unwrap_err();
        assert_eq!(e.code, RefusalCode::EntityNotAllowed);
        assert_eq!(e.entity_id.as_deref(), Some("order-2"));
        assert_eq!(
            c.check("OrderShipped", &["order-1".into()])
                .unwrap_err()
                .code,
            RefusalCode::TopicNotAllowed
        );
        // A whole topic needs "*".
        assert_eq!(
            c.check("OrderPlaced", &[]).unwrap_err().code,
            RefusalCode::EntityNotAllowed
        );
        assert!(claims(&["*"], &["*"]).check("Any", &[]).is_ok());
        // A bare "*" prefix grant is the wildcard; an empty prefix is nothing.
        assert!(!claims(&["T"], &[""]).allows_event("T", "x"));
        assert!(!claims(&[], &[]).allows_event("T", "x"));
    }

    #[test]
    fn hs256_tokens_verify_and_bad_ones_say_why() {
        let v = TokenVerifier::hs256(b"secret", Some("https://issuer.example".into())).unwrap();
        let c = claims(&["T"], &["*"]);
        let token = hs256_token(&c, b"secret").unwrap();
        assert_eq!(v.verify(&token, 1_000).unwrap(), c);
        assert!(matches!(
            v.verify(&token, 3_000),
            Err(TokenError::Expired { exp: 2_000, .. })
        ));
        let forged = hs256_token(&c, b"other").unwrap();
        assert_eq!(v.verify(&forged, 1_000), Err(TokenError::BadSignature));
        let mut wrong_iss = c.clone();
        wrong_iss.iss = Some("evil".into());
        assert!(matches!(
            v.verify(&hs256_token(&wrong_iss, b"secret").unwrap(), 1_000),
            Err(TokenError::WrongIssuer { .. })
        ));
        // An unsigned token is refused by a signing verifier.
        assert!(matches!(
            v.verify(&insecure_dev_token(&c), 1_000),
            Err(TokenError::Malformed(_) | TokenError::WrongAlgorithm { .. })
        ));
        assert_eq!(v.verify("  ", 1_000), Err(TokenError::Missing));
        assert!(matches!(
            v.verify("not.a.jwt", 1_000),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn insecure_dev_tokens_still_expire() {
        let v = TokenVerifier::InsecureDev;
        let c = claims(&["T"], &["*"]);
        assert_eq!(v.verify(&insecure_dev_token(&c), 1_000).unwrap(), c);
        assert!(matches!(
            v.verify(&insecure_dev_token(&c), 9_000),
            Err(TokenError::Expired { .. })
        ));
    }
}
