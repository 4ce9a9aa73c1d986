//! Payment operations: initiation with routing and booking, PSP orders, reroutes after a
//! gateway failure, and PSP outcomes turned into success (with commission) or failure.

use std::time::Duration;

use chrono::{DateTime, Utc};

use lightspeed_domain::claims::{
    ClaimOrder, MerchantOrder, MerchantOrderClaim, merchant_order_key,
};
use lightspeed_domain::gateway::{BookingRequest, CAPACITY_EVENT_TYPES, Gateway, GatewayCommand};
use lightspeed_domain::merchant::Merchant;
use lightspeed_domain::payment::{
    InitiatePayment, Payment, PaymentCommand, PaymentDetails, PaymentEvent,
};
use lightspeed_domain::psp_outcome::{PspOutcome, PspOutcomeRecord, ReportOutcome, outcome_key};
use lightspeed_domain::routing::{RouteCandidate, route};
use lightspeed_domain::wallet::{Wallet, WalletCommand};
use lightspeed_domain::{Decider, GatewayId, MerchantId, Paise, PaymentId};
use lightspeed_eventstore::{
    AppendError, CommandContext, CommandHandler, EventStore, Loaded, PgEventStore, RecordedEvent,
    StreamId, stream_of,
};

use crate::error::{Inconsistency, ServiceError};
use crate::ledger::{Ledger, MAX_ATTEMPTS, STATE_REUSE};
use crate::merchants::AuthenticatedMerchant;
use crate::unit_of_work::UnitOfWork;

/// A merchant's request to collect a payment, as the API parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// Amount in paise.
    pub amount: Paise,
    /// Currency code as sent (only `INR` is accepted).
    pub currency: String,
    /// The merchant's order id: its idempotency key.
    pub order_id: String,
    /// Payer, redirect and notes.
    pub details: PaymentDetails,
    /// Hex SHA-256 of the request body, to tell a retry from a different request.
    pub request_digest: String,
}

/// What initiation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiated {
    /// A new payment was started and booked on a gateway.
    Created(PaymentId),
    /// The same request was made before; this is the payment it started.
    Existing(PaymentId),
}

impl Initiated {
    /// The payment, new or existing.
    pub fn payment_id(self) -> PaymentId {
        match self {
            Initiated::Created(id) | Initiated::Existing(id) => id,
        }
    }
}

/// What applying a PSP outcome did to the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The payment succeeded now; this commission was accrued.
    Succeeded {
        /// The commission recorded in the wallet.
        commission: Paise,
        /// True when it followed a failure.
        late_success: bool,
    },
    /// The payment failed now.
    Failed,
    /// Nothing changed: the outcome was already applied, is not final, or says nothing.
    Unchanged,
}

/// What becomes of a payment after a gateway failure: it moves to `to_gateway`, or fails when
/// there is none.
fn after_gateway_failure(
    to_gateway: Option<GatewayId>,
    reason: &str,
    at: DateTime<Utc>,
) -> PaymentCommand {
    match to_gateway {
        Some(to_gateway) => PaymentCommand::Reroute {
            to_gateway,
            reason: reason.to_owned(),
            at,
        },
        None => PaymentCommand::RecordFailure {
            code: "NO_GATEWAY_AVAILABLE".into(),
            description: format!("no gateway could create the order; last: {reason}"),
            at,
        },
    }
}

/// A state from a handler's cache, and whether the log confirmed it recently enough to be
/// used without a read.
type Cached<S> = (Loaded<S>, bool);

/// A cached state, brought up to date with its stream's share of `events` unless it is recent.
fn up_to_date<D: Decider>(
    handler: &CommandHandler<D, PgEventStore>,
    stream: &StreamId,
    (loaded, recent): Cached<D::State>,
    events: &[RecordedEvent],
) -> Result<Loaded<D::State>, ServiceError> {
    if recent {
        return Ok(loaded);
    }
    let own = events.iter().filter(|e| e.stream_id == *stream);
    handler
        .absorb(stream, loaded, own)
        .map_err(|e| ServiceError::Store(e.to_string()))
}

