//! The merchant webhook sender: signed Standard Webhooks, retries on the domain's schedule,
//! resend, and the endpoint disabled after failing for five days.

use std::time::Duration;

use lightspeed_adapters::merchant_webhook::{HEADER_ID, WebhookSecret, verify};
use lightspeed_adapters::secrets::generate_webhook_secret;
use lightspeed_domain::merchant::{DEFAULT_WEBHOOK_SECRET_GRACE_SECS, MerchantCommand};
use lightspeed_domain::webhook_delivery::{WebhookDeliveryEvent, WebhookDeliveryStatus};
use lightspeed_domain::{Merchant, WebhookDelivery, WebhookDeliveryId};
use lightspeed_eventstore::{CommandContext, stream_of};
use lightspeed_workers::merchant_webhooks::ResendError;
use lightspeed_workers::{QueueName, delivery_id_for, resend_delivery};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::common::{World, wait_for};

/// Longer than any wait of the webhook schedule (10 h, +20 % jitter).
const PAST_ANY_RETRY: Duration = Duration::from_secs(13 * 3600);

async fn endpoint(answer: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(answer).set_body_string("endpoint says hi"))
        .mount(&server)
        .await;
    server
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

fn body(request: &Request) -> serde_json::Value {
    serde_json::from_slice(&request.body).expect("JSON body")
}

/// The delivery of the merchant's webhook for the payment's `event_type` event.
async fn delivery_of(
    w: &World,
    payment_id: lightspeed_domain::PaymentId,
    event_type: &str,
) -> WebhookDeliveryId {
    delivery_id_for(&w.payment_event(payment_id, event_type).await)
}

async fn wait_for_delivery(
    w: &World,
    delivery_id: WebhookDeliveryId,
    what: &str,
    done: impl Fn(&WebhookDelivery) -> bool,
) -> WebhookDelivery {
    wait_for(what, || async {
        w.delivery(delivery_id)
            .await
            .filter(|delivery| done(delivery))
    })
    .await
}

