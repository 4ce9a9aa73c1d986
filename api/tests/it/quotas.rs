//! Merchant quotas over HTTP: admins set the caps, initiations past a cap are refused with
//! `429 QUOTA_EXCEEDED` and change nothing, concurrent initiations from two API processes at a
//! cap's boundary admit exactly the cap, the next period admits again, and 80 % and 100 % are
//! recorded once each (with the merchant's WhatsApp notification when it opted in); a crowd of
//! initiations at a cap is never answered with a server error.

use std::sync::Arc;

use futures::future::join_all;
use lightspeed_domain::access::Role;
use lightspeed_domain::merchant::{WhatsappContact, WhatsappOptIns};
use lightspeed_domain::quota::{
    MerchantQuota, QuotaEvent, QuotaKind, QuotaUsage, UsageEvent, day_resets_at, usage_stream_key,
};
use lightspeed_eventstore::{EventStore, stream_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

/// How many initiations race at the boundary.
const RACERS: usize = 16;

/// Sets the merchant's caps through the admin API; answers the body.
async fn set_caps(app: &TestApp, merchant: &TestMerchant, caps: Value) -> Value {
    let response = app
        .admin_json(
            Method::PUT,
            &format!("/admin/merchants/{}/quota", merchant.id),
            &caps,
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK, "caps set");
    response.json().await.expect("json")
}

/// The usage events of the merchant's usage stream this month, in order.
async fn usage_events(app: &TestApp, merchant: &TestMerchant) -> Vec<UsageEvent> {
    let stream =
        stream_of::<QuotaUsage>(usage_stream_key(merchant.id, app.ledger.now())).expect("stream");
    app.ledger
        .store()
        .read_stream(&stream, 0, 10_000)
        .await
        .expect("read")
        .iter()
        .map(|recorded| recorded.decode::<UsageEvent>().expect("decode"))
        .collect()
}

/// The thresholds recorded, as (cap, percent), in order.
fn thresholds(events: &[UsageEvent]) -> Vec<(QuotaKind, u8)> {
    events
        .iter()
        .filter_map(|event| match event {
            UsageEvent::QuotaThresholdReached { quota, percent, .. } => Some((*quota, *percent)),
            UsageEvent::QuotaUsed { .. } => None,
        })
        .collect()
}

fn admitted(events: &[UsageEvent]) -> usize {
    events
        .iter()
        .filter(|event| matches!(event, UsageEvent::QuotaUsed { .. }))
        .count()
}

/// `count` payments of `amount` initiated one after another, each created.
async fn initiate_in_turn(
    app: &TestApp,
    merchant: &TestMerchant,
    prefix: &str,
    count: usize,
    amount: i64,
) {
    for n in 0..count {
        initiate(app, merchant, &format!("{prefix}-{n}"), amount).await;
    }
}

/// Sixteen initiations at once, alternately to the app and to a second API process over the
/// same database; answers the statuses and bodies.
async fn race(
    app: &TestApp,
    merchant: &TestMerchant,
    prefix: &str,
    amount: i64,
) -> Vec<(StatusCode, Value)> {
    crowd(app, merchant, prefix, amount, RACERS)
        .await
        .into_iter()
        .map(|(status, body, _)| (status, body))
        .collect()
}

/// `racers` initiations at once, alternately to the app and to a second API process over the
/// same database; answers the statuses, bodies and `Retry-After` headers.
async fn crowd(
    app: &TestApp,
    merchant: &TestMerchant,
    prefix: &str,
    amount: i64,
    racers: usize,
) -> Vec<(StatusCode, Value, Option<String>)> {
    let replica = Arc::new(app.replica().await);
    let requests = (0..racers).map(|n| {
        let replica = Arc::clone(&replica);
        let body = payment(&format!("{prefix}-{n}"), amount);
        async move {
            let response = if n % 2 == 0 {
                app.initiate(merchant, &body).await
            } else {
                app.initiate_at(&replica.url, merchant, &body).await
            };
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let (status, body) = problem(response).await;
            (status, body, retry_after)
        }
    });
    join_all(requests).await
}

/// Checks the race's answers: `admit` created, the others refused as over `quota`.
fn assert_exactly(answers: &[(StatusCode, Value)], admit: usize, quota: &str) {
    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    for (status, body) in answers {
        if *status != StatusCode::CREATED {
            assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "refusal: {body}");
            assert_eq!(body["code"], "QUOTA_EXCEEDED", "{body}");
            assert_eq!(body["quota"]["name"], quota, "{body}");
        }
    }
    assert_eq!(created, admit, "admitted: {answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_initiations_at_the_daily_count_cap_admit_exactly_the_cap() {
    let app = spawn_app().await;
    let merchant = app
        .merchant_with(MerchantSettings {
            whatsapp: Some(WhatsappContact {
                number: "919867800451".into(),
                opt_ins: WhatsappOptIns {
                    account_status: true,
                    ..WhatsappOptIns::default()
                },
            }),
            ..MerchantSettings::default()
        })
        .await;
    app.sandbox_gateway(&merchant, 0, None).await;
    set_caps(&app, &merchant, json!({ "daily_count": 20 })).await;
    // 12 of 20 used: 8 left for 16 racers.
    initiate_in_turn(&app, &merchant, "BEFORE", 12, 1_000).await;

    let answers = race(&app, &merchant, "RACE", 1_000).await;

    assert_exactly(&answers, 8, "daily_count");
    let events = usage_events(&app, &merchant).await;
    assert_eq!(admitted(&events), 20, "usage counted");
    assert_eq!(
        thresholds(&events),
        [(QuotaKind::DailyCount, 80), (QuotaKind::DailyCount, 100)],
        "each threshold recorded once"
    );
    let payments = app
        .count("SELECT count(*) FROM ledger.events WHERE event_type = 'PaymentInitiated'")
        .await;
    assert_eq!(payments, 20, "payments created");
    // The merchant opted in to account-status messages: one notification per threshold.
    let queued = app
        .count(
            "SELECT count(*) FROM ledger.events WHERE event_type = 'NotificationQueued' \
             AND payload->>'template' = 'quota_alert' AND payload->>'kind' = 'ACCOUNT_STATUS'",
        )
        .await;
    assert_eq!(queued, 2, "one notification per threshold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_initiations_at_the_monthly_volume_cap_admit_exactly_what_fits() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 0, None).await;
    // ₹100.00 a month; ₹30.00 used, so seven payments of ₹10.00 fit.
    set_caps(&app, &merchant, json!({ "monthly_volume": 10_000 })).await;
    initiate_in_turn(&app, &merchant, "BEFORE", 3, 1_000).await;

    let answers = race(&app, &merchant, "RACE", 1_000).await;

    assert_exactly(&answers, 7, "monthly_volume");
    let events = usage_events(&app, &merchant).await;
    let volume: i64 = events
        .iter()
        .map(|event| match event {
            UsageEvent::QuotaUsed { amount, .. } => amount.0,
            UsageEvent::QuotaThresholdReached { .. } => 0,
        })
        .sum();
    assert_eq!(volume, 10_000, "exactly the cap used");
    assert_eq!(
        thresholds(&events),
        [
            (QuotaKind::MonthlyVolume, 80),
            (QuotaKind::MonthlyVolume, 100)
        ]
    );
    // The merchant has no WhatsApp contact: nothing is queued for it.
    let queued = app
        .count("SELECT count(*) FROM ledger.events WHERE event_type = 'NotificationQueued'")
        .await;
    assert_eq!(queued, 0);
}

#[tokio::test]
async fn a_refused_initiation_is_a_problem_with_the_reset_and_changes_nothing_and_the_next_day_admits_again()
 {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 0, None).await;
    set_caps(
        &app,
        &merchant,
        json!({ "daily_count": 2, "monthly_count": 100 }),
    )
    .await;
    initiate_in_turn(&app, &merchant, "DAY1", 2, 500).await;
    let events_before = app.event_count().await;

    let response = app.initiate(&merchant, &payment("DAY1-over", 500)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let resets_at = day_resets_at(app.ledger.now());
    let retry_after: i64 = response.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    let (_, body) = problem(response).await;
    assert_eq!(body["code"], "QUOTA_EXCEEDED");
    assert_eq!(
        body["quota"],
        json!({
            "name": "daily_count",
            "limit": 2,
            "used": 2,
            "resets_at": resets_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    );
    let to_reset = (resets_at - app.ledger.now()).num_seconds();
    assert!(
        (to_reset..=to_reset + 1).contains(&retry_after),
        "Retry-After {retry_after} for a reset {to_reset} s away"
    );
    assert_eq!(app.event_count().await, events_before, "nothing recorded");
    // A repeated request at the cap, at another API process, still answers its payment.
    let replica = app.replica().await;
    let first = payment("DAY1-0", 500);
    let again = app.initiate_at(&replica.url, &merchant, &first).await;
    assert_eq!(again.status(), StatusCode::CREATED, "a repeat is answered");
    assert_eq!(app.event_count().await, events_before, "nothing recorded");
    // The same order id, once the day is over, is a new payment.
    app.clock.set(resets_at);
    let response = app.initiate(&merchant, &payment("DAY1-over", 500)).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "the next day admits"
    );
    let status: Value = app
        .admin(
            Method::GET,
            &format!("/admin/merchants/{}/quota", merchant.id),
        )
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let used = |quota: &str| {
        status["usage"]
            .as_array()
            .expect("usage")
            .iter()
            .find(|u| u["quota"] == quota)
            .map(|u| u["used"].clone())
    };
    assert_eq!(used("daily_count"), Some(json!(1)), "{status}");
    assert_eq!(used("monthly_count"), Some(json!(3)), "{status}");
}

#[tokio::test]
async fn admins_set_caps_in_range_and_the_change_is_theirs_in_the_log() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let path = format!("/admin/merchants/{}/quota", merchant.id);

    let body = set_caps(
        &app,
        &merchant,
        json!({ "daily_count": 500, "daily_volume": 5_000_000, "monthly_volume": null }),
    )
    .await;
    assert_eq!(
        body["caps"],
        json!({ "daily_count": 500, "daily_volume": 5_000_000, "monthly_count": null, "monthly_volume": null })
    );
    assert_eq!(body["usage"][0]["quota"], "daily_count");
    assert_eq!(body["usage"][0]["used"], 0);

    // Out of range, a wrong type or an unknown field: 422 and nothing recorded.
    let events_before = app.event_count().await;
    for bad in [
        json!({ "daily_count": 0 }),
        json!({ "monthly_volume": 1_000_000_000_000_000_001_i64 }),
        json!({ "daily_count": "five" }),
        json!({ "weekly_count": 5 }),
    ] {
        let response = app
            .admin_json(Method::PUT, &path, &bad)
            .send()
            .await
            .expect("request");
        let (status, problem) = problem(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
    }
    assert_eq!(app.event_count().await, events_before);

    // Unknown merchant: 404; an auditor may read but not change.
    let unknown = app
        .admin_json(
            Method::PUT,
            "/admin/merchants/01234567-89ab-7def-8123-456789abcdef/quota",
            &json!({}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let invited = app
        .admin_json(
            Method::POST,
            "/admin/people",
            &json!({ "email": "audit@example.com", "role": Role::Auditor.as_str() }),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(invited.status(), StatusCode::CREATED);
    let auditor = app.role_token("audit@example.com", Role::Auditor);
    let read = app
        .http
        .get(format!("{}{path}", app.url))
        .bearer_auth(&auditor)
        .send()
        .await
        .expect("request");
    assert_eq!(read.status(), StatusCode::OK);
    let refused = app
        .http
        .put(format!("{}{path}", app.url))
        .bearer_auth(&auditor)
        .json(&json!({ "daily_count": 1 }))
        .send()
        .await
        .expect("request");
    let (status, body) = problem(refused).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "ROLE_FORBIDDEN");

    // The change is recorded with the admin as its actor (what the audit log shows).
    let stream = stream_of::<MerchantQuota>(merchant.id).expect("stream");
    let recorded = app
        .ledger
        .store()
        .read_stream(&stream, 0, 10)
        .await
        .expect("read");
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].metadata.actor.as_deref(),
        Some(format!("admin:{ADMIN_EMAIL}").as_str())
    );
    assert!(matches!(
        recorded[0].decode::<QuotaEvent>().expect("decode"),
        QuotaEvent::QuotaCapsSet { .. }
    ));
}

/// Initiations racing in a crowd at the cap.
const CROWD: usize = 80;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_of_initiations_at_a_cap_from_two_processes_is_never_a_server_error() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 0, None).await;
    set_caps(&app, &merchant, json!({ "daily_count": 60 })).await;

    let answers = crowd(&app, &merchant, "CROWD", 1_000, CROWD).await;

    // Every answer is a payment, the cap's refusal, or contention's refusal to retry later.
    let mut contended = Vec::new();
    for (n, (status, body, retry_after)) in answers.iter().enumerate() {
        assert!(!status.is_server_error(), "server error: {body}");
        if *status == StatusCode::CREATED {
            continue;
        }
        assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        match body["code"].as_str() {
            Some("QUOTA_EXCEEDED") => {}
            Some("CONTENDED") => {
                let seconds: u64 = retry_after
                    .as_deref()
                    .and_then(|s| s.parse().ok())
                    .expect("Retry-After in seconds");
                assert!(seconds >= 1, "{body}");
                contended.push(n);
            }
            other => panic!("unexpected refusal {other:?}: {body}"),
        }
    }
    // A merchant retries a contended request with the same body; it is then decided.
    for n in contended {
        let body = payment(&format!("CROWD-{n}"), 1_000);
        let answer = loop {
            let (status, body) = problem(app.initiate(&merchant, &body).await).await;
            if body["code"] != "CONTENDED" {
                break (status, body);
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        };
        assert!(
            answer.0 == StatusCode::CREATED || answer.1["code"] == "QUOTA_EXCEEDED",
            "{answer:?}"
        );
    }
    let events = usage_events(&app, &merchant).await;
    assert_eq!(admitted(&events), 60, "exactly the cap admitted");
    let payments = app
        .count("SELECT count(*) FROM ledger.events WHERE event_type = 'PaymentInitiated'")
        .await;
    assert_eq!(payments, 60, "payments created");
}
