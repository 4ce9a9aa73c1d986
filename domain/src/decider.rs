//! The decider pattern: `decide(state, command) -> events`, `evolve(state, event) -> state`.
//!
//! Storage calls these and nothing else; a decider never performs I/O, so the same code runs in
//! the request path, in replays and in audits.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::de::value::MapDeserializer;
use serde_json::value::RawValue;

/// A past-tense fact recorded by an aggregate.
///
/// Event enums use `#[serde(tag = "type", content = "data")]`: the tag is the stored event type
/// and the content is the stored payload, so [`encode`] and [`decode`] can split and join them.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Stable type name stored beside the payload, e.g. `"PaymentSucceeded"`.
    fn event_type(&self) -> &'static str;

    /// Version of this event type's payload shape; bump it when the shape changes.
    fn schema_version(&self) -> u16 {
        1
    }

    /// Rewrites a stored payload of an older `schema_version` into the current shape.
    ///
    /// Stored events are never rewritten; old shapes are upcast on read. The default accepts
    /// every payload as it is, borrowed: the current shape, by far the most read, then decodes
    /// without a copy.
    fn upcast<'p>(
        event_type: &str,
        schema_version: u16,
        payload: &'p serde_json::Value,
    ) -> Result<Cow<'p, serde_json::Value>, UpcastError> {
        let _ = (event_type, schema_version);
        Ok(Cow::Borrowed(payload))
    }
}

/// A stored payload that cannot be turned into the current event shape.
#[derive(Debug, thiserror::Error)]
pub enum UpcastError {
    /// No upcaster knows this version of this event type.
    #[error("no upcaster for {event_type} schema version {schema_version}")]
    UnknownVersion {
        /// The stored event type.
        event_type: String,
        /// The stored schema version.
        schema_version: u16,
    },
    /// The payload does not match the shape its type and version promise.
    #[error("malformed {event_type} payload: {source}")]
    Malformed {
        /// The stored event type.
        event_type: String,
        /// What serde reported.
        source: serde_json::Error,
    },
}

/// The business rules of one aggregate (one kind of event stream).
pub trait Decider {
    /// Stream category, a NATS subject token (`[a-z][a-z0-9_]*`), e.g. `"payment"`.
    const CATEGORY: &'static str;
    /// The shape of [`Self::State`] in snapshots, for deciders whose streams grow without bound
    /// (a gateway's bookings, a wallet's commissions), with [`Self::snapshot`] and
    /// [`Self::restore`]; `None` (the default) takes none. Bump it whenever `State` or `evolve`
    /// changes, so snapshots of the old shape are ignored.
    const SNAPSHOT_VERSION: Option<u32> = None;
    /// What the rules need to remember about one stream; `Default` is the state of a new stream.
    type State: Default + Clone + Send + Sync + 'static;
    /// What a caller asks for.
    type Command: Send + Sync;
    /// What the stream records.
    type Event: DomainEvent;
    /// Why a command is refused.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides which events a command produces in a given state, or why it is refused.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one recorded event to the state.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// The state as a snapshot, for deciders with a [`Self::SNAPSHOT_VERSION`].
    fn snapshot(_state: &Self::State) -> Option<serde_json::Value> {
        None
    }

    /// The state a snapshot of shape [`Self::SNAPSHOT_VERSION`] holds; `None` if it does not
    /// read as one.
    fn restore(_snapshot: serde_json::Value) -> Option<Self::State> {
        None
    }

    /// Folds a sequence of events over the initial state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State {
        events
            .into_iter()
            .fold(Self::State::default(), |state, event| {
                Self::evolve(state, event)
            })
    }
}

/// Splits an event into its stored type name, schema version and payload.
pub fn encode<E: DomainEvent>(
    event: &E,
) -> Result<(&'static str, u16, serde_json::Value), serde_json::Error> {
    let mut tagged = serde_json::to_value(event)?;
    let payload = tagged
        .get_mut("data")
        .map(serde_json::Value::take)
        .unwrap_or(serde_json::Value::Null);
    Ok((event.event_type(), event.schema_version(), payload))
}

