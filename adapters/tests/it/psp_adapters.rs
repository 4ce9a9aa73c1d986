//! Each PSP adapter against a loopback wiremock server speaking the documented formats:
//! create order (and the idempotent re-create path), status, credential checks, and the
//! classification of 5xx, 429, timeouts, 4xx and garbage answers.

use std::time::Duration;

use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::psp::{
    CashfreeMode, CheckoutData, Customer, OrderRequest, PaymentOutcome, PspAccount, PspClient,
    PspCredentials, PspError, psp_reference,
};
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::{Paise, PaymentId};
use serde_json::json;
use wiremock::matchers::{
    basic_auth, body_partial_json, body_string_contains, header, method, path, query_param,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client() -> PspClient {
    PspClient::new(&HttpConfig {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_millis(500),
    })
    .expect("client")
}

fn order() -> OrderRequest {
    OrderRequest {
        payment_id: PaymentId::new(),
        amount: Paise(49900),
        currency: "INR".into(),
        customer: Customer {
            name: Some("Asha".into()),
            email: Some("asha@example.com".into()),
            phone: Some("9999999999".into()),
        },
        callback_url: "https://api.example/webhooks/psp/gw1".into(),
        return_url: "https://api.example/pay/return".into(),
        description: "Premium Plan".into(),
    }
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

mod razorpay {
    use super::*;

    fn account(server: &MockServer) -> PspAccount {
        PspAccount::test(PspCredentials::Razorpay {
            key_id: "rzp_test_key".into(),
            key_secret: Secret::from("rzp_secret"),
            webhook_secret: Secret::from("whsec_test_123"),
        })
        .with_base_url(server.uri())
    }

    fn order_json(id: &str, receipt: &str, amount: i64) -> serde_json::Value {
        let mut order: serde_json::Value =
            serde_json::from_slice(&fixture("psp/razorpay/order_created.json")).expect("JSON");
        order["id"] = json!(id);
        order["receipt"] = json!(receipt);
        order["amount"] = json!(amount);
        order
    }

    #[tokio::test]
    async fn creates_an_order_after_looking_for_one() {
        let server = MockServer::start().await;
        let order = order();
        let reference = psp_reference(order.payment_id);
        Mock::given(method("GET"))
            .and(path("/v1/orders"))
            .and(query_param("receipt", reference.as_str()))
            .and(basic_auth("rzp_test_key", "rzp_secret"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"entity":"collection","count":0,"items":[]})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/orders"))
            .and(basic_auth("rzp_test_key", "rzp_secret"))
            .and(body_partial_json(json!({
                "amount": 49900, "currency": "INR", "receipt": reference,
                "notes": {"lightspeed_reference": reference},
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(order_json(
                "order_NEW1",
                &reference,
                49900,
            )))
            .expect(1)
            .mount(&server)
            .await;

        let created = client()
            .create_order(&account(&server), &order)
            .await
            .unwrap();
        assert_eq!(created.psp_order_id, "order_NEW1");
        assert!(!created.reused);
        let CheckoutData::Razorpay {
            key_id,
            order_id,
            amount,
            reference: r,
            ..
        } = created.checkout
        else {
            panic!("not a Razorpay checkout")
        };
        assert_eq!(
            (key_id.as_str(), order_id.as_str(), amount, r),
            ("rzp_test_key", "order_NEW1", Paise(49900), reference)
        );
    }

    #[tokio::test]
    async fn a_redelivered_job_reuses_the_existing_order() {
        let server = MockServer::start().await;
        let order = order();
        let reference = psp_reference(order.payment_id);
        Mock::given(method("GET"))
            .and(path("/v1/orders"))
            .and(query_param("receipt", reference.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "entity":"collection","count":1,"items":[order_json("order_OLD1", &reference, 49900)]
            })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/orders"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;

        let created = client()
            .create_order(&account(&server), &order)
            .await
            .unwrap();
        assert_eq!(
            (created.psp_order_id.as_str(), created.reused),
            ("order_OLD1", true)
        );
    }

    #[tokio::test]
    async fn status_reports_the_capture() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/orders/order_X/payments"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"entity":"collection","count":2,"items":[
                {"id":"pay_F","entity":"payment","amount":49900,"currency":"INR","status":"failed","order_id":"order_X","notes":[],"error_code":"BAD_REQUEST_ERROR","error_description":"Payment failed","created_at":1},
                {"id":"pay_C","entity":"payment","amount":49900,"currency":"INR","status":"captured","order_id":"order_X","notes":{},"error_code":null,"created_at":2}
            ]})))
            .mount(&server)
            .await;
        let status = client()
            .fetch_status(&account(&server), PaymentId::new(), Some("order_X"))
            .await
            .unwrap();
        assert_eq!(
            status.outcome,
            PaymentOutcome::Succeeded {
                amount: Paise(49900)
            }
        );
        assert_eq!(status.psp_payment_id.as_deref(), Some("pay_C"));
    }

    #[tokio::test]
    async fn failures_are_classified() {
        let server = MockServer::start().await;
        let client = client();
        let account = account(&server);
        let order = order();
        let answer = |template: ResponseTemplate| {
            Mock::given(method("GET"))
                .and(path("/v1/orders"))
                .respond_with(template)
                .up_to_n_times(1)
        };

        server.register(answer(ResponseTemplate::new(503))).await;
        assert!(matches!(
            client.create_order(&account, &order).await,
            Err(PspError::Unavailable { .. })
        ));

        server
            .register(answer(
                ResponseTemplate::new(429).insert_header("retry-after", "7"),
            ))
            .await;
        assert_eq!(
            client.create_order(&account, &order).await,
            Err(PspError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            })
        );

        server
            .register(answer(
                ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
            ))
            .await;
        let err = client.create_order(&account, &order).await.unwrap_err();
        assert!(
            matches!(&err, PspError::Unavailable { reason } if reason == "timed out"),
            "{err:?}"
        );
        assert!(err.marks_gateway_failed());

        server
            .register(answer(
                ResponseTemplate::new(400).set_body_bytes(fixture("psp/razorpay/error_400.json")),
            ))
            .await;
        let err = client.create_order(&account, &order).await.unwrap_err();
        assert_eq!(
            err,
            PspError::Rejected {
                code: "BAD_REQUEST_ERROR".into(),
                message: "The amount must be at least INR 1.00".into()
            }
        );
        assert!(!err.is_retryable());

        server
            .register(answer(
                ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
            ))
            .await;
        assert!(matches!(
            client.create_order(&account, &order).await,
            Err(PspError::Protocol { .. })
        ));
    }

    #[tokio::test]
    async fn connection_refused_is_unavailable() {
        let account = PspAccount::test(PspCredentials::Razorpay {
            key_id: "k".into(),
            key_secret: Secret::from("s"),
            webhook_secret: Secret::from("w"),
        })
        .with_base_url("http://127.0.0.1:9");
        assert!(matches!(
            client().create_order(&account, &order()).await,
            Err(PspError::Unavailable { .. })
        ));
    }

    #[tokio::test]
    async fn credential_check_reports_status_and_latency() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/orders"))
            .and(query_param("count", "1"))
            .respond_with(ResponseTemplate::new(401).set_body_json(
                json!({"error":{"code":"BAD_REQUEST_ERROR","description":"Authentication failed"}}),
            ))
            .mount(&server)
            .await;
        let check = client().test_credentials(&account(&server)).await.unwrap();
        assert_eq!((check.status, check.accepted), (401, false));
        assert!(check.latency < Duration::from_secs(1));
    }
}

