//! Text a caller sends that PostgreSQL (and so the log) cannot store: a NUL character, or
//! bytes that are not UTF-8. Such text is refused up front as `422 INVALID_TEXT`, naming where
//! it was, instead of failing in the database as a 500. Also bounds the request id a caller may
//! choose, since it is kept in every event the request appends.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The header carrying the request id.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest request id a caller may choose; a longer or unprintable one is replaced.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// Refuses a request whose path or query string decodes to unstorable text.
pub(crate) async fn guard_request_text(request: Request, next: Next) -> Response {
    if let Err(refusal) = check_uri(request.uri()) {
        return refusal.into_response();
    }
    next.run(request).await
}

/// Drops a caller's request id that is too long or not printable ASCII, so a fresh one is
/// made (runs before the layer that makes them).
pub(crate) async fn drop_unfit_request_id(mut request: Request, next: Next) -> Response {
    let unfit = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .is_some_and(|id| !fit_request_id(id));
    if unfit {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(request).await
}

fn fit_request_id(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_CHARS
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn check_uri(uri: &axum::http::Uri) -> Result<(), ApiError> {
    for segment in uri.path().split('/') {
        storable(&percent_decode(segment, false)).map_err(|detail| ApiError::InvalidText {
            field: "path".into(),
            detail,
        })?;
    }
    for pair in uri.query().unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name_bytes = percent_decode(name, true);
        let field = String::from_utf8_lossy(&name_bytes).replace('\0', "\u{fffd}");
        storable(&name_bytes)
            .and_then(|()| storable(&percent_decode(value, true)))
            .map_err(|detail| ApiError::InvalidText { field, detail })?;
    }
    Ok(())
}

/// Why `bytes` cannot be stored as text, if they cannot.
fn storable(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("is not UTF-8 (invalid byte at offset {})", e.valid_up_to()))?;
    if text.contains('\0') {
        return Err("must not contain a NUL character (U+0000)".into());
    }
    Ok(())
}

/// `%XX` escapes decoded to bytes (and `+` to a space in a query); a malformed escape is kept
/// as it is, as the query parser does.
fn percent_decode(text: &str, plus_is_space: bool) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let escaped = (byte == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(if plus_is_space && byte == b'+' {
                    b' '
                } else {
                    byte
                });
                i += 1;
            }
        }
    }
    out
}

/// Refuses a JSON body holding text the log cannot store: bytes that are not UTF-8, or a
/// `\u0000` escape in any string or key (named by its path, e.g. `notes.cart`).
pub(crate) fn check_json_text(body: &[u8]) -> Result<(), ApiError> {
    if let Err(e) = std::str::from_utf8(body) {
        return Err(ApiError::InvalidText {
            field: "body".into(),
            detail: format!("is not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
        });
    }
    if !has_nul_escape(body) {
        return Ok(());
    }
    // Rare: find where the NUL is, to name the field.
    let field = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| nul_path(&value, String::new()))
        .unwrap_or_else(|| "body".into());
    Err(ApiError::InvalidText {
        field,
        detail: "must not contain a NUL character (U+0000)".into(),
    })
}

/// Whether the JSON text has a `\u0000` escape (an odd run of backslashes before `u0000`).
fn has_nul_escape(body: &[u8]) -> bool {
    body.windows(5).enumerate().any(|(at, window)| {
        window == b"u0000" && body[..at].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1
    })
}

/// The path of the first string or key holding a NUL.
fn nul_path(value: &serde_json::Value, at: String) -> Option<String> {
    let join = |key: &str| {
        if at.is_empty() {
            key.to_owned()
        } else {
            format!("{at}.{key}")
        }
    };
    match value {
        serde_json::Value::String(text) => text.contains('\0').then(|| at.clone()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, format!("{at}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(&key.replace('\0', "\u{fffd}")))
            } else {
                nul_path(item, join(key))
            }
        }),
        _ => None,
    }
    .map(|path| if path.is_empty() { "body".into() } else { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_are_told_from_escaped_backslashes() {
        assert!(has_nul_escape(br#"{"a":"x\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a":"x\\u0000"}"#));
        assert!(has_nul_escape(br#"{"a":"x\\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a":"u0000"}"#));
    }

    #[test]
    fn the_field_holding_a_nul_is_named() {
        let refused = check_json_text(br#"{"notes":{"cart":"a\u0000"}}"#);
        assert!(
            matches!(refused, Err(ApiError::InvalidText { field, .. }) if field == "notes.cart")
        );
        let refused = check_json_text(br#"{"list":["ok","\u0000"]}"#);
        assert!(matches!(refused, Err(ApiError::InvalidText { field, .. }) if field == "list[1]"));
        assert!(check_json_text(br#"{"a":"\\u0000"}"#).is_ok());
        assert!(check_json_text(b"{\"a\":\"\xff\"}").is_err());
    }

    #[test]
    fn uris_with_nul_or_broken_utf8_are_refused() {
        let uri = |text: &str| text.parse::<axum::http::Uri>().expect("uri");
        assert!(check_uri(&uri("/admin/merchants?q=%00")).is_err());
        assert!(check_uri(&uri("/admin/merchants?q=%FF")).is_err());
        assert!(check_uri(&uri("/webhook/%00/x")).is_err());
        assert!(check_uri(&uri("/admin/merchants?q=caf%C3%A9+au+lait&page=1")).is_ok());
        assert!(check_uri(&uri("/admin/merchants?q=100%")).is_ok());
    }
}
