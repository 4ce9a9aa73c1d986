use super::*;
use crate::testing::fixtures::{delivery_id, merchant_id, payment_id};
use crate::testing::{given, t};
use crate::validation::Problem;

const DAY: i64 = 24 * 3600;

fn queue() -> QueueWebhookDelivery {
    QueueWebhookDelivery {
        delivery_id: delivery_id(1),
        merchant_id: merchant_id(),
        payment_id: Some(payment_id(1)),
        event_type: "payment.succeeded".to_owned(),
        payload: serde_json::json!({ "payment_id": "p1", "status": "succeeded" }),
        endpoint_url: "https://acme.example/hooks".to_owned(),
        endpoint_id: crate::merchant::first_endpoint_id(merchant_id()),
        at: t(0),
    }
}

fn queued() -> WebhookDeliveryEvent {
    let q = queue();
    WebhookDeliveryEvent::WebhookDeliveryQueued {
        delivery_id: q.delivery_id,
        merchant_id: q.merchant_id,
        payment_id: q.payment_id,
        event_type: q.event_type,
        payload: q.payload,
        endpoint_url: q.endpoint_url,
        endpoint_id: Some(q.endpoint_id),
        at: q.at,
    }
}

fn answered(status_code: u16, at: DateTime<Utc>) -> WebhookAttempt {
    WebhookAttempt {
        outcome: AttemptOutcome::Response {
            status_code,
            body_excerpt: "ok".to_owned(),
        },
        duration_ms: 120,
        retry_after_secs: None,
        jitter: Jitter::NONE,
        at,
    }
}

fn unreachable_at(at: DateTime<Utc>) -> WebhookAttempt {
    WebhookAttempt {
        outcome: AttemptOutcome::TransportError {
            error: "connection refused".to_owned(),
        },
        duration_ms: 3,
        retry_after_secs: None,
        jitter: Jitter::NONE,
        at,
    }
}

fn attempted(attempt: u32, status_code: Option<u16>, at: DateTime<Utc>) -> WebhookDeliveryEvent {
    WebhookDeliveryEvent::WebhookDeliveryAttempted {
        attempt,
        status_code,
        error: status_code
            .is_none()
            .then(|| "connection refused".to_owned()),
        duration_ms: if status_code.is_some() { 120 } else { 3 },
        response_excerpt: status_code.map(|_| "ok".to_owned()),
        at,
    }
}