#[tokio::test]
async fn the_merchant_receives_payment_succeeded_signed_with_current_and_previous_secret() {
    let w = World::new().await;
    let hooks = endpoint(200).await;
    let merchant = w.merchant(Some(format!("{}/hooks", hooks.uri()))).await;
    w.gateway(merchant.id, 1, "http://127.0.0.1:9").await;
    let worker = w.start(QueueName::MerchantWebhooks);

    // The merchant rotates its secret; the old one stays valid for the grace period.
    let rotated = generate_webhook_secret();
    w.ledger
        .merchants()
        .execute(
            &stream_of::<Merchant>(merchant.id).expect("stream"),
            &MerchantCommand::RotateWebhookSecret {
                secret: w.keyring.seal(rotated.expose()),
                grace_secs: DEFAULT_WEBHOOK_SECRET_GRACE_SECS,
                at: w.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("rotate");

    let payment_id = w.initiate(merchant.id, "ORD-4", 49_900).await;
    w.record_order(payment_id).await;
    let report = w.report_success(payment_id, "evt_4").await;
    w.ledger
        .settle_outcome(&report, &CommandContext::default())
        .await
        .expect("settle");

    let request = wait_for("payment.succeeded at the endpoint", || async {
        received(&hooks)
            .await
            .into_iter()
            .find(|r| body(r)["type"] == "payment.succeeded")
    })
    .await;
    let delivery_id = delivery_of(&w, payment_id, "PaymentSucceeded").await;
    assert_eq!(
        request.headers.get(HEADER_ID).and_then(|v| v.to_str().ok()),
        Some(delivery_id.to_string().as_str())
    );
    assert_eq!(
        request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    for secret in [&rotated, &merchant.webhook_secret] {
        let secret = WebhookSecret::from_secret(secret).expect("secret");
        verify(&secret, &request.headers, &request.body, w.now()).expect("signature verifies");
    }
    let stranger = WebhookSecret::from_secret(&generate_webhook_secret()).expect("secret");
    assert!(verify(&stranger, &request.headers, &request.body, w.now()).is_err());

    let sent = body(&request);
    let data = &sent["data"];
    assert_eq!(data["transaction_id"], payment_id.to_string());
    assert_eq!(data["order_id"], "ORD-4");
    assert_eq!(data["amount"], 49_900);
    assert_eq!(data["currency"], "INR");
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["provider"], "sandbox");
    assert_eq!(data["commission"], 1_747);
    assert!(sent["timestamp"].is_string());

    let delivered = wait_for_delivery(&w, delivery_id, "delivered", |d| {
        d.status() == WebhookDeliveryStatus::Delivered
    })
    .await;
    assert_eq!(delivered.attempts(), 1);
    assert_eq!(delivered.last_status_code(), Some(200));
    // The creation was announced too, once.
    let created_id = delivery_of(&w, payment_id, "PaymentInitiated").await;
    wait_for_delivery(&w, created_id, "payment.created delivered", |d| {
        d.status() == WebhookDeliveryStatus::Delivered
    })
    .await;
    let created = received(&hooks)
        .await
        .iter()
        .filter(|r| body(r)["type"] == "payment.created")
        .count();
    assert_eq!(created, 1);
    worker.stop().await;
}

#[tokio::test]
async fn an_endpoint_answering_500_then_200_gets_two_attempts_recorded_and_a_delivery() {
    let w = World::new().await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(500).set_body_string("database down"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&hooks)
        .await;
    let merchant = w.merchant(Some(format!("{}/hooks", hooks.uri()))).await;
    w.gateway(merchant.id, 1, "http://127.0.0.1:9").await;
    let worker = w.start(QueueName::MerchantWebhooks);
    let payment_id = w.initiate(merchant.id, "ORD-5", 10_000).await;
    let delivery_id = delivery_of(&w, payment_id, "PaymentInitiated").await;

    let waiting =
        wait_for_delivery(&w, delivery_id, "the first attempt", |d| d.attempts() == 1).await;
    assert_eq!(waiting.status(), WebhookDeliveryStatus::Pending);
    let due = waiting.next_attempt_at().expect("retry scheduled");
    // 5 s ± 20 % after the first attempt.
    assert!(due >= w.now() + chrono::Duration::seconds(4), "{due}");
    assert!(due <= w.now() + chrono::Duration::seconds(6), "{due}");

    w.advance(Duration::from_secs(10));
    let delivered = wait_for_delivery(&w, delivery_id, "the delivery", |d| {
        d.status() == WebhookDeliveryStatus::Delivered
    })
    .await;
    worker.stop().await;
    assert_eq!(delivered.attempts(), 2);

    let stream = stream_of::<WebhookDelivery>(delivery_id).expect("stream");
    let events: Vec<WebhookDeliveryEvent> = w
        .events(&stream)
        .await
        .iter()
        .map(|e| e.decode().expect("delivery event"))
        .collect();
    let types: Vec<&str> = events
        .iter()
        .map(|e| lightspeed_domain::DomainEvent::event_type(e))
        .collect();
    assert_eq!(
        types,
        [
            "WebhookDeliveryQueued",
            "WebhookDeliveryAttempted",
            "WebhookRetryScheduled",
            "WebhookDeliveryAttempted",
            "WebhookDelivered"
        ]
    );
    let WebhookDeliveryEvent::WebhookDeliveryAttempted {
        status_code,
        response_excerpt,
        ..
    } = &events[1]
    else {
        panic!("expected an attempt, got {:?}", events[1]);
    };
    assert_eq!(*status_code, Some(500));
    assert_eq!(response_excerpt.as_deref(), Some("database down"));
    let requests = received(&hooks).await;
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].headers.get(HEADER_ID),
        requests[1].headers.get(HEADER_ID),
        "a retry keeps its webhook-id"
    );
}

