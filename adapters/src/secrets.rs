//! Secrets: sealing at rest, a redacted in-memory wrapper, and the generators at the edge.
//!
//! At rest every secret (gateway credentials, webhook secrets, merchant salts, provider tokens) is
//! a [`SealedSecret`]: ChaCha20-Poly1305 under a key from `ENCRYPTION_KEY`, with a random 12-byte
//! nonce, and the key id both carried in the clear and bound as associated data, so a blob
//! relabelled with another key id fails to open instead of being tried under the wrong key.
//!
//! `ENCRYPTION_KEY` is a comma-separated list of `key_id:base64(32 bytes)`. The first key seals;
//! every key opens. To rotate: put the new key first, keep the old one after it, [`Keyring::reseal`]
//! what [`Keyring::is_current`] says is old, then drop the old key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use lightspeed_domain::SealedSecret;

/// The environment variable the keyring is read from.
pub const ENCRYPTION_KEY_ENV: &str = "ENCRYPTION_KEY";

/// Key id of [`Keyring::dev_insecure`]; a sealed secret carrying it was sealed with a public key.
pub const DEV_INSECURE_KEY_ID: &str = "dev-insecure";

const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;
const AAD_PREFIX: &[u8] = b"lightspeed/sealed-secret/v1\0";
/// Longest key id accepted, so a key id stays a label and not a payload.
const MAX_KEY_ID_LEN: usize = 64;
/// Most keys a keyring may hold: rotation needs two; a few more allows staged rollouts.
const MAX_KEYS: usize = 8;

/// Clear secret bytes in memory. `Debug` prints no content and there is no `Display`, so a secret
/// cannot reach a log line by accident; call [`Secret::expose`] at the one place it is used.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps clear bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The clear bytes, for the one call that needs them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The clear text, when the secret is UTF-8 (API secrets, salts and tokens are).
    pub fn expose_str(&self) -> Result<&str, SecretError> {
        std::str::from_utf8(&self.0).map_err(|_| SecretError::NotUtf8)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text.into_bytes())
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self(text.as_bytes().to_vec())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Secrets arrive as strings in configuration and admin requests. There is deliberately no
/// `Serialize`: a secret is only ever written out sealed.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::from)
    }
}

/// Why a secret could not be opened or used. Never carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The blob names a key this keyring does not hold (rotated away, or another environment).
    #[error("no key with id {0:?} in the keyring")]
    UnknownKey(String),
    /// The blob is not base64 of a nonce and ciphertext.
    #[error("sealed secret is malformed")]
    Malformed,
    /// Authentication failed: wrong key, tampered blob or relabelled key id.
    #[error("sealed secret failed authentication")]
    Tampered,
    /// The clear bytes are not UTF-8 where text was expected.
    #[error("secret is not valid UTF-8")]
    NotUtf8,
    /// The opened secret does not have the expected structure (no content is echoed).
    #[error("opened secret has an unexpected shape: {0}")]
    Shape(String),
}

/// Why `ENCRYPTION_KEY` could not be read. Never echoes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// The variable is not set.
    #[error("{ENCRYPTION_KEY_ENV} is not set")]
    Missing,
    /// The list is empty.
    #[error("{ENCRYPTION_KEY_ENV} holds no key")]
    Empty,
    /// More keys than a keyring holds.
    #[error("{ENCRYPTION_KEY_ENV} holds more than {MAX_KEYS} keys")]
    TooManyKeys,
    /// An entry is not `key_id:base64`.
    #[error("entry {position} of {ENCRYPTION_KEY_ENV} is not key_id:base64")]
    BadEntry {
        /// 1-based position of the entry.
        position: usize,
    },
    /// A key id is empty, too long, or has characters other than `[A-Za-z0-9_.-]`.
    #[error("key id at entry {position} must be 1-{MAX_KEY_ID_LEN} chars of [A-Za-z0-9_.-]")]
    BadKeyId {
        /// 1-based position of the entry.
        position: usize,
    },
    /// A key is not base64 of exactly 32 bytes.
    #[error("key {key_id:?} is not base64 of exactly 32 bytes")]
    BadKey {
        /// The id of the offending key.
        key_id: String,
    },
    /// The same key id appears twice.
    #[error("key id {0:?} appears twice")]
    DuplicateKeyId(String),
}

struct KeyEntry {
    id: String,
    cipher: ChaCha20Poly1305,
}

