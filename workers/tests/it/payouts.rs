//! Commission payouts: a payout run records each due payout once, and the payouts queue makes
//! exactly one RazorpayX payout per requested payout, however often its job is delivered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightspeed_adapters::payouts::IDEMPOTENCY_HEADER;
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::wallet::{PayoutStatus, WalletCommand};
use lightspeed_domain::{BasisPoints, Paise, PaymentId, Wallet};
use lightspeed_eventstore::{CommandContext, stream_of};
use lightspeed_services::payout_id_for;
use lightspeed_workers::{PayoutSchedule, PayoutSettings, QueueName};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::{World, wait_for};

/// Payouts made, by idempotency key: the payout's id and the body that created it.
type PayoutsByKey = HashMap<String, (String, Vec<u8>)>;

/// A fake RazorpayX `POST /v1/payouts` that honours `X-Payout-Idempotency` as documented: the
/// first request with a key creates a payout, later ones with the same key answer it again.
#[derive(Clone, Default)]
struct FakeRazorpayX {
    payouts: Arc<Mutex<PayoutsByKey>>,
}

impl FakeRazorpayX {
    fn created(&self) -> usize {
        self.payouts.lock().expect("lock").len()
    }
}

impl Respond for FakeRazorpayX {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Some(key) = request
            .headers
            .get(IDEMPOTENCY_HEADER)
            .and_then(|v| v.to_str().ok())
        else {
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": {"code": "BAD_REQUEST_ERROR", "description": "X-Payout-Idempotency is mandatory"}}));
        };
        let mut payouts = self.payouts.lock().expect("lock");
        let next = format!("pout_{:014}", payouts.len() + 1);
        let (id, body) = payouts
            .entry(key.to_owned())
            .or_insert_with(|| (next, request.body.clone()))
            .clone();
        if body != request.body {
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": {"code": "BAD_REQUEST_ERROR", "description": "different request body for the same idempotency key"}}));
        }
        let sent: serde_json::Value = serde_json::from_slice(&body).expect("json body");
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": id, "entity": "payout", "fund_account_id": sent["fund_account_id"],
            "amount": sent["amount"], "currency": "INR", "notes": sent["notes"], "fees": 0, "tax": 0,
            "status": "processing", "utr": null, "mode": sent["mode"], "purpose": sent["purpose"],
            "reference_id": sent["reference_id"], "narration": sent["narration"], "batch_id": null,
            "status_details": null, "created_at": 1_545_383_037
        }))
    }
}