/// Joins a stored type name, schema version and payload back into an event, upcasting old shapes.
pub fn decode<E: DomainEvent>(
    event_type: &str,
    schema_version: u16,
    payload: &serde_json::Value,
) -> Result<E, UpcastError> {
    let payload = E::upcast(event_type, schema_version, payload)?;
    // The tag handed over before the payload, so serde reads the payload straight into its
    // variant; a `{"type", "data"}` object yields "data" first (its keys are sorted), which serde
    // must buffer whole before it knows the variant.
    let tag = serde_json::Value::String(event_type.to_owned());
    let tagged = MapDeserializer::new([("type", &tag), ("data", payload.as_ref())].into_iter());
    E::deserialize(tagged).map_err(|source| UpcastError::Malformed {
        event_type: event_type.to_owned(),
        source,
    })
}

/// [`decode`] from the payload's JSON text: a payload of the current shape is read straight
/// into the event, with no JSON tree built first; an older shape (the decoded event names
/// another schema version) or a payload that does not read goes through [`decode`].
pub fn decode_raw<E: DomainEvent>(
    event_type: &str,
    schema_version: u16,
    payload: &RawValue,
) -> Result<E, UpcastError> {
    let direct = serde_json::to_string(event_type)
        .and_then(RawValue::from_string)
        .and_then(|tag| {
            let tagged = MapDeserializer::<_, serde_json::Error>::new(
                [("type", &*tag), ("data", payload)].into_iter(),
            );
            E::deserialize(tagged)
        });
    match direct {
        Ok(event) if event.schema_version() == schema_version => Ok(event),
        _ => {
            let payload =
                serde_json::from_str(payload.get()).map_err(|source| UpcastError::Malformed {
                    event_type: event_type.to_owned(),
                    source,
                })?;
            decode(event_type, schema_version, &payload)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event whose payload shape changed: version 1 stored `rupees`, version 2 stores `paise`.
    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum Reshaped {
        Charged { paise: i64 },
    }

    impl DomainEvent for Reshaped {
        fn event_type(&self) -> &'static str {
            "Charged"
        }

        fn schema_version(&self) -> u16 {
            2
        }

        fn upcast<'p>(
            event_type: &str,
            schema_version: u16,
            payload: &'p serde_json::Value,
        ) -> Result<Cow<'p, serde_json::Value>, UpcastError> {
            match schema_version {
                2 => Ok(Cow::Borrowed(payload)),
                1 => Ok(Cow::Owned(serde_json::json!({
                    "paise": payload["rupees"].as_i64().unwrap_or_default() * 100
                }))),
                _ => Err(UpcastError::UnknownVersion {
                    event_type: event_type.to_owned(),
                    schema_version,
                }),
            }
        }
    }

    fn text(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).expect("JSON")
    }

    #[test]
    fn raw_payloads_of_an_older_shape_are_upcast() {
        let current = decode_raw::<Reshaped>("Charged", 2, &text(r#"{"paise": 250}"#));
        assert_eq!(current.ok(), Some(Reshaped::Charged { paise: 250 }));
        let older = decode_raw::<Reshaped>("Charged", 1, &text(r#"{"rupees": 3}"#));
        assert_eq!(older.ok(), Some(Reshaped::Charged { paise: 300 }));
        // A version 1 payload that happens to read as version 2 is still upcast.
        let lookalike = decode_raw::<Reshaped>("Charged", 1, &text(r#"{"paise": 9, "rupees": 3}"#));
        assert_eq!(lookalike.ok(), Some(Reshaped::Charged { paise: 300 }));
        let unknown = decode_raw::<Reshaped>("Charged", 7, &text(r#"{"paise": 1}"#));
        assert!(matches!(unknown, Err(UpcastError::UnknownVersion { .. })));
    }
}
