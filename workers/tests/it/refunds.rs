//! Refunds through the workers: `refund-processing` creates each refund once at a fake
//! Razorpay (its documented refund API, psp-refunds.md §1) on the gateway that captured the
//! payment, PSP refund reports move the refund on `webhook-processing`, reconciliation checks a
//! stale refund, and merchants hear `refund.succeeded` and `payment.refunded`, signed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightspeed_adapters::merchant_webhook::{WebhookSecret, verify};
use lightspeed_adapters::psp::{PspAccount, PspCredentials, refund_reference};
use lightspeed_adapters::secrets::{Secret, generate_webhook_secret};
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::payment::PaymentStatus;
use lightspeed_domain::payment::refunds::RefundStatus;
use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, RefundState, ReportOutcome};
use lightspeed_domain::{GatewayId, MerchantId, Paise, PaymentId, Provider, RefundId};
use lightspeed_eventstore::CommandContext;
use lightspeed_services::{NewGateway, RefundRequest};
use lightspeed_workers::{QueueName, Reconciler, ReconciliationSettings};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::{World, wait_for};

const AMOUNT: i64 = 49_900;

/// A Razorpay account's refunds: list, create (keyed by `X-Refund-Idempotency`) and fetch.
#[derive(Clone, Default)]
struct FakeRazorpay {
    state: Arc<Mutex<Refunds>>,
}

#[derive(Default)]
struct Refunds {
    created: Vec<serde_json::Value>,
    /// Creations answered 503 before one succeeds.
    unavailable: usize,
    /// Creations refused with 400.
    refuse: bool,
}

impl FakeRazorpay {
    fn created(&self) -> Vec<serde_json::Value> {
        self.state.lock().expect("state").created.clone()
    }

    fn set_status(&self, status: &str) {
        for refund in &mut self.state.lock().expect("state").created {
            refund["status"] = status.into();
        }
    }

    fn forget(&self) {
        self.state.lock().expect("state").created.clear();
    }

    fn create(&self, request: &Request, payment: &str) -> ResponseTemplate {
        let mut state = self.state.lock().expect("state");
        if state.unavailable > 0 {
            state.unavailable -= 1;
            return ResponseTemplate::new(503).set_body_string("upstream unavailable");
        }
        if state.refuse {
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": {
                "code": "BAD_REQUEST_ERROR",
                "description": "The payment has been fully refunded already"}}));
        }
        let body: serde_json::Value = request.body_json().expect("refund body");
        let refund = serde_json::json!({
            "id": format!("rfnd_{}", state.created.len() + 1),
            "entity": "refund",
            "amount": body["amount"],
            "currency": "INR",
            "payment_id": payment,
            "notes": body["notes"],
            "receipt": body["receipt"],
            "created_at": 1_797_000_000,
            "status": "pending",
        });
        state.created.push(refund.clone());
        ResponseTemplate::new(200).set_body_json(refund)
    }
}

impl Respond for FakeRazorpay {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let parts: Vec<&str> = request.url.path().trim_matches('/').split('/').collect();
        match (request.method.as_str(), parts.as_slice()) {
            ("POST", ["v1", "payments", payment, "refund"]) => self.create(request, payment),
            ("GET", ["v1", "payments", _, "refunds"]) => {
                let items = self.created();
                ResponseTemplate::new(200).set_body_json(
                    serde_json::json!({"entity": "collection", "count": items.len(), "items": items}),
                )
            }
            ("GET", ["v1", "refunds", id]) => match self
                .created()
                .into_iter()
                .find(|refund| refund["id"] == *id)
            {
                Some(refund) => ResponseTemplate::new(200).set_body_json(refund),
                None => {
                    ResponseTemplate::new(404).set_body_json(serde_json::json!({"error": {
                    "code": "BAD_REQUEST_ERROR", "description": "The id provided does not exist"}}))
                }
            },
            _ => ResponseTemplate::new(404),
        }
    }
}

