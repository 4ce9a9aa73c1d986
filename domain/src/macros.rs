//! `event_enum!`: declares an aggregate's event enum from one list of variants, so the serde
//! shape, the stored type names and the catalogue of type names can never disagree.

/// Declares an event enum: struct-like variants, each with an `at` field (the instant the fact
/// was decided at).
///
/// Generates the enum with `#[serde(tag = "type", content = "data")]`, its [`DomainEvent`]
/// impl (the type name is the variant name, schema version 1), `EVENT_TYPES` (every type name,
/// in declaration order) and `at()`.
///
/// [`DomainEvent`]: crate::DomainEvent
macro_rules! event_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident {
                    $( $(#[$field_meta:meta])* $field:ident : $ty:ty ),* $(,)?
                }
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum $name {
            $(
                $(#[$variant_meta])*
                $variant {
                    $( $(#[$field_meta])* $field : $ty ),*
                }
            ),*
        }

        impl $name {
            /// Every event type name this enum records, in declaration order.
            pub const EVENT_TYPES: &'static [&'static str] = &[$(stringify!($variant)),*];

            /// The instant the fact was decided at.
            pub fn at(&self) -> ::chrono::DateTime<::chrono::Utc> {
                match self {
                    $( Self::$variant { at, .. } => *at ),*
                }
            }
        }

        impl $crate::decider::DomainEvent for $name {
            fn event_type(&self) -> &'static str {
                match self {
                    $( Self::$variant { .. } => stringify!($variant) ),*
                }
            }
        }
    };
}