#[tokio::test]
async fn a_given_up_delivery_is_sent_again_on_resend() {
    let w = World::new().await;
    let hooks = endpoint(503).await;
    let merchant = w.merchant(Some(format!("{}/hooks", hooks.uri()))).await;
    w.gateway(merchant.id, 1, "http://127.0.0.1:9").await;
    let worker = w.start(QueueName::MerchantWebhooks);
    let payment_id = w.initiate(merchant.id, "ORD-6", 10_000).await;
    let delivery_id = delivery_of(&w, payment_id, "PaymentInitiated").await;

    for attempt in 1..lightspeed_domain::retry::WEBHOOK_MAX_ATTEMPTS {
        wait_for_delivery(&w, delivery_id, &format!("attempt {attempt}"), |d| {
            d.attempts() == attempt
        })
        .await;
        w.advance(PAST_ANY_RETRY);
    }
    let given_up = wait_for_delivery(&w, delivery_id, "giving up", |d| {
        d.status() == WebhookDeliveryStatus::GivenUp
    })
    .await;
    assert_eq!(
        given_up.attempts(),
        lightspeed_domain::retry::WEBHOOK_MAX_ATTEMPTS
    );

    hooks.reset().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    let requeued = resend_delivery(&w.ledger, delivery_id, &CommandContext::default())
        .await
        .expect("resend");
    assert_eq!(requeued.status(), WebhookDeliveryStatus::Pending);
    let delivered = wait_for_delivery(&w, delivery_id, "the resent delivery", |d| {
        d.status() == WebhookDeliveryStatus::Delivered
    })
    .await;
    worker.stop().await;
    assert_eq!(delivered.attempts(), 1);
    assert_eq!(received(&hooks).await.len(), 1);
    assert!(matches!(
        resend_delivery(&w.ledger, delivery_id, &CommandContext::default()).await,
        Err(ResendError::NotGivenUp {
            status: WebhookDeliveryStatus::Delivered
        })
    ));
    assert!(matches!(
        resend_delivery(
            &w.ledger,
            WebhookDeliveryId::new(),
            &CommandContext::default()
        )
        .await,
        Err(ResendError::UnknownDelivery(_))
    ));
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled() {
    let w = World::new().await;
    let hooks = endpoint(500).await;
    let merchant = w.merchant(Some(format!("{}/hooks", hooks.uri()))).await;
    w.gateway(merchant.id, 1, "http://127.0.0.1:9").await;
    let worker = w.start(QueueName::MerchantWebhooks);
    let payment_id = w.initiate(merchant.id, "ORD-7", 10_000).await;
    let delivery_id = delivery_of(&w, payment_id, "PaymentInitiated").await;
    wait_for_delivery(&w, delivery_id, "the first attempt", |d| d.attempts() == 1).await;
    let failing_since = w.now();

    w.advance(Duration::from_secs(5 * 24 * 3600 + 60));
    let merchant_state = wait_for("the endpoint disabled", || async {
        let state = w.ledger.merchant(merchant.id).await.expect("merchant");
        state
            .webhook_endpoint_disabled_at()
            .is_some()
            .then_some(state)
    })
    .await;
    assert!(!merchant_state.webhook_endpoint_enabled());
    let disabled = w
        .events(&stream_of::<Merchant>(merchant.id).expect("stream"))
        .await
        .into_iter()
        .find(|e| e.event_type == "WebhookEndpointDisabled")
        .expect("disabled event")
        .payload
        .to_value()
        .expect("payload");
    // The first endpoint, from the merchant's webhook URL, shares the merchant's UUID.
    assert_eq!(disabled["endpoint_id"], serde_json::json!(merchant.id));
    assert_eq!(disabled["failing_since"], serde_json::json!(failing_since));

    // Later payments queue nothing for the disabled endpoint.
    let later = w.initiate(merchant.id, "ORD-8", 10_000).await;
    w.consumed(
        QueueName::MerchantWebhooks,
        &w.payment_event(later, "PaymentInitiated").await,
    )
    .await;
    worker.stop().await;
    assert!(
        w.delivery(delivery_of(&w, later, "PaymentInitiated").await)
            .await
            .is_none()
    );
    assert_eq!(received(&hooks).await.len(), 2);
}

/// A merchant whose `payment.created` webhook was queued and delivered by a worker that then
/// stopped, and the payment's delivery.
async fn delivered_before_a_crash(
    w: &World,
    hooks: &MockServer,
    order_id: &str,
) -> (crate::common::TestMerchant, WebhookDeliveryId) {
    let merchant = w.merchant(Some(format!("{}/hooks", hooks.uri()))).await;
    w.gateway(merchant.id, 1, "http://127.0.0.1:9").await;
    let worker = w.start(QueueName::MerchantWebhooks);
    let payment_id = w.initiate(merchant.id, order_id, 10_000).await;
    let delivery_id = delivery_of(w, payment_id, "PaymentInitiated").await;
    wait_for_delivery(w, delivery_id, "the delivery", |d| {
        d.status() == WebhookDeliveryStatus::Delivered
    })
    .await;
    worker.stop().await;
    (merchant, delivery_id)
}

/// The payment's `PaymentInitiated` job handed out again an hour later (its acknowledgement lost
/// with a NATS restart) to a worker in a freshly started process, which handles it.
async fn redelivered_to_a_fresh_worker_an_hour_later(w: &World) {
    w.advance(Duration::from_secs(3600));
    w.forget_consumer_of(QueueName::MerchantWebhooks, "payment", "PaymentInitiated")
        .await;
    let fresh = w.start_fresh(QueueName::MerchantWebhooks);
    w.drained(QueueName::MerchantWebhooks).await;
    fresh.stop().await;
}

#[tokio::test]
async fn a_redelivered_payment_event_queues_nothing_new_in_a_fresh_process_later() {
    let w = World::new().await;
    let hooks = endpoint(200).await;
    let (_, delivery_id) = delivered_before_a_crash(&w, &hooks, "ORD-8").await;
    let stream = stream_of::<WebhookDelivery>(delivery_id).expect("stream");
    let before: Vec<_> = w.events(&stream).await.iter().map(|e| e.event_id).collect();

    redelivered_to_a_fresh_worker_an_hour_later(&w).await;

    let after: Vec<_> = w.events(&stream).await.iter().map(|e| e.event_id).collect();
    assert_eq!(after, before, "the redelivered jobs stored something new");
    assert_eq!(w.failed_jobs(QueueName::MerchantWebhooks).await, (0, None));
    assert_eq!(received(&hooks).await.len(), 1);
}

#[tokio::test]
async fn a_redelivered_payment_event_that_would_queue_differently_is_given_up_with_the_reason() {
    let w = World::new().await;
    let hooks = endpoint(200).await;
    let (merchant, delivery_id) = delivered_before_a_crash(&w, &hooks, "ORD-9").await;
    // The merchant moves its endpoint before the job comes back: queued now, the same delivery
    // would name another URL than the one it was queued with.
    let moved = endpoint(200).await;
    w.ledger
        .merchants()
        .execute(
            &stream_of::<Merchant>(merchant.id).expect("stream"),
            &MerchantCommand::UpdateProfile {
                company_name: "Acme Retail".into(),
                webhook_url: Some(format!("{}/hooks", moved.uri())),
                at: w.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("move the endpoint");
    let stream = stream_of::<WebhookDelivery>(delivery_id).expect("stream");
    let before = w.events(&stream).await.len();

    redelivered_to_a_fresh_worker_an_hour_later(&w).await;

    let (failed, reason) = w.failed_jobs(QueueName::MerchantWebhooks).await;
    assert_eq!(failed, 1);
    let reason = reason.expect("a reason");
    assert!(
        reason.contains(&delivery_id.to_string()) && reason.contains("different content"),
        "{reason}"
    );
    assert_eq!(w.events(&stream).await.len(), before);
    assert!(received(&moved).await.is_empty());
}
