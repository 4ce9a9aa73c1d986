//! The signature on merchant API requests.
//!
//! A merchant signs each request with its `client_salt`:
//!
//! ```text
//! x-client-key: ck_…
//! x-timestamp:  1767225600                       (unix seconds)
//! x-signature:  hex(HMAC-SHA256(key = client_salt, msg = "{timestamp}\n{METHOD}\n{path}\n{raw body}"))
//! ```
//!
//! `path` is the request target as sent: the path and, when there is one, `?` and the query
//! string, byte for byte. `METHOD` is upper case. The body is the raw bytes (empty for a GET).
//! A request is accepted within ±[`TIMESTAMP_TOLERANCE_SECS`] of the server's clock.

use chrono::{DateTime, Utc};

use crate::crypto::{hmac_sha256, hmac_sha256_verify};

/// Header carrying the merchant's public client key.
pub const HEADER_CLIENT_KEY: &str = "x-client-key";
/// Header carrying the unix timestamp (seconds) the request was signed at.
pub const HEADER_TIMESTAMP: &str = "x-timestamp";
/// Header carrying the hex HMAC-SHA256 signature.
pub const HEADER_SIGNATURE: &str = "x-signature";
/// How far a request's timestamp may be from the server's clock, either way.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// Why a signed request was refused. Never echoes the signature or the salt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestAuthError {
    /// A header is not in the expected format.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The timestamp is outside the accepted window.
    #[error(
        "timestamp is {skew_secs} s away from the server clock (tolerance {TIMESTAMP_TOLERANCE_SECS} s)"
    )]
    Stale {
        /// Signed distance of the request's timestamp from the server clock, in seconds.
        skew_secs: i64,
    },
    /// The signature does not match.
    #[error("signature does not match")]
    BadSignature,
}

/// The exact bytes that are signed.
pub fn canonical_string(timestamp: i64, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let head = format!("{timestamp}\n{}\n{path}\n", method.to_ascii_uppercase());
    let mut bytes = Vec::with_capacity(head.len() + body.len());
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// The `x-signature` value for a request (lowercase hex).
pub fn sign_request(
    client_salt: &[u8],
    timestamp: i64,
    method: &str,
    path: &str,
    body: &[u8],
) -> String {
    hex::encode(hmac_sha256(
        client_salt,
        &[&canonical_string(timestamp, method, path, body)],
    ))
}

/// Checks a request's `x-timestamp` and `x-signature` header values against its method, path
/// and raw body, at the instant `now` (read from the caller's clock).
pub fn verify_request(
    client_salt: &[u8],
    timestamp_header: &str,
    signature_header: &str,
    method: &str,
    path: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), RequestAuthError> {
    let timestamp = parse_timestamp(timestamp_header)?;
    let signature = hex::decode(signature_header.trim())
        .map_err(|_| RequestAuthError::Malformed(HEADER_SIGNATURE))?;
    let skew_secs = timestamp.saturating_sub(now.timestamp());
    if skew_secs.abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(RequestAuthError::Stale { skew_secs });
    }
    let message = canonical_string(timestamp, method, path, body);
    if hmac_sha256_verify(client_salt, &[&message], &signature) {
        Ok(())
    } else {
        Err(RequestAuthError::BadSignature)
    }
}

fn parse_timestamp(header: &str) -> Result<i64, RequestAuthError> {
    let header = header.trim();
    // Digits only: no sign, no exponent, and short enough not to overflow.
    if header.is_empty() || header.len() > 12 || !header.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RequestAuthError::Malformed(HEADER_TIMESTAMP));
    }
    header
        .parse()
        .map_err(|_| RequestAuthError::Malformed(HEADER_TIMESTAMP))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &[u8] = b"cs_test_salt";
    const BODY: &[u8] = br#"{"amount":49900,"reference":"ord-1"}"#;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn canonical_string_layout() {
        assert_eq!(
            canonical_string(1767225600, "post", "/v1/payments", b"{}"),
            b"1767225600\nPOST\n/v1/payments\n{}".to_vec()
        );
    }

    #[test]
    fn independent_vector() {
        // python3: hmac.new(b"cs_test_salt",
        //   b'1767225600\nPOST\n/v1/payments\n{"amount":49900,"reference":"ord-1"}',
        //   hashlib.sha256).hexdigest()
        assert_eq!(
            sign_request(SALT, 1767225600, "POST", "/v1/payments", BODY),
            "e5f575959dded04cba33b5e0b86ca7ccbad71f1fad1257ded1d341a9f198662d"
        );
    }

    #[test]
    fn accepts_a_fresh_signed_request() {
        let sig = sign_request(SALT, 1767225600, "POST", "/v1/payments", BODY);
        let ok = verify_request(
            SALT,
            "1767225600",
            &sig,
            "POST",
            "/v1/payments",
            BODY,
            at(1767225600 + 299),
        );
        assert_eq!(ok, Ok(()));
        let upper = sig.to_ascii_uppercase();
        let ok = verify_request(
            SALT,
            "1767225600",
            &upper,
            "post",
            "/v1/payments",
            BODY,
            at(1767225600 - 300),
        );
        assert_eq!(ok, Ok(()));
    }

    #[test]
    fn refuses_tampering_staleness_and_garbage() {
        let ts = 1767225600;
        let sig = sign_request(SALT, ts, "POST", "/v1/payments", BODY);
        let verify = |salt: &[u8], t: &str, s: &str, path: &str, body: &[u8], now: i64| {
            verify_request(salt, t, s, "POST", path, body, at(now))
        };
        assert_eq!(
            verify(SALT, "1767225600", &sig, "/v1/payments", b"{}", ts),
            Err(RequestAuthError::BadSignature)
        );
        assert_eq!(
            verify(SALT, "1767225600", &sig, "/v1/refunds", BODY, ts),
            Err(RequestAuthError::BadSignature)
        );
        assert_eq!(
            verify(b"other", "1767225600", &sig, "/v1/payments", BODY, ts),
            Err(RequestAuthError::BadSignature)
        );
        assert_eq!(
            verify(SALT, "1767225601", &sig, "/v1/payments", BODY, ts),
            Err(RequestAuthError::BadSignature)
        );
        assert_eq!(
            verify(SALT, "1767225600", &sig[..62], "/v1/payments", BODY, ts),
            Err(RequestAuthError::BadSignature)
        );
        assert_eq!(
            verify(SALT, "1767225600", &sig, "/v1/payments", BODY, ts + 301),
            Err(RequestAuthError::Stale { skew_secs: -301 })
        );
        assert_eq!(
            verify(SALT, "1767225600", &sig, "/v1/payments", BODY, ts - 301),
            Err(RequestAuthError::Stale { skew_secs: 301 })
        );
        for bad_ts in ["", "-1", "1e9", "12a", "99999999999999999999"] {
            assert_eq!(
                verify(SALT, bad_ts, &sig, "/v1/payments", BODY, ts),
                Err(RequestAuthError::Malformed(HEADER_TIMESTAMP))
            );
        }
        assert_eq!(
            verify(SALT, "1767225600", "zz", "/v1/payments", BODY, ts),
            Err(RequestAuthError::Malformed(HEADER_SIGNATURE))
        );
    }

    #[test]
    fn errors_do_not_echo_the_signature() {
        let sig = sign_request(SALT, 1, "GET", "/", b"");
        let err = verify_request(SALT, "1", &sig, "GET", "/", b"x", at(1)).unwrap_err();
        assert!(!err.to_string().contains(&sig));
    }
}
