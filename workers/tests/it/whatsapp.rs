//! WhatsApp notifications: the sender against fake Meta Cloud API and Gupshup servers on
//! loopback, transaction updates, the low-balance watcher on a manual clock, and the read model.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::secrets::Secret;
use lightspeed_adapters::whatsapp::{GupshupClient, GupshupConfig, MetaCloudClient};
use lightspeed_domain::merchant::{WhatsappContact, WhatsappOptIns};
use lightspeed_domain::merchant_alerts::MerchantAlertsEvent;
use lightspeed_domain::notification::{
    NotificationEvent, NotificationStatus, NotificationType, QueueNotification,
};
use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, ReportOutcome};
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::{
    MerchantAlerts, MerchantId, Notification, NotificationId, Paise, PaymentId, Provider,
};
use lightspeed_eventstore::testing::settled;
use lightspeed_eventstore::{CommandContext, stream_of};
use lightspeed_projections::whatsapp::Whatsapp;
use lightspeed_projections::{ProjectorDeps, RunConfig, run_projection};
use lightspeed_services::Ledger;
use lightspeed_workers::low_balance::{Watchlist, sweep_once};
use lightspeed_workers::{QueueName, WhatsAppSettings, txn_update_id};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::{World, wait_for};

const PHONE_NUMBER_ID: &str = "106540352242922";
const APP_ID: &str = "app-1";
const LOW_BALANCE: &str = "low_balance_v1";
const TXN_UPDATE: &str = "txn_update_v1";

fn settings() -> WhatsAppSettings {
    WhatsAppSettings::new(LOW_BALANCE, TXN_UPDATE)
}

fn http() -> reqwest::Client {
    lightspeed_adapters::http::build_client(&HttpConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
    })
    .expect("HTTP client")
}

/// The World's workers, sending through Meta's Cloud API at `server`.
pub(crate) fn with_meta(world: &mut World, server: &MockServer) {
    let client = MetaCloudClient::new(
        http(),
        Some(server.uri()),
        PHONE_NUMBER_ID,
        Secret::from("meta-system-user-token"),
    );
    world.deps = world
        .deps
        .clone()
        .with_whatsapp(Arc::new(client), settings());
}

pub(crate) fn meta_messages() -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(path(format!("/{PHONE_NUMBER_ID}/messages")))
}

/// Meta's answer to an accepted template send, with a message id of its own.
pub(crate) struct MetaAccepts(pub(crate) AtomicUsize);

impl Respond for MetaAccepts {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let to = request
            .body_json::<serde_json::Value>()
            .ok()
            .and_then(|body| body["to"].as_str().map(str::to_owned))
            .unwrap_or_default();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": format!("wamid.test{n}"), "message_status": "accepted"}],
        }))
    }
}

fn contact(opt_ins: WhatsappOptIns) -> Option<WhatsappContact> {
    Some(WhatsappContact {
        number: "+919867800451".into(),
        opt_ins,
    })
}