/// Accrues `commission` on a payment whose amount gives exactly that at the default fee.
async fn accrue(w: &World, merchant: lightspeed_domain::MerchantId, commission: i64) {
    let fee = BasisPoints::DEFAULT_FEE;
    let amount = Paise(commission * i64::from(BasisPoints::WHOLE) / i64::from(fee.bps()));
    assert_eq!(
        fee.of(amount),
        Paise(commission),
        "the wallet accepts only this"
    );
    let stream = stream_of::<Wallet>(merchant).expect("stream");
    w.ledger
        .wallets()
        .execute(
            &stream,
            &WalletCommand::AccrueCommission {
                payment_id: PaymentId::new(),
                amount,
                fee,
                commission: Paise(commission),
                at: w.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("accrue");
}

#[tokio::test]
async fn a_redelivered_payout_job_makes_one_payout_at_razorpayx() {
    let mut w = World::new().await;
    let razorpayx = MockServer::start().await;
    let fake = FakeRazorpayX::default();
    Mock::given(method("POST"))
        .and(path("/v1/payouts"))
        .respond_with(fake.clone())
        .mount(&razorpayx)
        .await;
    let mut settings = PayoutSettings::new(
        "rzp_test_key",
        Secret::from("rzpx_key_secret"),
        Secret::from("rzpx_webhook_secret_test"),
        "7878780080316316",
        "fa_00000000000001",
    );
    settings.base_url = Some(razorpayx.uri());
    w.deps.payouts = Some(settings);

    let owing = w.merchant(None).await;
    let below = w.merchant(None).await;
    accrue(&w, owing.id, 150_000).await;
    accrue(&w, below.id, 50_000).await;

    let report = w
        .ledger
        .run_payouts("2026-11-24", Paise(100), &CommandContext::default())
        .await
        .expect("run");
    assert_eq!(report.requested.len(), 1, "{report:?}");
    assert_eq!(report.below_minimum, 1);
    let payout_id = payout_id_for(owing.id, "2026-11-24");
    assert_eq!(report.requested[0].payout_id, payout_id);
    assert_eq!(report.requested[0].amount, Paise(150_000));
    // The same run again (another replica, an admin click) requests nothing new.
    let again = w
        .ledger
        .run_payouts("2026-11-24", Paise(100), &CommandContext::default())
        .await
        .expect("run again");
    assert!(again.requested.is_empty());
    assert_eq!(again.already_requested, 1);
    let wallet = w.ledger.wallet(owing.id).await.expect("wallet");
    assert_eq!(wallet.pending(), Paise(150_000));
    assert_eq!(
        wallet.payout(payout_id).map(|p| p.status),
        Some(PayoutStatus::Pending)
    );

    let worker = w.start(QueueName::Payouts);
    wait_for("the first payout call", || async {
        (!razorpayx.received_requests().await?.is_empty()).then_some(())
    })
    .await;
    w.drained(QueueName::Payouts).await;
    worker.stop().await;
    // Every job is delivered again, as after a crash before the acknowledgement.
    w.forget_consumers(QueueName::Payouts).await;
    let worker = w.start(QueueName::Payouts);
    wait_for("the redelivered call", || async {
        (razorpayx.received_requests().await?.len() >= 2).then_some(())
    })
    .await;
    w.drained(QueueName::Payouts).await;
    worker.stop().await;

    let requests = razorpayx.received_requests().await.expect("requests");
    assert_eq!(requests.len(), 2);
    let keys: Vec<_> = requests
        .iter()
        .map(|r| r.headers.get(IDEMPOTENCY_HEADER).cloned())
        .collect();
    assert_eq!(keys[0], keys[1], "every try sends the same key");
    assert_eq!(
        keys[0].as_ref().and_then(|v| v.to_str().ok()),
        Some(payout_id.to_string().as_str())
    );
    assert_eq!(requests[0].body, requests[1].body, "and the same body");
    assert_eq!(fake.created(), 1, "one payout at RazorpayX");
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).expect("json");
    assert_eq!(body["amount"], 150_000);
    assert_eq!(body["reference_id"], payout_id.to_string());
    assert_eq!(body["account_number"], "7878780080316316");
    assert!(
        !String::from_utf8_lossy(&requests[0].body).contains("rzpx_key_secret"),
        "the key secret travels only in the Authorization header"
    );
}

#[tokio::test]
async fn a_payout_razorpayx_refuses_releases_the_reserved_balance() {
    let mut w = World::new().await;
    let razorpayx = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payouts"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": {"code": "BAD_REQUEST_ERROR", "description": "The fund account is not active"}
        })))
        .mount(&razorpayx)
        .await;
    let mut settings = PayoutSettings::new(
        "rzp_test_key",
        Secret::from("rzpx_key_secret"),
        Secret::from("rzpx_webhook_secret_test"),
        "7878780080316316",
        "fa_00000000000001",
    );
    settings.base_url = Some(razorpayx.uri());
    w.deps.payouts = Some(settings);
    let merchant = w.merchant(None).await;
    accrue(&w, merchant.id, 200_000).await;
    w.ledger
        .run_payouts("2026-11-24", Paise(100), &CommandContext::default())
        .await
        .expect("run");
    let payout_id = payout_id_for(merchant.id, "2026-11-24");

    let worker = w.start(QueueName::Payouts);
    let wallet = wait_for("the refusal recorded", || async {
        let wallet = w.ledger.wallet(merchant.id).await.ok()?;
        (wallet.payout(payout_id)?.status == PayoutStatus::Reversed).then_some(wallet)
    })
    .await;
    w.drained(QueueName::Payouts).await;
    worker.stop().await;
    assert_eq!(wallet.pending(), Paise::ZERO);
    assert_eq!(wallet.balance_due(), Paise(200_000));
    assert_eq!(wallet.available(), Paise(200_000));
}

#[tokio::test]
async fn the_daily_run_requests_each_days_payout_once_at_its_ist_time() {
    let w = World::new().await;
    let merchant = w.merchant(None).await;
    accrue(&w, merchant.id, 150_000).await;
    let schedule = PayoutSchedule {
        recheck: Duration::from_millis(10),
        ..PayoutSchedule::daily(Paise(100))
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(lightspeed_workers::payout_schedule::run(
        w.ledger.clone(),
        schedule,
        async move {
            let _ = stopped.await;
        },
    ));
    // The clock reads 11:30 IST: today's 02:00 run is past, so it is made at start.
    let today = payout_id_for(merchant.id, "2026-11-23");
    wait_for("today's payout", || async {
        let wallet = w.ledger.wallet(merchant.id).await.ok()?;
        wallet.payout(today).map(|_| ())
    })
    .await;
    accrue(&w, merchant.id, 120_000).await;
    // The next run is at 02:00 IST tomorrow, 20:30 UTC today.
    w.advance(Duration::from_secs(14 * 3600 + 30 * 60));
    let tomorrow = payout_id_for(merchant.id, "2026-11-24");
    let wallet = wait_for("tomorrow's payout", || async {
        let wallet = w.ledger.wallet(merchant.id).await.ok()?;
        wallet.payout(tomorrow).map(|_| wallet.clone())
    })
    .await;
    let _ = stop.send(());
    scheduler.await.expect("scheduler");
    assert_eq!(wallet.payout(today).map(|p| p.amount), Some(Paise(150_000)));
    assert_eq!(
        wallet.payout(tomorrow).map(|p| p.amount),
        Some(Paise(120_000))
    );
    assert_eq!(wallet.pending(), Paise(270_000));
}
