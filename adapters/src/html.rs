//! HTML building blocks of the pages payers see (the hosted checkout and the sandbox PSP's
//! pages): escaping for where a value lands, and the page frame.
//!
//! HTML text and attributes get entity escaping; values inside `<script>` are JSON literals with
//! `<`, `>`, `&` and the JavaScript line separators escaped, so no value can close the script
//! element or break out of its string.

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            other => out.push(other),
        }
    }
    out
}

/// A JSON value as a literal safe to place inside a `<script>` element.
pub fn script_literal(value: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            other => out.push(other),
        }
    }
    out
}

/// A whole page: `title` is escaped here; `body` and `head_extra` are HTML already escaped by
/// the caller.
pub(crate) fn page(title: &str, body: &str, head_extra: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"origin\">\
         <title>{}</title>{head_extra}\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}}\
         button{{font-size:1rem;padding:.6rem 1.4rem;margin:.3rem;cursor:pointer}}</style>\
         </head><body>{body}</body></html>\n",
        escape_html(title)
    )
}

/// A page saying something went wrong, with no detail a payer cannot act on.
pub fn error_page(message: &str) -> String {
    page(
        "Payment",
        &format!("<h1>Payment</h1><p>{}</p>", escape_html(message)),
        "",
    )
}
