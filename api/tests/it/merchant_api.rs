//! The merchant API over real HTTP and PostgreSQL: signed initiation, idempotent order ids,
//! refusals with problem documents, routing caps and toggles, rate limits, reads.

use lightspeed_domain::Paise;
use lightspeed_domain::gateway::GatewayCommand;
use lightspeed_domain::standing::Thresholds;
use lightspeed_eventstore::{CommandContext, stream_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{EventCount, MerchantSettings, TestApp, payment, settle_success, spawn_app};

async fn problem(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        content_type, "application/problem+json",
        "errors are problem documents"
    );
    (status, response.json().await.expect("problem body"))
}

#[tokio::test]
async fn a_signed_request_creates_a_payment_and_the_same_order_id_answers_it_again() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;

    let first = app.initiate(&merchant, &payment("ORD-1", 49_900)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["status"], "created");
    let id = first["transaction_id"].as_str().expect("id").to_owned();
    assert_eq!(first["checkout_url"], format!("{}/checkout/{id}", app.url));

    // Same content, different key order and spacing: the same answer.
    let reordered = br#"{ "order_id":"ORD-1", "currency":"INR", "amount":49900,
        "customer":{"phone":"919867800451","email":"asha@example.com","name":"Asha"},
        "notes":{"cart":"c-42"}, "redirect_url":"https://shop.example/return" }"#;
    let again = app
        .signed(&merchant, Method::POST, "/payment/initiate", reordered)
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), StatusCode::CREATED);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again, first);

    let (status, body) = problem(app.initiate(&merchant, &payment("ORD-1", 10_000)).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "ORDER_ID_REUSED");
    assert_eq!(body["transaction_id"], id.as_str());

    let read = app
        .signed(&merchant, Method::GET, &format!("/transaction/{id}"), b"")
        .send()
        .await
        .expect("send");
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.expect("json");
    assert_eq!(read["order_id"], "ORD-1");
    assert_eq!(read["amount"], 49_900);
    assert_eq!(read["status"], "created");
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_records_nothing() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let before = app.event_count().await;
    let body = serde_json::to_vec(&payment("ORD-1", 49_900)).expect("json");

    let now = app.ledger.now().timestamp();
    let sign = |timestamp: i64, body: &[u8]| {
        lightspeed_adapters::merchant_auth::sign_request(
            merchant.client_salt.expose(),
            timestamp,
            "POST",
            "/payment/initiate",
            body,
        )
    };
    let post = |key: &str, timestamp: i64, signature: &str, body: &[u8]| {
        app.request(
            Method::POST,
            "/payment/initiate",
            key,
            timestamp,
            signature,
            body,
        )
    };
    let json_post = |key: &str, timestamp: i64, signature: &str, body: &[u8]| {
        post(key, timestamp, signature, body).header("content-type", "application/json")
    };
    let other_body = serde_json::to_vec(&payment("ORD-1", 1)).expect("json");
    let stale = now - 6 * 60;
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            "wrong signature",
            json_post(&merchant.client_key, now, &"00".repeat(32), &body),
            StatusCode::UNAUTHORIZED,
            "BAD_SIGNATURE",
        ),
        (
            "body changed after signing",
            json_post(&merchant.client_key, now, &sign(now, &body), &other_body),
            StatusCode::UNAUTHORIZED,
            "BAD_SIGNATURE",
        ),
        (
            "stale timestamp",
            json_post(&merchant.client_key, stale, &sign(stale, &body), &body),
            StatusCode::UNAUTHORIZED,
            "STALE_TIMESTAMP",
        ),
        (
            "unknown client key",
            json_post("ck_000000000000000000000000", now, &sign(now, &body), &body),
            StatusCode::UNAUTHORIZED,
            "UNKNOWN_CLIENT_KEY",
        ),
        (
            "garbage signature",
            json_post(&merchant.client_key, now, "not hex", &body),
            StatusCode::UNAUTHORIZED,
            "MALFORMED_CREDENTIALS",
        ),
        (
            "no signature",
            app.http
                .post(format!("{}/payment/initiate", app.url))
                .header("content-type", "application/json")
                .body(body.clone()),
            StatusCode::UNAUTHORIZED,
            "MISSING_CREDENTIALS",
        ),
        (
            "malformed JSON",
            app.signed(
                &merchant,
                Method::POST,
                "/payment/initiate",
                b"{\"amount\": 12,",
            ),
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
        ),
        (
            "not JSON",
            post(&merchant.client_key, now, &sign(now, &body), &body)
                .header("content-type", "text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "ten megabytes",
            app.signed(
                &merchant,
                Method::POST,
                "/payment/initiate",
                &vec![b' '; 10 * 1024 * 1024],
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    for (name, request, status, code) in cases {
        let (got, problem) = problem(request.send().await.expect(name)).await;
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{name}: {problem}"
        );
    }

    for (name, body, field) in [
        (
            "zero amount",
            json!({"amount": 0, "currency": "INR", "order_id": "A"}),
            "amount",
        ),
        (
            "negative amount",
            json!({"amount": -5, "currency": "INR", "order_id": "A"}),
            "amount",
        ),
        (
            "rupees as a float",
            json!({"amount": 499.0, "currency": "INR", "order_id": "A"}),
            "amount",
        ),
        (
            "amount as text",
            json!({"amount": "499", "currency": "INR", "order_id": "A"}),
            "amount",
        ),
        (
            "missing amount",
            json!({"currency": "INR", "order_id": "A"}),
            "amount",
        ),
        (
            "other currency",
            json!({"amount": 100, "currency": "USD", "order_id": "A"}),
            "currency",
        ),
        (
            "order id with spaces",
            json!({"amount": 100, "currency": "INR", "order_id": "A B"}),
            "order_id",
        ),
        (
            "bad email",
            json!({"amount": 100, "currency": "INR", "order_id": "A", "customer": {"email": "nope"}}),
            "customer.email",
        ),
        (
            "bad redirect",
            json!({"amount": 100, "currency": "INR", "order_id": "A", "redirect_url": "javascript:x"}),
            "redirect_url",
        ),
    ] {
        let (status, problem) = problem(app.initiate(&merchant, &body).await).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {problem}"
        );
        assert_eq!(
            (problem["code"].as_str(), problem["field"].as_str()),
            (Some("INVALID_FIELD"), Some(field)),
            "{name}: {problem}"
        );
    }

    for path in [
        "/transaction/0190f0c2-0000-7000-8000-000000000000",
        "/transaction/not-a-uuid",
    ] {
        let (status, problem) = problem(
            app.signed(&merchant, Method::GET, path, b"")
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("TRANSACTION_NOT_FOUND"))
        );
    }
    assert_eq!(app.event_count().await, before, "nothing was recorded");
}