async fn queue_notification(world: &World, merchant_id: MerchantId, n: usize) -> NotificationId {
    let notification_id = NotificationId::new();
    world
        .ledger
        .queue_notification(
            QueueNotification {
                notification_id,
                merchant_id,
                kind: NotificationType::TxnUpdate,
                template: TXN_UPDATE.into(),
                recipient: "919867800451".into(),
                params: vec![format!("ORD-{n}"), "₹499.00".into(), "succeeded".into()],
                at: world.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("queue notification");
    notification_id
}

async fn notification(ledger: &Ledger, id: NotificationId) -> Option<Notification> {
    ledger.notification(id).await.expect("load notification")
}

async fn notification_events(world: &World, id: NotificationId) -> Vec<NotificationEvent> {
    let stream = stream_of::<Notification>(id).expect("stream");
    world
        .events(&stream)
        .await
        .iter()
        .map(|e| e.decode().expect("notification event"))
        .collect()
}

async fn wait_status(
    world: &World,
    id: NotificationId,
    status: NotificationStatus,
) -> Notification {
    wait_for(&format!("notification {id} {status:?}"), || async {
        notification(&world.ledger, id)
            .await
            .filter(|n| n.status() == status)
    })
    .await
}

/// Runs the WhatsApp projection until the merchant's usage today reads `sent` sent and `failed`
/// failed (what `GET /merchant/whatsapp/usage` serves).
async fn usage_reads(world: &World, merchant_id: MerchantId, sent: i64, failed: i64) {
    let deps = ProjectorDeps {
        store: world.ledger.store().clone(),
        live: None,
    };
    let projector = tokio::spawn(run_projection(
        Arc::new(Whatsapp),
        deps,
        RunConfig::default(),
    ));
    let today = world
        .now()
        .with_timezone(&lightspeed_domain::calendar::IST)
        .date_naive();
    wait_for("usage read model", || async {
        let usage = lightspeed_projections::whatsapp::usage(
            world.ledger.store().pool(),
            merchant_id.0,
            1,
            today,
        )
        .await
        .ok()?;
        let total_sent: i64 = usage.iter().map(|day| day.sent).sum();
        let total_failed: i64 = usage.iter().map(|day| day.failed).sum();
        (total_sent == sent && total_failed == failed).then_some(())
    })
    .await;
    projector.abort();
}

/// Records a verified PSP report and settles it, as the webhook-processing queue would.
async fn settle(world: &World, payment_id: PaymentId, outcome: PspOutcome) {
    world.record_order(payment_id).await;
    let payment = world.payment(payment_id).await;
    let report = ReportOutcome {
        merchant_id: payment.merchant_id(),
        gateway_id: payment.gateway_id(),
        provider: Provider::Sandbox,
        dedupe_key: format!("report-{payment_id}"),
        payment_id: Some(payment_id),
        psp_order_id: payment.psp_order().map(|o| o.psp_order_id.clone()),
        psp_payment_id: Some(format!("sbp_{payment_id}")),
        outcome,
        source: OutcomeSource::Webhook,
        at: world.now(),
    };
    world
        .ledger
        .report_outcome(report.clone(), &CommandContext::default())
        .await
        .expect("report");
    world
        .ledger
        .settle_outcome(&report, &CommandContext::default())
        .await
        .expect("settle");
}

fn succeeded(amount: i64) -> PspOutcome {
    PspOutcome::Succeeded {
        amount: Paise(amount),
    }
}

fn failed() -> PspOutcome {
    PspOutcome::Failed {
        code: "BAD_REQUEST_ERROR".into(),
        reason: "payment declined by the bank".into(),
    }
}

/// Gupshup's app-token endpoint: every call hands out a new token (`sk_1`, `sk_2`, …).
struct AppTokens(Arc<AtomicUsize>);

impl Respond for AppTokens {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "status": "success",
            "token": {"token": format!("sk_{n}"), "authoriserId": "a", "requestorId": "r",
                      "createdOn": 1_705_905_891_100_i64, "modifiedOn": 1_705_905_891_100_i64,
                      "expiresOn": 0, "active": true},
        }))
    }
}

/// Gupshup's template send: accepts the latest app token; `sk_1` expires after `expires_after`
/// accepted sends (the provider ending its 24 hours in the middle of the burst).
struct GupshupSends {
    issued: Arc<AtomicUsize>,
    accepted: AtomicUsize,
    expires_after: usize,
}

impl Respond for GupshupSends {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let token = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let latest = format!("sk_{}", self.issued.load(Ordering::SeqCst));
        let expired = token == "sk_1" && self.accepted.load(Ordering::SeqCst) >= self.expires_after;
        if token != latest || expired {
            return ResponseTemplate::new(401)
                .set_body_json(serde_json::json!({"status": "error", "message": "Invalid token"}));
        }
        let n = self.accepted.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "status": "submitted",
            "messageId": format!("ac08ea83-99fa-4d43-a03c-{n:012}"),
        }))
    }
}

