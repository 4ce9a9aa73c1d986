//! A scenario generator for tests and benchmarks: merchants, gateways, payments that succeed,
//! fail, succeed late or get refunded (reported by the PSP, or requested with the commission
//! reversed in proportion), payouts paid out or reversed, manual settlements, admin
//! changes, WhatsApp notifications and merchant webhook deliveries, all decided by the real
//! domain deciders and appended with [`EventStore::append_many`], each operation atomically
//! over the streams it spans (as the domain's crate docs list them).
//!
//! Choices come from a seeded generator; ids and instants advance with a simulated clock.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::{
    BookingRequest, GatewayCommand, GatewaySettings, RegisterGateway,
};
use lightspeed_domain::merchant::{
    ClientKey, MerchantCommand, OnboardMerchant, WhatsappContact, WhatsappOptIns,
};
use lightspeed_domain::merchant_alerts::MerchantAlertsCommand;
use lightspeed_domain::notification::{NotificationCommand, NotificationType, QueueNotification};
use lightspeed_domain::payment::refunds::{RefundCommission, RequestRefund};
use lightspeed_domain::payment::{InitiatePayment, PaymentCommand, PaymentStatus};
use lightspeed_domain::retry::Jitter;
use lightspeed_domain::routing::{self, RouteCandidate, SuccessRate};
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::wallet::{PayoutReversalReason, WalletCommand};
use lightspeed_domain::webhook_delivery::{
    AttemptOutcome, QueueWebhookDelivery, WebhookAttempt, WebhookDeliveryCommand,
};
use lightspeed_domain::{
    BasisPoints, Decider, Gateway, GatewayId, Merchant, MerchantAlerts, MerchantId, Notification,
    NotificationId, Paise, Payment, PaymentId, PayoutId, Provider, RefundId, SealedSecret, Wallet,
    WebhookDelivery, WebhookDeliveryId,
};
use lightspeed_eventstore::{
    AppendError, EventStore, ExpectedVersion, Metadata, NewEvent, PgEventStore, StreamAppend,
    StreamId,
};
use uuid::Uuid;

/// The admin every admin action of a scenario is recorded for.
pub const ADMIN: &str = "admin:ops@lightspeed.test";

/// The actor of what the sandbox PSP reports.
const PSP: &str = "psp:sandbox";

/// The text inside every sealed blob a scenario records, so tests can look for leaks.
pub const SEALED_MARKER: &str = "SEALED-BLOB";

/// One append of events over one or more streams, atomic.
#[derive(Debug, Clone)]
pub struct Operation(pub Vec<StreamAppend>);

impl Operation {
    /// How many events it appends.
    pub fn events(&self) -> usize {
        self.0.iter().map(|s| s.events.len()).sum()
    }
}

/// One stream's folded state, as the generator tracks it.
struct Tracked<D: Decider> {
    stream_id: StreamId,
    state: D::State,
    version: u64,
}

impl<D: Decider> Tracked<D> {
    fn new(id: Uuid) -> Self {
        Self {
            stream_id: StreamId::of(D::CATEGORY, id).expect("a category and a uuid name a stream"),
            state: D::State::default(),
            version: 0,
        }
    }

    /// The events a command decides, without recording them.
    fn plan(&self, command: &D::Command) -> Option<Vec<D::Event>> {
        D::decide(&self.state, command)
            .ok()
            .filter(|events| !events.is_empty())
    }

    /// Records planned events and answers their part of the append.
    fn commit(&mut self, events: Vec<D::Event>, actor: &str) -> StreamAppend {
        let expected = ExpectedVersion::Exact(self.version);
        let metadata = Metadata {
            actor: Some(actor.to_owned()),
            ..Metadata::default()
        };
        let mut new_events = Vec::with_capacity(events.len());
        for event in &events {
            self.state = D::evolve(std::mem::take(&mut self.state), event);
            self.version += 1;
            if let Ok(new_event) = NewEvent::from_domain(Uuid::now_v7(), event, metadata.clone()) {
                new_events.push(new_event);
            }
        }
        StreamAppend {
            stream_id: self.stream_id.clone(),
            expected,
            events: new_events,
        }
    }
}

/// SplitMix64: small, seeded, good enough to pick actions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

struct MerchantSim {
    merchant: Tracked<Merchant>,
    wallet: Tracked<Wallet>,
    alerts: Tracked<MerchantAlerts>,
    gateways: Vec<GatewayId>,
    pending_payouts: Vec<PayoutId>,
    paid_payouts: Vec<PayoutId>,
}

