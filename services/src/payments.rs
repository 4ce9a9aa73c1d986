//! Payment operations: initiation with routing and booking, PSP orders, reroutes after a
//! gateway failure, and PSP outcomes turned into success (with commission) or failure.

use std::time::Duration;

use lightspeed_domain::claims::{
    ClaimOrder, MerchantOrder, MerchantOrderClaim, merchant_order_key,
};
use lightspeed_domain::gateway::{BookingRequest, CAPACITY_EVENT_TYPES, Gateway, GatewayCommand};
use lightspeed_domain::merchant::Merchant;
use lightspeed_domain::payment::{
    InitiatePayment, Payment, PaymentCommand, PaymentDetails, PaymentError, PaymentEvent,
};
use lightspeed_domain::psp_outcome::{PspOutcome, PspOutcomeRecord, ReportOutcome, outcome_key};
use lightspeed_domain::routing::{NoGatewayAvailable, RouteCandidate, route};
use lightspeed_domain::wallet::{Wallet, WalletCommand};
use lightspeed_domain::{Decider, GatewayId, MerchantId, Paise, PaymentId};
use lightspeed_eventstore::{AppendError, CommandContext, EventStore, Loaded, StreamId, stream_of};

use crate::error::ServiceError;
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

/// The events of one stream among events read for several.
fn of_stream<'a>(
    events: &'a [lightspeed_eventstore::RecordedEvent],
    stream: &'a StreamId,
) -> impl Iterator<Item = &'a lightspeed_eventstore::RecordedEvent> + 'a {
    events.iter().filter(move |e| e.stream_id == *stream)
}

