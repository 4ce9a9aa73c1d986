//! Problem documents for the errors no handler wrote: the router's 405, axum's extractor
//! rejections (a body over the limit, a path that does not parse) and the timeout's 503 leave
//! with an empty or plain-text body; this layer gives each the `application/problem+json` body
//! and stable `code` every other error has. Pages a person's browser asked for (HTML) and
//! documents that are already JSON pass untouched.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Most of a plain-text error body kept as the problem's `detail`.
const MAX_DETAIL_BYTES: usize = 1024;

/// Answers `request`, replacing a bare error answer with its problem document.
pub(crate) async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || has_document(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = plain_text(body)
        .await
        .unwrap_or_else(|| default_detail(status));
    let mut problem = ApiError::Refused { status, detail }.into_response();
    // Keep what the router said besides the body (e.g. `Allow` on a 405).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    problem
}

/// Whether the answer already has a body of its own kind: a problem, JSON, or an HTML page.
fn has_document(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .is_some_and(|kind| {
            kind.starts_with("application/problem+json")
                || kind.starts_with("application/json")
                || kind.starts_with("text/html")
        })
}

/// The body's text, when it is short text worth showing.
async fn plain_text(body: Body) -> Option<String> {
    let bytes = to_bytes(body, MAX_DETAIL_BYTES).await.ok()?;
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn default_detail(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "no such route".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => {
            "this route does not answer this method; the Allow header lists those it does"
                .to_owned()
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            "the request did not complete in time; try again".to_owned()
        }
        other => other.canonical_reason().unwrap_or("error").to_owned(),
    }
}
