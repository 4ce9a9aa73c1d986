//! `GET /live/{topics}`: the hub's items as JSON Server-Sent Events, for tools, tests and the
//! benchmark (the console mounts its own HTML streams with [`crate::sse_response`]).
//! `{topics}` is a comma-separated list of [`Topic`] names; `?after=<id>` resumes like a
//! `Last-Event-ID` header, which wins when both are given.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::hub::Hub;
use crate::item::Topic;
use crate::sse::{Renderer, SseOptions, resume_point, sse_response};

/// Decides whether a request may follow the hub: the refusal to answer instead, or `None` to
/// let it through.
pub type Guard = dyn Fn(&HeaderMap) -> Option<Response> + Send + Sync;

#[derive(Clone)]
struct LiveRoutes {
    hub: Hub,
    guard: Arc<Guard>,
    json: Renderer,
}

#[derive(Debug, Deserialize)]
struct Resume {
    after: Option<String>,
}

/// The `/live/{topics}` route over `hub`, each request first let through by `guard` (the
/// caller's authentication: the items name merchants and amounts).
pub fn routes(
    hub: Hub,
    guard: impl Fn(&HeaderMap) -> Option<Response> + Send + Sync + 'static,
) -> Router {
    let state = LiveRoutes {
        hub,
        guard: Arc::new(guard),
        json: Renderer::json(),
    };
    Router::new()
        .route("/live/{topics}", get(follow))
        .with_state(state)
}

async fn follow(
    State(live): State<LiveRoutes>,
    Path(topics): Path<String>,
    Query(resume): Query<Resume>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = (live.guard)(&headers) {
        return refusal;
    }
    let Some(topics) = parse_topics(&topics) else {
        return unknown_topic();
    };
    let after = resume_point(&headers, resume.after.as_deref());
    let stream = live.hub.subscribe(&topics, after.as_deref());
    sse_response(stream, live.json.clone(), SseOptions::default())
}

/// The topics a comma-separated list names; `None` when one is unknown or the list is empty.
pub fn parse_topics(list: &str) -> Option<Vec<Topic>> {
    let topics: Option<Vec<Topic>> = list.split(',').map(Topic::parse).collect();
    topics.filter(|t| !t.is_empty())
}

fn unknown_topic() -> Response {
    let names: Vec<&str> = Topic::ALL.iter().map(|t| t.as_str()).collect();
    let problem = serde_json::json!({
        "type": "about:blank",
        "title": "Unknown topic",
        "status": 404,
        "code": "UNKNOWN_TOPIC",
        "detail": format!("topics are a comma-separated list of: {}", names.join(", ")),
    });
    let mut response = (StatusCode::NOT_FOUND, Json(problem)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    response
}
