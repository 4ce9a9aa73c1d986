//! The Razorpay adapter's refunds against a loopback fake speaking Razorpay's documented format
//! (`shared/reference/psp-refunds.md` §1): the request's shape and idempotency key, the look-up
//! that keeps a retry from refunding twice, status fetches and the classification of refusals.

use std::time::Duration;

use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::psp::razorpay::{REFERENCE_NOTE, REFUND_REFERENCE_NOTE};
use lightspeed_adapters::psp::{
    PspAccount, PspClient, PspCredentials, PspError, PspRefund, RefundRequest, psp_reference,
    refund_reference,
};
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::psp_outcome::RefundState;
use lightspeed_domain::{Paise, PaymentId, RefundId};
use serde_json::json;
use wiremock::matchers::{basic_auth, body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client() -> PspClient {
    PspClient::new(&HttpConfig {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_millis(500),
    })
    .expect("client")
}

fn account(server: &MockServer) -> PspAccount {
    PspAccount::test(PspCredentials::Razorpay {
        key_id: "rzp_test_key".into(),
        key_secret: Secret::from("rzp_secret"),
        webhook_secret: Secret::from("whsec_test_123"),
    })
    .with_base_url(server.uri())
}

fn refund_request() -> RefundRequest {
    RefundRequest {
        payment_id: PaymentId::new(),
        refund_id: RefundId::new(),
        amount: Paise(2500),
        psp_order_id: Some("order_X".into()),
        psp_payment_id: Some("pay_X".into()),
        reason: "damaged in transit".into(),
        callback_url: "https://api.example/webhooks/psp/gw1".into(),
    }
}

/// The documented refund entity (fixture `refund_created.json`) as Razorpay would answer it.
fn refund_entity(id: &str, refund: &RefundRequest, status: &str) -> serde_json::Value {
    let body = std::fs::read(format!(
        "{}/../fixtures/psp/razorpay/refund_created.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let mut entity: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let reference = refund_reference(refund.refund_id);
    entity["id"] = json!(id);
    entity["amount"] = json!(refund.amount.0);
    entity["payment_id"] = json!("pay_X");
    entity["receipt"] = json!(reference);
    entity["notes"] = json!({ REFUND_REFERENCE_NOTE: reference });
    entity["status"] = json!(status);
    entity
}

fn refund_list(items: Vec<serde_json::Value>) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"entity":"collection","count":items.len(),"items":items}))
}

fn list_refunds() -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/v1/payments/pay_X/refunds"))
        .and(query_param("count", "100"))
}

fn pending(id: &str, amount: Paise) -> PspRefund {
    PspRefund {
        psp_refund_id: Some(id.into()),
        amount,
        state: RefundState::Pending,
    }
}

#[tokio::test]
async fn creates_a_refund_keyed_by_its_reference_after_looking_for_one() {
    let server = MockServer::start().await;
    let refund = refund_request();
    let reference = refund_reference(refund.refund_id);
    list_refunds()
        .and(basic_auth("rzp_test_key", "rzp_secret"))
        .respond_with(refund_list(vec![]))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payments/pay_X/refund"))
        .and(basic_auth("rzp_test_key", "rzp_secret"))
        .and(header("x-refund-idempotency", reference.as_str()))
        .and(body_json(json!({
            "amount": 2500,
            "speed": "normal",
            "receipt": reference,
            "notes": {
                REFERENCE_NOTE: psp_reference(refund.payment_id),
                REFUND_REFERENCE_NOTE: reference,
                "reason": "damaged in transit",
            },
        })))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(refund_entity("rfnd_NEW", &refund, "pending")),
        )
        .expect(1)
        .mount(&server)
        .await;

    let created = client()
        .create_refund(&account(&server), &refund)
        .await
        .unwrap();
    assert_eq!(created, pending("rfnd_NEW", Paise(2500)));
}