#[tokio::test]
async fn fifty_gateways_at_one_request_a_minute_take_fifty_payments_and_the_fifty_first_gets_503() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    for priority in 0..50 {
        app.sandbox_gateway(&merchant, priority, Some(1)).await;
    }
    let mut gateways = std::collections::HashSet::new();
    for n in 0..50 {
        let created: Value = app
            .initiate(&merchant, &payment(&format!("ORD-{n}"), 10_000))
            .await
            .json()
            .await
            .expect("json");
        let id = created["transaction_id"].as_str().expect("id");
        let read: Value = app
            .signed(&merchant, Method::GET, &format!("/transaction/{id}"), b"")
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert!(
            gateways.insert(read["gateway_id"].as_str().expect("gateway").to_owned()),
            "payment {n} reused a gateway"
        );
    }
    let (status, problem) =
        problem(app.initiate(&merchant, &payment("ORD-50", 10_000)).await).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("SERVICE_UNAVAILABLE"))
    );
}

#[tokio::test]
async fn toggling_a_gateway_off_takes_effect_on_the_very_next_request() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (preferred, _) = app.sandbox_gateway(&merchant, 10, None).await;
    let (other, _) = app.sandbox_gateway(&merchant, 1, None).await;
    let gateway_of = |body: Value| {
        body["transaction_id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid")
    };
    let first = gateway_of(
        app.initiate(&merchant, &payment("ORD-1", 100))
            .await
            .json()
            .await
            .expect("json"),
    );
    assert_eq!(
        app.ledger
            .payment_of(merchant.id, first)
            .await
            .expect("payment")
            .gateway_id(),
        preferred
    );

    // Toggled off through another replica's ledger: this API has the old state cached.
    let elsewhere = lightspeed_services::Ledger::new(app.ledger.store().clone());
    let toggle = GatewayCommand::Toggle {
        enabled: false,
        at: app.ledger.now(),
    };
    elsewhere
        .gateways()
        .execute(
            &stream_of::<lightspeed_domain::gateway::Gateway>(preferred).expect("id"),
            &toggle,
            &CommandContext::default(),
        )
        .await
        .expect("toggle");

    let second = gateway_of(
        app.initiate(&merchant, &payment("ORD-2", 100))
            .await
            .json()
            .await
            .expect("json"),
    );
    assert_eq!(
        app.ledger
            .payment_of(merchant.id, second)
            .await
            .expect("payment")
            .gateway_id(),
        other
    );
}