/// How big a scenario is.
#[derive(Debug, Clone, Copy)]
pub struct ScenarioConfig {
    /// Merchants onboarded at the start.
    pub merchants: usize,
    /// Gateways registered per merchant.
    pub gateways_per_merchant: usize,
    /// Seed of the choices.
    pub seed: u64,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        Self {
            merchants: 4,
            gateways_per_merchant: 3,
            seed: 7,
        }
    }
}

/// Generates business operations through the deciders.
pub struct Scenario {
    rng: Rng,
    now: DateTime<Utc>,
    merchants: Vec<MerchantSim>,
    gateways: HashMap<GatewayId, Tracked<Gateway>>,
    payments: Vec<Tracked<Payment>>,
    notifications: Vec<Tracked<Notification>>,
    deliveries: Vec<Tracked<WebhookDelivery>>,
    counter: u64,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("now", &self.now)
            .field("merchants", &self.merchants.len())
            .field("payments_in_flight", &self.payments.len())
            .finish_non_exhaustive()
    }
}

/// The merchant's gateways `ids` as routing candidates, each at the default success rate.
fn candidates<'g>(
    gateways: &'g HashMap<GatewayId, Tracked<Gateway>>,
    ids: &[GatewayId],
) -> Vec<RouteCandidate<'g>> {
    ids.iter()
        .filter_map(|id| gateways.get(id)?.state.as_ref())
        .map(|gateway| RouteCandidate {
            gateway,
            success_rate: SuccessRate::default(),
        })
        .collect()
}

fn sealed(what: &str, n: u64) -> SealedSecret {
    SealedSecret {
        key_id: "k1".into(),
        sealed: format!("{SEALED_MARKER}-{what}-{n}"),
    }
}

impl Scenario {
    /// Onboards the merchants and registers their gateways; answers those operations.
    pub fn new(config: ScenarioConfig) -> (Self, Vec<Operation>) {
        let mut scenario = Scenario {
            rng: Rng(config.seed),
            // 2026-01-31 18:00 UTC: the IST day and month turn within the first simulated hour.
            now: Utc
                .with_ymd_and_hms(2026, 1, 31, 18, 0, 0)
                .single()
                .unwrap_or_default(),
            merchants: Vec::new(),
            gateways: HashMap::new(),
            payments: Vec::new(),
            notifications: Vec::new(),
            deliveries: Vec::new(),
            counter: 0,
        };
        let mut operations = Vec::new();
        for m in 0..config.merchants {
            operations.extend(scenario.onboard(m, config.gateways_per_merchant));
        }
        (scenario, operations)
    }

    fn tick(&mut self) -> DateTime<Utc> {
        let millis = i64::try_from(self.rng.below(3_000)).unwrap_or(0) + 1;
        self.now += TimeDelta::milliseconds(millis);
        self.now
    }