/// The encryption keys: the first seals, all open.
pub struct Keyring {
    keys: Vec<KeyEntry>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// Parses `key_id:base64(32 bytes)[,key_id:base64(32 bytes)...]`.
    pub fn parse(spec: &str) -> Result<Self, KeyringError> {
        let entries: Vec<&str> = spec
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect();
        if entries.is_empty() {
            return Err(KeyringError::Empty);
        }
        if entries.len() > MAX_KEYS {
            return Err(KeyringError::TooManyKeys);
        }
        let mut keys: Vec<KeyEntry> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let position = index + 1;
            let (id, encoded) = entry
                .split_once(':')
                .ok_or(KeyringError::BadEntry { position })?;
            if !valid_key_id(id) {
                return Err(KeyringError::BadKeyId { position });
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyringError::DuplicateKeyId(id.to_owned()));
            }
            let bytes = BASE64
                .decode(encoded.trim())
                .map_err(|_| KeyringError::BadKey {
                    key_id: id.to_owned(),
                })?;
            let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| KeyringError::BadKey {
                key_id: id.to_owned(),
            })?;
            keys.push(KeyEntry {
                id: id.to_owned(),
                cipher: cipher_for(key),
            });
        }
        Ok(Self { keys })
    }

    /// Reads and parses [`ENCRYPTION_KEY_ENV`].
    pub fn from_env() -> Result<Self, KeyringError> {
        let spec = std::env::var(ENCRYPTION_KEY_ENV).map_err(|_| KeyringError::Missing)?;
        Self::parse(&spec)
    }

    /// A keyring with one fixed, publicly known key (id [`DEV_INSECURE_KEY_ID`]) for
    /// `lightspeed demo` and tests. Anything it seals is readable by anyone with this source
    /// code: never use it where real secrets are stored.
    pub fn dev_insecure() -> Self {
        Self {
            keys: vec![KeyEntry {
                id: DEV_INSECURE_KEY_ID.to_owned(),
                cipher: cipher_for(*b"lightspeed-dev-insecure-key-0000"),
            }],
        }
    }

    /// A keyring with one freshly generated random key, for tests.
    pub fn random(key_id: &str) -> Result<Self, KeyringError> {
        if !valid_key_id(key_id) {
            return Err(KeyringError::BadKeyId { position: 1 });
        }
        let mut key = [0u8; KEY_LEN];
        rand::fill(&mut key);
        Ok(Self {
            keys: vec![KeyEntry {
                id: key_id.to_owned(),
                cipher: cipher_for(key),
            }],
        })
    }

    /// The id of the key that seals.
    pub fn sealing_key_id(&self) -> &str {
        &self.sealing().id
    }

    /// The ids of every key, sealing key first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// Seals `clear` under the sealing key with a fresh random nonce.
    pub fn seal(&self, clear: &[u8]) -> SealedSecret {
        let key = self.sealing();
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let aad = associated_data(&key.id);
        // ChaCha20-Poly1305 only refuses plaintexts longer than 256 GiB, which cannot be held
        // in memory to be passed here.
        let ciphertext = key
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: clear,
                    aad: &aad,
                },
            )
            .expect("plaintext within the ChaCha20-Poly1305 length limit");
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        SealedSecret {
            key_id: key.id.clone(),
            sealed: BASE64.encode(blob),
        }
    }

    /// Opens a sealed secret with the key it names.
    pub fn open(&self, sealed: &SealedSecret) -> Result<Secret, SecretError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| SecretError::UnknownKey(sealed.key_id.clone()))?;
        let blob = BASE64
            .decode(&sealed.sealed)
            .map_err(|_| SecretError::Malformed)?;
        if blob.len() < NONCE_LEN {
            return Err(SecretError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretError::Malformed)?;
        let aad = associated_data(&key.id);
        key.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Secret)
            .map_err(|_| SecretError::Tampered)
    }

    /// Whether `sealed` is already under the sealing key (nothing to rotate).
    pub fn is_current(&self, sealed: &SealedSecret) -> bool {
        sealed.key_id == self.sealing().id
    }

    /// Opens `sealed` with whichever key it names and seals it again under the sealing key.
    pub fn reseal(&self, sealed: &SealedSecret) -> Result<SealedSecret, SecretError> {
        let clear = self.open(sealed)?;
        Ok(self.seal(clear.expose()))
    }

    fn sealing(&self) -> &KeyEntry {
        // Every constructor refuses an empty key list, so the first key always exists.
        &self.keys[0]
    }
}