/// What initiation reads besides the merchant: its wallet and its active gateways.
struct MerchantFunds {
    wallet: Loaded<Wallet>,
    gateway_ids: Vec<GatewayId>,
    gateway_streams: Vec<StreamId>,
    gateways: Vec<Loaded<Option<Gateway>>>,
}

/// What stays the same across the attempts of one payment initiation.
struct Initiation<'a> {
    request: &'a PaymentRequest,
    context: &'a CommandContext,
    merchant_id: MerchantId,
    merchant_stream: StreamId,
    /// When the key pair the request was signed with was issued.
    signed_with: Option<DateTime<Utc>>,
    payment_id: PaymentId,
    payment_stream: StreamId,
}

impl Initiation<'_> {
    /// The payment's initiation as decided on `merchant`, before routing names its gateway.
    fn command(
        &self,
        merchant: &Merchant,
        balance_due: Paise,
        at: DateTime<Utc>,
    ) -> InitiatePayment {
        InitiatePayment {
            payment_id: self.payment_id,
            merchant: merchant.snapshot(balance_due),
            amount: self.request.amount,
            currency: self.request.currency.clone(),
            merchant_order_id: self.request.order_id.clone(),
            details: self.request.details.clone(),
            gateway_id: GatewayId(uuid::Uuid::nil()),
            at,
        }
    }

    /// The stream of the merchant's order id.
    fn order_stream(&self) -> Result<StreamId, ServiceError> {
        let key = merchant_order_key(self.merchant_id, &self.request.order_id);
        Ok(stream_of::<MerchantOrderClaim>(key)?)
    }

    /// What routing books on the chosen gateway.
    fn booking(&self, merchant: &Merchant, at: DateTime<Utc>) -> BookingRequest {
        BookingRequest {
            merchant_id: self.merchant_id,
            amount: self.request.amount,
            settings: *merchant.checkout(),
            at,
        }
    }

    /// The claim of the merchant's order id for this payment.
    fn claim(&self, at: DateTime<Utc>) -> ClaimOrder {
        ClaimOrder {
            order: MerchantOrder {
                merchant_id: self.merchant_id,
                order_id: self.request.order_id.clone(),
                payment_id: self.payment_id,
                request_digest: self.request.request_digest.clone(),
            },
            at,
        }
    }
}

impl Ledger {
    /// Starts a payment: checks the request and the merchant's standing, routes it to a gateway,
    /// and appends the order-id claim, the payment and the gateway booking atomically.
    ///
    /// The order id is the merchant's idempotency key: the same order id with the same request
    /// answers the payment it started; with a different request it is refused.
    ///
    /// `merchant` is the merchant the request was authenticated as; the append holds only if
    /// its stream is still at that version, and a request whose key pair was replaced
    /// meanwhile is refused with [`ServiceError::KeysRotated`].
    pub async fn initiate_payment(
        &self,
        merchant: &AuthenticatedMerchant,
        request: &PaymentRequest,
        context: &CommandContext,
    ) -> Result<Initiated, ServiceError> {
        let merchant_id = merchant.merchant.id();
        let merchant_stream = stream_of::<Merchant>(merchant_id)?;
        let signed_with = merchant.merchant.keys_rotated_at();
        let payment_id = PaymentId::new();
        let payment_stream = stream_of::<Payment>(payment_id)?;
        let initiation = Initiation {
            request,
            context,
            merchant_id,
            merchant_stream,
            signed_with,
            payment_id,
            payment_stream,
        };
        let mut known = Loaded {
            version: merchant.version,
            state: Some(merchant.merchant.clone()),
        };
        // The first attempt decides on the merchant as authenticated and on wallet and gateway
        // states the log confirmed within `STATE_REUSE`; a refusal or a lost race decides again
        // on what the log holds now, up to `MAX_ATTEMPTS` times.
        for attempt in 0..=MAX_ATTEMPTS {
            let reuse = attempt == 0;
            if !reuse {
                known = self.merchants.load(&initiation.merchant_stream).await?;
            }
            if let Some(initiated) = self.attempt_initiation(&initiation, &known, reuse).await? {
                return Ok(initiated);
            }
        }
        Err(ServiceError::Contended)
    }

