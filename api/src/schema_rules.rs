//! The rules the server enforces on strings, stated once for the OpenAPI document, so a field's
//! schema says what the handler or the domain will refuse.

use utoipa::openapi::schema::{SchemaFormat, Type};
use utoipa::openapi::{Object, ObjectBuilder};

/// Text a person typed: not blank, no control characters.
pub(crate) const PRINTABLE_TEXT: &str =
    r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";

/// An absolute http(s) URL with a host and no white space.
const HTTP_URL: &str = r"^https?://[^/?#\s]+[^\s]*$";

/// The longest URL accepted, in characters.
const MAX_URL_CHARS: usize = 2048;

/// An absolute `http(s)` URL of at most 2 048 characters.
pub(crate) fn http_url() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uri".into())))
        .max_length(Some(MAX_URL_CHARS))
        .pattern(Some(HTTP_URL))
        .description(Some("An absolute http(s) URL, at most 2 048 characters"))
        .build()
}

/// The same, or `null`.
pub(crate) fn nullable_http_url() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::Custom("uri".into())))
        .max_length(Some(MAX_URL_CHARS))
        .pattern(Some(HTTP_URL))
        .description(Some(
            "An absolute http(s) URL, at most 2 048 characters; `null` removes it",
        ))
        .build()
}

/// An instant (RFC 3339) or an IST day (`YYYY-MM-DD`).
pub(crate) fn instant_or_day() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .pattern(Some(
            r"^(\d{4}-\d{2}-\d{2}|\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2}))$",
        ))
        .description(Some("An RFC 3339 instant or an IST day (`YYYY-MM-DD`)"))
        .build()
}

/// An IST day (`YYYY-MM-DD`).
pub(crate) fn day() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Date,
        )))
        .pattern(Some(r"^\d{4}-\d{2}-\d{2}$"))
        .build()
}
