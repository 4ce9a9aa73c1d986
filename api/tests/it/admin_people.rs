//! The people registry over HTTP: invite, list, change a role, remove; bootstrap admins
//! (`ADMIN_EMAILS`) listed but fixed; bad input refused with nothing recorded.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{ADMIN_EMAIL, EventCount, TestApp, problem, spawn_app};

async fn invite(app: &TestApp, email: &str, role: &str) -> (StatusCode, serde_json::Value) {
    let body = json!({ "email": email, "role": role });
    problem(
        app.admin_json(Method::POST, "/admin/people", &body)
            .send()
            .await
            .expect("request"),
    )
    .await
}

async fn people(app: &TestApp) -> serde_json::Value {
    let (status, body) = problem(
        app.admin(Method::GET, "/admin/people")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn an_admin_invites_changes_and_removes_people_and_the_log_holds_each_change() {
    let app = spawn_app().await;
    let (status, body) = invite(&app, " Asha@Example.com ", "ops").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (
            body["email"].as_str(),
            body["role"].as_str(),
            &body["bootstrap_admin"]
        ),
        (Some("asha@example.com"), Some("ops"), &json!(false))
    );
    let (status, _) = invite(&app, "asha@example.com", "ops").await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the same invitation again changes nothing"
    );
    let (status, body) = invite(&app, "asha@example.com", "admin").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("PERSON_EXISTS"))
    );

    let listed = people(&app).await;
    let emails: Vec<_> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|p| {
            (
                p["email"].as_str(),
                p["role"].as_str(),
                p["bootstrap_admin"].as_bool(),
            )
        })
        .collect();
    assert_eq!(
        emails,
        [
            (Some(ADMIN_EMAIL), Some("admin"), Some(true)),
            (Some("asha@example.com"), Some("ops"), Some(false)),
        ]
    );

    let (status, body) = problem(
        app.admin_json(
            Method::PATCH,
            "/admin/people/asha%40example.com",
            &json!({ "role": "auditor" }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body["role"].as_str()),
        (StatusCode::OK, Some("auditor")),
        "{body}"
    );
    let person = app
        .ledger
        .person(&"asha@example.com".parse().expect("email"))
        .await
        .expect("read")
        .expect("a person");
    assert_eq!(person.role, lightspeed_domain::access::Role::Auditor);

    let response = app
        .admin(Method::DELETE, "/admin/people/asha@example.com")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, body) = problem(
        app.admin(Method::DELETE, "/admin/people/asha@example.com")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("PERSON_NOT_FOUND"))
    );
    assert_eq!(people(&app).await.as_array().map(Vec::len), Some(1));

    app.project().await;
    let (_, audit) = problem(
        app.admin(Method::GET, "/admin/audit-log?entity_type=person")
            .send()
            .await
            .expect("request"),
    )
    .await;
    let actions: Vec<_> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| (e["action"].as_str(), e["actor"].as_str()))
        .collect();
    assert!(
        actions.contains(&(Some("PersonInvited"), Some(ADMIN_EMAIL)))
            && actions.contains(&(Some("PersonRoleChanged"), Some(ADMIN_EMAIL)))
            && actions.contains(&(Some("PersonRemoved"), Some(ADMIN_EMAIL))),
        "{audit}"
    );
}

#[tokio::test]
async fn bootstrap_admins_are_fixed_and_bad_input_records_nothing() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    let (status, body) = invite(&app, ADMIN_EMAIL, "auditor").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("BOOTSTRAP_ADMIN"))
    );
    let path = format!("/admin/people/{ADMIN_EMAIL}");
    let (status, body) = problem(
        app.admin_json(Method::PATCH, &path, &json!({ "role": "ops" }))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("BOOTSTRAP_ADMIN"))
    );
    for (email, role, field) in [
        ("not-an-email", "ops", "email"),
        ("a@b@example.com", "ops", "email"),
        ("asha@example.com", "root", "role"),
    ] {
        let (status, body) = invite(&app, email, role).await;
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("INVALID_FIELD"),
                Some(field)
            ),
            "{email} {role}: {body}"
        );
    }
    let (status, body) = problem(
        app.admin_json(
            Method::PATCH,
            "/admin/people/nobody@example.com",
            &json!({ "role": "ops" }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("PERSON_NOT_FOUND"))
    );
    assert_eq!(app.event_count().await, before, "refusals record nothing");
}
