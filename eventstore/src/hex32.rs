//! Serde for 32-byte hashes as lowercase hex strings.

use serde::{Deserialize, Deserializer, Serializer};

/// Writes the hash as 64 hex digits.
pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// Reads 64 hex digits.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.as_bytes(), &mut out).map_err(serde::de::Error::custom)?;
    Ok(out)
}
