//! PayU, Cashfree and PhonePe refunds against loopback wiremock servers speaking each PSP's
//! documented format: the request on the wire, the never-twice paths (PayU's 106, Cashfree's
//! 409, PhonePe's look-up before create), status parsing and the classification of refusals.

use std::time::Duration;

use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::psp::{
    PspAccount, PspClient, PspCredentials, PspError, RefundRequest, psp_reference, refund_reference,
};
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::psp_outcome::RefundState;
use lightspeed_domain::{Paise, PaymentId, RefundId};
use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

/// The ids the fixtures were written for: their references are `R02ySWtwKmVZt06kzVuKdUB` and
/// `02ySWtwKmVZt0686TNaoLq`.
const REFUND_UUID: &str = "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b";
const PAYMENT_UUID: &str = "0193a1b2-c3d4-7e5f-8a6b-000000000042";
const MIHPAYID: &str = "403993715521937565";

fn client() -> PspClient {
    PspClient::new(&HttpConfig {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_millis(500),
    })
    .expect("client")
}

fn refund(amount: i64) -> RefundRequest {
    RefundRequest {
        payment_id: PaymentId(Uuid::parse_str(PAYMENT_UUID).expect("uuid")),
        refund_id: RefundId(Uuid::parse_str(REFUND_UUID).expect("uuid")),
        amount: Paise(amount),
        psp_order_id: None,
        psp_payment_id: Some(MIHPAYID.into()),
        reason: "Customer returned the item".into(),
        callback_url: "https://api.example/webhooks/psp/gw1?kind=refund&v=1".into(),
    }
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../fixtures/psp/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

#[test]
fn the_fixtures_name_these_ids() {
    let r = refund(1);
    assert_eq!(refund_reference(r.refund_id), "R02ySWtwKmVZt06kzVuKdUB");
    assert_eq!(psp_reference(r.payment_id), "02ySWtwKmVZt0686TNaoLq");
}

mod payu {
    use lightspeed_adapters::psp::payu::api_hash;

    use super::*;

    fn account(server: &MockServer) -> PspAccount {
        PspAccount::test(PspCredentials::Payu {
            key: "TESTKEY1".into(),
            salt: Secret::from("TESTSALT"),
        })
        .with_base_url(server.uri())
    }

    fn command(name: &str) -> MockBuilder {
        Mock::given(method("POST"))
            .and(path("/merchant/postservice.php"))
            .and(query_param("form", "2"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string_contains(format!("command={name}&")))
    }

    async fn form_of(server: &MockServer, at: usize) -> Vec<(String, String)> {
        let requests = server.received_requests().await.expect("recording");
        form_urlencoded::parse(&requests[at].body)
            .into_owned()
            .collect()
    }

    #[tokio::test]
    async fn a_refund_is_one_signed_cancel_refund_transaction() {
        let server = MockServer::start().await;
        let refund = refund(10000);
        server
            .register(
                command("cancel_refund_transaction")
                    .respond_with(
                        ResponseTemplate::new(200)
                            .set_body_string(fixture("payu/cancel_refund_queued.json")),
                    )
                    .expect(1),
            )
            .await;
        let created = client()
            .create_refund(&account(&server), &refund)
            .await
            .unwrap();
        assert_eq!(created.psp_refund_id.as_deref(), Some("131278422"));
        assert_eq!(created.state, RefundState::Pending);
        assert_eq!(created.amount, Paise(10000));
        let hash = api_hash(
            "TESTKEY1",
            "cancel_refund_transaction",
            MIHPAYID,
            "TESTSALT",
        );
        let callback = refund.callback_url.clone();
        let expected: Vec<(String, String)> = [
            ("key", "TESTKEY1"),
            ("command", "cancel_refund_transaction"),
            ("var1", MIHPAYID),
            ("var2", "R02ySWtwKmVZt06kzVuKdUB"),
            ("var3", "100.00"),
            ("var5", callback.as_str()),
            ("hash", hash.as_str()),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(form_of(&server, 0).await, expected);
        // `&` and `=` inside a value are escaped, unlike the official SDK's encodeURI.
        let raw = &server.received_requests().await.unwrap()[0].body;
        assert!(String::from_utf8_lossy(raw).contains("kind%3Drefund%26v%3D1"));
    }

    #[tokio::test]
    async fn a_reused_token_is_found_with_check_action_status() {
        let server = MockServer::start().await;
        server
            .register(
                command("cancel_refund_transaction")
                    .respond_with(
                        ResponseTemplate::new(200)
                            .set_body_string(fixture("payu/cancel_refund_token_exists.json")),
                    )
                    .expect(1),
            )
            .await;
        server
            .register(
                command("check_action_status")
                    .and(body_string_contains(format!(
                        "var1={MIHPAYID}&var2=payuid&"
                    )))
                    .respond_with(
                        ResponseTemplate::new(200)
                            .set_body_string(fixture("payu/check_action_status_by_payuid.json")),
                    )
                    .expect(1),
            )
            .await;
        let found = client()
            .create_refund(&account(&server), &refund(10000))
            .await
            .unwrap();
        assert_eq!(found.psp_refund_id.as_deref(), Some("131278422"));
        assert_eq!(
            (found.amount, found.state),
            (Paise(10000), RefundState::Pending)
        );
        let form = form_of(&server, 1).await;
        let hash = api_hash("TESTKEY1", "check_action_status", MIHPAYID, "TESTSALT");
        assert!(form.contains(&("hash".to_owned(), hash)));
    }

    #[tokio::test]
    async fn a_reused_token_that_payu_does_not_list_is_not_taken_for_success() {
        let server = MockServer::start().await;
        server
            .register(
                command("cancel_refund_transaction").respond_with(
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"status":0,"msg":"Token already exists"})),
                ),
            )
            .await;
        server
            .register(
                command("check_action_status").respond_with(
                    ResponseTemplate::new(200)
                        .set_body_string(fixture("payu/check_action_status_not_found.json")),
                ),
            )
            .await;
        let err = client()
            .create_refund(&account(&server), &refund(10000))
            .await
            .unwrap_err();
        assert!(matches!(err, PspError::Protocol { .. }), "{err:?}");
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn refusals_and_waits_are_told_apart() {
        let server = MockServer::start().await;
        let answer = |body: serde_json::Value| {
            command("cancel_refund_transaction")
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .up_to_n_times(1)
        };
        server
            .register(answer(
                json!({"status":0,"msg":"Invalid amount","error_code":105}),
            ))
            .await;
        let err = client()
            .create_refund(&account(&server), &refund(10000))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PspError::Rejected { ref code, ref message } if code == "105" && message == "Invalid amount")
        );
        server
            .register(answer(json!({"status":0,"msg":"Same amount same transaction within 5 minutes","error_code":"214"})))
            .await;
        let err = client()
            .create_refund(&account(&server), &refund(10000))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PspError::RateLimited {
                retry_after: Some(Duration::from_secs(300))
            }
        );
    }

    #[tokio::test]
    async fn nothing_is_sent_without_a_mihpayid_or_a_positive_amount() {
        let server = MockServer::start().await;
        let mut no_payment = refund(10000);
        no_payment.psp_payment_id = Some("  ".into());
        let err = client()
            .create_refund(&account(&server), &no_payment)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PspError::Rejected { ref code, .. } if code == "psp_payment_id_required")
        );
        let err = client()
            .create_refund(&account(&server), &refund(0))
            .await
            .unwrap_err();
        assert!(matches!(err, PspError::Rejected { ref code, .. } if code == "invalid_amount"));
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn status_by_request_id_reads_the_refund() {
        let server = MockServer::start().await;
        let listed = fixture("payu/check_action_status_by_payuid.json")
            .replace(&format!("\"{MIHPAYID}\":{{"), "\"131278422\":{")
            .replace(r#""status":"queued""#, r#""status":"SUCCESS""#);
        server
            .register(
                command("check_action_status")
                    .and(body_string_contains("var1=131278422&hash="))
                    // ✔calc from psp-refunds.md §2.
                    .and(body_string_contains("hash=61cfa64dfa40db218858c15d9579442a8ab0d718efc3e024fb48ec5484861afb144f70a0f584fb56b26ceb8137a3fa951417d04b2f021e1e0a830f94283e706e"))
                    .respond_with(ResponseTemplate::new(200).set_body_string(listed))
                    .expect(1),
            )
            .await;
        let found = client()
            .fetch_refund(&account(&server), &refund(10000), Some("131278422"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.state, RefundState::Succeeded);
        assert_eq!(found.amount, Paise(10000));
    }

    #[tokio::test]
    async fn status_without_a_request_id_matches_the_token_and_unknown_is_none() {
        let server = MockServer::start().await;
        let failed = fixture("payu/check_action_status_by_payuid.json")
            .replace(r#""status":"queued""#, r#""status":"failure""#);
        server
            .register(
                command("check_action_status")
                    .respond_with(ResponseTemplate::new(200).set_body_string(failed))
                    .up_to_n_times(1),
            )
            .await;
        let found = client()
            .fetch_refund(&account(&server), &refund(10000), None)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(found.state, RefundState::Failed { .. }));

        let mut other = refund(10000);
        other.refund_id = RefundId(Uuid::nil());
        server
            .register(
                command("check_action_status").respond_with(
                    ResponseTemplate::new(200)
                        .set_body_string(fixture("payu/check_action_status_by_payuid.json")),
                ),
            )
            .await;
        let found = client()
            .fetch_refund(&account(&server), &other, None)
            .await
            .unwrap();
        assert_eq!(found, None, "the listed refund carries another token");
    }
}

mod cashfree {
    use super::*;

    const ORDER: &str = "02ySWtwKmVZt0686TNaoLq";
    const REFUND: &str = "R02ySWtwKmVZt06kzVuKdUB";

    fn account(server: &MockServer) -> PspAccount {
        PspAccount::test(PspCredentials::Cashfree {
            client_id: "cf_id".into(),
            client_secret: Secret::from("cf_secret"),
        })
        .with_base_url(server.uri())
    }

    fn refund_path() -> String {
        format!("/orders/{ORDER}/refunds")
    }

    #[tokio::test]
    async fn a_refund_carries_exact_rupees_and_our_idempotency_key() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(refund_path()))
            .and(header("x-client-id", "cf_id"))
            .and(header("x-client-secret", "cf_secret"))
            .and(header("x-api-version", "2023-08-01"))
            .and(header("x-idempotency-key", REFUND_UUID))
            .respond_with(
                ResponseTemplate::new(200).set_body_string(fixture("cashfree/refund_entity.json")),
            )
            .expect(1)
            .mount(&server)
            .await;
        let created = client()
            .create_refund(&account(&server), &refund(1034))
            .await
            .unwrap();
        assert_eq!(created.psp_refund_id.as_deref(), Some("1553338"));
        assert_eq!(
            (created.amount, created.state),
            (Paise(1034), RefundState::Pending)
        );
        let body = &server.received_requests().await.unwrap()[0].body;
        assert_eq!(
            String::from_utf8_lossy(body),
            format!(
                r#"{{"refund_amount":10.34,"refund_id":"{REFUND}","refund_note":"Customer returned the item"}}"#
            )
        );
    }

    #[tokio::test]
    async fn a_conflict_fetches_the_refund_an_earlier_attempt_made() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(refund_path()))
            .respond_with(ResponseTemplate::new(409).set_body_json(json!({
                "message":"refund with same id is already present","code":"refund_already_exists","type":"invalid_request_error"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let succeeded = fixture("cashfree/refund_entity.json").replace(
            r#""refund_status":"PENDING""#,
            r#""refund_status":"SUCCESS""#,
        );
        Mock::given(method("GET"))
            .and(path(format!("{}/{REFUND}", refund_path())))
            .and(header("x-client-id", "cf_id"))
            .respond_with(ResponseTemplate::new(200).set_body_string(succeeded))
            .expect(1)
            .mount(&server)
            .await;
        let found = client()
            .create_refund(&account(&server), &refund(1034))
            .await
            .unwrap();
        assert_eq!(found.state, RefundState::Succeeded);
    }

    #[tokio::test]
    async fn refusals_keep_cashfree_codes() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(refund_path()))
            .respond_with(ResponseTemplate::new(422).set_body_json(json!({
                "message":"idempotency key reused with another body","code":"request_invalid","type":"idempotency_error"
            })))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        let err = client()
            .create_refund(&account(&server), &refund(1034))
            .await
            .unwrap_err();
        assert!(matches!(err, PspError::Rejected { ref code, .. } if code == "request_invalid"));
        Mock::given(method("POST"))
            .and(path(refund_path()))
            .respond_with(ResponseTemplate::new(502))
            .mount(&server)
            .await;
        let err = client()
            .create_refund(&account(&server), &refund(1034))
            .await
            .unwrap_err();
        assert!(matches!(err, PspError::Unavailable { .. }));
    }

    #[tokio::test]
    async fn status_reads_the_refund_and_unknown_is_none() {
        let server = MockServer::start().await;
        let cancelled = fixture("cashfree/refund_entity.json").replace(
            r#""refund_status":"PENDING""#,
            r#""refund_status":"CANCELLED""#,
        );
        Mock::given(method("GET"))
            .and(path(format!("{}/{REFUND}", refund_path())))
            .respond_with(ResponseTemplate::new(200).set_body_string(cancelled))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        let found = client()
            .fetch_refund(&account(&server), &refund(1034), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            found.state,
            RefundState::Failed {
                code: "CANCELLED".into(),
                reason: "In Progress".into()
            }
        );
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({
                "message":"refund not found","code":"refund_not_found","type":"invalid_request_error"
            })))
            .mount(&server)
            .await;
        assert_eq!(
            client()
                .fetch_refund(&account(&server), &refund(1034), None)
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn an_amount_beyond_paise_is_a_protocol_error() {
        let server = MockServer::start().await;
        let odd = fixture("cashfree/refund_entity.json")
            .replace(r#""refund_amount":10.34"#, r#""refund_amount":10.345"#);
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string(odd))
            .mount(&server)
            .await;
        let err = client()
            .fetch_refund(&account(&server), &refund(1034), None)
            .await
            .unwrap_err();
        assert!(matches!(err, PspError::Protocol { .. }), "{err:?}");
    }
}

