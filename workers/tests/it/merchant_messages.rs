//! Merchant messages: suspension, reinstatement, payouts, invoices, quotas and low balance reach the merchant by
//! WhatsApp (a fake Meta Cloud API on loopback) and by email (an SMTP server on loopback), on
//! the channels they opted in to, once each however many replicas run.

use std::sync::atomic::AtomicUsize;

use lightspeed_adapters::mailer::loopback::{LoopbackSmtp, ReceivedMail};
use lightspeed_adapters::mailer::{Mailer, MailerConfig};
use lightspeed_domain::calendar::IstMonth;
use lightspeed_domain::merchant::{
    EmailContact, EmailOptIns, Merchant, MerchantCommand, WhatsappContact, WhatsappOptIns,
};
use lightspeed_domain::notification::{Channel, NotificationStatus};
use lightspeed_domain::quota::QuotaCaps;
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::wallet::{PayoutReversalReason, WalletCommand};
use lightspeed_domain::{BasisPoints, MerchantId, Notification, Paise, PaymentId, Wallet};
use lightspeed_eventstore::testing::settled;
use lightspeed_eventstore::{CommandContext, EventStore, RecordedEvent, stream_of};
use lightspeed_services::{Invoicing, IssueOutcome, PayoutSettlement};
use lightspeed_workers::QueueName;
use lightspeed_workers::low_balance::{Watchlist, sweep_once};
use wiremock::MockServer;

use crate::common::{World, wait_for};
use crate::whatsapp::{MetaAccepts, meta_messages, with_meta};

const NUMBER: &str = "919867800451";
const ADDRESS: &str = "ops@acme.example";

/// A World whose workers send WhatsApp through a fake Meta API and email through a loopback
/// SMTP server.
async fn world_with_channels() -> (World, MockServer, LoopbackSmtp) {
    let mut world = World::new().await;
    let meta = MockServer::start().await;
    meta_messages()
        .respond_with(MetaAccepts(AtomicUsize::new(0)))
        .mount(&meta)
        .await;
    with_meta(&mut world, &meta);
    let smtp = LoopbackSmtp::start().await;
    world.deps.mailer = Some(
        Mailer::new(&MailerConfig {
            host: "127.0.0.1".into(),
            port: smtp.port(),
            username: None,
            password: None,
            from: "LightSpeed <merchants@lightspeed.test>".into(),
            starttls: false,
        })
        .expect("mailer"),
    );
    (world, meta, smtp)
}

/// A merchant with this WhatsApp and email consent.
async fn merchant(
    world: &World,
    whatsapp: WhatsappOptIns,
    email: EmailOptIns,
    thresholds: Thresholds,
) -> MerchantId {
    let contact = WhatsappContact {
        number: format!("+{NUMBER}"),
        opt_ins: whatsapp,
    };
    let merchant = world
        .merchant_with(None, Some(contact), thresholds)
        .await
        .id;
    change(
        world,
        merchant,
        MerchantCommand::ChangeEmailContact {
            contact: Some(EmailContact {
                address: ADDRESS.into(),
                opt_ins: email,
            }),
            at: world.now(),
        },
    )
    .await;
    merchant
}

async fn change(world: &World, merchant: MerchantId, command: MerchantCommand) -> RecordedEvent {
    world
        .ledger
        .update_merchant(merchant, &[command], &CommandContext::default())
        .await
        .expect("merchant command");
    let stream = stream_of::<Merchant>(merchant).expect("stream");
    world
        .events(&stream)
        .await
        .pop()
        .expect("the merchant's latest event")
}