fn cipher_for(key: [u8; KEY_LEN]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(&Key::from(key))
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn associated_data(key_id: &str) -> Vec<u8> {
    let mut aad = AAD_PREFIX.to_vec();
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_base62(len: usize) -> String {
    (0..len)
        .map(|_| char::from(BASE62[rand::random_range(0..BASE62.len())]))
        .collect()
}

/// Prefix of merchant client keys.
pub const CLIENT_KEY_PREFIX: &str = "ck_";
/// Prefix of merchant client salts.
pub const CLIENT_SALT_PREFIX: &str = "cs_";
/// Prefix of Standard Webhooks secrets.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// A merchant's public API identifier: `ck_` and 24 random base62 characters (~143 bits).
pub fn generate_client_key() -> String {
    format!("{CLIENT_KEY_PREFIX}{}", random_base62(24))
}

/// A merchant's request-signing salt: `cs_` and 43 random base62 characters (~256 bits). The
/// HMAC key is the whole string's UTF-8 bytes, so merchants can paste it as is.
pub fn generate_client_salt() -> Secret {
    Secret::from(format!("{CLIENT_SALT_PREFIX}{}", random_base62(43)))
}

/// A merchant webhook signing secret in the Standard Webhooks format: `whsec_` and base64 of 24
/// random bytes.
pub fn generate_webhook_secret() -> Secret {
    let mut bytes = [0u8; 24];
    rand::fill(&mut bytes);
    Secret::from(format!("{WEBHOOK_SECRET_PREFIX}{}", BASE64.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        BASE64.encode([byte; 32])
    }

    #[test]
    fn seals_and_opens_and_binds_the_key_id() {
        let ring = Keyring::parse(&format!("k2:{},k1:{}", key(2), key(1))).unwrap();
        assert_eq!(ring.sealing_key_id(), "k2");
        let sealed = ring.seal(b"rzp_secret");
        assert_eq!(sealed.key_id, "k2");
        assert_eq!(ring.open(&sealed).unwrap().expose(), b"rzp_secret");

        let relabelled = SealedSecret {
            key_id: "k1".into(),
            ..sealed.clone()
        };
        assert_eq!(ring.open(&relabelled).unwrap_err(), SecretError::Tampered);

        let mut blob = BASE64.decode(&sealed.sealed).unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        let flipped = SealedSecret {
            sealed: BASE64.encode(blob),
            ..sealed.clone()
        };
        assert_eq!(ring.open(&flipped).unwrap_err(), SecretError::Tampered);

        let short = SealedSecret {
            sealed: BASE64.encode([0u8; 5]),
            ..sealed
        };
        assert_eq!(ring.open(&short).unwrap_err(), SecretError::Malformed);
    }

    #[test]
    fn nonces_are_fresh() {
        let ring = Keyring::random("t").unwrap();
        assert_ne!(ring.seal(b"same").sealed, ring.seal(b"same").sealed);
    }

    #[test]
    fn rotation_reseals_under_the_new_key() {
        let old = Keyring::parse(&format!("old:{}", key(1))).unwrap();
        let sealed = old.seal(b"payu-salt");
        let rotated = Keyring::parse(&format!("new:{},old:{}", key(9), key(1))).unwrap();
        assert!(!rotated.is_current(&sealed));
        let resealed = rotated.reseal(&sealed).unwrap();
        assert!(rotated.is_current(&resealed));
        assert_eq!(rotated.open(&resealed).unwrap().expose(), b"payu-salt");
        let only_new = Keyring::parse(&format!("new:{}", key(9))).unwrap();
        assert_eq!(only_new.open(&resealed).unwrap().expose(), b"payu-salt");
        assert_eq!(
            only_new.open(&sealed).unwrap_err(),
            SecretError::UnknownKey("old".into())
        );
    }

    #[test]
    fn refuses_bad_key_lists_without_echoing_keys() {
        assert_eq!(Keyring::parse(" , ").unwrap_err(), KeyringError::Empty);
        assert_eq!(
            Keyring::parse("nocolon").unwrap_err(),
            KeyringError::BadEntry { position: 1 }
        );
        assert_eq!(
            Keyring::parse(&format!("a b:{}", key(1))).unwrap_err(),
            KeyringError::BadKeyId { position: 1 }
        );
        let short = BASE64.encode([7u8; 16]);
        let err = Keyring::parse(&format!("a:{short}")).unwrap_err();
        assert_eq!(err, KeyringError::BadKey { key_id: "a".into() });
        assert!(!err.to_string().contains(&short));
        assert_eq!(
            Keyring::parse(&format!("a:{},a:{}", key(1), key(2))).unwrap_err(),
            KeyringError::DuplicateKeyId("a".into())
        );
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let secret = Secret::from("super-secret-value");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        let ring = Keyring::parse(&format!("k:{}", key(3))).unwrap();
        let shown = format!("{ring:?}");
        assert!(shown.contains("\"k\"") && !shown.contains(&key(3)));
        let sealed = ring.seal(b"x");
        assert!(!format!("{sealed:?}").contains(&sealed.sealed));
    }

    #[test]
    fn dev_keyring_is_labelled() {
        let ring = Keyring::dev_insecure();
        assert_eq!(ring.sealing_key_id(), DEV_INSECURE_KEY_ID);
        let sealed = ring.seal(b"demo");
        assert_eq!(
            Keyring::dev_insecure().open(&sealed).unwrap().expose(),
            b"demo"
        );
    }

    #[test]
    fn generated_identifiers_have_their_documented_shape() {
        let ck = generate_client_key();
        assert!(ck.starts_with("ck_") && ck.len() == 27);
        assert!(ck[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(ck, generate_client_key());

        let salt = generate_client_salt();
        let salt = salt.expose_str().unwrap();
        assert!(salt.starts_with("cs_") && salt.len() == 46);

        let whsec = generate_webhook_secret();
        let whsec = whsec.expose_str().unwrap();
        let decoded = BASE64
            .decode(whsec.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(decoded.len(), 24);
    }
}
