//! Signing the webhooks we send to merchants, in the Standard Webhooks format.
//!
//! ```text
//! webhook-id:        msg_…                     (stable across retries; receivers dedupe on it)
//! webhook-timestamp: 1767225600                (unix seconds of this attempt)
//! webhook-signature: v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{raw body}")) [v1,… …]
//! ```
//!
//! The secret is `whsec_` + base64; the HMAC key is the base64-decoded part. While a merchant
//! rotates its secret, every valid secret signs and the signatures are space-separated, so a
//! receiver holding either secret accepts the message. Any Standard Webhooks library verifies
//! what [`sign`] produces, and [`verify`] accepts what they accept.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

use crate::crypto::{ct_eq, hmac_sha256};
use crate::secrets::{Secret, WEBHOOK_SECRET_PREFIX};

/// Header carrying the message id.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the unix timestamp (seconds) of the attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated `v1,` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The window receivers accept around their clock, either way (the spec's 5 minutes).
pub const TOLERANCE_SECS: i64 = 300;
const VERSION: &str = "v1";

/// A webhook signing secret: the HMAC key decoded from `whsec_<base64>`.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`; like the reference libraries, the prefix may be left out.
    pub fn parse(secret: &str) -> Result<Self, WebhookSignError> {
        let encoded = secret.strip_prefix(WEBHOOK_SECRET_PREFIX).unwrap_or(secret);
        let key = BASE64
            .decode(encoded)
            .map_err(|_| WebhookSignError::InvalidSecret)?;
        if key.is_empty() {
            return Err(WebhookSignError::InvalidSecret);
        }
        Ok(Self { key })
    }

    /// Parses a secret held in a [`Secret`] (as opened from storage).
    pub fn from_secret(secret: &Secret) -> Result<Self, WebhookSignError> {
        Self::parse(
            secret
                .expose_str()
                .map_err(|_| WebhookSignError::InvalidSecret)?,
        )
    }
}

/// Why signing could not start or verification failed. Never echoes secrets or signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSignError {
    /// The secret is not `whsec_` + base64 of at least one byte.
    #[error("webhook secret is not whsec_ followed by base64")]
    InvalidSecret,
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is not visible ASCII, or the timestamp is not an integer.
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    /// The timestamp is older than the tolerance.
    #[error("webhook timestamp too old")]
    TooOld,
    /// The timestamp is further in the future than the tolerance.
    #[error("webhook timestamp too far in the future")]
    TooNew,
    /// No `v1` signature matches.
    #[error("no signature matches")]
    BadSignature,
}

/// The three headers of one signed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: i64,
    /// `webhook-signature`: one `v1,…` per secret, space-separated.
    pub signature: String,
}