async fn razorpay() -> (MockServer, FakeRazorpay) {
    let server = MockServer::start().await;
    let fake = FakeRazorpay::default();
    Mock::given(any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    (server, fake)
}

fn creations(requests: &[Request]) -> Vec<&Request> {
    requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/refund"))
        .collect()
}

/// A Razorpay gateway whose API is at `base_url`.
async fn razorpay_gateway(w: &World, merchant: MerchantId, base_url: &str) -> GatewayId {
    let gateway_id = GatewayId::new();
    let account = PspAccount::test(PspCredentials::Razorpay {
        key_id: "rzp_test_refunds".into(),
        key_secret: Secret::from("key-secret"),
        webhook_secret: generate_webhook_secret(),
    })
    .with_base_url(base_url);
    w.ledger
        .register_gateway(
            NewGateway {
                gateway_id,
                merchant_id: merchant,
                provider: Provider::Razorpay,
                label: "razorpay".into(),
                credentials: account.seal(&w.keyring).expect("seal account"),
                settings: GatewaySettings {
                    priority: 1,
                    monthly_limit: None,
                    rpm_cap: None,
                },
                enabled: true,
                at: w.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("register gateway");
    gateway_id
}

/// A succeeded payment on a Razorpay gateway at `base_url`.
async fn paid(w: &World, merchant: MerchantId, base_url: &str, order: &str) -> PaymentId {
    razorpay_gateway(w, merchant, base_url).await;
    let payment_id = w.initiate(merchant, order, AMOUNT).await;
    w.record_order(payment_id).await;
    let report = w.report_success(payment_id, &format!("pay{order}")).await;
    w.ledger
        .settle_outcome(&report, &CommandContext::default())
        .await
        .expect("settle");
    assert_eq!(
        w.payment(payment_id).await.status(),
        PaymentStatus::Succeeded
    );
    payment_id
}

async fn request_refund(w: &World, payment_id: PaymentId, key: &str, amount: i64) -> RefundId {
    let payment = w.payment(payment_id).await;
    let merchant = w
        .ledger
        .current_merchant(payment.merchant_id())
        .await
        .expect("merchant");
    w.ledger
        .request_refund(
            &merchant,
            &RefundRequest {
                payment_id,
                merchant_refund_id: key.into(),
                amount: Paise(amount),
                reason: "returned".into(),
                request_digest: format!("digest-{key}"),
            },
            &CommandContext::default(),
        )
        .await
        .expect("request refund")
        .refund_id
}

async fn refund_reaches(
    w: &World,
    payment_id: PaymentId,
    refund_id: RefundId,
    status: RefundStatus,
) {
    wait_for(&format!("refund {}", status.as_str()), || async {
        let payment = w.payment(payment_id).await;
        (payment.refund(refund_id)?.status == status).then_some(())
    })
    .await;
}

/// What a PSP's refund webhook records (as the intake does once it verified one).
async fn report_refund(
    w: &World,
    payment_id: Option<PaymentId>,
    about: PaymentId,
    refund_id: Option<RefundId>,
    psp_refund_id: &str,
    amount: i64,
    state: RefundState,
) {
    let payment = w.payment(about).await;
    let report = ReportOutcome {
        merchant_id: payment.merchant_id(),
        gateway_id: payment.gateway_id(),
        provider: Provider::Razorpay,
        dedupe_key: format!("refund:{psp_refund_id}:{state:?}"),
        payment_id,
        psp_order_id: None,
        psp_payment_id: None,
        outcome: PspOutcome::Refund {
            refund_id,
            psp_refund_id: Some(psp_refund_id.into()),
            amount: Paise(amount),
            state,
        },
        source: OutcomeSource::Webhook,
        at: w.now(),
    };
    assert!(
        w.ledger
            .report_outcome(report, &CommandContext::default())
            .await
            .expect("report")
    );
}

#[tokio::test]
async fn a_refund_is_created_once_then_settled_by_its_webhook_and_merchants_hear_of_it_signed() {
    let w = World::new().await;
    let (psp, fake) = razorpay().await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hooks)
        .await;
    let merchant = w.merchant(Some(format!("{}/hooks", hooks.uri()))).await;
    let payment_id = paid(&w, merchant.id, &psp.uri(), "ORDR1").await;
    let refund_id = request_refund(&w, payment_id, "RF-1", AMOUNT).await;
    let _refunds = w.start(QueueName::RefundProcessing);
    let _outcomes = w.start(QueueName::WebhookProcessing);
    let _webhooks = w.start(QueueName::MerchantWebhooks);

    refund_reaches(&w, payment_id, refund_id, RefundStatus::Submitted).await;
    let requests = psp.received_requests().await.unwrap_or_default();
    let created = creations(&requests);
    assert_eq!(created.len(), 1, "one refund created at the PSP");
    assert_eq!(
        created[0]
            .headers
            .get("x-refund-idempotency")
            .and_then(|v| v.to_str().ok()),
        Some(refund_reference(refund_id).as_str())
    );
    let body: serde_json::Value = created[0].body_json().expect("JSON");
    assert_eq!(body["amount"], AMOUNT);
    assert_eq!(created[0].url.path(), "/v1/payments/sbp_payORDR1/refund");

    report_refund(
        &w,
        Some(payment_id),
        payment_id,
        Some(refund_id),
        "rfnd_1",
        AMOUNT,
        RefundState::Succeeded,
    )
    .await;
    refund_reaches(&w, payment_id, refund_id, RefundStatus::Succeeded).await;
    let payment = w.payment(payment_id).await;
    assert_eq!(payment.status(), PaymentStatus::Refunded);
    assert_eq!(payment.refunded(), Paise(AMOUNT));

    let secret = WebhookSecret::from_secret(&merchant.webhook_secret).expect("secret");
    let received = wait_for("refund.succeeded and payment.refunded", || async {
        let requests = hooks.received_requests().await.unwrap_or_default();
        let types: Vec<String> = requests
            .iter()
            .filter_map(|r| r.body_json::<serde_json::Value>().ok())
            .filter_map(|b| b["type"].as_str().map(str::to_owned))
            .filter(|t| t.starts_with("refund.") || t == "payment.refunded")
            .collect();
        (types.len() >= 2).then_some(requests)
    })
    .await;
    let about_refunds = |r: &&Request| {
        r.body_json::<serde_json::Value>().is_ok_and(|b| {
            b["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("refund.") || t == "payment.refunded")
        })
    };
    for request in received.iter().filter(about_refunds) {
        verify(&secret, &request.headers, &request.body, w.now()).expect("signed");
        let body: serde_json::Value = request.body_json().expect("JSON");
        assert_eq!(body["data"]["refund"]["refund_id"], "RF-1");
        assert_eq!(body["data"]["refund"]["refunded_total"], AMOUNT);
    }
    let types: Vec<String> = received
        .iter()
        .filter(about_refunds)
        .filter_map(|r| r.body_json::<serde_json::Value>().ok())
        .filter_map(|b| b["type"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(types.len(), 2, "{types:?}");
    assert!(types.contains(&"refund.succeeded".to_owned()));
    assert!(types.contains(&"payment.refunded".to_owned()));
    assert_eq!(fake.created().len(), 1);
}

#[tokio::test]
async fn a_psp_outage_is_retried_and_the_refund_created_once() {
    let w = World::new().await;
    let (psp, fake) = razorpay().await;
    fake.state.lock().expect("state").unavailable = 1;
    let merchant = w.merchant(None).await;
    let payment_id = paid(&w, merchant.id, &psp.uri(), "ORDR2").await;
    let refund_id = request_refund(&w, payment_id, "RF-2", 10_000).await;
    let _refunds = w.start(QueueName::RefundProcessing);

    refund_reaches(&w, payment_id, refund_id, RefundStatus::Submitted).await;
    let requests = psp.received_requests().await.unwrap_or_default();
    assert_eq!(creations(&requests).len(), 2, "a 503, then the creation");
    assert_eq!(fake.created().len(), 1, "one refund at the PSP");
}

#[tokio::test]
async fn a_psp_refusal_fails_the_refund_with_its_reason_and_frees_its_amount() {
    let w = World::new().await;
    let (psp, fake) = razorpay().await;
    fake.state.lock().expect("state").refuse = true;
    let merchant = w.merchant(None).await;
    let payment_id = paid(&w, merchant.id, &psp.uri(), "ORDR3").await;
    let refund_id = request_refund(&w, payment_id, "RF-3", 10_000).await;
    assert_eq!(
        w.payment(payment_id).await.refundable(),
        Paise(AMOUNT - 10_000)
    );
    let _refunds = w.start(QueueName::RefundProcessing);

    refund_reaches(&w, payment_id, refund_id, RefundStatus::Failed).await;
    let payment = w.payment(payment_id).await;
    let failure = payment
        .refund(refund_id)
        .and_then(|r| r.failure.clone())
        .expect("failure");
    assert_eq!(failure.code, "BAD_REQUEST_ERROR");
    assert!(
        failure.reason.contains("fully refunded"),
        "{}",
        failure.reason
    );
    assert_eq!(payment.refundable(), Paise(AMOUNT));
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
}

#[tokio::test]
async fn a_redelivered_refund_request_does_not_call_the_psp_again() {
    let w = World::new().await;
    let (psp, _fake) = razorpay().await;
    let merchant = w.merchant(None).await;
    let payment_id = paid(&w, merchant.id, &psp.uri(), "ORDR4").await;
    let refund_id = request_refund(&w, payment_id, "RF-4", 10_000).await;
    let worker = w.start(QueueName::RefundProcessing);
    refund_reaches(&w, payment_id, refund_id, RefundStatus::Submitted).await;
    worker.stop().await;

    w.forget_consumer_of(QueueName::RefundProcessing, "payment", "RefundRequested")
        .await;
    let _again = w.start_fresh(QueueName::RefundProcessing);
    let requested = w.payment_event(payment_id, "RefundRequested").await;
    w.consumed(QueueName::RefundProcessing, &requested).await;
    let requests = psp.received_requests().await.unwrap_or_default();
    assert_eq!(creations(&requests).len(), 1);
    assert_eq!(
        w.payment(payment_id)
            .await
            .refund(refund_id)
            .map(|r| r.status),
        Some(RefundStatus::Submitted)
    );
}

#[tokio::test]
async fn reconciliation_settles_a_stale_refund_and_recreates_one_the_psp_lost() {
    let w = World::new().await;
    let (psp, fake) = razorpay().await;
    let merchant = w.merchant(None).await;
    let payment_id = paid(&w, merchant.id, &psp.uri(), "ORDR5").await;
    let settled = request_refund(&w, payment_id, "RF-5a", 10_000).await;
    let worker = w.start(QueueName::RefundProcessing);
    refund_reaches(&w, payment_id, settled, RefundStatus::Submitted).await;
    worker.stop().await;
    fake.set_status("processed");

    let reconciler = Reconciler::new(
        w.ledger.clone(),
        w.nats.jetstream.clone(),
        w.nats.config.clone(),
        ReconciliationSettings::default(),
    );
    let early = reconciler.sweep_once().await.expect("sweep");
    assert_eq!(early.stale_refunds, 0, "not stale yet");
    w.advance(Duration::from_secs(31 * 60));
    let sweep = reconciler.sweep_once().await.expect("sweep");
    assert_eq!((sweep.stale_refunds, sweep.refund_checks_queued), (1, 1));
    let _checks = w.start(QueueName::SettlementProcessing);
    refund_reaches(&w, payment_id, settled, RefundStatus::Succeeded).await;

    // A refund still requested that the PSP never received is created, once.
    let lost = request_refund(&w, payment_id, "RF-5b", 5_000).await;
    fake.forget();
    w.advance(Duration::from_secs(2 * 3600));
    let sweep = reconciler.sweep_once().await.expect("sweep");
    assert_eq!((sweep.stale_refunds, sweep.refund_checks_queued), (1, 1));
    refund_reaches(&w, payment_id, lost, RefundStatus::Submitted).await;
    assert_eq!(fake.created().len(), 1);
}

#[tokio::test]
async fn a_refund_racing_a_late_payment_failure_keeps_the_payment_paid_and_refunds_once() {
    let w = World::new().await;
    let (psp, _fake) = razorpay().await;
    let merchant = w.merchant(None).await;
    let payment_id = paid(&w, merchant.id, &psp.uri(), "ORDR6").await;
    let refund_id = request_refund(&w, payment_id, "RF-6", 20_000).await;
    let _outcomes = w.start(QueueName::WebhookProcessing);

    // The payment's late failure webhook and the refund's success arrive together.
    let payment = w.payment(payment_id).await;
    let failure = ReportOutcome {
        merchant_id: payment.merchant_id(),
        gateway_id: payment.gateway_id(),
        provider: Provider::Razorpay,
        dedupe_key: "payment.failed:late".into(),
        payment_id: Some(payment_id),
        psp_order_id: None,
        psp_payment_id: None,
        outcome: PspOutcome::Failed {
            code: "BAD_REQUEST_ERROR".into(),
            reason: "late failure".into(),
        },
        source: OutcomeSource::Webhook,
        at: w.now(),
    };
    w.ledger
        .report_outcome(failure, &CommandContext::default())
        .await
        .expect("report failure");
    report_refund(
        &w,
        None,
        payment_id,
        Some(refund_id),
        "rfnd_9",
        20_000,
        RefundState::Succeeded,
    )
    .await;
    refund_reaches(&w, payment_id, refund_id, RefundStatus::Succeeded).await;
    // A contradiction after the success (reports of one refund are settled in any order, so
    // it is sent only once the success is recorded) changes nothing.
    report_refund(
        &w,
        None,
        payment_id,
        Some(refund_id),
        "rfnd_9",
        20_000,
        RefundState::Failed {
            code: "REFUND_FAILED".into(),
            reason: "a late contradiction".into(),
        },
    )
    .await;
    w.drained(QueueName::WebhookProcessing).await;

    let payment = w.payment(payment_id).await;
    assert_eq!(
        payment.status(),
        PaymentStatus::Succeeded,
        "a failure never undoes a success"
    );
    assert_eq!(payment.refunded(), Paise(20_000));
    assert_eq!(payment.refunds().len(), 1);
    assert_eq!(w.commissions(payment.merchant_id()).await, 1);
    assert_eq!(w.failed_jobs(QueueName::WebhookProcessing).await.0, 0);
}

#[tokio::test]
async fn a_refund_made_at_the_psp_is_recorded_once() {
    let w = World::new().await;
    let (psp, _fake) = razorpay().await;
    let merchant = w.merchant(None).await;
    let payment_id = paid(&w, merchant.id, &psp.uri(), "ORDR7").await;
    let _outcomes = w.start(QueueName::WebhookProcessing);
    report_refund(
        &w,
        Some(payment_id),
        payment_id,
        None,
        "rfnd_dash",
        5_000,
        RefundState::Pending,
    )
    .await;
    report_refund(
        &w,
        Some(payment_id),
        payment_id,
        None,
        "rfnd_dash",
        5_000,
        RefundState::Succeeded,
    )
    .await;
    wait_for("the external refund", || async {
        (w.payment(payment_id).await.refunded() == Paise(5_000)).then_some(())
    })
    .await;
    w.drained(QueueName::WebhookProcessing).await;
    let payment = w.payment(payment_id).await;
    assert_eq!(payment.refunds().len(), 1);
    assert_eq!(payment.refundable(), Paise(AMOUNT - 5_000));
}
