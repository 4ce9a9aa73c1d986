//! Serde helpers for the type quirks PSPs have in their JSON.

use std::collections::BTreeMap;

use lightspeed_domain::Paise;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::amount::{AmountError, parse_rupees};

/// A field PSPs send sometimes as a string and sometimes as an integer (`cf_order_id`,
/// `cf_payment_id`, `mihpayid`); kept as the text it denotes.
pub(crate) fn string_or_int<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Int(i64),
    }
    Ok(match Either::deserialize(d)? {
        Either::Text(text) => text,
        Either::Int(n) => n.to_string(),
    })
}

/// Like [`string_or_int`], for optional fields (absent or null).
pub(crate) fn opt_string_or_int<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "string_or_int")] String);
    Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(text)| text))
}

/// A string field where providers send `""` for "none" (Razorpay's `error_code` on cards).
pub(crate) fn non_empty_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.trim().is_empty()))
}

/// Razorpay `notes`: an object of strings, but `[]` when empty (PHP heritage) and sometimes
/// null. Non-string values are kept as their JSON text.
pub(crate) fn notes<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error as _;
    use serde_json::Value;
    match Option::<Value>::deserialize(d)? {
        Some(Value::Object(map)) => Ok(map
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect()),
        Some(Value::Array(_) | Value::Null) | None => Ok(BTreeMap::new()),
        Some(_) => Err(D::Error::custom("notes must be an object or an array")),
    }
}

/// A decimal rupee amount as it appears in the JSON text: a number (`2.00`, `22`) or a string
/// (`"499.00"`). It is read from the literal characters, never through a float, so `2.00` and
/// `0.29` stay exact.
#[derive(Debug, Clone)]
pub(crate) struct RupeeText(Box<RawValue>);

impl<'de> Deserialize<'de> for RupeeText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(RupeeText)
    }
}

impl RupeeText {
    /// The amount in paise.
    pub(crate) fn paise(&self) -> Result<Paise, AmountError> {
        let text = self.0.get().trim();
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        parse_rupees(text.trim())
    }
}

/// A JSON number with exactly two decimals, written from paise (Cashfree's `order_amount`).
pub(crate) fn rupee_number(amount: Paise) -> Result<Box<RawValue>, serde_json::Error> {
    RawValue::from_string(crate::amount::format_rupees(amount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "string_or_int")]
        id: String,
        #[serde(default, deserialize_with = "notes")]
        notes: BTreeMap<String, String>,
        #[serde(default, deserialize_with = "non_empty_string")]
        code: Option<String>,
        amount: RupeeText,
    }

    fn probe(json: &str) -> Probe {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn accepts_each_documented_shape() {
        let p = probe(r#"{"id":"1453002795","notes":[],"code":"","amount":2.00}"#);
        assert_eq!(
            (p.id.as_str(), p.notes.len(), p.code),
            ("1453002795", 0, None)
        );
        assert_eq!(p.amount.paise(), Ok(Paise(200)));

        let p = probe(r#"{"id":1453002795,"notes":{"a":"b","n":5},"code":null,"amount":"499.00"}"#);
        assert_eq!(p.id, "1453002795");
        assert_eq!(p.notes.get("a").map(String::as_str), Some("b"));
        assert_eq!(p.notes.get("n").map(String::as_str), Some("5"));
        assert_eq!(p.amount.paise(), Ok(Paise(49900)));

        let p = probe(r#"{"id":"x","code":"BAD_REQUEST_ERROR","amount":0.29}"#);
        assert_eq!(p.code.as_deref(), Some("BAD_REQUEST_ERROR"));
        assert_eq!(p.amount.paise(), Ok(Paise(29)));
    }

    #[test]
    fn refuses_amounts_a_float_would_blur() {
        assert!(
            probe(r#"{"id":"x","amount":2.001}"#)
                .amount
                .paise()
                .is_err()
        );
        assert!(probe(r#"{"id":"x","amount":2e2}"#).amount.paise().is_err());
        assert!(
            probe(r#"{"id":"x","amount":-2.00}"#)
                .amount
                .paise()
                .is_err()
        );
    }

    #[test]
    fn writes_two_decimals() {
        assert_eq!(rupee_number(Paise(1034)).unwrap().get(), "10.34");
        assert_eq!(rupee_number(Paise(200)).unwrap().get(), "2.00");
    }
}