mod payu {
    use super::*;

    fn account(server: &MockServer) -> PspAccount {
        PspAccount::test(PspCredentials::Payu {
            key: "TESTKEY1".into(),
            salt: Secret::from("TESTSALT"),
        })
        .with_base_url(server.uri())
    }

    #[tokio::test]
    async fn creating_is_local_and_repeatable() {
        let server = MockServer::start().await;
        let order = order();
        let first = client()
            .create_order(&account(&server), &order)
            .await
            .unwrap();
        let second = client()
            .create_order(&account(&server), &order)
            .await
            .unwrap();
        assert_eq!(first, second, "the same job signs the same form");
        assert_eq!(first.psp_order_id, psp_reference(order.payment_id));
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn status_uses_verify_payment() {
        let server = MockServer::start().await;
        let payment = PaymentId::new();
        let reference = psp_reference(payment);
        let hash = lightspeed_adapters::psp::payu::api_hash(
            "TESTKEY1",
            "verify_payment",
            &reference,
            "TESTSALT",
        );
        let sample = String::from_utf8(fixture("psp/payu/verify_payment_response.json")).unwrap();
        Mock::given(method("POST"))
            .and(path("/merchant/postservice.php"))
            .and(query_param("form", "2"))
            .and(body_string_contains("command=verify_payment"))
            .and(body_string_contains(format!("var1={reference}")))
            .and(body_string_contains(format!("hash={hash}")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string(sample.replace("7fa6c4783a363b3da573", &reference)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let status = client()
            .fetch_status(&account(&server), payment, None)
            .await
            .unwrap();
        assert_eq!(
            status.outcome,
            PaymentOutcome::Succeeded {
                amount: Paise(1000)
            }
        );
        assert_eq!(status.psp_payment_id.as_deref(), Some("403993715521889530"));
    }

    #[tokio::test]
    async fn an_unknown_txnid_is_pending() {
        let server = MockServer::start().await;
        let payment = PaymentId::new();
        let reference = psp_reference(payment);
        Mock::given(method("POST"))
            .and(path("/merchant/postservice.php"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "status":0,"msg":"0 out of 1 Transactions Fetched Successfully",
                "transaction_details":{ reference.clone(): {"mihpayid":"Not Found","status":"Not Found"}}
            })))
            .mount(&server)
            .await;
        let status = client()
            .fetch_status(&account(&server), payment, None)
            .await
            .unwrap();
        assert_eq!(status.outcome, PaymentOutcome::Pending);
    }
}

mod cashfree {
    use super::*;

    fn account(server: &MockServer) -> PspAccount {
        PspAccount::test(PspCredentials::Cashfree {
            client_id: "cf_id".into(),
            client_secret: Secret::from("cf_secret"),
        })
        .with_base_url(server.uri())
    }

    fn order_json(order_id: &str, amount: &str) -> String {
        let sample = String::from_utf8(fixture("psp/cashfree/order_created.json")).expect("UTF-8");
        sample
            .replace("order_3242Tq4Edj9CC5RDcMeobmJOWOBJij", order_id)
            .replace(
                r#""order_amount":22"#,
                &format!(r#""order_amount":{amount}"#),
            )
    }

    #[tokio::test]
    async fn creates_an_order_with_exact_rupees() {
        let server = MockServer::start().await;
        let order = order();
        let reference = psp_reference(order.payment_id);
        Mock::given(method("POST"))
            .and(path("/orders"))
            .and(header("x-client-id", "cf_id"))
            .and(header("x-client-secret", "cf_secret"))
            .and(header("x-api-version", "2023-08-01"))
            .and(body_string_contains(r#""order_amount":499.00"#))
            .and(body_partial_json(json!({
                "order_id": reference, "order_currency": "INR",
                "customer_details": {"customer_phone": "9999999999"},
                "order_meta": {"notify_url": "https://api.example/webhooks/psp/gw1"},
            })))
            .respond_with(
                ResponseTemplate::new(200).set_body_string(order_json(&reference, "499.00")),
            )
            .expect(1)
            .mount(&server)
            .await;
        let created = client()
            .create_order(&account(&server), &order)
            .await
            .unwrap();
        assert_eq!(created.psp_order_id, reference);
        assert!(!created.reused);
        assert!(matches!(
            created.checkout,
            CheckoutData::Cashfree { ref payment_session_id, mode: CashfreeMode::Sandbox } if payment_session_id.starts_with("session_")
        ));
    }

    #[tokio::test]
    async fn a_conflict_fetches_the_existing_order() {
        let server = MockServer::start().await;
        let order = order();
        let reference = psp_reference(order.payment_id);
        Mock::given(method("POST"))
            .and(path("/orders"))
            .respond_with(ResponseTemplate::new(409).set_body_json(json!({
                "message":"order with same id is already present","code":"order_already_exists","type":"invalid_request_error"
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/orders/{reference}")))
            .respond_with(ResponseTemplate::new(200).set_body_string(order_json(&reference, "499")))
            .expect(1)
            .mount(&server)
            .await;
        let created = client()
            .create_order(&account(&server), &order)
            .await
            .unwrap();
        assert!(created.reused);
        assert_eq!(created.psp_order_id, reference);
    }

    #[tokio::test]
    async fn a_conflict_with_another_amount_is_refused() {
        let server = MockServer::start().await;
        let order = order();
        let reference = psp_reference(order.payment_id);
        Mock::given(method("POST"))
            .and(path("/orders"))
            .respond_with(ResponseTemplate::new(409))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/orders/{reference}")))
            .respond_with(
                ResponseTemplate::new(200).set_body_string(order_json(&reference, "499.01")),
            )
            .mount(&server)
            .await;
        let err = client()
            .create_order(&account(&server), &order)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PspError::Rejected { ref code, .. } if code == "order_amount_mismatch")
        );
    }

    #[tokio::test]
    async fn a_phone_is_required() {
        let server = MockServer::start().await;
        let mut order = order();
        order.customer.phone = None;
        let err = client()
            .create_order(&account(&server), &order)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PspError::Rejected { ref code, .. } if code == "customer_phone_required")
        );
    }

    #[tokio::test]
    async fn status_reads_order_and_payments() {
        let server = MockServer::start().await;
        let payment = PaymentId::new();
        let reference = psp_reference(payment);
        Mock::given(method("GET"))
            .and(path(format!("/orders/{reference}")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string(order_json(&reference, "10.34").replace("ACTIVE", "PAID")),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/orders/{reference}/payments")))
            .respond_with(ResponseTemplate::new(200).set_body_string(
                r#"[{"cf_payment_id":91234,"payment_status":"SUCCESS","payment_amount":10.34,"payment_message":"ok"},{"cf_payment_id":"91233","payment_status":"FAILED","payment_amount":10.34}]"#,
            ))
            .mount(&server)
            .await;
        let status = client()
            .fetch_status(&account(&server), payment, None)
            .await
            .unwrap();
        assert_eq!(
            status.outcome,
            PaymentOutcome::Succeeded {
                amount: Paise(1034)
            }
        );
        assert_eq!(status.psp_payment_id.as_deref(), Some("91234"));
    }

    #[tokio::test]
    async fn unknown_orders_are_pending_and_probes_accept_404() {
        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(404).set_body_json(json!({"message":"order not found","code":"order_not_found","type":"invalid_request_error"}))).mount(&server).await;
        let status = client()
            .fetch_status(&account(&server), PaymentId::new(), None)
            .await
            .unwrap();
        assert_eq!(status.outcome, PaymentOutcome::Pending);
        let check = client().test_credentials(&account(&server)).await.unwrap();
        assert_eq!((check.status, check.accepted), (404, true));
    }
}

mod phonepe {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use lightspeed_adapters::psp::phonepe::{pay_checksum, status_checksum};

    use super::*;

    const SALT: &str = "099eb0cd-02cf-4e2a-8aca-3e6c6aff0399";

    fn account(server: &MockServer) -> PspAccount {
        PspAccount::test(PspCredentials::Phonepe {
            merchant_id: "PGTESTPAYUAT".into(),
            salt_key: Secret::from(SALT),
            salt_index: 1,
        })
        .with_base_url(server.uri())
    }

    fn status_body(reference: &str, state: &str, code: &str) -> serde_json::Value {
        json!({"success": true, "code": code, "message": "m", "data": {
            "merchantId": "PGTESTPAYUAT", "merchantTransactionId": reference, "transactionId": "T1",
            "amount": 49900, "state": state, "responseCode": "SUCCESS"
        }})
    }

    #[tokio::test]
    async fn creates_a_pay_page_with_a_valid_checksum() {
        let server = MockServer::start().await;
        let order = order();
        let reference = psp_reference(order.payment_id);
        Mock::given(method("POST"))
            .and(path("/pg/v1/pay"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "success": true, "code": "PAYMENT_INITIATED", "message": "Payment initiated",
                "data": {"merchantId": "PGTESTPAYUAT", "merchantTransactionId": reference,
                         "instrumentResponse": {"type": "PAY_PAGE", "redirectInfo": {"url": "https://mercury-uat.phonepe.com/transact/pg?token=abc", "method": "GET"}}}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let created = client()
            .create_order(&account(&server), &order)
            .await
            .unwrap();
        assert_eq!(created.psp_order_id, reference);
        assert_eq!(
            created.checkout,
            CheckoutData::Phonepe {
                redirect_url: "https://mercury-uat.phonepe.com/transact/pg?token=abc".into()
            }
        );

        let request = &server.received_requests().await.unwrap()[0];
        let body: serde_json::Value = request.body_json().unwrap();
        let encoded = body["request"].as_str().unwrap();
        assert_eq!(
            request.headers["x-verify"].to_str().unwrap(),
            pay_checksum(encoded, SALT, 1)
        );
        let payload: serde_json::Value =
            serde_json::from_slice(&BASE64.decode(encoded).unwrap()).unwrap();
        assert_eq!(payload["merchantTransactionId"], json!(reference));
        assert_eq!(payload["amount"], json!(49900));
        assert_eq!(payload["paymentInstrument"], json!({"type": "PAY_PAGE"}));
    }

    #[tokio::test]
    async fn a_duplicate_answers_with_the_existing_status() {
        let server = MockServer::start().await;
        let order = order();
        let reference = psp_reference(order.payment_id);
        Mock::given(method("POST"))
            .and(path("/pg/v1/pay"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"success": false, "code": "INVALID_TRANSACTION_ID", "message": "Duplicate TransactionID"})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/pg/v1/status/PGTESTPAYUAT/{reference}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(status_body(
                &reference,
                "COMPLETED",
                "PAYMENT_SUCCESS",
            )))
            .expect(1)
            .mount(&server)
            .await;
        let err = client()
            .create_order(&account(&server), &order)
            .await
            .unwrap_err();
        let PspError::OrderExists { status } = err else {
            panic!("expected OrderExists, got {err:?}")
        };
        assert_eq!(
            status.outcome,
            PaymentOutcome::Succeeded {
                amount: Paise(49900)
            }
        );
    }

    #[tokio::test]
    async fn status_is_signed_and_names_the_merchant() {
        let server = MockServer::start().await;
        let payment = PaymentId::new();
        let reference = psp_reference(payment);
        Mock::given(method("GET"))
            .and(path(format!("/pg/v1/status/PGTESTPAYUAT/{reference}")))
            .and(header("x-merchant-id", "PGTESTPAYUAT"))
            .and(header(
                "x-verify",
                status_checksum("PGTESTPAYUAT", &reference, SALT, 1).as_str(),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(status_body(
                &reference,
                "PENDING",
                "PAYMENT_PENDING",
            )))
            .expect(1)
            .mount(&server)
            .await;
        let status = client()
            .fetch_status(&account(&server), payment, None)
            .await
            .unwrap();
        assert_eq!(status.outcome, PaymentOutcome::Pending);
    }

    #[tokio::test]
    async fn server_errors_are_unavailable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(502))
            .mount(&server)
            .await;
        assert!(matches!(
            client().create_order(&account(&server), &order()).await,
            Err(PspError::Unavailable { .. })
        ));
    }
}