#[tokio::test]
async fn a_retry_after_a_timeout_finds_the_refund_instead_of_creating_a_second() {
    let server = MockServer::start().await;
    let refund = refund_request();
    list_refunds()
        .respond_with(refund_list(vec![]))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // Razorpay creates the refund, but its answer comes too late.
    Mock::given(method("POST"))
        .and(path("/v1/payments/pay_X/refund"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(refund_entity("rfnd_ONCE", &refund, "pending"))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client();
    let account = account(&server);
    let err = client.create_refund(&account, &refund).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");

    list_refunds()
        .respond_with(refund_list(vec![
            json!({"id":"rfnd_OTHER","entity":"refund","amount":100,"payment_id":"pay_X","notes":[],"receipt":null,"status":"processed"}),
            refund_entity("rfnd_ONCE", &refund, "processed"),
        ]))
        .mount(&server)
        .await;
    let found = client.create_refund(&account, &refund).await.unwrap();
    assert_eq!(
        found,
        PspRefund {
            psp_refund_id: Some("rfnd_ONCE".into()),
            amount: Paise(2500),
            state: RefundState::Succeeded,
        }
    );
}

#[tokio::test]
async fn refusals_and_outages_are_classified() {
    let server = MockServer::start().await;
    let refund = refund_request();
    list_refunds()
        .respond_with(refund_list(vec![]))
        .mount(&server)
        .await;
    let answer = |template: ResponseTemplate| {
        Mock::given(method("POST"))
            .and(path("/v1/payments/pay_X/refund"))
            .respond_with(template)
            .up_to_n_times(1)
    };
    let client = client();
    let account = account(&server);

    let refusal = std::fs::read(format!(
        "{}/../fixtures/psp/razorpay/refund_error_400.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    server
        .register(answer(ResponseTemplate::new(400).set_body_bytes(refusal)))
        .await;
    let err = client.create_refund(&account, &refund).await.unwrap_err();
    assert_eq!(
        err,
        PspError::Rejected {
            code: "BAD_REQUEST_ERROR".into(),
            message: "The refund amount provided is greater than amount captured".into(),
        }
    );
    assert!(!err.is_retryable());

    server.register(answer(ResponseTemplate::new(409))).await;
    let err = client.create_refund(&account, &refund).await.unwrap_err();
    assert!(err.is_retryable(), "a request still in progress: {err:?}");

    server.register(answer(ResponseTemplate::new(502))).await;
    assert!(matches!(
        client.create_refund(&account, &refund).await,
        Err(PspError::Unavailable { .. })
    ));

    let small = RefundRequest {
        amount: Paise(99),
        ..refund.clone()
    };
    assert!(matches!(
        client.create_refund(&account, &small).await,
        Err(PspError::Rejected { code, .. }) if code == "amount_too_small"
    ));
}

#[tokio::test]
async fn fetches_by_refund_id_or_by_reference() {
    let server = MockServer::start().await;
    let refund = refund_request();
    Mock::given(method("GET"))
        .and(path("/v1/refunds/rfnd_KNOWN"))
        .respond_with(ResponseTemplate::new(200).set_body_json(refund_entity(
            "rfnd_KNOWN",
            &refund,
            "failed",
        )))
        .mount(&server)
        .await;
    let client = client();
    let account = account(&server);
    let known = client
        .fetch_refund(&account, &refund, Some("rfnd_KNOWN"))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(known.state, RefundState::Failed { .. }));
    assert!(
        client
            .fetch_refund(&account, &refund, Some("../v1/payments"))
            .await
            .is_err(),
        "ids that would change the path are refused"
    );

    // Without the payment id: the order's captured payment, then its refunds.
    Mock::given(method("GET"))
        .and(path("/v1/orders/order_X/payments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"entity":"collection","count":1,"items":[
            {"id":"pay_X","entity":"payment","amount":10000,"currency":"INR","status":"captured","order_id":"order_X","notes":{},"created_at":2}
        ]})))
        .mount(&server)
        .await;
    list_refunds()
        .respond_with(refund_list(vec![]))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let unknown = RefundRequest {
        psp_payment_id: None,
        ..refund.clone()
    };
    assert_eq!(
        client.fetch_refund(&account, &unknown, None).await.unwrap(),
        None
    );
    list_refunds()
        .respond_with(refund_list(vec![refund_entity(
            "rfnd_FOUND",
            &refund,
            "pending",
        )]))
        .mount(&server)
        .await;
    assert_eq!(
        client.fetch_refund(&account, &unknown, None).await.unwrap(),
        Some(pending("rfnd_FOUND", Paise(2500)))
    );
}