    /// One attempt at initiation on `known` (the merchant at its version): answers the payment,
    /// or None when it must be decided again on what the log holds now. With `reuse`, decides
    /// on recent cached states, and a refusal is decided again rather than answered.
    async fn attempt_initiation(
        &self,
        initiation: &Initiation<'_>,
        known: &Loaded<Option<Merchant>>,
        reuse: bool,
    ) -> Result<Option<Initiated>, ServiceError> {
        let request = initiation.request;
        let merchant = known.state.clone().ok_or(ServiceError::UnknownMerchant)?;
        if merchant.keys_rotated_at() != initiation.signed_with {
            return Err(ServiceError::KeysRotated);
        }
        let MerchantFunds {
            wallet,
            gateway_ids,
            gateway_streams,
            gateways,
        } = self.wallet_and_gateways(&merchant, reuse).await?;
        let at = self.now();
        let mut initiate = initiation.command(&merchant, wallet.state.balance_due(), at);
        // Bad input and a suspended merchant are refused before routing looks at gateways.
        match Payment::decide(&None, &PaymentCommand::Initiate(initiate.clone())) {
            Ok(_) => {}
            Err(_) if reuse => return Ok(None),
            Err(refusal) => return Err(refusal.into()),
        }

        let order_stream = initiation.order_stream()?;
        if let Some(answer) = self.earlier_order(&order_stream, request, true).await? {
            return answer.map(Some);
        }

        let booking = initiation.booking(&merchant, at);
        let index = match self.route_to(&gateway_ids, &gateways, &booking, &[]) {
            Ok(index) => index,
            Err(ServiceError::NoGatewayAvailable(_)) if reuse => return Ok(None),
            Err(other) => return Err(other),
        };
        initiate.gateway_id = gateway_ids[index];

        let mut unit = self.initiation_unit(initiation, known, &order_stream, initiate)?;
        let book = GatewayCommand::Book {
            payment_id: initiation.payment_id,
            request: booking,
        };
        let (gateway_stream, gateway) = (&gateway_streams[index], &gateways[index]);
        self.decide_booking(&mut unit, &merchant, gateway_stream, gateway, &book)?;
        // Not needed past the decision: a state nobody else holds is folded in place when
        // the cache learns of this booking (a hot gateway's booking window is not copied).
        drop(gateways);
        self.commit_initiation(unit, initiation, &order_stream)
            .await
    }

    /// The unit of work of an initiation, with the merchant's stream as decided on, the order
    /// id's claim and the payment (the booking follows, see [`Ledger::decide_booking`]).
    fn initiation_unit(
        &self,
        initiation: &Initiation<'_>,
        known: &Loaded<Option<Merchant>>,
        order_stream: &StreamId,
        initiate: InitiatePayment,
    ) -> Result<UnitOfWork, ServiceError> {
        let mut unit = UnitOfWork::new(initiation.context.clone());
        unit.require_unchanged(&self.merchants, &initiation.merchant_stream, known);
        let claim = initiation.claim(initiate.at);
        unit.decide(&self.orders, order_stream, &Loaded::default(), &claim)?;
        let initiate = PaymentCommand::Initiate(initiate);
        let stream = &initiation.payment_stream;
        unit.decide(&self.payments, stream, &Loaded::default(), &initiate)?;
        Ok(unit)
    }

