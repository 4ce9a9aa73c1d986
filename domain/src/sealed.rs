//! Secrets as the domain sees them: opaque sealed blobs, never clear text.

use serde::{Deserialize, Serialize};

/// A secret sealed (encrypted and authenticated) under the key named by `key_id`.
///
/// The domain only stores and compares these; sealing and opening happen in `gateways`, at the
/// edge, just before a secret is used.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Which encryption key sealed it, so keys can be rotated.
    pub key_id: String,
    /// Nonce and ciphertext, base64.
    pub sealed: String,
}

/// Never prints the blob, so a sealed secret cannot leak through a log line either.
impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}