/// The template messages Meta received: (recipient, template, body parameters).
async fn whatsapp_sent(meta: &MockServer) -> Vec<(String, String, Vec<String>)> {
    let requests = meta.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .map(|request| {
            let body: serde_json::Value = request.body_json().expect("JSON body");
            let params = body["template"]["components"][0]["parameters"]
                .as_array()
                .map(|params| {
                    params
                        .iter()
                        .filter_map(|p| p["text"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (
                body["to"].as_str().unwrap_or_default().to_owned(),
                body["template"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                params,
            )
        })
        .collect()
}

async fn wait_whatsapp(meta: &MockServer, count: usize) -> Vec<(String, String, Vec<String>)> {
    wait_for(&format!("{count} WhatsApp messages"), || async {
        let sent = whatsapp_sent(meta).await;
        (sent.len() >= count).then_some(sent)
    })
    .await
}

/// The message as a reader sees it: quoted-printable soft breaks joined and `₹` decoded.
fn readable(mail: &ReceivedMail) -> String {
    mail.data.replace("=\r\n", "").replace("=E2=82=B9", "₹")
}

/// The email notifications queued for `merchant`, from the log.
async fn notifications_of(world: &World, merchant: MerchantId) -> Vec<Notification> {
    let queued = world
        .ledger
        .store()
        .read_log(
            Default::default(),
            Some(&["notification".to_owned()]),
            10_000,
        )
        .await
        .expect("read the log");
    let mut found = Vec::new();
    for event in queued
        .iter()
        .filter(|e| e.event_type == "NotificationQueued")
    {
        let id = event.stream_id.id().parse().expect("notification id");
        if let Some(notification) = world.ledger.notification(id).await.expect("load")
            && notification.merchant_id() == merchant
        {
            found.push(notification);
        }
    }
    found
}

fn account_status() -> (WhatsappOptIns, EmailOptIns) {
    (
        WhatsappOptIns {
            account_status: true,
            ..WhatsappOptIns::default()
        },
        EmailOptIns {
            account_status: true,
            ..EmailOptIns::default()
        },
    )
}

#[tokio::test]
async fn suspension_and_reinstatement_reach_whatsapp_and_email_once_each_across_replicas() {
    let (world, meta, mut smtp) = world_with_channels().await;
    let (whatsapp, email) = account_status();
    let merchant = merchant(&world, whatsapp, email, Thresholds::default()).await;
    let workers = [
        world.start(QueueName::MerchantMessages),
        world.start_fresh(QueueName::MerchantMessages),
        world.start(QueueName::WhatsappNotifications),
        world.start_fresh(QueueName::WhatsappNotifications),
    ];

    change(
        &world,
        merchant,
        MerchantCommand::Suspend {
            reason: "unpaid commission".into(),
            at: world.now(),
        },
    )
    .await;
    let mail = smtp.next().await;
    assert_eq!(mail.to, [ADDRESS]);
    let text = readable(&mail);
    assert!(
        text.contains("Subject: Acme Retail: your account is suspended"),
        "{text}"
    );
    assert!(text.contains("Reason: unpaid commission"), "{text}");
    let sent = wait_whatsapp(&meta, 1).await;
    assert_eq!(
        sent[0],
        (
            NUMBER.to_owned(),
            "account_suspended".to_owned(),
            vec!["Acme Retail".to_owned(), "unpaid commission".to_owned()]
        )
    );

    let reinstated = change(
        &world,
        merchant,
        MerchantCommand::Reactivate { at: world.now() },
    )
    .await;
    let mail = smtp.next().await;
    assert_eq!(mail.to, [ADDRESS]);
    assert!(
        readable(&mail).contains("Subject: Acme Retail: your account is reinstated"),
        "{}",
        mail.data
    );
    let sent = wait_whatsapp(&meta, 2).await;
    assert_eq!(sent[1].1, "account_reinstated");

    world
        .consumed(QueueName::MerchantMessages, &reinstated)
        .await;
    let notifications = notifications_of(&world, merchant).await;
    for notification in &notifications {
        wait_for("every message sent", || async {
            world
                .ledger
                .notification(notification.id())
                .await
                .ok()?
                .filter(|n| n.status() == NotificationStatus::Sent)
        })
        .await;
    }
    for worker in workers {
        worker.stop().await;
    }
    // A restart that is handed every event again sends nothing new.
    world.forget_consumers(QueueName::MerchantMessages).await;
    let again = world.start(QueueName::MerchantMessages);
    world.drained(QueueName::MerchantMessages).await;
    again.stop().await;

    assert_eq!(notifications_of(&world, merchant).await.len(), 4);
    let channels: Vec<Channel> = notifications.iter().map(Notification::channel).collect();
    assert_eq!(
        channels.iter().filter(|c| **c == Channel::Email).count(),
        2,
        "{channels:?}"
    );
    assert_eq!(whatsapp_sent(&meta).await.len(), 2, "one WhatsApp each");
    assert_eq!(smtp.try_next(), None, "one email each");
}

#[tokio::test]
async fn a_merchant_who_did_not_opt_in_hears_nothing() {
    let (world, meta, mut smtp) = world_with_channels().await;
    // A number and an address, but consent only to what these events are not about.
    let merchant = merchant(
        &world,
        WhatsappOptIns {
            transaction_updates: true,
            ..WhatsappOptIns::default()
        },
        EmailOptIns {
            low_balance: true,
            ..EmailOptIns::default()
        },
        Thresholds::default(),
    )
    .await;
    let worker = world.start(QueueName::MerchantMessages);
    let suspended = change(
        &world,
        merchant,
        MerchantCommand::Suspend {
            reason: "review".into(),
            at: world.now(),
        },
    )
    .await;
    world
        .consumed(QueueName::MerchantMessages, &suspended)
        .await;
    worker.stop().await;
    assert!(notifications_of(&world, merchant).await.is_empty());
    assert!(whatsapp_sent(&meta).await.is_empty());
    assert_eq!(smtp.try_next(), None);
}

/// Accrues `commission` on a payment whose amount gives exactly that at the default fee.
async fn accrue(world: &World, merchant: MerchantId, commission: i64) {
    let fee = BasisPoints::DEFAULT_FEE;
    let amount = Paise(commission * i64::from(BasisPoints::WHOLE) / i64::from(fee.bps()));
    world
        .ledger
        .wallets()
        .execute(
            &stream_of::<Wallet>(merchant).expect("stream"),
            &WalletCommand::AccrueCommission {
                payment_id: PaymentId::new(),
                amount,
                fee,
                commission: Paise(commission),
                at: world.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("accrue");
}

/// Requests a payout of everything due and records what the provider says of it.
async fn pay_out(world: &World, merchant: MerchantId, run: &str, settlement: PayoutSettlement) {
    let report = world
        .ledger
        .run_payouts(run, Paise(100), &CommandContext::default())
        .await
        .expect("payout run");
    let payout = report
        .requested
        .iter()
        .find(|payout| payout.merchant_id == merchant)
        .expect("a payout requested");
    world
        .ledger
        .record_payout_update(
            merchant,
            payout.payout_id,
            settlement,
            &CommandContext::default(),
        )
        .await
        .expect("payout update");
}

#[tokio::test]
async fn payouts_sent_and_failed_reach_the_merchant_on_both_channels() {
    let (world, meta, mut smtp) = world_with_channels().await;
    let merchant = merchant(
        &world,
        WhatsappOptIns {
            payout_updates: true,
            ..WhatsappOptIns::default()
        },
        EmailOptIns {
            payout_updates: true,
            ..EmailOptIns::default()
        },
        Thresholds::default(),
    )
    .await;
    let workers = [
        world.start(QueueName::MerchantMessages),
        world.start(QueueName::WhatsappNotifications),
    ];

    accrue(&world, merchant, 150_000).await;
    pay_out(
        &world,
        merchant,
        "2026-11-24",
        PayoutSettlement::Paid {
            reference: "UTR0001".into(),
        },
    )
    .await;
    let mail = smtp.next().await;
    assert_eq!(mail.to, [ADDRESS]);
    let text = readable(&mail);
    assert!(
        text.contains("A commission payout of ₹1,500.00 was sent."),
        "{text}"
    );
    assert!(text.contains("Reference: UTR0001"), "{text}");
    let sent = wait_whatsapp(&meta, 1).await;
    assert_eq!(
        sent[0],
        (
            NUMBER.to_owned(),
            "payout_sent".to_owned(),
            vec![
                "Acme Retail".to_owned(),
                "₹1,500.00".to_owned(),
                "UTR0001".to_owned()
            ]
        )
    );

    accrue(&world, merchant, 120_000).await;
    pay_out(
        &world,
        merchant,
        "2026-11-25",
        PayoutSettlement::Reversed {
            reason: PayoutReversalReason::Failed,
            detail: "beneficiary bank offline".into(),
        },
    )
    .await;
    let mail = smtp.next().await;
    let text = readable(&mail);
    assert!(
        text.contains("A commission payout of ₹1,200.00 did not arrive: the transfer failed."),
        "{text}"
    );
    let sent = wait_whatsapp(&meta, 2).await;
    assert_eq!(sent[1].1, "payout_failed");
    assert_eq!(sent[1].2[2], "the transfer failed");
    for worker in workers {
        worker.stop().await;
    }
}

#[tokio::test]
async fn a_low_balance_alert_goes_by_email_too() {
    let (world, _meta, mut smtp) = world_with_channels().await;
    let warn_early = Thresholds {
        warn_at: Paise(1_000),
        ..Thresholds::default()
    };
    let merchant = merchant(
        &world,
        WhatsappOptIns::default(),
        EmailOptIns {
            low_balance: true,
            ..EmailOptIns::default()
        },
        warn_early,
    )
    .await;
    accrue(&world, merchant, 5_000).await;
    // The watcher reads the log gap-safely: sweep once the commission is below the mark.
    settled(world.ledger.store().pool()).await;
    let mut watchlist = Watchlist::new();
    let sweep = sweep_once(&world.ledger, "low_balance_v1", &mut watchlist)
        .await
        .expect("sweep");
    assert_eq!(sweep.raised, 1);
    let worker = world.start(QueueName::MerchantMessages);
    let mail = smtp.next().await;
    worker.stop().await;
    assert_eq!(mail.to, [ADDRESS]);
    let text = readable(&mail);
    assert!(text.contains("reached ₹50.00"), "{text}");
    let queued = notifications_of(&world, merchant).await;
    assert_eq!(queued.len(), 1, "email only: no WhatsApp consent");
    assert_eq!(queued[0].channel(), Channel::Email);
}

#[tokio::test]
async fn a_quota_at_80_percent_reaches_the_merchant_by_email_once() {
    let (world, _meta, mut smtp) = world_with_channels().await;
    let merchant = merchant(
        &world,
        WhatsappOptIns::default(),
        EmailOptIns {
            account_status: true,
            ..EmailOptIns::default()
        },
        Thresholds::default(),
    )
    .await;
    world.gateway(merchant, 1, "http://127.0.0.1:9").await;
    let caps = QuotaCaps {
        daily_count: Some(5),
        ..QuotaCaps::NONE
    };
    world
        .ledger
        .set_quota(merchant, caps, &CommandContext::default())
        .await
        .expect("set quota");
    for order in 1..=4 {
        world
            .initiate(merchant, &format!("quota-{order}"), 10_000)
            .await;
    }
    let worker = world.start(QueueName::MerchantMessages);
    let mail = smtp.next().await;
    worker.stop().await;
    assert_eq!(mail.to, [ADDRESS]);
    let text = readable(&mail);
    assert!(
        text.contains("You used 80% of your daily payments cap (4 of 5)"),
        "{text}"
    );
    assert_eq!(smtp.try_next(), None, "one threshold, one email");
    let queued = notifications_of(&world, merchant).await;
    assert_eq!(queued.len(), 1, "email only: no WhatsApp consent");
    assert_eq!(queued[0].channel(), Channel::Email);
}

#[tokio::test]
async fn an_issued_invoice_is_announced_on_whatsapp_only() {
    let (world, meta, mut smtp) = world_with_channels().await;
    let merchant = merchant(
        &world,
        WhatsappOptIns {
            invoices: true,
            ..WhatsappOptIns::default()
        },
        EmailOptIns {
            account_status: true,
            low_balance: true,
            payout_updates: true,
        },
        Thresholds::default(),
    )
    .await;
    accrue(&world, merchant, 35_000).await;
    let invoicing = Invoicing::new(world.ledger.clone(), Vec::new());
    let december_first = "2026-11-30T20:30:00Z".parse().expect("instant");
    let november = IstMonth {
        year: 2026,
        month: 11,
    };
    let issued = invoicing
        .issue(
            merchant,
            november,
            december_first,
            &CommandContext::default(),
        )
        .await
        .expect("issue");
    let IssueOutcome::Issued(invoice) = issued else {
        panic!("not issued: {issued:?}");
    };
    let workers = [
        world.start(QueueName::MerchantMessages),
        world.start(QueueName::WhatsappNotifications),
    ];
    let sent = wait_whatsapp(&meta, 1).await;
    assert_eq!(
        sent[0],
        (
            NUMBER.to_owned(),
            "invoice_issued".to_owned(),
            vec![
                "Acme Retail".to_owned(),
                invoice.number.to_string(),
                "November 2026".to_owned(),
                "₹350.00".to_owned()
            ]
        )
    );
    for worker in workers {
        worker.stop().await;
    }
    assert_eq!(smtp.try_next(), None, "the PDF goes to the invoice address");
    assert_eq!(notifications_of(&world, merchant).await.len(), 1);
}