    /// Decides the payment's booking on its gateway. A gateway whose bookings are independent
    /// of one another (no monthly limit or rate cap to check) takes it whatever other bookings
    /// it recorded meanwhile.
    fn decide_booking(
        &self,
        unit: &mut UnitOfWork,
        merchant: &Merchant,
        gateway_stream: &StreamId,
        gateway: &Loaded<Option<Gateway>>,
        book: &GatewayCommand,
    ) -> Result<(), ServiceError> {
        let independent = gateway
            .state
            .as_ref()
            .is_some_and(|g| g.bookings_are_independent(merchant.checkout()));
        if independent {
            unit.decide_unless_changed(
                &self.gateways,
                gateway_stream,
                gateway,
                book,
                CAPACITY_EVENT_TYPES,
            )?;
        } else {
            unit.decide(&self.gateways, gateway_stream, gateway, book)?;
        }
        Ok(())
    }

    /// Appends an initiation: answers the new payment, the earlier one when its order id was
    /// claimed meanwhile, or None when another of its streams moved and it must be decided again.
    async fn commit_initiation(
        &self,
        unit: UnitOfWork,
        initiation: &Initiation<'_>,
        order_stream: &StreamId,
    ) -> Result<Option<Initiated>, ServiceError> {
        match unit.commit(&self.store).await {
            Ok(_) => Ok(Some(Initiated::Created(initiation.payment_id))),
            Err(AppendError::WrongExpectedVersion { stream_id, .. })
                if stream_id == *order_stream =>
            {
                self.earlier_order(order_stream, initiation.request, false)
                    .await?
                    .transpose()
            }
            // A gateway (or the merchant) moved meanwhile: decide again on what the log holds now.
            Err(AppendError::WrongExpectedVersion { .. }) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    /// The answer for an order id already used, if it was: the same payment for the same
    /// request, a refusal for another one. With `cached_only`, looks only at what this process
    /// remembers (new order ids then cost no read).
    async fn earlier_order(
        &self,
        order_stream: &StreamId,
        request: &PaymentRequest,
        cached_only: bool,
    ) -> Result<Option<Result<Initiated, ServiceError>>, ServiceError> {
        let claim = if cached_only {
            self.orders.cached(order_stream)
        } else {
            self.orders.load(order_stream).await?
        };
        Ok(claim.state.order().map(|order| {
            if order.request_digest == request.request_digest {
                Ok(Initiated::Existing(order.payment_id))
            } else {
                Err(ServiceError::OrderIdReused {
                    payment_id: order.payment_id,
                })
            }
        }))
    }

    /// The merchant's wallet and its active gateways, in one read of what the caches have not
    /// seen; with `reuse`, states the log confirmed within [`STATE_REUSE`] are not read again.
    async fn wallet_and_gateways(
        &self,
        merchant: &Merchant,
        reuse: bool,
    ) -> Result<MerchantFunds, ServiceError> {
        let wallet_stream = stream_of::<Wallet>(merchant.id())?;
        let ids: Vec<GatewayId> = merchant.active_gateways().iter().copied().collect();
        let streams = ids
            .iter()
            .map(stream_of::<Gateway>)
            .collect::<Result<Vec<StreamId>, _>>()?;
        // Each state from the cache, and whether it is recent enough to use without a read.
        let within = if reuse { STATE_REUSE } else { Duration::ZERO };
        let cached = || {
            (
                self.wallets.cached_within(&wallet_stream, within),
                streams
                    .iter()
                    .map(|s| self.gateways.cached_within(s, within))
                    .collect::<Vec<_>>(),
            )
        };
        let ((mut wallet, mut wallet_recent), mut gateways) = cached();
        let _refreshing;
        if reuse && !(wallet_recent && gateways.iter().all(|(_, recent)| *recent)) {
            // Concurrent requests of one merchant would all read the same events; the first
            // reads, the others wait for it and use what it read.
            let slot = wallet_stream.slot(self.funds_refreshes.len());
            _refreshing = self.funds_refreshes[slot].lock().await;
            ((wallet, wallet_recent), gateways) = cached();
        }
        let events = self
            .read_stale(&wallet_stream, &wallet, wallet_recent, &streams, &gateways)
            .await?;
        let wallet = up_to_date(
            &self.wallets,
            &wallet_stream,
            (wallet, wallet_recent),
            &events,
        )?;
        let states = streams
            .iter()
            .zip(gateways)
            .map(|(stream, cached)| up_to_date(&self.gateways, stream, cached, &events))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MerchantFunds {
            wallet,
            gateway_ids: ids,
            gateway_streams: streams,
            gateways: states,
        })
    }

    /// In one read, the events of the wallet and gateway streams whose cached states are not
    /// recent, after the versions the caches hold.
    async fn read_stale(
        &self,
        wallet_stream: &StreamId,
        wallet: &Loaded<Wallet>,
        wallet_recent: bool,
        gateway_streams: &[StreamId],
        gateways: &[Cached<Option<Gateway>>],
    ) -> Result<Vec<RecordedEvent>, ServiceError> {
        let mut after = Vec::with_capacity(gateway_streams.len() + 1);
        if !wallet_recent {
            after.push((wallet_stream.clone(), wallet.version));
        }
        for (stream, (cached, recent)) in gateway_streams.iter().zip(gateways) {
            if !recent {
                after.push((stream.clone(), cached.version));
            }
        }
        if after.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.read_streams(&after).await?)
    }