/// What initiation reads besides the merchant: its wallet and its active gateways.
struct MerchantFunds {
    wallet: Loaded<Wallet>,
    gateway_ids: Vec<GatewayId>,
    gateway_streams: Vec<StreamId>,
    gateways: Vec<Loaded<Option<Gateway>>>,
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
                known = self.merchants.load(&merchant_stream).await?;
            }
            let merchant = known.state.clone().ok_or(ServiceError::UnknownMerchant)?;
            if merchant.keys_rotated_at() != signed_with {
                return Err(ServiceError::KeysRotated);
            }
            let MerchantFunds {
                wallet,
                gateway_ids,
                gateway_streams,
                gateways,
            } = self.wallet_and_gateways(&merchant, reuse).await?;
            let at = self.now();
            let mut initiate = InitiatePayment {
                payment_id,
                merchant: merchant.snapshot(wallet.state.balance_due()),
                amount: request.amount,
                currency: request.currency.clone(),
                merchant_order_id: request.order_id.clone(),
                details: request.details.clone(),
                gateway_id: GatewayId(uuid::Uuid::nil()),
                at,
            };
            // Bad input and a suspended merchant are refused before routing looks at gateways.
            match Payment::decide(&None, &PaymentCommand::Initiate(initiate.clone())) {
                Ok(_) => {}
                Err(_) if reuse => continue,
                Err(refusal) => return Err(refusal.into()),
            }

            let order_stream = stream_of::<MerchantOrderClaim>(merchant_order_key(
                merchant_id,
                &request.order_id,
            ))?;
            if let Some(answer) = self.earlier_order(&order_stream, request, true).await? {
                return answer;
            }

            let booking = BookingRequest {
                merchant_id,
                amount: request.amount,
                settings: *merchant.checkout(),
                at,
            };
            let candidates = self.candidates(&gateways);
            let chosen = match route(&candidates, &booking, &[]) {
                Ok(chosen) => chosen,
                Err(_) if reuse => continue,
                Err(refusal) => return Err(refusal.into()),
            };
            let index = gateway_ids
                .iter()
                .position(|id| *id == chosen)
                .unwrap_or_default();
            initiate.gateway_id = chosen;

            let mut unit = UnitOfWork::new(context.clone());
            unit.require_unchanged(&self.merchants, &merchant_stream, &known);
            let claim = ClaimOrder {
                order: MerchantOrder {
                    merchant_id,
                    order_id: request.order_id.clone(),
                    payment_id,
                    request_digest: request.request_digest.clone(),
                },
                at,
            };
            unit.decide(&self.orders, &order_stream, &Loaded::default(), &claim)?;
            unit.decide(
                &self.payments,
                &payment_stream,
                &Loaded::default(),
                &PaymentCommand::Initiate(initiate),
            )?;
            let book = GatewayCommand::Book {
                payment_id,
                request: booking,
            };
            let independent = gateways[index]
                .state
                .as_ref()
                .is_some_and(|g| g.bookings_are_independent(merchant.checkout()));
            if independent {
                unit.decide_unless_changed(
                    &self.gateways,
                    &gateway_streams[index],
                    &gateways[index],
                    &book,
                    CAPACITY_EVENT_TYPES,
                )?;
            } else {
                unit.decide(
                    &self.gateways,
                    &gateway_streams[index],
                    &gateways[index],
                    &book,
                )?;
            }
            // Not needed past the decision: a state nobody else holds is folded in place when
            // the cache learns of this booking (a hot gateway's booking window is not copied).
            drop(gateways);
            match unit.commit(&self.store).await {
                Ok(_) => return Ok(Initiated::Created(payment_id)),
                Err(AppendError::WrongExpectedVersion { stream_id, .. })
                    if stream_id == order_stream =>
                {
                    if let Some(answer) = self.earlier_order(&order_stream, request, false).await? {
                        return answer;
                    }
                }
                // A gateway (or the merchant's order claim) moved meanwhile: decide again on
                // what the log holds now.
                Err(AppendError::WrongExpectedVersion { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
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
        // Only the others are read, after the versions the caches hold.
        let mut after = Vec::with_capacity(streams.len() + 1);
        if !wallet_recent {
            after.push((wallet_stream.clone(), wallet.version));
        }
        for (stream, (cached, recent)) in streams.iter().zip(&gateways) {
            if !recent {
                after.push((stream.clone(), cached.version));
            }
        }
        let events = if after.is_empty() {
            Vec::new()
        } else {
            self.store.read_streams(&after).await?
        };
        let decode = |e: lightspeed_domain::UpcastError| ServiceError::Store(e.to_string());
        let wallet = if wallet_recent {
            wallet
        } else {
            self.wallets
                .absorb(&wallet_stream, wallet, of_stream(&events, &wallet_stream))
                .map_err(decode)?
        };
        let states = streams
            .iter()
            .zip(gateways)
            .map(|(stream, (loaded, recent))| {
                if recent {
                    Ok(loaded)
                } else {
                    self.gateways
                        .absorb(stream, loaded, of_stream(&events, stream))
                        .map_err(decode)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MerchantFunds {
            wallet,
            gateway_ids: ids,
            gateway_streams: streams,
            gateways: states,
        })
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
        let payment = self.payments.load(&payment_stream).await?.state;
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
            let merchant = self.merchant(payment.merchant_id()).await?;
            let at = self.now();
            let (gateway_ids, gateway_streams, gateways) = self.gateways_of(&merchant).await?;
            let old_stream = stream_of::<Gateway>(failed_gateway)?;
            let old = self.gateways.load(&old_stream).await?;
            let booking = BookingRequest {
                merchant_id: payment.merchant_id(),
                amount: payment.amount(),
                settings: *merchant.checkout(),
                at,
            };
            let attempts_left = payment.attempts() < lightspeed_domain::payment::MAX_ATTEMPTS;
            let candidates = self.candidates(&gateways);
            let next = if attempts_left {
                route(&candidates, &booking, payment.tried_gateways())
            } else {
                Err(NoGatewayAvailable {
                    rejected: Vec::new(),
                })
            };

            let mut unit = UnitOfWork::new(context.clone());
            if let Some(booking) = payment.live_booking() {
                unit.decide(
                    &self.gateways,
                    &old_stream,
                    &old,
                    &booking.release(payment_id, at),
                )?;
            }
            let events = match next {
                Ok(to_gateway) => {
                    let index = gateway_ids
                        .iter()
                        .position(|id| *id == to_gateway)
                        .unwrap_or_default();
                    let reroute = PaymentCommand::Reroute {
                        to_gateway,
                        reason: reason.to_owned(),
                        at,
                    };
                    let events = unit.decide(&self.payments, &payment_stream, &loaded, &reroute)?;
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
                    events
                }
                Err(_) => {
                    let fail = PaymentCommand::RecordFailure {
                        code: "NO_GATEWAY_AVAILABLE".into(),
                        description: format!("no gateway could create the order; last: {reason}"),
                        at,
                    };
                    unit.decide(&self.payments, &payment_stream, &loaded, &fail)?
                }
            };
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
            let settled = match &report.outcome {
                PspOutcome::Succeeded { amount } => {
                    let success = PaymentCommand::RecordSuccess {
                        psp_payment_id: report
                            .psp_payment_id
                            .clone()
                            .or_else(|| report.psp_order_id.clone())
                            .unwrap_or_else(|| report.dedupe_key.clone()),
                        amount: *amount,
                        at,
                    };
                    let events =
                        match unit.decide(&self.payments, &payment_stream, &loaded, &success) {
                            Err(refusal) if refusal.is_already_recorded() => {
                                return Ok(Settled::Unchanged);
                            }
                            other => other?,
                        };
                    let Some(PaymentEvent::PaymentSucceeded {
                        commission,
                        late_success,
                        ..
                    }) = events.first().cloned()
                    else {
                        return Ok(Settled::Unchanged);
                    };
                    if let Some(accrual) = events
                        .first()
                        .and_then(|e| WalletCommand::accrual_for(payment_id, e))
                    {
                        let wallet_stream = stream_of::<Wallet>(payment.merchant_id())?;
                        let wallet = self.wallets.cached(&wallet_stream);
                        unit.decide_any_version(&self.wallets, &wallet_stream, &wallet, &accrual)?;
                    }
                    if late_success {
                        let gateway = self.gateways.load(&gateway_stream).await?;
                        let book = GatewayCommand::BookLateSuccess {
                            payment_id,
                            amount: payment.amount(),
                            at,
                        };
                        unit.decide(&self.gateways, &gateway_stream, &gateway, &book)?;
                    }
                    Settled::Succeeded {
                        commission,
                        late_success,
                    }
                }
                PspOutcome::Failed { code, reason } => {
                    let failure = PaymentCommand::RecordFailure {
                        code: code.clone(),
                        description: reason.clone(),
                        at,
                    };
                    match unit.decide(&self.payments, &payment_stream, &loaded, &failure) {
                        Err(refusal) if refusal.is_already_recorded() => {
                            return Ok(Settled::Unchanged);
                        }
                        Err(PaymentError::AlreadySucceeded) => return Ok(Settled::Unchanged),
                        other => other?,
                    };
                    if let Some(booking) = payment.live_booking() {
                        let gateway = self.gateways.load(&gateway_stream).await?;
                        unit.decide(
                            &self.gateways,
                            &gateway_stream,
                            &gateway,
                            &booking.release(payment_id, at),
                        )?;
                    }
                    Settled::Failed
                }
                PspOutcome::Pending | PspOutcome::Ignored { .. } => return Ok(Settled::Unchanged),
            };
            match unit.commit(&self.store).await {
                Ok(result) if result.idempotent_replay => return Ok(Settled::Unchanged),
                Ok(_) => return Ok(settled),
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
    }
}
