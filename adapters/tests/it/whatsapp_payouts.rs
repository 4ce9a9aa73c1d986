//! WhatsApp providers and RazorpayX payouts against loopback wiremock servers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use lightspeed_adapters::http::{HttpConfig, build_client};
use lightspeed_adapters::payouts::{
    IDEMPOTENCY_HEADER, IdempotencyKey, PayoutClient, PayoutError, PayoutMode, PayoutRequest,
    PayoutStatus, RazorpayXCredentials,
};
use lightspeed_adapters::secrets::{Keyring, Secret};
use lightspeed_adapters::whatsapp::{
    GupshupClient, GupshupConfig, MetaCloudClient, TemplateMessage, WhatsAppError, WhatsAppProvider,
};
use lightspeed_domain::{ManualClock, Paise, PayoutId};
use serde_json::json;
use wiremock::matchers::{
    basic_auth, bearer_token, body_json, body_partial_json, body_string_contains, header, method,
    path,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

fn http() -> reqwest::Client {
    build_client(&HttpConfig {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
    })
    .expect("HTTP client")
}

fn message() -> TemplateMessage {
    TemplateMessage {
        to: "919867800451".into(),
        template: "order_confirmation".into(),
        language: "en".into(),
        body_params: vec!["Asha".into(), "ORD-9271".into()],
        button_url_param: Some("ORD-9271".into()),
    }
}

mod meta {
    use super::*;

    fn client(server: &MockServer) -> MetaCloudClient {
        MetaCloudClient::new(
            http(),
            Some(server.uri()),
            "1234567890",
            Secret::from("EAAG-token"),
        )
    }

    #[tokio::test]
    async fn sends_the_documented_template_json() {
        let server = MockServer::start().await;
        let expected: serde_json::Value =
            serde_json::from_slice(&fixture("whatsapp/meta_template_request.json")).unwrap();
        Mock::given(method("POST"))
            .and(path("/1234567890/messages"))
            .and(bearer_token("EAAG-token"))
            .and(body_json(expected))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_bytes(fixture("whatsapp/meta_send_response.json")),
            )
            .expect(1)
            .mount(&server)
            .await;
        let provider: &dyn WhatsAppProvider = &client(&server);
        let id = provider.send_template(&message()).await.unwrap();
        assert_eq!(
            id,
            "wamid.HBgMOTE5OTk5NTk1MzEzFQIAERgSNkUyMjIwMjEzNjU5N0E2MzEwAA=="
        );
    }

    #[tokio::test]
    async fn classifies_errors() {
        let server = MockServer::start().await;
        let cases = [
            (
                ResponseTemplate::new(400)
                    .set_body_bytes(fixture("whatsapp/meta_error_rate_limit.json")),
                "rate",
            ),
            (
                ResponseTemplate::new(429).insert_header("retry-after", "30"),
                "rate",
            ),
            (
                ResponseTemplate::new(401)
                    .set_body_bytes(fixture("whatsapp/meta_error_token_expired.json")),
                "token",
            ),
            (ResponseTemplate::new(500), "unavailable"),
            (
                ResponseTemplate::new(400).set_body_json(
                    json!({"error":{"code":132001,"message":"Template name does not exist"}}),
                ),
                "rejected",
            ),
        ];
        for (template, expected) in cases {
            server.reset().await;
            Mock::given(method("POST"))
                .respond_with(template)
                .mount(&server)
                .await;
            let err = client(&server).send_template(&message()).await.unwrap_err();
            let kind = match err {
                WhatsAppError::RateLimited { .. } => "rate",
                WhatsAppError::TokenExpired => "token",
                WhatsAppError::Unavailable { .. } => "unavailable",
                WhatsAppError::Rejected { .. } => "rejected",
                WhatsAppError::Protocol { .. } => "protocol",
            };
            assert_eq!(kind, expected);
            assert!(!format!("{err:?}{err}").contains("EAAG-token"));
        }
    }
}

mod gupshup {
    use super::*;

    const APP: &str = "app-0001";