    /// The merchant's active gateways: ids, streams and current states, in one read.
    async fn gateways_of(
        &self,
        merchant: &Merchant,
    ) -> Result<(Vec<GatewayId>, Vec<StreamId>, Vec<Loaded<Option<Gateway>>>), ServiceError> {
        let ids: Vec<GatewayId> = merchant.active_gateways().iter().copied().collect();
        let streams = ids
            .iter()
            .map(stream_of::<Gateway>)
            .collect::<Result<Vec<StreamId>, _>>()?;
        let states = self.gateways.load_many(&streams).await?;
        Ok((ids, streams, states))
    }

    /// Where routing sends `booking` among `gateways` (the states of `gateway_ids`, in the same
    /// order), passing over the `tried` ones: the chosen gateway's index.
    fn route_to(
        &self,
        gateway_ids: &[GatewayId],
        gateways: &[Loaded<Option<Gateway>>],
        booking: &BookingRequest,
        tried: &[GatewayId],
    ) -> Result<usize, ServiceError> {
        let chosen = route(&self.candidates(gateways), booking, tried)?;
        gateway_ids
            .iter()
            .position(|id| *id == chosen)
            .ok_or(ServiceError::Inconsistent(
                Inconsistency::RoutedOutsideGateways(chosen),
            ))
    }

