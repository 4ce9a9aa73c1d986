//! Small wrappers over the RustCrypto primitives the adapters share.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
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

/// Constant-time equality of two byte strings (lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
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
}