    fn next_n(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn onboard(&mut self, m: usize, gateways: usize) -> Vec<Operation> {
        let at = self.tick();
        let merchant_id = MerchantId::new();
        let n = self.next_n();
        let mut sim = MerchantSim {
            merchant: Tracked::new(merchant_id.0),
            wallet: Tracked::new(merchant_id.0),
            alerts: Tracked::new(merchant_id.0),
            gateways: Vec::new(),
            pending_payouts: Vec::new(),
            paid_payouts: Vec::new(),
        };
        let onboard = MerchantCommand::Onboard(OnboardMerchant {
            merchant_id,
            company_name: format!("Merchant {m} Pvt Ltd"),
            webhook_url: Some(format!("https://merchant{m}.example/webhooks")),
            whatsapp: Some(WhatsappContact {
                number: format!("9198{:08}", m),
                opt_ins: WhatsappOptIns {
                    low_balance: true,
                    transaction_updates: m.is_multiple_of(2),
                    payout_updates: true,
                    account_status: true,
                    invoices: false,
                },
            }),
            client_key: ClientKey::parse(&format!("ck_{:016x}{n:08}", self.rng.next()))
                .expect("ck_ and 24 hex digits is a client key"),
            client_salt: sealed("salt", n),
            webhook_secret: sealed("whsec", n),
            fee: BasisPoints::DEFAULT_FEE,
            thresholds: Thresholds {
                suspend_at: Paise::rupees(50_000),
                warn_at: Paise::rupees(5_000),
                auto_payout_minimum: Paise::rupees(1_000),
            },
            checkout: CheckoutSettings::default(),
            at,
        });
        let mut operations = Vec::new();
        if let Some(events) = sim.merchant.plan(&onboard) {
            operations.push(Operation(vec![sim.merchant.commit(events, ADMIN)]));
        }
        for g in 0..gateways {
            operations.extend(self.register_gateway(&mut sim, merchant_id, g));
        }
        self.merchants.push(sim);
        operations
    }

    /// Registers the merchant's `g`-th gateway and attaches it, in one operation.
    fn register_gateway(
        &mut self,
        sim: &mut MerchantSim,
        merchant_id: MerchantId,
        g: usize,
    ) -> Option<Operation> {
        let gateway_id = GatewayId::new();
        let mut gateway = Tracked::<Gateway>::new(gateway_id.0);
        let at = self.tick();
        let register = GatewayCommand::Register(RegisterGateway {
            gateway_id,
            merchant_id,
            provider: Provider::ALL[g % Provider::ALL.len()],
            label: format!("gateway {g}"),
            credentials: sealed("credentials", self.next_n()),
            settings: GatewaySettings {
                priority: u16::try_from(g % 3).unwrap_or(0),
                monthly_limit: (g % 2 == 1).then_some(Paise::rupees(50_000_000)),
                rpm_cap: None,
            },
            enabled: true,
            at,
        });
        let attach = MerchantCommand::AttachGateway { gateway_id, at };
        let registered = gateway.plan(&register)?;
        let attached = sim.merchant.plan(&attach)?;
        let operation = Operation(vec![
            sim.merchant.commit(attached, ADMIN),
            gateway.commit(registered, ADMIN),
        ]);
        sim.gateways.push(gateway_id);
        self.gateways.insert(gateway_id, gateway);
        Some(operation)
    }

    /// One more business operation (`None` when the chosen action had nothing to act on).
    pub fn step(&mut self) -> Option<Operation> {
        match self.rng.below(100) {
            0..=34 => self.start_payment(),
            35..=74 => self.progress_payment(),
            75..=82 => self.progress_delivery(),
            83..=87 => self.progress_notification(),
            88..=93 => self.payout(),
            94..=95 => self.low_balance_alert(),
            96 => self.settle(),
            97 => self.admin_change(),
            _ => self.gateway_trouble(),
        }
    }

    fn pick_merchant(&mut self) -> usize {
        usize::try_from(self.rng.below(self.merchants.len() as u64)).unwrap_or(0)
    }

    fn start_payment(&mut self) -> Option<Operation> {
        let at = self.tick();
        let m = self.pick_merchant();
        let amount = Paise(i64::try_from(100 + self.rng.below(2_000_000)).unwrap_or(100));
        let n = self.next_n();
        let sim = self.merchants.get(m)?;
        let merchant = sim.merchant.state.as_ref()?;
        let settings = *merchant.checkout();
        let request = BookingRequest {
            merchant_id: merchant.id(),
            amount,
            settings,
            at,
        };
        let candidates = candidates(&self.gateways, &sim.gateways);
        let gateway_id = routing::route(&candidates, &request, &[]).ok()?;
        let payment_id = PaymentId::new();
        let initiate = PaymentCommand::Initiate(InitiatePayment {
            payment_id,
            merchant: merchant.snapshot(sim.wallet.state.balance_due()),
            amount,
            currency: "INR".into(),
            merchant_order_id: format!("order-{n}"),
            details: lightspeed_domain::payment::PaymentDetails::default(),
            gateway_id,
            at,
        });
        let mut payment = Tracked::<Payment>::new(payment_id.0);
        let initiated = payment.plan(&initiate)?;
        let book = GatewayCommand::Book {
            payment_id,
            request,
        };
        let gateway = self.gateways.get_mut(&gateway_id)?;
        let booked = gateway.plan(&book)?;
        let actor = format!("merchant:{}", merchant.id());
        let operation = Operation(vec![
            gateway.commit(booked, &actor),
            payment.commit(initiated, &actor),
        ]);
        self.payments.push(payment);
        Some(operation)
    }

    fn progress_payment(&mut self) -> Option<Operation> {
        if self.payments.is_empty() {
            return None;
        }
        let at = self.tick();
        let index = usize::try_from(self.rng.below(self.payments.len() as u64)).unwrap_or(0);
        let roll = self.rng.below(100);
        let n = self.next_n();
        let payment_state = self.payments.get(index)?.state.clone()?;
        match payment_state.status() {
            PaymentStatus::Created if roll < 10 => self.reroute(index, &payment_state, at),
            PaymentStatus::Created => self.record_psp_order(index, &payment_state, n, at),
            PaymentStatus::Pending if roll < 72 => self.succeed(index, &payment_state, n, at),
            PaymentStatus::Pending => self.fail(index, &payment_state, n, at),
            PaymentStatus::Failed if roll < 8 => self.succeed(index, &payment_state, n, at),
            PaymentStatus::Succeeded if roll < 3 => self.refund(index, &payment_state, n, at),
            PaymentStatus::Succeeded if roll < 5 => {
                self.reversing_refund(index, &payment_state, n, at)
            }
            _ => {
                // Done with this payment: stop tracking it so the in-flight set stays small.
                self.payments.swap_remove(index);
                None
            }
        }
    }

    /// The payment's order creation timed out: route it to another gateway, moving its booking.
    fn reroute(
        &mut self,
        index: usize,
        payment_state: &Payment,
        at: DateTime<Utc>,
    ) -> Option<Operation> {
        let sim = self.merchants.iter().find(|s| {
            s.merchant.state.as_ref().map(|m| m.id()) == Some(payment_state.merchant_id())
        })?;
        let merchant = sim.merchant.state.as_ref()?;
        let request = BookingRequest {
            merchant_id: merchant.id(),
            amount: payment_state.amount(),
            settings: *merchant.checkout(),
            at,
        };
        let candidates = candidates(&self.gateways, &sim.gateways);
        let to = routing::route(&candidates, &request, payment_state.tried_gateways()).ok()?;
        let reroute = PaymentCommand::Reroute {
            to_gateway: to,
            reason: "order creation timed out".into(),
            at,
        };
        let payment = self.payments.get_mut(index)?;
        let rerouted = payment.plan(&reroute)?;
        let booking = payment_state.live_booking()?;
        let release = booking.release(payment_state.id(), at);
        let book = GatewayCommand::Book {
            payment_id: payment_state.id(),
            request,
        };
        let released = self.gateways.get(&booking.gateway_id)?.plan(&release)?;
        let booked = self.gateways.get(&to)?.plan(&book)?;
        let mut appends = vec![payment.commit(rerouted, "system:router")];
        appends.push(
            self.gateways
                .get_mut(&booking.gateway_id)?
                .commit(released, "system:router"),
        );
        appends.push(self.gateways.get_mut(&to)?.commit(booked, "system:router"));
        Some(Operation(appends))
    }

    /// The PSP created the payment's order.
    fn record_psp_order(
        &mut self,
        index: usize,
        payment_state: &Payment,
        n: u64,
        at: DateTime<Utc>,
    ) -> Option<Operation> {
        let command = PaymentCommand::RecordPspOrder {
            gateway_id: payment_state.gateway_id(),
            psp_order_id: format!("order_{n}"),
            checkout: serde_json::json!({ "url": format!("https://psp.example/pay/{n}") }),
            at,
        };
        let payment = self.payments.get_mut(index)?;
        let events = payment.plan(&command)?;
        Some(Operation(vec![payment.commit(events, PSP)]))
    }

    /// The payment failed: its booking is released and the merchant's webhook queued.
    fn fail(
        &mut self,
        index: usize,
        payment_state: &Payment,
        n: u64,
        at: DateTime<Utc>,
    ) -> Option<Operation> {
        let command = PaymentCommand::RecordFailure {
            code: ["BAD_REQUEST_ERROR", "GATEWAY_ERROR", "PAYMENT_DECLINED"]
                [usize::try_from(n % 3).unwrap_or(0)]
            .into(),
            description: "declined by issuer".into(),
            at,
        };
        let payment = self.payments.get_mut(index)?;
        let failed = payment.plan(&command)?;
        let booking = payment_state.live_booking()?;
        let release = booking.release(payment_state.id(), at);
        let released = self.gateways.get(&booking.gateway_id)?.plan(&release)?;
        let mut appends = vec![payment.commit(failed, PSP)];
        appends.push(
            self.gateways
                .get_mut(&booking.gateway_id)?
                .commit(released, PSP),
        );
        let delivery = self.queue_delivery(payment_state, "payment.failed", at);
        appends.extend(delivery);
        Some(Operation(appends))
    }

    /// Half of the payment is refunded.
    fn refund(
        &mut self,
        index: usize,
        payment_state: &Payment,
        n: u64,
        at: DateTime<Utc>,
    ) -> Option<Operation> {
        let command = PaymentCommand::RecordRefund {
            refund_id: format!("rfnd_{n}"),
            amount: Paise((payment_state.amount().0 / 2).max(1)),
            at,
        };
        let payment = self.payments.get_mut(index)?;
        let events = payment.plan(&command)?;
        Some(Operation(vec![payment.commit(events, PSP)]))
    }

    /// A third of the payment is refunded at the merchant's request, reversing commission in
    /// proportion: requested and succeeded in one append, with the wallet's reversal.
    fn reversing_refund(
        &mut self,
        index: usize,
        payment_state: &Payment,
        n: u64,
        at: DateTime<Utc>,
    ) -> Option<Operation> {
        let refund_id = RefundId(Uuid::now_v7());
        let request = PaymentCommand::RequestRefund(RequestRefund {
            refund_id,
            merchant_refund_id: format!("RF-{n}"),
            amount: Paise((payment_state.amount().0 / 3).max(1)),
            reason: "returned".into(),
            commission: RefundCommission::ReverseProportional,
            at,
        });
        let payment = self.payments.get_mut(index)?;
        let mut events = payment.plan(&request)?;
        let requested = events.iter().fold(payment.state.clone(), Payment::evolve);
        let success = PaymentCommand::RecordRefundSucceeded {
            refund_id,
            psp_refund_id: Some(format!("rfnd_r{n}")),
            at,
        };
        events.extend(Payment::decide(&requested, &success).ok()?);
        let reversal = events
            .iter()
            .find_map(|event| WalletCommand::reversal_for(payment_state.id(), event));
        let mut appends = vec![payment.commit(events, PSP)];
        if let Some(reversal) = reversal {
            let sim = self.merchants.iter_mut().find(|s| {
                s.merchant.state.as_ref().map(|m| m.id()) == Some(payment_state.merchant_id())
            })?;
            let reversed = sim.wallet.plan(&reversal)?;
            appends.push(sim.wallet.commit(reversed, PSP));
        }
        Some(Operation(appends))
    }

    fn succeed(
        &mut self,
        index: usize,
        payment_state: &Payment,
        n: u64,
        at: DateTime<Utc>,
    ) -> Option<Operation> {
        let command = PaymentCommand::RecordSuccess {
            psp_payment_id: format!("pay_{n}"),
            amount: payment_state.amount(),
            at,
        };
        let payment = self.payments.get_mut(index)?;
        let succeeded = payment.plan(&command)?;
        let accrual = succeeded
            .iter()
            .find_map(|event| WalletCommand::accrual_for(payment_state.id(), event))?;
        let late = payment_state.status() == PaymentStatus::Failed;
        let sim = self.merchants.iter_mut().find(|s| {
            s.merchant.state.as_ref().map(|m| m.id()) == Some(payment_state.merchant_id())
        })?;
        let accrued = sim.wallet.plan(&accrual)?;
        let late_booking = if late {
            let book = GatewayCommand::BookLateSuccess {
                payment_id: payment_state.id(),
                amount: payment_state.amount(),
                at,
            };
            Some(
                self.gateways
                    .get(&payment_state.gateway_id())?
                    .plan(&book)?,
            )
        } else {
            None
        };
        let mut appends = vec![
            payment.commit(succeeded, PSP),
            sim.wallet.commit(accrued, PSP),
        ];
        if let Some(booked) = late_booking {
            appends.push(
                self.gateways
                    .get_mut(&payment_state.gateway_id())?
                    .commit(booked, PSP),
            );
        }
        appends.extend(self.queue_delivery(payment_state, "payment.succeeded", at));
        Some(Operation(appends))
    }

    fn queue_delivery(
        &mut self,
        payment: &Payment,
        event_type: &str,
        at: DateTime<Utc>,
    ) -> Option<StreamAppend> {
        let delivery_id = WebhookDeliveryId::new();
        let mut delivery = Tracked::<WebhookDelivery>::new(delivery_id.0);
        let queue = WebhookDeliveryCommand::Queue(QueueWebhookDelivery {
            delivery_id,
            merchant_id: payment.merchant_id(),
            payment_id: Some(payment.id()),
            event_type: event_type.into(),
            payload: serde_json::json!({
                "type": event_type,
                "payment_id": payment.id(),
                "order_id": payment.merchant_order_id(),
                "amount_paise": payment.amount().0,
            }),
            endpoint_url: "https://merchant.example/webhooks".into(),
            endpoint_id: lightspeed_domain::merchant::first_endpoint_id(payment.merchant_id()),
            at,
        });
        let events = delivery.plan(&queue)?;
        let append = delivery.commit(events, "system:webhook_relay");
        self.deliveries.push(delivery);
        Some(append)
    }

    fn progress_delivery(&mut self) -> Option<Operation> {
        if self.deliveries.is_empty() {
            return None;
        }
        let at = self.tick();
        let index = usize::try_from(self.rng.below(self.deliveries.len() as u64)).unwrap_or(0);
        let ok = self.rng.percent(70);
        let delivery = self.deliveries.get_mut(index)?;
        let attempt = WebhookDeliveryCommand::RecordAttempt(WebhookAttempt {
            outcome: if ok {
                AttemptOutcome::Response {
                    status_code: 200,
                    body_excerpt: "ok".into(),
                }
            } else {
                AttemptOutcome::Response {
                    status_code: 503,
                    body_excerpt: "unavailable".into(),
                }
            },
            duration_ms: 40,
            retry_after_secs: None,
            jitter: Jitter::NONE,
            at,
        });
        let Some(events) = delivery.plan(&attempt) else {
            self.deliveries.swap_remove(index);
            return None;
        };
        let append = delivery.commit(events, "system:webhook_relay");
        Some(Operation(vec![append]))
    }

    fn queue_notification(
        &mut self,
        merchant_id: MerchantId,
        kind: NotificationType,
        template: &str,
        recipient: String,
        params: Vec<String>,
        at: DateTime<Utc>,
    ) -> Option<(
        NotificationId,
        Vec<lightspeed_domain::notification::NotificationEvent>,
    )> {
        let notification_id = NotificationId::new();
        let notification = Tracked::<Notification>::new(notification_id.0);
        let events = notification.plan(&NotificationCommand::Queue(QueueNotification {
            notification_id,
            merchant_id,
            kind,
            template: template.into(),
            recipient,
            params,
            at,
        }))?;
        self.notifications.push(notification);
        Some((notification_id, events))
    }

    fn low_balance_alert(&mut self) -> Option<Operation> {
        let at = self.tick();
        let m = self.pick_merchant();
        let sim = self.merchants.get(m)?;
        let merchant = sim.merchant.state.as_ref()?;
        let merchant_id = merchant.id();
        let recipient = merchant
            .whatsapp_recipient_for(NotificationType::LowBalance)?
            .to_owned();
        let balance_due = sim.wallet.state.balance_due();
        let warn_at = merchant.thresholds().warn_at;
        let notification_id = NotificationId::new();
        let raise = MerchantAlertsCommand::RaiseLowBalanceAlert {
            notification_id,
            balance_due,
            warn_at,
            at,
        };
        let raised = sim.alerts.plan(&raise)?;
        let mut notification = Tracked::<Notification>::new(notification_id.0);
        let queued = notification.plan(&NotificationCommand::Queue(QueueNotification {
            notification_id,
            merchant_id,
            kind: NotificationType::LowBalance,
            template: "low_balance_alert".into(),
            recipient,
            params: vec![balance_due.to_string()],
            at,
        }))?;
        let sim = self.merchants.get_mut(m)?;
        let operation = Operation(vec![
            sim.alerts.commit(raised, "system:balance_watcher"),
            notification.commit(queued, "system:balance_watcher"),
        ]);
        self.notifications.push(notification);
        Some(operation)
    }

    fn progress_notification(&mut self) -> Option<Operation> {
        if self.notifications.is_empty() || self.rng.percent(30) {
            let at = self.tick();
            let m = self.pick_merchant();
            let merchant = self.merchants.get(m)?.merchant.state.clone()?;
            let recipient = merchant
                .whatsapp_recipient_for(NotificationType::TxnUpdate)?
                .to_owned();
            let (_, events) = self.queue_notification(
                merchant.id(),
                NotificationType::TxnUpdate,
                "txn_update",
                recipient,
                vec![format!("order-{}", self.counter)],
                at,
            )?;
            let notification = self.notifications.last_mut()?;
            return Some(Operation(vec![
                notification.commit(events, "system:notifier"),
            ]));
        }
        let at = self.tick();
        let index = usize::try_from(self.rng.below(self.notifications.len() as u64)).unwrap_or(0);
        let roll = self.rng.below(100);
        let notification = self.notifications.get_mut(index)?;
        let command = if roll < 65 {
            NotificationCommand::RecordSent {
                provider_message_id: format!("wamid.{}", Uuid::now_v7().simple()),
                at,
            }
        } else if roll < 95 {
            NotificationCommand::RecordAttemptFailed {
                error_code: "131047".into(),
                error_message: "re-engagement message".into(),
                retryable: roll < 90,
                rate_limited: false,
                retry_after_secs: None,
                jitter: Jitter::NONE,
                at,
            }
        } else {
            NotificationCommand::Resend { at }
        };
        let Some(events) = notification.plan(&command) else {
            if roll < 65 {
                self.notifications.swap_remove(index);
            }
            return None;
        };
        let actor = if matches!(command, NotificationCommand::Resend { .. }) {
            ADMIN
        } else {
            "system:notifier"
        };
        Some(Operation(vec![notification.commit(events, actor)]))
    }

    fn payout(&mut self) -> Option<Operation> {
        let at = self.tick();
        let m = self.pick_merchant();
        let roll = self.rng.below(100);
        let n = self.next_n();
        let sim = self.merchants.get_mut(m)?;
        let actor = "system:payout_collector";
        if let Some(payout_id) = sim.pending_payouts.first().copied() {
            let command = if roll < 85 {
                WalletCommand::RecordPayoutPaid {
                    payout_id,
                    reference: format!("UTR{n:010}"),
                    at,
                }
            } else {
                WalletCommand::RecordPayoutReversed {
                    payout_id,
                    reason: PayoutReversalReason::Failed,
                    detail: "beneficiary bank down".into(),
                    at,
                }
            };
            sim.pending_payouts.remove(0);
            if roll < 85 {
                sim.paid_payouts.push(payout_id);
            }
            let events = sim.wallet.plan(&command)?;
            return Some(Operation(vec![sim.wallet.commit(events, actor)]));
        }
        if roll < 5
            && let Some(payout_id) = sim.paid_payouts.pop()
        {
            let command = WalletCommand::RecordPayoutReversed {
                payout_id,
                reason: PayoutReversalReason::Reversed,
                detail: "returned by the bank".into(),
                at,
            };
            let events = sim.wallet.plan(&command)?;
            return Some(Operation(vec![sim.wallet.commit(events, actor)]));
        }
        let merchant = sim.merchant.state.as_ref()?;
        let amount = sim
            .wallet
            .state
            .automatic_payout_amount(merchant.thresholds())?;
        let payout_id = PayoutId::new();
        let command = WalletCommand::RequestPayout {
            payout_id,
            amount,
            at,
        };
        let events = sim.wallet.plan(&command)?;
        sim.pending_payouts.push(payout_id);
        Some(Operation(vec![sim.wallet.commit(events, actor)]))
    }

    fn settle(&mut self) -> Option<Operation> {
        let at = self.tick();
        let m = self.pick_merchant();
        let n = self.next_n();
        let sim = self.merchants.get_mut(m)?;
        let available = sim.wallet.state.available();
        let command = WalletCommand::RecordManualSettlement {
            reference: format!("NEFT{n:08}"),
            amount: Paise(available.0 / 4),
            note: "settled by bank transfer".into(),
            at,
        };
        let events = sim.wallet.plan(&command)?;
        Some(Operation(vec![sim.wallet.commit(events, ADMIN)]))
    }

    fn admin_change(&mut self) -> Option<Operation> {
        let at = self.tick();
        let m = self.pick_merchant();
        let roll = self.rng.below(5);
        let n = self.next_n();
        let sim = self.merchants.get_mut(m)?;
        let merchant = sim.merchant.state.as_ref()?;
        match roll {
            0 => {
                let fee = BasisPoints(if merchant.fee().bps() == 350 {
                    300
                } else {
                    350
                });
                let events = sim.merchant.plan(&MerchantCommand::ChangeFee { fee, at })?;
                Some(Operation(vec![sim.merchant.commit(events, ADMIN)]))
            }
            1 => {
                let command =
                    if merchant.status() == lightspeed_domain::standing::MerchantStatus::Active {
                        MerchantCommand::Suspend {
                            reason: "KYC review".into(),
                            at,
                        }
                    } else {
                        MerchantCommand::Reactivate { at }
                    };
                let events = sim.merchant.plan(&command)?;
                Some(Operation(vec![sim.merchant.commit(events, ADMIN)]))
            }
            2 => {
                let events = sim.merchant.plan(&MerchantCommand::RotateKeys {
                    client_key: ClientKey::parse(&format!("ck_{:016x}{n:08}", n.wrapping_mul(31)))
                        .ok()?,
                    client_salt: sealed("salt", n),
                    at,
                })?;
                Some(Operation(vec![sim.merchant.commit(events, ADMIN)]))
            }
            3 => {
                let gateway_id = *sim
                    .gateways
                    .get(usize::try_from(n).unwrap_or(0) % sim.gateways.len().max(1))?;
                let gateway = self.gateways.get_mut(&gateway_id)?;
                let enabled = !gateway.state.as_ref()?.is_enabled();
                let events = gateway.plan(&GatewayCommand::Toggle { enabled, at })?;
                Some(Operation(vec![gateway.commit(events, ADMIN)]))
            }
            _ => {
                let events = sim.merchant.plan(&MerchantCommand::RotateWebhookSecret {
                    secret: sealed("whsec", n),
                    grace_secs: 3_600,
                    at,
                })?;
                Some(Operation(vec![sim.merchant.commit(events, ADMIN)]))
            }
        }
    }

    fn gateway_trouble(&mut self) -> Option<Operation> {
        let at = self.tick();
        let ids: Vec<GatewayId> = self.gateways.keys().copied().collect();
        let id = *ids.get(usize::try_from(self.rng.below(ids.len() as u64)).unwrap_or(0))?;
        let recover = self.rng.percent(50);
        let gateway = self.gateways.get_mut(&id)?;
        let command = if recover {
            GatewayCommand::ClearTemporaryFailure { at }
        } else {
            GatewayCommand::MarkTemporarilyFailed {
                reason: "5xx from PSP".into(),
                rest_secs: 60,
                at,
            }
        };
        let events = gateway.plan(&command)?;
        Some(Operation(vec![gateway.commit(events, "system:health")]))
    }
}

/// Appends operations in order, each atomically.
pub async fn append_each(
    store: &PgEventStore,
    operations: Vec<Operation>,
) -> Result<u64, AppendError> {
    let mut events = 0u64;
    for operation in operations {
        events += operation.events() as u64;
        store.append_many(operation.0).await?;
    }
    Ok(events)
}

/// Appends operations in order, packing consecutive ones into one atomic append while they fit
/// (16 streams, 1 000 events), for bulk loads.
pub async fn append_packed(
    store: &PgEventStore,
    operations: Vec<Operation>,
) -> Result<u64, AppendError> {
    let mut events = 0u64;
    let mut pack: Vec<StreamAppend> = Vec::new();
    let mut pack_events = 0usize;
    for operation in operations {
        let new_streams = operation
            .0
            .iter()
            .filter(|s| !pack.iter().any(|p| p.stream_id == s.stream_id))
            .count();
        if pack.len() + new_streams > lightspeed_eventstore::limits::MAX_STREAMS_PER_APPEND
            || pack_events + operation.events()
                > lightspeed_eventstore::limits::MAX_EVENTS_PER_APPEND
        {
            store.append_many(std::mem::take(&mut pack)).await?;
            pack_events = 0;
        }
        events += operation.events() as u64;
        pack_events += operation.events();
        for append in operation.0 {
            match pack.iter_mut().find(|p| p.stream_id == append.stream_id) {
                Some(existing) => existing.events.extend(append.events),
                None => pack.push(append),
            }
        }
    }
    if !pack.is_empty() {
        store.append_many(pack).await?;
    }
    Ok(events)
}

/// Runs a scenario until it produced at least `events` events; answers the operations.
pub fn generate(config: ScenarioConfig, events: usize) -> (Scenario, Vec<Operation>) {
    let (mut scenario, mut operations) = Scenario::new(config);
    let mut total: usize = operations.iter().map(Operation::events).sum();
    while total < events {
        if let Some(operation) = scenario.step() {
            total += operation.events();
            operations.push(operation);
        }
    }
    (scenario, operations)
}

impl Scenario {
    /// Every merchant's wallet as the deciders folded it.
    pub fn wallets(&self) -> Vec<(MerchantId, Wallet)> {
        self.merchants
            .iter()
            .filter_map(|sim| Some((sim.merchant.state.as_ref()?.id(), sim.wallet.state.clone())))
            .collect()
    }

    /// More operations until they hold at least `events` events.
    pub fn more(&mut self, events: usize) -> Vec<Operation> {
        let mut operations = Vec::new();
        let mut total = 0;
        while total < events {
            if let Some(operation) = self.step() {
                total += operation.events();
                operations.push(operation);
            }
        }
        operations
    }
}