    /// Routing's view of the gateways that have a state, with their recent success rates (a
    /// gateway the rates do not know yet is ranked as new).
    fn candidates<'a>(&self, gateways: &'a [Loaded<Option<Gateway>>]) -> Vec<RouteCandidate<'a>> {
        gateways
            .iter()
            .filter_map(|loaded| loaded.state.as_ref())
            .map(|gateway| RouteCandidate {
                gateway,
                success_rate: self
                    .success_rates
                    .as_ref()
                    .and_then(|rates| rates.success_rate(gateway.id()))
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// A payment's current state, if it belongs to `merchant_id`.
    pub async fn payment_of(
        &self,
        merchant_id: MerchantId,
        payment_id: PaymentId,
    ) -> Result<Payment, ServiceError> {
        self.payment(payment_id)
            .await?
            .filter(|p| p.merchant_id() == merchant_id)
            .ok_or(ServiceError::UnknownPayment(payment_id))
    }

    /// A payment's current state, if it exists.
    pub async fn payment(&self, payment_id: PaymentId) -> Result<Option<Payment>, ServiceError> {
        Ok(self
            .payments
            .load(&stream_of::<Payment>(payment_id)?)
            .await?
            .state)
    }

    /// Records the order the PSP created for the payment's current gateway.
    pub async fn record_psp_order(
        &self,
        payment_id: PaymentId,
        gateway_id: GatewayId,
        psp_order_id: String,
        checkout: serde_json::Value,
        context: &CommandContext,
    ) -> Result<Payment, ServiceError> {
        let command = PaymentCommand::RecordPspOrder {
            gateway_id,
            psp_order_id,
            checkout,
            at: self.now(),
        };
        let stream = stream_of::<Payment>(payment_id)?;
        let executed = self.payments.execute(&stream, &command, context).await?;
        executed
            .state
            .ok_or(ServiceError::UnknownPayment(payment_id))
    }

    /// After `failed_gateway` could not create the payment's order: rests the gateway for the
    /// merchant's temporary-failure period, then moves the payment to the next eligible gateway
    /// (at most three gateways per payment), or fails it when none is left. Answers the
    /// payment's new state.
    pub async fn reroute_after_gateway_failure(
        &self,
        payment_id: PaymentId,
        failed_gateway: GatewayId,
        reason: &str,
        context: &CommandContext,
    ) -> Result<Payment, ServiceError> {
        let payment_stream = stream_of::<Payment>(payment_id)?;
        self.rest_failed_gateway(&payment_stream, payment_id, failed_gateway, reason, context)
            .await?;
        for _ in 0..MAX_ATTEMPTS {
            let loaded = self.payments.load(&payment_stream).await?;
            let payment = loaded
                .state
                .clone()
                .ok_or(ServiceError::UnknownPayment(payment_id))?;
            if payment.gateway_id() != failed_gateway || payment.psp_order().is_some() {
                // Another delivery of the same job already moved it on.
                return Ok(payment);
            }
            let (unit, events) = self
                .decide_reroute(&payment_stream, &loaded, &payment, reason, context)
                .await?;
            match unit.commit(&self.store).await {
                Ok(_) => {
                    let state = events.iter().fold(loaded.state, Payment::evolve);
                    return state.ok_or(ServiceError::UnknownPayment(payment_id));
                }
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
    }

    /// Marks `failed_gateway` temporarily failed for the payment's merchant's rest period.
    async fn rest_failed_gateway(
        &self,
        payment_stream: &StreamId,
        payment_id: PaymentId,
        failed_gateway: GatewayId,
        reason: &str,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let payment = self.payments.load(payment_stream).await?.state;
        let payment = payment.ok_or(ServiceError::UnknownPayment(payment_id))?;
        let merchant = self.merchant(payment.merchant_id()).await?;
        let rest_secs = merchant.checkout().temporary_failure_secs;
        let rest = GatewayCommand::MarkTemporarilyFailed {
            reason: reason.to_owned(),
            rest_secs,
            at: self.now(),
        };
        self.gateways
            .execute(&stream_of::<Gateway>(failed_gateway)?, &rest, context)
            .await?;
        Ok(())
    }

    /// Decides moving `payment` (the state `loaded` holds) off its failed gateway: releases its
    /// booking there, and books the next eligible gateway or, when none is left or it has had
    /// its share of attempts, fails it. Answers the unit to append and the payment's events.
    async fn decide_reroute(
        &self,
        payment_stream: &StreamId,
        loaded: &Loaded<Option<Payment>>,
        payment: &Payment,
        reason: &str,
        context: &CommandContext,
    ) -> Result<(UnitOfWork, Vec<PaymentEvent>), ServiceError> {
        let payment_id = payment.id();
        let merchant = self.merchant(payment.merchant_id()).await?;
        let at = self.now();
        let (gateway_ids, gateway_streams, gateways) = self.gateways_of(&merchant).await?;
        let old_stream = stream_of::<Gateway>(payment.gateway_id())?;
        let old = self.gateways.load(&old_stream).await?;
        let booking = BookingRequest {
            merchant_id: payment.merchant_id(),
            amount: payment.amount(),
            settings: *merchant.checkout(),
            at,
        };
        let next = self.next_gateway(payment, &gateway_ids, &gateways, &booking)?;

        let mut unit = UnitOfWork::new(context.clone());
        if let Some(booking) = payment.live_booking() {
            let release = booking.release(payment_id, at);
            unit.decide(&self.gateways, &old_stream, &old, &release)?;
        }
        let command = after_gateway_failure(next.map(|index| gateway_ids[index]), reason, at);
        let events = unit.decide(&self.payments, payment_stream, loaded, &command)?;
        if let Some(index) = next {
            let book = GatewayCommand::Book {
                payment_id,
                request: booking,
            };
            unit.decide(
                &self.gateways,
                &gateway_streams[index],
                &gateways[index],
                &book,
            )?;
        }
        Ok((unit, events))
    }

    /// The index of the gateway `payment` moves to after a gateway failure, among `gateways`
    /// (the states of `gateway_ids`): None when the payment has had its share of attempts or
    /// no gateway it has not tried can take it.
    fn next_gateway(
        &self,
        payment: &Payment,
        gateway_ids: &[GatewayId],
        gateways: &[Loaded<Option<Gateway>>],
        booking: &BookingRequest,
    ) -> Result<Option<usize>, ServiceError> {
        if payment.attempts() >= lightspeed_domain::payment::MAX_ATTEMPTS {
            return Ok(None);
        }
        match self.route_to(gateway_ids, gateways, booking, payment.tried_gateways()) {
            Ok(index) => Ok(Some(index)),
            Err(ServiceError::NoGatewayAvailable(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Records what a PSP reported, once per PSP de-duplication key. Answers false when the
    /// same report was already recorded.
    pub async fn report_outcome(
        &self,
        report: ReportOutcome,
        context: &CommandContext,
    ) -> Result<bool, ServiceError> {
        let stream =
            stream_of::<PspOutcomeRecord>(outcome_key(report.gateway_id, &report.dedupe_key))?;
        match self.outcomes.execute(&stream, &report, context).await {
            Ok(executed) => Ok(!executed.idempotent_replay),
            Err(lightspeed_eventstore::CommandError::Rejected(_)) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// Applies a recorded PSP outcome to its payment: success appends the payment's success
    /// and the wallet's commission accrual together (and a new booking for a late success);
    /// failure appends the failure and releases the booking. A second success is impossible by
    /// the payment's rules, so every success accrues exactly one commission.
    pub async fn settle_outcome(
        &self,
        report: &ReportOutcome,
        context: &CommandContext,
    ) -> Result<Settled, ServiceError> {
        let Some(payment_id) = report.payment_id else {
            return Ok(Settled::Unchanged);
        };
        let payment_stream = stream_of::<Payment>(payment_id)?;
        for _ in 0..MAX_ATTEMPTS {
            let loaded = self.payments.load(&payment_stream).await?;
            let Some(payment) = loaded.state.clone() else {
                return Err(ServiceError::UnknownPayment(payment_id));
            };
            if payment.merchant_id() != report.merchant_id {
                return Err(ServiceError::UnknownPayment(payment_id));
            }
            let at = self.now();
            let mut unit = UnitOfWork::new(context.clone());
            let gateway_stream = stream_of::<Gateway>(payment.gateway_id())?;
            let settling = Settling {
                payment_id,
                payment_stream: &payment_stream,
                loaded: &loaded,
                payment: &payment,
                gateway_stream: &gateway_stream,
                at,
            };
            let settled = match &report.outcome {
                PspOutcome::Succeeded { amount } => {
                    self.decide_success(&mut unit, &settling, report, *amount)
                        .await?
                }
                PspOutcome::Failed { code, reason } => {
                    self.decide_failure(&mut unit, &settling, code, reason)
                        .await?
                }
                PspOutcome::Pending | PspOutcome::Ignored { .. } => Settled::Unchanged,
            };
            if settled == Settled::Unchanged {
                // Already recorded, not final, or saying nothing: nothing to append.
                return Ok(settled);
            }
            match unit.commit(&self.store).await {
                Ok(result) if result.idempotent_replay => return Ok(Settled::Unchanged),
                Ok(_) => return Ok(settled),
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
    }

    /// Decides a reported success: the payment's success with its commission accrual, and a
    /// new booking on its gateway when the success follows a failure. Unchanged when the
    /// success was already recorded.
    async fn decide_success(
        &self,
        unit: &mut UnitOfWork,
        settling: &Settling<'_>,
        report: &ReportOutcome,
        amount: Paise,
    ) -> Result<Settled, ServiceError> {
        let (payment_id, at) = (settling.payment_id, settling.at);
        let success = PaymentCommand::RecordSuccess {
            psp_payment_id: report
                .psp_payment_id
                .clone()
                .or_else(|| report.psp_order_id.clone())
                .unwrap_or_else(|| report.dedupe_key.clone()),
            amount,
            at,
        };
        let events = match unit.decide(
            &self.payments,
            settling.payment_stream,
            settling.loaded,
            &success,
        ) {
            Err(refusal) if refusal.is_already_recorded() => return Ok(Settled::Unchanged),
            other => other?,
        };
        // A success decided is one `PaymentSucceeded`, and every one accrues its commission.
        let broken = Inconsistency::SuccessWithoutAccrual(payment_id);
        let Some(
            succeeded @ PaymentEvent::PaymentSucceeded {
                commission,
                late_success,
                ..
            },
        ) = events.first()
        else {
            return Err(broken.into());
        };
        let accrual = WalletCommand::accrual_for(payment_id, succeeded).ok_or(broken)?;
        let wallet_stream = stream_of::<Wallet>(settling.payment.merchant_id())?;
        let wallet = self.wallets.cached(&wallet_stream);
        unit.decide_any_version(&self.wallets, &wallet_stream, &wallet, &accrual)?;
        if *late_success {
            let gateway = self.gateways.load(settling.gateway_stream).await?;
            let book = GatewayCommand::BookLateSuccess {
                payment_id,
                amount: settling.payment.amount(),
                at,
            };
            unit.decide(&self.gateways, settling.gateway_stream, &gateway, &book)?;
        }
        Ok(Settled::Succeeded {
            commission: *commission,
            late_success: *late_success,
        })
    }

    /// Decides a reported failure: the payment's failure and the release of its booking.
    /// Unchanged when the payment already failed, or succeeded (a failure never undoes it).
    async fn decide_failure(
        &self,
        unit: &mut UnitOfWork,
        settling: &Settling<'_>,
        code: &str,
        reason: &str,
    ) -> Result<Settled, ServiceError> {
        let (payment_id, at) = (settling.payment_id, settling.at);
        let failure = PaymentCommand::RecordFailure {
            code: code.to_owned(),
            description: reason.to_owned(),
            at,
        };
        match unit.decide(
            &self.payments,
            settling.payment_stream,
            settling.loaded,
            &failure,
        ) {
            // `AlreadySucceeded` is among these: a success is never undone by a later failure.
            Err(refusal) if refusal.is_already_recorded() => return Ok(Settled::Unchanged),
            other => other?,
        };
        if let Some(booking) = settling.payment.live_booking() {
            let gateway = self.gateways.load(settling.gateway_stream).await?;
            let release = booking.release(payment_id, at);
            unit.decide(&self.gateways, settling.gateway_stream, &gateway, &release)?;
        }
        Ok(Settled::Failed)
    }
}

/// A payment as one attempt at settling a PSP outcome decides on it.
struct Settling<'a> {
    payment_id: PaymentId,
    payment_stream: &'a StreamId,
    /// The payment's stream at the version decided on.
    loaded: &'a Loaded<Option<Payment>>,
    payment: &'a Payment,
    /// The stream of the gateway the payment is on.
    gateway_stream: &'a StreamId,
    at: DateTime<Utc>,
}
