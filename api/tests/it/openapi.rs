//! The OpenAPI document: committed and current, and listing exactly the routes the router
//! serves, with exactly their methods.
//!
//! `UPDATE_OPENAPI=1 cargo test -p lightspeed-api --test it openapi` rewrites `api/openapi.json`.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use utoipa::openapi::PathItem;

use crate::common::{problem, spawn_app};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn the_committed_document_is_the_one_the_code_generates() {
    let generated = lightspeed_api::openapi_document();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).expect("write api/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "api/openapi.json is out of date; regenerate it with \
         `UPDATE_OPENAPI=1 cargo test -p lightspeed-api --test it openapi` and commit it"
    );
}

fn methods(item: &PathItem) -> Vec<Method> {
    [
        (Method::GET, item.get.is_some()),
        (Method::POST, item.post.is_some()),
        (Method::PUT, item.put.is_some()),
        (Method::PATCH, item.patch.is_some()),
        (Method::DELETE, item.delete.is_some()),
    ]
    .into_iter()
    .filter_map(|(method, documented)| documented.then_some(method))
    .collect()
}

/// A concrete path for a template: every `{param}` becomes a syntactically valid id.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "0190f0c2-0000-7000-8000-000000000000"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The path templates the router matches, from its debug rendering (axum has no other way to
/// list them): every quoted string starting with `/` in the path router (the fallback router
/// that follows it holds only the fallback).
fn router_paths(router: &axum::Router) -> BTreeSet<String> {
    let rendered = format!("{router:?}");
    let (path_router, _) = rendered
        .split_once("fallback_router")
        .expect("a router renders its path router before its fallback router");
    path_router
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_and_methods_the_router_serves() {
    let app = spawn_app().await;
    let document = lightspeed_api::openapi();
    let documented: BTreeSet<String> = document.paths.paths.keys().cloned().collect();

    let state = lightspeed_api::AppState::new(
        app.ledger.clone(),
        app.keyring.clone(),
        lightspeed_api::ApiConfig::new(app.url.clone()),
        None,
    );
    let served = router_paths(&lightspeed_api::app(state, axum::Router::new()));
    assert_eq!(served, documented, "router paths vs documented paths");
    for expected in [
        "/admin/merchants",
        "/admin/queues/{name}/{action}",
        "/health/ready",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(documented.contains(expected), "{expected} is documented");
    }

    for (template, item) in &document.paths.paths {
        let path = concrete(template);
        let documented_methods = methods(item);
        assert!(
            !documented_methods.is_empty(),
            "{template} has an operation"
        );
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let response = app
                .http
                .request(method.clone(), format!("{}{path}", app.url))
                .send()
                .await
                .expect("request");
            let status = response.status();
            let (_, body) = problem(response).await;
            if documented_methods.contains(&method) {
                assert_ne!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {template} is documented and served"
                );
                assert_ne!(
                    body["code"], "NOT_FOUND",
                    "{method} {template} reaches a handler"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {template} is not documented, so it is not served"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_served_document_is_the_committed_one_and_the_docs_page_renders_it() {
    let app = spawn_app().await;
    let served = app
        .http
        .get(format!("{}/openapi.json", app.url))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    assert_eq!(served, lightspeed_api::openapi_document());
    let docs = app
        .http
        .get(format!("{}/docs", app.url))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("html");
    assert!(docs.contains("/openapi.json"));
}