impl SignedHeaders {
    /// The headers as name/value pairs, ready to put on a request.
    pub fn pairs(&self) -> [(&'static str, String); 3] {
        [
            (HEADER_ID, self.id.clone()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ]
    }
}

/// One `v1,<base64>` signature of `body` under `secret`.
pub fn signature(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = hmac_sha256(
        &secret.key,
        &[
            msg_id.as_bytes(),
            b".",
            timestamp.to_string().as_bytes(),
            b".",
            body,
        ],
    );
    format!("{VERSION},{}", BASE64.encode(tag))
}

/// Signs one delivery attempt with the current secret and any still-valid previous secrets
/// (the rotation grace period), giving the three headers to send.
pub fn sign(
    current: &WebhookSecret,
    previous: &[WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> SignedHeaders {
    let signature = std::iter::once(current)
        .chain(previous)
        .map(|secret| signature(secret, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ");
    SignedHeaders {
        id: msg_id.to_owned(),
        timestamp,
        signature,
    }
}

/// A message whose signature and timestamp checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMessage {
    /// `webhook-id`, to dedupe on.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: i64,
}

/// Verifies a received webhook as the Standard Webhooks libraries do: the three headers must be
/// present, the timestamp within ±[`TOLERANCE_SECS`] of `now`, and at least one of the
/// space-separated `v1,` signatures must equal ours (compared in constant time; other versions are
/// skipped).
pub fn verify(
    secret: &WebhookSecret,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<VerifiedMessage, WebhookSignError> {
    let id = header(headers, HEADER_ID)?;
    let signatures = header(headers, HEADER_SIGNATURE)?;
    let timestamp: i64 = header(headers, HEADER_TIMESTAMP)?
        .parse()
        .map_err(|_| WebhookSignError::MalformedHeader(HEADER_TIMESTAMP))?;
    let now = now.timestamp();
    if now.saturating_sub(timestamp) > TOLERANCE_SECS {
        return Err(WebhookSignError::TooOld);
    }
    if timestamp.saturating_sub(now) > TOLERANCE_SECS {
        return Err(WebhookSignError::TooNew);
    }
    let expected = signature(secret, id, timestamp, body);
    let matched = signatures
        .split(' ')
        .filter(|candidate| candidate.split_once(',').is_some_and(|(v, _)| v == VERSION))
        .fold(false, |found, candidate| {
            found | ct_eq(candidate.as_bytes(), expected.as_bytes())
        });
    if matched {
        Ok(VerifiedMessage {
            id: id.to_owned(),
            timestamp,
        })
    } else {
        Err(WebhookSignError::BadSignature)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, WebhookSignError> {
    headers
        .get(name)
        .ok_or(WebhookSignError::MissingHeader(name))?
        .to_str()
        .map_err(|_| WebhookSignError::MalformedHeader(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vector {
        secret: String,
        id: String,
        timestamp: i64,
        body: String,
        signature: String,
    }

    fn vectors() -> Vec<Vector> {
        let text = include_str!("../../fixtures/standard-webhooks/vectors.json");
        serde_json::from_str(text).unwrap()
    }

    fn headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER_ID, id.parse().unwrap());
        h.insert(HEADER_TIMESTAMP, ts.to_string().parse().unwrap());
        h.insert(HEADER_SIGNATURE, sig.parse().unwrap());
        h
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn reproduces_the_published_vectors() {
        for v in vectors() {
            let secret = WebhookSecret::parse(&v.secret).unwrap();
            assert_eq!(
                signature(&secret, &v.id, v.timestamp, v.body.as_bytes()),
                v.signature
            );
            let without_prefix =
                WebhookSecret::parse(v.secret.trim_start_matches("whsec_")).unwrap();
            let h = headers(&v.id, v.timestamp, &v.signature);
            let ok = verify(&without_prefix, &h, v.body.as_bytes(), at(v.timestamp)).unwrap();
            assert_eq!(
                ok,
                VerifiedMessage {
                    id: v.id.clone(),
                    timestamp: v.timestamp
                }
            );
        }
    }

    #[test]
    fn rotation_signs_with_every_secret_and_either_verifies() {
        let new = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let old = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let signed = sign(&new, std::slice::from_ref(&old), "msg_1", 1000, b"{}");
        assert_eq!(signed.signature.split(' ').count(), 2);
        let h = headers(&signed.id, signed.timestamp, &signed.signature);
        assert!(verify(&new, &h, b"{}", at(1000)).is_ok());
        assert!(verify(&old, &h, b"{}", at(1000)).is_ok());
        let stranger = WebhookSecret::parse("whsec_c3RyYW5nZXI=").unwrap();
        assert_eq!(
            verify(&stranger, &h, b"{}", at(1000)),
            Err(WebhookSignError::BadSignature)
        );
    }

    #[test]
    fn refuses_what_the_spec_refuses() {
        let v = &vectors()[0];
        let secret = WebhookSecret::parse(&v.secret).unwrap();
        let body = v.body.as_bytes();
        let ts = v.timestamp;
        let ok = |h: &HeaderMap, b: &[u8], now: i64| verify(&secret, h, b, at(now));

        let h = headers(&v.id, ts, &v.signature);
        let mut tampered = body.to_vec();
        tampered[2] ^= 1;
        assert_eq!(ok(&h, &tampered, ts), Err(WebhookSignError::BadSignature));
        assert_eq!(ok(&h, body, ts + 301), Err(WebhookSignError::TooOld));
        assert_eq!(ok(&h, body, ts - 301), Err(WebhookSignError::TooNew));
        assert!(ok(&h, body, ts + 300).is_ok());

        // Another version, a truncated or an empty signature never match.
        let other_version = v.signature.replacen("v1,", "v2,", 1);
        assert_eq!(
            ok(&headers(&v.id, ts, &other_version), body, ts),
            Err(WebhookSignError::BadSignature)
        );
        assert_eq!(
            ok(&headers(&v.id, ts, "v1,"), body, ts),
            Err(WebhookSignError::BadSignature)
        );
        let truncated = &v.signature[..v.signature.len() - 4];
        assert_eq!(
            ok(&headers(&v.id, ts, truncated), body, ts),
            Err(WebhookSignError::BadSignature)
        );
        let among_others = format!("v1a,xx v2,{} {}", &v.signature[3..], v.signature);
        assert!(ok(&headers(&v.id, ts, &among_others), body, ts).is_ok());

        for missing in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
            let mut h = headers(&v.id, ts, &v.signature);
            h.remove(missing);
            assert_eq!(
                ok(&h, body, ts),
                Err(WebhookSignError::MissingHeader(missing))
            );
        }
        let mut h = headers(&v.id, ts, &v.signature);
        h.insert(HEADER_TIMESTAMP, "soon".parse().unwrap());
        assert_eq!(
            ok(&h, body, ts),
            Err(WebhookSignError::MalformedHeader(HEADER_TIMESTAMP))
        );
    }

    #[test]
    fn secrets_must_be_base64() {
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!").unwrap_err(),
            WebhookSignError::InvalidSecret
        );
        assert_eq!(
            WebhookSecret::parse("whsec_").unwrap_err(),
            WebhookSignError::InvalidSecret
        );
        let generated = crate::secrets::generate_webhook_secret();
        assert!(WebhookSecret::from_secret(&generated).is_ok());
        assert_eq!(
            format!("{:?}", WebhookSecret::from_secret(&generated).unwrap()),
            "WebhookSecret(<redacted>)"
        );
    }
}