    fn start() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
    }

    fn client(server: &MockServer, clock: &ManualClock) -> Arc<GupshupClient> {
        let mut config = GupshupConfig::new(
            APP,
            "ops@lightspeed.example",
            Secret::from("client-secret"),
            "917834811114",
            "LightSpeed",
        );
        config.base_url = server.uri();
        Arc::new(GupshupClient::with_http(
            http(),
            config,
            Arc::new(Keyring::random("k").expect("keyring")),
            Arc::new(clock.clone()),
        ))
    }

    async fn mount_login(server: &MockServer) {
        Mock::given(method("POST"))
            .and(path("/partner/account/login"))
            .and(body_string_contains("email=ops%40lightspeed.example"))
            .and(body_string_contains("secret=client-secret"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_bytes(fixture("whatsapp/gupshup_login_response.json")),
            )
            .mount(server)
            .await;
    }

    fn app_token(token: &str) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(
            json!({"status":"success","token":{"token":token,"expiresOn":0,"active":true}}),
        )
    }

    async fn burst(client: &Arc<GupshupClient>, n: usize) -> Vec<Result<String, WhatsAppError>> {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let client = Arc::clone(client);
            tasks.spawn(async move { client.send_template(&message()).await });
        }
        let mut results = Vec::new();
        while let Some(result) = tasks.join_next().await {
            results.push(result.expect("send task"));
        }
        results
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expiring_token_is_renewed_once_under_a_burst() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("GET"))
            .and(path(format!("/partner/app/{APP}/token/")))
            .and(header("authorization", "partner-token-0001"))
            .respond_with(app_token("sk_current"))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/partner/app/{APP}/template/msg")))
            .and(header("authorization", "sk_current"))
            .and(body_string_contains("destination=919867800451"))
            .and(body_string_contains("src.name=LightSpeed"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_bytes(fixture("whatsapp/gupshup_send_response.json")),
            )
            .mount(&server)
            .await;
        let clock = ManualClock::new(start());
        let client = client(&server, &clock);

        assert_eq!(
            client.send_template(&message()).await.unwrap(),
            "ac08ea83-99fa-4d43-a03c-317e4011503c"
        );
        assert_eq!(client.login_count(), 1);
        assert!(burst(&client, 10).await.iter().all(Result::is_ok));
        assert_eq!(client.login_count(), 1, "a fresh token is reused");

        // Five minutes before the 24 h expiry: inside the renewal margin.
        clock.advance(chrono::Duration::hours(24) - chrono::Duration::minutes(5));
        let results = burst(&client, 25).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(
            client.login_count(),
            2,
            "exactly one renewal for the whole burst"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_token_is_renewed_once_and_each_send_retried_once() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("GET"))
            .and(path(format!("/partner/app/{APP}/token/")))
            .respond_with(app_token("sk_revoked"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/partner/app/{APP}/token/")))
            .respond_with(app_token("sk_new"))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(header("authorization", "sk_revoked"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(json!({"status":"error","message":"Authentication Failed"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/partner/app/{APP}/template/msg")))
            .and(header("authorization", "sk_new"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_bytes(fixture("whatsapp/gupshup_send_response.json")),
            )
            .mount(&server)
            .await;
        let clock = ManualClock::new(start());
        let client = client(&server, &clock);

        let results = burst(&client, 20).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(
            client.login_count(),
            2,
            "the first login plus exactly one renewal"
        );
        let sends: Vec<_> = server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.url.path().ends_with("/template/msg"))
            .collect();
        let with = |token: &str| {
            sends
                .iter()
                .filter(|r| r.headers["authorization"] == token)
                .count()
        };
        // How many sends saw the revoked token depends on scheduling; none is tried twice with it.
        assert_eq!(with("sk_new"), 20, "every message delivered once");
        assert!((1..=20).contains(&with("sk_revoked")));
    }

    #[tokio::test]
    async fn a_token_refused_twice_is_reported() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("GET"))
            .respond_with(app_token("sk_bad"))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/partner/app/{APP}/template/msg")))
            .respond_with(ResponseTemplate::new(401))
            .expect(2)
            .mount(&server)
            .await;
        let clock = ManualClock::new(start());
        let err = client(&server, &clock)
            .send_template(&message())
            .await
            .unwrap_err();
        assert_eq!(err, WhatsAppError::TokenExpired);
    }

    #[tokio::test]
    async fn rate_limits_and_rejections() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("GET"))
            .respond_with(app_token("sk_current"))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/partner/app/{APP}/template/msg")))
            .respond_with(
                ResponseTemplate::new(429)
                    .set_body_bytes(fixture("whatsapp/gupshup_rate_limited.json")),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/partner/app/{APP}/template/msg")))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(json!({"status":"error","message":"Invalid Destination"})),
            )
            .mount(&server)
            .await;
        let clock = ManualClock::new(start());
        let client = client(&server, &clock);
        assert_eq!(
            client.send_template(&message()).await,
            Err(WhatsAppError::RateLimited { retry_after: None })
        );
        assert_eq!(
            client.send_template(&message()).await,
            Err(WhatsAppError::Rejected {
                code: "400".into(),
                message: "Invalid Destination".into()
            })
        );
    }
}

mod payouts {
    use super::*;

    fn client(server: &MockServer) -> PayoutClient {
        let credentials = RazorpayXCredentials {
            key_id: "rzp_test_x".into(),
            key_secret: Secret::from("x_secret"),
            webhook_secret: Secret::from("x_hook"),
        };
        PayoutClient::new(http(), credentials, Some(server.uri()))
    }

    fn request() -> PayoutRequest {
        PayoutRequest {
            account_number: "7878780080316316".into(),
            fund_account_id: "fa_00000000000001".into(),
            amount: Paise(1_000_000),
            currency: "INR".into(),
            mode: PayoutMode::Imps,
            purpose: "payout".into(),
            queue_if_low_balance: true,
            reference_id: "0190f0c2-7d7e-7a4b-9a1e-3f5c2b1d0e9f".into(),
            narration: "LightSpeed commission".into(),
            notes: Default::default(),
        }
    }

    #[tokio::test]
    async fn sends_the_idempotency_key_on_every_try() {
        let server = MockServer::start().await;
        let key = IdempotencyKey::for_payout(PayoutId::new());
        Mock::given(method("POST"))
            .and(path("/v1/payouts"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/payouts"))
            .and(basic_auth("rzp_test_x", "x_secret"))
            .and(header(IDEMPOTENCY_HEADER, key.as_str()))
            .and(body_partial_json(json!({
                "account_number": "7878780080316316", "fund_account_id": "fa_00000000000001",
                "amount": 1000000, "currency": "INR", "mode": "IMPS", "purpose": "payout",
                "queue_if_low_balance": true, "narration": "LightSpeed commission",
            })))
            .respond_with(
                ResponseTemplate::new(200).set_body_bytes(fixture("razorpayx/payout_queued.json")),
            )
            .mount(&server)
            .await;
        let client = client(&server);
        assert!(matches!(
            client.create_payout(&request(), &key).await,
            Err(PayoutError::Unavailable { .. })
        ));
        let payout = client.create_payout(&request(), &key).await.unwrap();
        assert_eq!(payout.status, PayoutStatus::Queued);
        assert_eq!(payout.id, "pout_00000000000001");

        let tries = server.received_requests().await.unwrap();
        assert_eq!(tries.len(), 2);
        assert!(
            tries
                .iter()
                .all(|r| r.headers[IDEMPOTENCY_HEADER] == key.as_str())
        );
        assert_eq!(
            tries[0].body, tries[1].body,
            "a retry sends the identical body"
        );
    }

    #[tokio::test]
    async fn refusals_are_rejected_and_bad_input_never_leaves() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error":{"code":"BAD_REQUEST_ERROR","description":"Different request body sent for the same Idempotency Header"}})))
            .expect(1)
            .mount(&server)
            .await;
        let key = IdempotencyKey::for_payout(PayoutId::new());
        let err = client(&server)
            .create_payout(&request(), &key)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PayoutError::Rejected { ref code, .. } if code == "BAD_REQUEST_ERROR")
        );
        let mut small = request();
        small.amount = Paise(99);
        assert!(matches!(
            client(&server).create_payout(&small, &key).await,
            Err(PayoutError::Rejected { .. })
        ));
        let mut long = request();
        long.narration = "Commission for November 2026 and more".into();
        assert!(matches!(
            client(&server).create_payout(&long, &key).await,
            Err(PayoutError::Rejected { .. })
        ));
    }

    #[tokio::test]
    async fn fetches_a_payout() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/payouts/pout_00000000000001"))
            .respond_with(
                ResponseTemplate::new(200).set_body_bytes(fixture("razorpayx/payout_queued.json")),
            )
            .mount(&server)
            .await;
        let payout = client(&server)
            .fetch_payout("pout_00000000000001")
            .await
            .unwrap();
        assert_eq!(payout.amount, Paise(1_000_000));
        assert!(client(&server).fetch_payout("../v1/secret").await.is_err());
    }
}