#[tokio::test]
async fn a_gateway_switched_on_elsewhere_is_routed_to_once_the_reused_states_are_old() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (preferred, _) = app.sandbox_gateway(&merchant, 10, None).await;
    let (other, _) = app.sandbox_gateway(&merchant, 1, None).await;
    let stream = stream_of::<lightspeed_domain::gateway::Gateway>(preferred).expect("id");
    let toggle = |enabled| GatewayCommand::Toggle {
        enabled,
        at: app.ledger.now(),
    };
    app.ledger
        .gateways()
        .execute(&stream, &toggle(false), &CommandContext::default())
        .await
        .expect("off");
    let gateway_of = |order: &'static str| {
        let (app, merchant) = (&app, &merchant);
        async move {
            let created: Value = app
                .initiate(merchant, &payment(order, 100))
                .await
                .json()
                .await
                .expect("json");
            let id = created["transaction_id"]
                .as_str()
                .expect("id")
                .parse()
                .expect("uuid");
            app.ledger
                .payment_of(merchant.id, id)
                .await
                .expect("payment")
                .gateway_id()
        }
    };
    assert_eq!(gateway_of("ORD-1").await, other);

    // Switched on by another replica: acceptances reuse states read less than 100 ms ago, so
    // this API learns of it when it reads the merchant's gateways again.
    let elsewhere = lightspeed_services::Ledger::new(app.ledger.store().clone());
    elsewhere
        .gateways()
        .execute(&stream, &toggle(true), &CommandContext::default())
        .await
        .expect("on");
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert_eq!(gateway_of("ORD-2").await, preferred);
}

#[tokio::test]
async fn over_the_rate_limit_the_merchant_gets_429_with_retry_after() {
    let app = TestApp::builder()
        .config(|config| {
            config.initiate_per_minute = std::num::NonZeroU32::new(3).expect("non-zero")
        })
        .spawn()
        .await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    for n in 0..3 {
        assert_eq!(
            app.initiate(&merchant, &payment(&format!("ORD-{n}"), 100))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let limited = app.initiate(&merchant, &payment("ORD-3", 100)).await;
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let (status, problem) = problem(limited).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITED"))
    );
}

#[tokio::test]
async fn a_merchant_owing_its_suspend_threshold_gets_402_with_the_amount_due() {
    let app = spawn_app().await;
    let thresholds = Thresholds {
        suspend_at: Paise(1_000),
        warn_at: Paise(500),
        auto_payout_minimum: Paise(100_000),
    };
    let merchant = app
        .merchant_with(MerchantSettings {
            thresholds,
            ..MerchantSettings::default()
        })
        .await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let created: Value = app
        .initiate(&merchant, &payment("BIG", 100_000))
        .await
        .json()
        .await
        .expect("json");
    let payment_id = created["transaction_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    settle_success(&app, merchant.id, payment_id).await;

    let (status, problem) = problem(app.initiate(&merchant, &payment("NEXT", 100)).await).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(problem["code"], "MERCHANT_SUSPENDED");
    assert_eq!(problem["amount_due_paise"], 3_500);
}

/// Reads `status` events off a Server-Sent Events response until it has `count` more (or the
/// stream ends); answers their `status` fields.
async fn next_statuses(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    count: usize,
) -> Vec<String> {
    let mut statuses = Vec::new();
    while statuses.len() < count {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|line| line.strip_prefix("data:")) {
                let event: Value = serde_json::from_str(data.trim()).expect("status json");
                statuses.push(event["status"].as_str().expect("status").to_owned());
            }
        }
        if statuses.len() >= count {
            break;
        }
        match stream.chunk().await.expect("stream") {
            Some(bytes) => buffer.push_str(std::str::from_utf8(&bytes).expect("utf-8")),
            None => break,
        }
    }
    statuses
}

#[tokio::test]
async fn the_status_stream_sends_every_status_the_payment_passes_through_in_order() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway_id, _) = app.sandbox_gateway(&merchant, 1, None).await;
    let created: Value = app
        .initiate(&merchant, &payment("SSE-1", 49_900))
        .await
        .json()
        .await
        .expect("json");
    let id = created["transaction_id"].as_str().expect("id").to_owned();
    let payment_id: lightspeed_domain::PaymentId = id.parse().expect("payment id");

    let mut stream = app
        .http
        .get(format!("{}/status/{id}/stream", app.url))
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), StatusCode::OK);
    let mut buffer = String::new();
    assert_eq!(
        next_statuses(&mut stream, &mut buffer, 1).await,
        ["created"]
    );

    // The PSP order and the payer's success, recorded back to back: far quicker than the
    // stream looks at the log, and still both are sent, in order.
    app.ledger
        .record_psp_order(
            payment_id,
            gateway_id,
            "sbo_sse_1".into(),
            json!({}),
            &CommandContext::default(),
        )
        .await
        .expect("psp order");
    settle_success(&app, merchant.id, payment_id).await;
    assert_eq!(
        next_statuses(&mut stream, &mut buffer, 3).await,
        ["pending", "succeeded"],
        "every status in order, and the stream ends at the final one"
    );
}
