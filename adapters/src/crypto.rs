//! Small wrappers over the RustCrypto primitives the adapters share.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// HMAC-SHA256 of the concatenation of `parts`, keyed with `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = new_hmac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `tag` is the HMAC-SHA256 of `parts` under `key`, compared in constant time.
pub(crate) fn hmac_sha256_verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut mac = new_hmac(key);
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(tag).is_ok()
}

fn new_hmac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC is defined for keys of every length (long keys are hashed, short ones padded), so
    // this constructor cannot fail; the Result only exists because `KeyInit` is generic.
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// Lowercase hex SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// Lowercase hex SHA-512 of `text`.
pub(crate) fn sha512_hex(text: &str) -> String {
    hex::encode(Sha512::digest(text.as_bytes()))
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Constant-time comparison of a hex digest we computed with one we received, ignoring the
/// case of the received hex digits (providers are not consistent about it).
pub(crate) fn hex_digest_eq(expected_lower_hex: &str, received: &str) -> bool {
    ct_eq(
        expected_lower_hex.as_bytes(),
        received.to_ascii_lowercase().as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_rejects_a_truncated_tag() {
        let tag = hmac_sha256(b"k", &[b"m"]);
        assert!(hmac_sha256_verify(b"k", &[b"m"], &tag));
        assert!(!hmac_sha256_verify(b"k", &[b"m"], &tag[..31]));
        assert!(!hmac_sha256_verify(b"k", &[b"m"], &[]));
    }

    #[test]
    fn hex_comparison_ignores_case_but_not_content() {
        assert!(hex_digest_eq("ab01", "AB01"));
        assert!(!hex_digest_eq("ab01", "ab02"));
        assert!(!hex_digest_eq("ab01", "ab0"));
    }
}
