//! Roles on the admin API: every change an admin route makes names the action it needs, each
//! role is refused (403 `ROLE_FORBIDDEN`) outside its role and let in inside it, a lowered role
//! or a removal holds from the next request, and a revoked token is refused at once, also by
//! another replica's ledger.

use std::sync::Arc;

use lightspeed_api::admin::access::{ROUTE_ACTIONS, Requirement, requirement};
use lightspeed_api::admin_auth::AdminAuthConfig;
use lightspeed_domain::access::{ROLES, Role};
use lightspeed_domain::person::PersonEmail;
use lightspeed_eventstore::PgEventStore;
use lightspeed_services::Ledger;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{ADMIN_EMAIL, ADMIN_SECRET, EventCount, TestApp, problem, spawn_app};

/// Every documented admin change: its method and route template.
fn admin_changes() -> Vec<(Method, String)> {
    let mut changes = Vec::new();
    for (template, item) in lightspeed_api::openapi().paths.paths {
        if !template.starts_with("/admin/") {
            continue;
        }
        for (method, documented) in [
            (Method::POST, item.post.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::PATCH, item.patch.is_some()),
            (Method::DELETE, item.delete.is_some()),
        ] {
            if documented {
                changes.push((method, template.clone()));
            }
        }
    }
    changes
}

fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                "0190f0c2-0000-7000-8000-000000000000"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_admin_change_names_the_action_it_needs_and_the_table_names_no_other_route() {
    let changes = admin_changes();
    assert!(changes.len() >= 25, "{} admin changes", changes.len());
    let unlisted: Vec<_> = changes
        .iter()
        .filter(|(method, template)| requirement(method, template) == Requirement::Unlisted)
        .collect();
    assert!(
        unlisted.is_empty(),
        "admin changes with no action: {unlisted:?}"
    );
    for (method, template, _) in ROUTE_ACTIONS {
        assert!(
            changes
                .iter()
                .any(|(m, t)| m.as_str() == *method && t == template),
            "{method} {template} is in the table but not a documented route"
        );
    }
    assert_eq!(
        requirement(&Method::GET, "/admin/people"),
        Requirement::Read
    );
    assert_eq!(
        requirement(&Method::POST, "/admin/not-in-the-table"),
        Requirement::Unlisted
    );
}