#[tokio::test]
async fn token_expiry_in_the_middle_of_a_burst_renews_once_and_sends_everything() {
    let mut world = World::new().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/partner/account/login"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"token": "partner-jwt", "id": 1, "name": "LightSpeed", "admin": true}),
        ))
        .mount(&server)
        .await;
    let issued = Arc::new(AtomicUsize::new(0));
    Mock::given(method("GET"))
        .and(path(format!("/partner/app/{APP_ID}/token/")))
        .respond_with(AppTokens(Arc::clone(&issued)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/partner/app/{APP_ID}/template/msg")))
        .respond_with(GupshupSends {
            issued: Arc::clone(&issued),
            accepted: AtomicUsize::new(0),
            expires_after: 5,
        })
        .mount(&server)
        .await;
    let mut config = GupshupConfig::new(
        APP_ID,
        "ops@lightspeed.test",
        Secret::from("client-secret"),
        "917834811114",
        "LightSpeed",
    );
    config.base_url = server.uri();
    let gupshup = Arc::new(GupshupClient::with_http(
        http(),
        config,
        Arc::clone(&world.keyring),
        Arc::new(world.clock.clone()),
    ));
    world.deps = world
        .deps
        .clone()
        .with_whatsapp(gupshup.clone(), settings());
    let merchant = world.merchant(None).await;
    let mut burst = Vec::new();
    for n in 0..20 {
        burst.push(queue_notification(&world, merchant.id, n).await);
    }
    let worker = world.start(QueueName::WhatsappNotifications);
    for id in &burst {
        let sent = wait_status(&world, *id, NotificationStatus::Sent).await;
        // The refused send was renewed and retried within its attempt.
        assert_eq!(sent.attempts(), 1, "{id}");
    }
    worker.stop().await;
    assert_eq!(gupshup.login_count(), 2, "one login, then one renewal");
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    usage_reads(&world, merchant.id, 20, 0).await;
}

#[tokio::test]
async fn a_provider_that_stays_down_gets_four_attempts_then_the_notification_fails() {
    let mut world = World::new().await;
    let server = MockServer::start().await;
    meta_messages()
        .respond_with(ResponseTemplate::new(503))
        .expect(4)
        .mount(&server)
        .await;
    with_meta(&mut world, &server);
    let merchant = world.merchant(None).await;
    let id = queue_notification(&world, merchant.id, 1).await;
    let worker = world.start(QueueName::WhatsappNotifications);
    for attempt in 1..4 {
        wait_for(&format!("attempt {attempt}"), || async {
            notification(&world.ledger, id)
                .await
                .filter(|n| n.attempts() == attempt)
        })
        .await;
        // The longest wait, 2 minutes, with 20 % jitter.
        world.advance(Duration::from_secs(150));
    }
    let failed = wait_status(&world, id, NotificationStatus::Failed).await;
    worker.stop().await;
    assert_eq!(failed.attempts(), 4);
    assert_eq!(failed.last_error().expect("error").code, "unavailable");
    let events = notification_events(&world, id).await;
    let attempts = events
        .iter()
        .filter(|e| matches!(e, NotificationEvent::NotificationAttemptFailed { .. }))
        .count();
    assert_eq!(attempts, 4);
    assert!(matches!(
        events.last(),
        Some(NotificationEvent::NotificationFailed { attempts: 4, .. })
    ));
    usage_reads(&world, merchant.id, 0, 1).await;
    let log = lightspeed_projections::whatsapp::log(
        world.ledger.store().pool(),
        &lightspeed_projections::whatsapp::WhatsappFilter {
            merchant_id: Some(merchant.id.0),
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .expect("whatsapp log");
    let row = &log.items[0];
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 4));
    assert_eq!(row.last_error_code.as_deref(), Some("unavailable"));
    assert!(
        row.last_error_message
            .as_deref()
            .is_some_and(|m| m.contains("503")),
        "{row:?}"
    );
}

#[tokio::test]
async fn a_rate_limit_backs_off_at_least_as_long_as_retry_after_says() {
    let mut world = World::new().await;
    let server = MockServer::start().await;
    meta_messages()
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "900")
                .set_body_json(serde_json::json!({"error": {
                    "message": "(#130429) Rate limit hit", "type": "OAuthException",
                    "code": 130429, "error_subcode": 2494055, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    meta_messages()
        .respond_with(MetaAccepts(AtomicUsize::new(0)))
        .with_priority(2)
        .mount(&server)
        .await;
    with_meta(&mut world, &server);
    let merchant = world.merchant(None).await;
    let id = queue_notification(&world, merchant.id, 1).await;
    let worker = world.start(QueueName::WhatsappNotifications);
    let limited = wait_for("the rate-limited attempt", || async {
        notification(&world.ledger, id)
            .await
            .filter(|n| n.attempts() == 1)
    })
    .await;
    let due = limited.next_attempt_at().expect("another attempt");
    assert_eq!(due, world.now() + chrono::Duration::seconds(900));
    world.advance(Duration::from_secs(900));
    wait_status(&world, id, NotificationStatus::Sent).await;
    worker.stop().await;
    let events = notification_events(&world, id).await;
    let Some(NotificationEvent::NotificationSent { at, attempt, .. }) = events.last() else {
        panic!("not sent: {events:?}");
    };
    assert_eq!(*attempt, 2);
    assert!(*at >= due, "sent at {at}, before {due}");
    assert_eq!(server.received_requests().await.expect("requests").len(), 2);
}

#[tokio::test]
async fn opted_in_merchants_hear_about_successes_and_failures_once_each() {
    let mut world = World::new().await;
    let server = MockServer::start().await;
    meta_messages()
        .respond_with(MetaAccepts(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    with_meta(&mut world, &server);
    let opted_in = world
        .merchant_with(
            None,
            contact(WhatsappOptIns {
                transaction_updates: true,
                ..WhatsappOptIns::default()
            }),
            Thresholds::default(),
        )
        .await;
    let silent = world
        .merchant_with(
            None,
            contact(WhatsappOptIns {
                low_balance: true,
                ..WhatsappOptIns::default()
            }),
            Thresholds::default(),
        )
        .await;
    for merchant in [opted_in.id, silent.id] {
        world.gateway(merchant, 1, &server.uri()).await;
    }
    let paid = world.initiate(opted_in.id, "ORD-1", 49_900).await;
    let declined = world.initiate(opted_in.id, "ORD-2", 10_000).await;
    let unheard = world.initiate(silent.id, "ORD-3", 49_900).await;
    settle(&world, paid, succeeded(49_900)).await;
    settle(&world, declined, failed()).await;
    settle(&world, unheard, succeeded(49_900)).await;

    let worker = world.start(QueueName::WhatsappNotifications);
    let success = txn_update_id(paid, "PaymentSucceeded");
    let failure = txn_update_id(declined, "PaymentFailed");
    let sent = wait_status(&world, success, NotificationStatus::Sent).await;
    assert_eq!(sent.template(), TXN_UPDATE);
    assert_eq!(sent.params(), ["ORD-1", "₹499.00", "succeeded"]);
    let sent = wait_status(&world, failure, NotificationStatus::Sent).await;
    assert_eq!(sent.params(), ["ORD-2", "₹100.00", "failed"]);
    let unheard_event = world.payment_event(unheard, "PaymentSucceeded").await;
    world
        .consumed(QueueName::WhatsappNotifications, &unheard_event)
        .await;
    assert!(
        notification(&world.ledger, txn_update_id(unheard, "PaymentSucceeded"))
            .await
            .is_none()
    );
    worker.stop().await;

    // Every event delivered again: nothing new is queued or sent.
    world
        .forget_consumers(QueueName::WhatsappNotifications)
        .await;
    let worker = world.start(QueueName::WhatsappNotifications);
    world.drained(QueueName::WhatsappNotifications).await;
    worker.stop().await;
    assert_eq!(server.received_requests().await.expect("requests").len(), 2);
    for id in [success, failure] {
        let queued = notification_events(&world, id)
            .await
            .iter()
            .filter(|e| matches!(e, NotificationEvent::NotificationQueued { .. }))
            .count();
        assert_eq!(queued, 1);
    }
    usage_reads(&world, opted_in.id, 2, 0).await;
    usage_reads(&world, silent.id, 0, 0).await;
}

/// How many `LOW_BALANCE` alerts the merchant got, from its alerts stream and its notifications.
async fn low_balance_alerts(world: &World, merchant_id: MerchantId) -> usize {
    let stream = stream_of::<MerchantAlerts>(merchant_id).expect("stream");
    let raised: Vec<MerchantAlertsEvent> = world
        .events(&stream)
        .await
        .iter()
        .map(|e| e.decode().expect("alerts event"))
        .collect();
    for MerchantAlertsEvent::LowBalanceAlertRaised {
        notification_id, ..
    } in &raised
    {
        let queued = notification(&world.ledger, *notification_id)
            .await
            .expect("the alert's notification is queued with it");
        assert_eq!(queued.kind(), NotificationType::LowBalance);
        assert_eq!(queued.merchant_id(), merchant_id);
    }
    raised.len()
}

#[tokio::test]
async fn one_low_balance_alert_per_merchant_per_six_hours_across_replicas_and_restarts() {
    let world = World::new().await;
    let psp = MockServer::start().await;
    let warn_early = Thresholds {
        warn_at: Paise::rupees(10),
        ..Thresholds::default()
    };
    let alerts_on = WhatsappOptIns {
        low_balance: true,
        ..WhatsappOptIns::default()
    };
    let owing = world
        .merchant_with(None, contact(alerts_on), warn_early)
        .await;
    let below = world
        .merchant_with(None, contact(alerts_on), Thresholds::default())
        .await;
    let not_opted_in = world
        .merchant_with(None, contact(WhatsappOptIns::default()), warn_early)
        .await;
    for merchant in [owing.id, below.id, not_opted_in.id] {
        world.gateway(merchant, 1, &psp.uri()).await;
        let payment = world.initiate(merchant, "ORD-1", 100_000).await;
        // ₹35 of commission: at or above ₹10, below ₹5,000.
        settle(&world, payment, succeeded(100_000)).await;
    }

    // The watcher reads the log gap-safely: sweep once every commission is below the mark.
    settled(world.ledger.store().pool()).await;

    // Two replicas, each with its own caches, sweep at the same moment.
    let replica = Ledger::new(world.ledger.store().clone());
    let (mut first, mut second) = (Watchlist::new(), Watchlist::new());
    let (a, b) = tokio::join!(
        sweep_once(&world.ledger, LOW_BALANCE, &mut first),
        sweep_once(&replica, LOW_BALANCE, &mut second),
    );
    let (a, b) = (a.expect("sweep"), b.expect("sweep"));
    assert_eq!(a.raised + b.raised, 1);
    assert_eq!(low_balance_alerts(&world, owing.id).await, 1);

    // A restarted replica folds the log again and finds the cool-down.
    let mut restarted = Watchlist::new();
    world.advance(Duration::from_secs(6 * 3600 - 1));
    for (ledger, watchlist) in [(&world.ledger, &mut first), (&replica, &mut restarted)] {
        assert_eq!(
            sweep_once(ledger, LOW_BALANCE, watchlist)
                .await
                .expect("sweep")
                .raised,
            0
        );
    }
    assert_eq!(low_balance_alerts(&world, owing.id).await, 1);

    world.advance(Duration::from_secs(1));
    let (a, b) = tokio::join!(
        sweep_once(&world.ledger, LOW_BALANCE, &mut first),
        sweep_once(&replica, LOW_BALANCE, &mut restarted),
    );
    assert_eq!(a.expect("sweep").raised + b.expect("sweep").raised, 1);
    assert_eq!(low_balance_alerts(&world, owing.id).await, 2);
    assert_eq!(low_balance_alerts(&world, below.id).await, 0);
    assert_eq!(low_balance_alerts(&world, not_opted_in.id).await, 0);

    let mut params = Vec::new();
    let stream = stream_of::<MerchantAlerts>(owing.id).expect("stream");
    for recorded in world.events(&stream).await {
        let MerchantAlertsEvent::LowBalanceAlertRaised {
            notification_id, ..
        } = recorded.decode().expect("alerts event");
        let queued = notification(&world.ledger, notification_id)
            .await
            .expect("queued");
        assert_eq!(queued.template(), LOW_BALANCE);
        params.push(queued.params().to_vec());
    }
    assert_eq!(params[0], ["Acme Retail", "₹35.00"]);
}

#[tokio::test]
async fn opted_in_merchants_hear_about_each_refund_with_its_amount() {
    let mut world = World::new().await;
    let server = MockServer::start().await;
    meta_messages()
        .respond_with(MetaAccepts(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    with_meta(&mut world, &server);
    let merchant = world
        .merchant_with(
            None,
            contact(WhatsappOptIns {
                transaction_updates: true,
                ..WhatsappOptIns::default()
            }),
            Thresholds::default(),
        )
        .await;
    world.gateway(merchant.id, 1, &server.uri()).await;
    let paid = world.initiate(merchant.id, "ORD-RF", 49_900).await;
    settle(&world, paid, succeeded(49_900)).await;
    let current = world
        .ledger
        .current_merchant(merchant.id)
        .await
        .expect("merchant");
    let mut refunds = Vec::new();
    for (key, amount) in [("RF-1", 10_000), ("RF-2", 39_900)] {
        let refund_id = world
            .ledger
            .request_refund(
                &current,
                &lightspeed_services::RefundRequest {
                    payment_id: paid,
                    merchant_refund_id: key.into(),
                    amount: Paise(amount),
                    reason: String::new(),
                    request_digest: key.into(),
                },
                &CommandContext::default(),
            )
            .await
            .expect("request refund")
            .refund_id;
        world
            .ledger
            .record_refund_outcome(
                paid,
                refund_id,
                &lightspeed_services::RefundOutcome::Succeeded {
                    psp_refund_id: Some(format!("rfnd_{key}")),
                },
                world.now(),
                &CommandContext::default(),
            )
            .await
            .expect("refund succeeded");
        refunds.push(refund_id);
    }

    let _worker = world.start(QueueName::WhatsappNotifications);
    let update = |refund: lightspeed_domain::RefundId| {
        txn_update_id(paid, &format!("PaymentRefunded:{refund}"))
    };
    let partial = wait_status(&world, update(refunds[0]), NotificationStatus::Sent).await;
    assert_eq!(
        partial.params(),
        ["ORD-RF", "₹100.00", "partially refunded"]
    );
    let full = wait_status(&world, update(refunds[1]), NotificationStatus::Sent).await;
    assert_eq!(full.params(), ["ORD-RF", "₹399.00", "refunded"]);
}