fn retry(
    next_attempt: u32,
    next_attempt_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> WebhookDeliveryEvent {
    WebhookDeliveryEvent::WebhookRetryScheduled {
        next_attempt,
        next_attempt_at,
        at,
    }
}

#[test]
fn a_delivery_is_queued_due_at_once() {
    let delivery = given::<WebhookDelivery>([])
        .when(WebhookDeliveryCommand::Queue(queue()))
        .then([queued()])
        .expect("queued");
    assert!(delivery.is_due(t(0)));
    assert_eq!(delivery.status(), WebhookDeliveryStatus::Pending);
}

#[test]
fn a_body_queued_with_an_earlier_status_name_is_sent_with_the_current_one() {
    let recorded = |status: &str| WebhookDeliveryEvent::WebhookDeliveryQueued {
        delivery_id: delivery_id(1),
        merchant_id: merchant_id(),
        payment_id: Some(payment_id(1)),
        event_type: "payment.created".to_owned(),
        payload: serde_json::json!({ "type": "payment.created", "data": { "status": status } }),
        endpoint_url: "https://acme.example/hooks".to_owned(),
        endpoint_id: None,
        at: t(0),
    };
    for (stored, sent) in [
        ("initiated", "created"),
        ("awaiting_payment", "pending"),
        ("created", "created"),
        ("succeeded", "succeeded"),
    ] {
        let delivery = WebhookDelivery::fold([&recorded(stored)]).expect("queued");
        assert_eq!(delivery.payload()["data"]["status"], sent, "{stored}");
        assert_eq!(delivery.payload()["type"], "payment.created");
    }
}

#[test]
fn queueing_refuses_a_bad_endpoint_or_event_type() {
    given::<WebhookDelivery>([])
        .when(WebhookDeliveryCommand::Queue(QueueWebhookDelivery {
            endpoint_url: "mailto:x".to_owned(),
            ..queue()
        }))
        .then_error(Problem::NotAUrl.at("endpoint_url").into());
    given::<WebhookDelivery>([])
        .when(WebhookDeliveryCommand::Queue(QueueWebhookDelivery {
            event_type: String::new(),
            ..queue()
        }))
        .then_error(Problem::Empty.at("event_type").into());
    given::<WebhookDelivery>([queued()])
        .when(WebhookDeliveryCommand::Queue(queue()))
        .then_error(WebhookDeliveryError::AlreadyQueued);
}

#[test]
fn a_2xx_answer_delivers() {
    let delivery = given::<WebhookDelivery>([queued()])
        .when(WebhookDeliveryCommand::RecordAttempt(answered(204, t(1))))
        .then([
            attempted(1, Some(204), t(1)),
            WebhookDeliveryEvent::WebhookDelivered {
                attempt: 1,
                status_code: 204,
                at: t(1),
            },
        ])
        .expect("queued");
    assert_eq!(delivery.status(), WebhookDeliveryStatus::Delivered);
    assert_eq!(delivery.next_attempt_at(), None);
}

#[test]
fn a_redirect_or_error_answer_schedules_a_retry() {
    for status in [301, 400, 500] {
        given::<WebhookDelivery>([queued()])
            .when(WebhookDeliveryCommand::RecordAttempt(answered(
                status,
                t(1),
            )))
            .then([attempted(1, Some(status), t(1)), retry(2, t(6), t(1))]);
    }
}

#[test]
fn retries_follow_the_schedule_then_give_up_after_eight_attempts() {
    let waits = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
    let mut history = vec![queued()];
    let mut at = t(0);
    for (index, wait) in waits.into_iter().enumerate() {
        let attempt = u32::try_from(index + 1).expect("small");
        let next_at = crate::calendar::plus_secs(at, wait);
        let events = [
            attempted(attempt, None, at),
            retry(attempt + 1, next_at, at),
        ];
        given::<WebhookDelivery>(history.clone())
            .when(WebhookDeliveryCommand::RecordAttempt(unreachable_at(at)))
            .then(events.clone());
        history.extend(events);
        at = next_at;
    }
    let delivery = given::<WebhookDelivery>(history)
        .when(WebhookDeliveryCommand::RecordAttempt(unreachable_at(at)))
        .then([
            attempted(8, None, at),
            WebhookDeliveryEvent::WebhookDeliveryGivenUp { attempts: 8, at },
        ])
        .expect("queued");
    assert_eq!(delivery.status(), WebhookDeliveryStatus::GivenUp);
    assert_eq!(delivery.last_error(), Some("connection refused"));
}

#[test]
fn jitter_moves_the_next_attempt_by_at_most_twenty_percent() {
    let attempt = WebhookAttempt {
        jitter: Jitter::from_bps(-2_000),
        ..unreachable_at(t(0))
    };
    given::<WebhookDelivery>([queued(), attempted(1, None, t(0)), retry(2, t(5), t(0))])
        .when(WebhookDeliveryCommand::RecordAttempt(attempt))
        .then([attempted(2, None, t(0)), retry(3, t(240), t(0))]);
}

#[test]
fn a_longer_retry_after_is_honoured_up_to_ten_hours() {
    let asking = |secs| WebhookAttempt {
        retry_after_secs: Some(secs),
        ..answered(429, t(0))
    };
    given::<WebhookDelivery>([queued()])
        .when(WebhookDeliveryCommand::RecordAttempt(asking(120)))
        .then([attempted(1, Some(429), t(0)), retry(2, t(120), t(0))]);
    given::<WebhookDelivery>([queued()])
        .when(WebhookDeliveryCommand::RecordAttempt(asking(1)))
        .then([attempted(1, Some(429), t(0)), retry(2, t(5), t(0))]);
    given::<WebhookDelivery>([queued()])
        .when(WebhookDeliveryCommand::RecordAttempt(asking(u64::MAX)))
        .then([attempted(1, Some(429), t(0)), retry(2, t(36_000), t(0))]);
}

#[test]
fn long_responses_and_errors_are_cut_to_an_excerpt() {
    let attempt = WebhookAttempt {
        outcome: AttemptOutcome::Response {
            status_code: 500,
            body_excerpt: "é".repeat(5_000),
        },
        ..answered(500, t(0))
    };
    let events = WebhookDelivery::decide(
        &WebhookDelivery::fold(&[queued()]),
        &WebhookDeliveryCommand::RecordAttempt(attempt),
    )
    .expect("recorded");
    let Some(WebhookDeliveryEvent::WebhookDeliveryAttempted {
        response_excerpt: Some(excerpt),
        ..
    }) = events.first()
    else {
        panic!("an attempt is recorded first: {events:?}");
    };
    assert_eq!(excerpt.chars().count(), MAX_EXCERPT_CHARS);
}

#[test]
fn attempts_after_the_outcome_are_refused_as_already_recorded() {
    let delivered = WebhookDeliveryEvent::WebhookDelivered {
        attempt: 1,
        status_code: 200,
        at: t(1),
    };
    given::<WebhookDelivery>([queued(), attempted(1, Some(200), t(1)), delivered])
        .when(WebhookDeliveryCommand::RecordAttempt(answered(200, t(2))))
        .then_error(WebhookDeliveryError::AlreadyDelivered);
    let given_up = WebhookDeliveryEvent::WebhookDeliveryGivenUp {
        attempts: 8,
        at: t(1),
    };
    given::<WebhookDelivery>([queued(), given_up.clone()])
        .when(WebhookDeliveryCommand::RecordAttempt(answered(200, t(2))))
        .then_error(WebhookDeliveryError::AlreadyGivenUp);
    assert!(WebhookDeliveryError::AlreadyDelivered.is_already_recorded());
    // Ops can start a given-up delivery over.
    let delivery = given::<WebhookDelivery>([queued(), given_up])
        .when(WebhookDeliveryCommand::Requeue { at: t(9) })
        .then([WebhookDeliveryEvent::WebhookDeliveryRequeued { at: t(9) }])
        .expect("queued");
    assert!(delivery.is_due(t(9)) && delivery.attempts() == 0);
    given::<WebhookDelivery>([queued()])
        .when(WebhookDeliveryCommand::Requeue { at: t(9) })
        .then_error(WebhookDeliveryError::NotGivenUp {
            status: WebhookDeliveryStatus::Pending,
        });
}

#[test]
fn an_endpoint_failing_for_five_days_should_be_disabled() {
    assert_eq!(endpoint_health(None, t(0)), EndpointHealth::Healthy);
    assert_eq!(
        endpoint_health(Some(t(0)), t(5 * DAY - 1)),
        EndpointHealth::Failing {
            since: t(0),
            disable_at: t(5 * DAY)
        }
    );
    assert_eq!(
        endpoint_health(Some(t(0)), t(5 * DAY)),
        EndpointHealth::Disable { since: t(0) }
    );
}

#[test]
fn a_test_delivery_reports_on_no_payment() {
    let test_event = QueueWebhookDelivery {
        payment_id: None,
        ..queue()
    };
    let delivery = given::<WebhookDelivery>([])
        .when(WebhookDeliveryCommand::Queue(test_event))
        .then([WebhookDeliveryEvent::WebhookDeliveryQueued {
            delivery_id: delivery_id(1),
            merchant_id: merchant_id(),
            payment_id: None,
            event_type: "payment.succeeded".to_owned(),
            payload: serde_json::json!({ "payment_id": "p1", "status": "succeeded" }),
            endpoint_url: "https://acme.example/hooks".to_owned(),
            endpoint_id: Some(crate::merchant::first_endpoint_id(merchant_id())),
            at: t(0),
        }])
        .expect("delivery");
    assert!(delivery.is_test());
    assert_eq!(delivery.payment_id(), None);
    let real = WebhookDelivery::fold(&[queued()]).expect("delivery");
    assert_eq!(
        (real.is_test(), real.payment_id()),
        (false, Some(payment_id(1)))
    );
}
