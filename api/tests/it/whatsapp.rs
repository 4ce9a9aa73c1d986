//! `POST /admin/whatsapp/{id}/resend` and what the merchant's usage then reads.

use lightspeed_domain::NotificationId;
use lightspeed_domain::notification::{NotificationCommand, NotificationType, QueueNotification};
use lightspeed_domain::retry::Jitter;
use lightspeed_eventstore::CommandContext;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{ADMIN_EMAIL, EventCount, TestApp, TestMerchant, problem, spawn_app};

/// A `TXN_UPDATE` the provider refused for good, so it failed on its first attempt.
async fn failed_notification(app: &TestApp, merchant: &TestMerchant) -> NotificationId {
    let id = NotificationId::new();
    app.ledger
        .queue_notification(
            QueueNotification {
                notification_id: id,
                merchant_id: merchant.id,
                kind: NotificationType::TxnUpdate,
                template: "txn_update".into(),
                recipient: "919867800451".into(),
                params: vec!["ORD-1".into()],
                at: app.ledger.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("queue");
    record(
        app,
        id,
        NotificationCommand::RecordAttemptFailed {
            error_code: "131026".into(),
            error_message: "Message undeliverable".into(),
            retryable: false,
            rate_limited: false,
            retry_after_secs: None,
            jitter: Jitter::NONE,
            at: app.ledger.now(),
        },
    )
    .await;
    id
}

async fn record(app: &TestApp, id: NotificationId, command: NotificationCommand) {
    let stream =
        lightspeed_eventstore::stream_of::<lightspeed_domain::Notification>(id).expect("stream");
    app.ledger
        .notifications()
        .execute(&stream, &command, &CommandContext::default())
        .await
        .expect("record");
}

async fn resend(app: &TestApp, id: &str) -> reqwest::Response {
    app.admin(Method::POST, &format!("/admin/whatsapp/{id}/resend"))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_failed_notification_is_resent_once_by_an_admin() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let id = failed_notification(&app, &merchant).await;

    let response = resend(&app, &id.to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["notification_id"], id.to_string());
    assert_eq!(body["notification_type"], "TXN_UPDATE");
    assert_eq!(body["status"], "queued");
    assert_eq!(
        (body["attempts"].as_u64(), body["attempt_limit"].as_u64()),
        (Some(0), Some(4))
    );

    let actor: String = sqlx::query_scalar(
        "SELECT metadata->>'actor' FROM ledger.events WHERE event_type = 'NotificationRequeued'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("actor");
    assert_eq!(actor, format!("admin:{ADMIN_EMAIL}"));

    // Queued again, it is not resendable until it fails again.
    let (status, problem_body) = problem(resend(&app, &id.to_string()).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem_body}");
    assert_eq!(problem_body["code"], "NOTIFICATION_NOT_RESENDABLE");

    // Sent on its next attempt: the usage the merchant reads counts it, and the earlier failure.
    record(
        &app,
        id,
        NotificationCommand::RecordSent {
            provider_message_id: "wamid.resent".into(),
            at: app.ledger.now(),
        },
    )
    .await;
    let (status, problem_body) = problem(resend(&app, &id.to_string()).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        problem_body["detail"],
        "notification is sent; only a failed one can be resent"
    );
    app.project().await;
    let usage = app
        .signed(&merchant, Method::GET, "/merchant/whatsapp/usage", b"")
        .send()
        .await
        .expect("request");
    assert_eq!(usage.status(), StatusCode::OK);
    let usage: Value = usage.json().await.expect("json");
    let day = &usage[0];
    assert_eq!(
        (
            day["template"].as_str(),
            day["queued"].as_i64(),
            day["sent"].as_i64(),
            day["failed"].as_i64()
        ),
        (Some("txn_update"), Some(2), Some(1), Some(1)),
        "{usage}"
    );
}

#[tokio::test]
async fn resending_an_unknown_notification_is_a_404_and_needs_an_admin() {
    let app = spawn_app().await;
    for id in [NotificationId::new().to_string(), "not-an-id".to_owned()] {
        let (status, body) = problem(resend(&app, &id).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(body["code"], "NOTIFICATION_NOT_FOUND");
    }
    let anonymous = app
        .http
        .post(format!(
            "{}/admin/whatsapp/{}/resend",
            app.url,
            NotificationId::new()
        ))
        .send()
        .await
        .expect("request");
    let (status, body) = problem(anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "ADMIN_TOKEN_MISSING");
    assert_eq!(app.event_count().await, 0);
}