mod phonepe {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use lightspeed_adapters::psp::phonepe::{refund_checksum, status_checksum};

    use super::*;

    const SALT: &str = "099eb0cd-02cf-4e2a-8aca-3e6c6aff0399";
    const REFUND: &str = "R02ySWtwKmVZt06kzVuKdUB";

    fn account(server: &MockServer) -> PspAccount {
        PspAccount::test(PspCredentials::Phonepe {
            merchant_id: "PGTESTPAYUAT".into(),
            salt_key: Secret::from(SALT),
            salt_index: 1,
        })
        .with_base_url(server.uri())
    }

    fn status_of_refund() -> MockBuilder {
        Mock::given(method("GET"))
            .and(path(format!("/pg/v1/status/PGTESTPAYUAT/{REFUND}")))
            .and(header("x-merchant-id", "PGTESTPAYUAT"))
            .and(header(
                "x-verify",
                status_checksum("PGTESTPAYUAT", REFUND, SALT, 1).as_str(),
            ))
    }

    fn not_found() -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "success": false, "code": "TRANSACTION_NOT_FOUND", "message": "No Transaction found with the given details.", "data": {}
        }))
    }

    fn refund_state(state: &str, code: &str) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_string(
            fixture("phonepe/refund_callback_decoded.json")
                .replace(r#""state":"COMPLETED""#, &format!(r#""state":"{state}""#))
                .replace(
                    r#""code":"PAYMENT_SUCCESS""#,
                    &format!(r#""code":"{code}""#),
                )
                .replace(
                    r#""responseCode":"SUCCESS""#,
                    &format!(r#""responseCode":"{code}""#),
                ),
        )
    }

    #[tokio::test]
    async fn a_refund_is_looked_up_then_created_signed() {
        let server = MockServer::start().await;
        status_of_refund()
            .respond_with(not_found())
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/pg/v1/refund"))
            .respond_with(
                ResponseTemplate::new(200).set_body_string(fixture("phonepe/refund_response.json")),
            )
            .expect(1)
            .mount(&server)
            .await;
        let created = client()
            .create_refund(&account(&server), &refund(10000))
            .await
            .unwrap();
        assert_eq!(
            created.psp_refund_id.as_deref(),
            Some("TR2212061804281234567890")
        );
        assert_eq!(
            (created.amount, created.state),
            (Paise(10000), RefundState::Pending)
        );

        let requests = server.received_requests().await.unwrap();
        let post = requests
            .iter()
            .find(|r| r.method.as_str() == "POST")
            .unwrap();
        let encoded = post.body_json::<serde_json::Value>().unwrap()["request"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            post.headers["x-verify"].to_str().unwrap(),
            refund_checksum(&encoded, SALT, 1)
        );
        let payload: serde_json::Value =
            serde_json::from_slice(&BASE64.decode(&encoded).unwrap()).unwrap();
        assert_eq!(
            payload,
            json!({
                "merchantId": "PGTESTPAYUAT", "merchantUserId": "U02ySWtwKmVZt0686TNaoLq",
                "originalTransactionId": "02ySWtwKmVZt0686TNaoLq", "merchantTransactionId": REFUND,
                "amount": 10000, "callbackUrl": "https://api.example/webhooks/psp/gw1?kind=refund&v=1",
            })
        );
    }

    #[tokio::test]
    async fn a_refund_phonepe_knows_is_never_created_again() {
        let server = MockServer::start().await;
        status_of_refund()
            .respond_with(refund_state("COMPLETED", "PAYMENT_SUCCESS"))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let found = client()
            .create_refund(&account(&server), &refund(10000))
            .await
            .unwrap();
        assert_eq!(found.state, RefundState::Succeeded);
    }

    #[tokio::test]
    async fn an_ambiguous_answer_is_looked_up_and_never_failed() {
        for code in ["INTERNAL_SERVER_ERROR", "TIMED_OUT", "PAYMENT_PENDING"] {
            let server = MockServer::start().await;
            // Unknown before and after the first answer, and before the second one; known after.
            status_of_refund()
                .respond_with(not_found())
                .up_to_n_times(3)
                .expect(3)
                .mount(&server)
                .await;
            status_of_refund()
                .respond_with(refund_state("PENDING", "PAYMENT_PENDING"))
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path("/pg/v1/refund"))
                .respond_with(
                    ResponseTemplate::new(200).set_body_json(
                        json!({"success": false, "code": code, "message": "try later"}),
                    ),
                )
                .expect(2)
                .mount(&server)
                .await;
            let err = client()
                .create_refund(&account(&server), &refund(10000))
                .await
                .unwrap_err();
            assert!(
                matches!(err, PspError::Unavailable { .. }),
                "{code}: {err:?}"
            );
            let found = client()
                .create_refund(&account(&server), &refund(10000))
                .await
                .unwrap();
            assert_eq!(found.state, RefundState::Pending, "{code}");
        }
    }

    #[tokio::test]
    async fn a_refusal_keeps_phonepe_code() {
        let server = MockServer::start().await;
        status_of_refund()
            .respond_with(not_found())
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/pg/v1/refund"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "success": false, "code": "REVERSAL_WINDOW_EXCEEDED", "message": "Refund window exceeded"
            })))
            .mount(&server)
            .await;
        let err = client()
            .create_refund(&account(&server), &refund(10000))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PspError::Rejected { ref code, .. } if code == "REVERSAL_WINDOW_EXCEEDED")
        );
    }

    #[tokio::test]
    async fn status_reads_every_state_and_unknown_is_none() {
        let server = MockServer::start().await;
        for (state, code, expected) in [
            ("PENDING", "PAYMENT_PENDING", RefundState::Pending),
            ("COMPLETED", "PAYMENT_SUCCESS", RefundState::Succeeded),
            (
                "FAILED",
                "PAYMENT_ERROR",
                RefundState::Failed {
                    code: "PAYMENT_ERROR".into(),
                    reason: "Your request has been successfully completed.".into(),
                },
            ),
            ("SOMETHING_NEW", "PAYMENT_PENDING", RefundState::Pending),
        ] {
            server.reset().await;
            status_of_refund()
                .respond_with(refund_state(state, code))
                .mount(&server)
                .await;
            let found = client()
                .fetch_refund(&account(&server), &refund(10000), None)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(found.state, expected, "{state}");
        }
        server.reset().await;
        status_of_refund()
            .respond_with(not_found())
            .mount(&server)
            .await;
        assert_eq!(
            client()
                .fetch_refund(&account(&server), &refund(10000), None)
                .await
                .unwrap(),
            None
        );
    }
}