async fn invite(app: &TestApp, email: &str, role: Role) {
    let response = app
        .admin_json(
            Method::POST,
            "/admin/people",
            &json!({ "email": email, "role": role.as_str() }),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn as_token(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: &serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let mut request = app
        .http
        .request(method.clone(), format!("{}{path}", app.url))
        .bearer_auth(token);
    if method != Method::GET && method != Method::DELETE {
        request = request.json(body);
    }
    problem(request.send().await.expect("request")).await
}

#[tokio::test]
async fn each_role_is_refused_outside_its_role_and_let_in_inside_it() {
    let app = spawn_app().await;
    let mut tokens = Vec::new();
    for role in ROLES {
        let email = format!("{}-person@example.com", role.as_str());
        invite(&app, &email, role).await;
        tokens.push((role, app.role_token(&email, role)));
    }
    for (role, token) in &tokens {
        let (status, body) =
            as_token(&app, token, Method::GET, "/admin/people", &json!(null)).await;
        assert_eq!(status, StatusCode::OK, "{role} reads: {body}");
    }
    for (method, template) in admin_changes() {
        let Requirement::Change(action) = requirement(&method, &template) else {
            panic!("{method} {template} has no action");
        };
        let path = concrete(&template);
        for (role, token) in &tokens {
            let before = app.event_count().await;
            let (status, body) = as_token(&app, token, method.clone(), &path, &json!({})).await;
            let forbidden =
                (status, body["code"].as_str()) == (StatusCode::FORBIDDEN, Some("ROLE_FORBIDDEN"));
            if role.permits(action) {
                assert!(
                    !forbidden && status != StatusCode::UNAUTHORIZED,
                    "{role} may {action}: {method} {template} answered {status} {body}"
                );
            } else {
                assert!(
                    forbidden,
                    "{role} may not {action}: {method} {template} answered {status} {body}"
                );
                assert_eq!(body["status"], 403);
                assert_eq!(app.event_count().await, before, "a refusal records nothing");
            }
        }
    }
}

#[tokio::test]
async fn a_lowered_role_a_revoked_token_and_a_removal_hold_from_the_next_request() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway, _) = app.sandbox_gateway(&merchant, 1, None).await;
    invite(&app, "asha@example.com", Role::Ops).await;
    let token = app.role_token("asha@example.com", Role::Admin);
    let toggle = format!("/admin/gateways/{gateway}/toggle");
    let off = json!({ "enabled": false });
    let (status, body) = as_token(&app, &token, Method::PATCH, &toggle, &off).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an admin token of an ops person toggles: {body}"
    );
    let (status, body) = as_token(&app, &token, Method::POST, "/admin/merchants", &json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("ROLE_FORBIDDEN")),
        "limited to the person's role: {body}"
    );

    let response = app
        .admin_json(
            Method::PATCH,
            "/admin/people/asha@example.com",
            &json!({ "role": "auditor" }),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = as_token(
        &app,
        &token,
        Method::PATCH,
        &toggle,
        &json!({ "enabled": true }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("ROLE_FORBIDDEN")),
        "the lowered role holds at once: {body}"
    );

    // Another replica: its own ledger and caches over the same log, warmed before the revocation.
    let replica = Ledger::new(PgEventStore::new(
        app.db.pool.clone(),
        Arc::new(app.clock.clone()),
    ));
    let email: PersonEmail = "asha@example.com".parse().expect("email");
    let config = AdminAuthConfig::new(ADMIN_SECRET, [ADMIN_EMAIL]).expect("config");
    let claims = config.decode(&token).expect("our token");
    let warmed = replica
        .person(&email)
        .await
        .expect("read")
        .expect("a person");
    assert!(warmed.accepts_token(&claims.token_id, claims.issued_at));

    let (status, body) = as_token(
        &app,
        &app.admin_token(),
        Method::POST,
        "/admin/tokens/revoke",
        &json!({ "token": token }),
    )
    .await;
    assert_eq!(
        (status, body["token_id"].as_str()),
        (StatusCode::OK, Some(claims.token_id.as_str())),
        "{body}"
    );
    let (status, body) = as_token(&app, &token, Method::GET, "/admin/people", &json!(null)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("ADMIN_TOKEN_REVOKED")),
        "{body}"
    );
    let seen = replica
        .person(&email)
        .await
        .expect("read")
        .expect("a person");
    assert!(
        !seen.accepts_token(&claims.token_id, claims.issued_at),
        "the other replica refuses it on its next read"
    );

    let other = app.role_token("asha@example.com", Role::Auditor);
    let (status, _) = as_token(&app, &other, Method::GET, "/admin/people", &json!(null)).await;
    assert_eq!(status, StatusCode::OK, "another token still opens");
    let response = app
        .admin(Method::DELETE, "/admin/people/asha@example.com")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, body) = as_token(&app, &other, Method::GET, "/admin/people", &json!(null)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("ADMIN_FORBIDDEN")),
        "a removed person is refused: {body}"
    );
}

#[tokio::test]
async fn changes_by_any_role_carry_the_persons_email_in_the_audit_log() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway, _) = app.sandbox_gateway(&merchant, 1, None).await;
    invite(&app, "ravi@example.com", Role::Ops).await;
    let token = app.role_token("ravi@example.com", Role::Ops);
    let (status, body) = as_token(
        &app,
        &token,
        Method::PATCH,
        &format!("/admin/gateways/{gateway}/toggle"),
        &json!({ "enabled": false }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.project().await;
    let (_, audit) = as_token(
        &app,
        &token,
        Method::GET,
        "/admin/audit-log?entity_type=gateway",
        &json!(null),
    )
    .await;
    let toggled = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["action"] == "GatewayToggled")
        .cloned()
        .unwrap_or_default();
    assert_eq!(toggled["actor"], "ravi@example.com", "{audit}");
}

#[tokio::test]
async fn revoking_every_token_of_a_person_refuses_those_issued_before() {
    let app = spawn_app().await;
    invite(&app, "meera@example.com", Role::Finance).await;
    let token = app.role_token("meera@example.com", Role::Finance);
    let (status, body) = as_token(
        &app,
        &app.admin_token(),
        Method::POST,
        "/admin/tokens/revoke",
        &json!({ "email": "meera@example.com" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = as_token(&app, &token, Method::GET, "/admin/people", &json!(null)).await;
    assert_eq!(body["code"], "ADMIN_TOKEN_REVOKED", "{status} {body}");
    app.clock.advance(chrono::TimeDelta::seconds(2));
    let fresh = app.role_token("meera@example.com", Role::Finance);
    let (status, _) = as_token(&app, &fresh, Method::GET, "/admin/people", &json!(null)).await;
    assert_eq!(status, StatusCode::OK, "a token minted after opens");
    for body in [
        json!({}),
        json!({ "token": "x", "email": "meera@example.com" }),
    ] {
        let (status, problem) = as_token(
            &app,
            &app.admin_token(),
            Method::POST,
            "/admin/tokens/revoke",
            &body,
        )
        .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("INVALID_FIELD")),
            "{body}"
        );
    }
}
