//! Payment initiation: the merchant's standing, routing, and the order-id claim, the payment,
//! the gateway booking and (for a merchant with quota caps) the quota usage appended together.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lightspeed_domain::claims::{
    ClaimOrder, MerchantOrder, MerchantOrderClaim, merchant_order_key,
};
use lightspeed_domain::gateway::{BookingRequest, CAPACITY_EVENT_TYPES, Gateway, GatewayCommand};
use lightspeed_domain::merchant::Merchant;
use lightspeed_domain::payment::{InitiatePayment, Payment, PaymentCommand};
use lightspeed_domain::quota::{MerchantQuota, UsageCommand};
use lightspeed_domain::wallet::Wallet;
use lightspeed_domain::{Decider, GatewayId, MerchantId, Paise, PaymentId};
use lightspeed_eventstore::{
    AppendError, CommandContext, CommandHandler, EventStore, Loaded, PgEventStore, RecordedEvent,
    StreamId, stream_of,
};

use super::{Initiated, PaymentRequest};
use crate::error::ServiceError;
use crate::ledger::{Ledger, STATE_REUSE};
use crate::merchants::AuthenticatedMerchant;
use crate::quotas::usage_stream;
use crate::unit_of_work::UnitOfWork;

/// How many times an initiation is decided again after another writer got there first. A
/// capped merchant's initiations all append to its usage stream, so under a crowd (several API
/// processes at once) one can lose that race many times in a row; past this it is refused with
/// [`ServiceError::Contended`], which the API answers with 429 and `Retry-After`.
const MAX_INITIATION_ATTEMPTS: u32 = 16;

/// The longest pause before deciding again after a lost race.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(64);

/// A random pause before attempt `attempt` (from 2, the second decided on what the log holds):
/// up to 1 ms doubled per lost race, at most [`MAX_RETRY_PAUSE`], so the racing processes spread
/// out instead of colliding again at once.
fn retry_pause(attempt: u32) -> Duration {
    let ceiling =
        Duration::from_millis(1u64 << attempt.saturating_sub(2).min(6)).min(MAX_RETRY_PAUSE);
    rand::random_range(Duration::ZERO..=ceiling)
}

/// What initiation reads besides the merchant: its wallet, its quota caps and its active
/// gateways.
struct MerchantFunds {
    wallet: Loaded<Wallet>,
    quota: Loaded<MerchantQuota>,
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
        // on what the log holds now, after a random pause once a decision on it lost too.
        for attempt in 0..MAX_INITIATION_ATTEMPTS {
            let reuse = attempt == 0;
            if attempt >= 2 {
                tokio::time::sleep(retry_pause(attempt)).await;
            }
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
            quota,
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
        let caps = quota.state.caps();
        if caps.is_empty() {
            return self
                .commit_initiation(unit, initiation, &order_stream)
                .await;
        }
        // The merchant's usage this month, decided on and appended at the same version, in
        // this process one initiation at a time.
        let usage_stream = usage_stream(initiation.merchant_id, at)?;
        let _turn = self.quota_turns[usage_stream.slot(self.quota_turns.len())]
            .lock()
            .await;
        let usage = self.usage_at(&usage_stream, reuse).await?;
        let admit = UsageCommand::Admit {
            merchant_id: initiation.merchant_id,
            payment_id: initiation.payment_id,
            amount: request.amount,
            caps,
            at,
        };
        let used = match unit.decide(&self.quota_usage, &usage_stream, &usage, &admit) {
            Ok(events) => events,
            Err(_) if reuse => return Ok(None),
            Err(refusal) => {
                // A request repeated (here or at another replica) answers its payment, as it
                // does under the cap: the order id is looked up in the log, not only in memory.
                if let Some(answer) = self.earlier_order(&order_stream, request, false).await? {
                    return answer.map(Some);
                }
                return Err(refusal.into());
            }
        };
        self.queue_quota_notifications(&mut unit, &merchant, &used)?;
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
        let quota_stream = stream_of::<MerchantQuota>(merchant.id())?;
        let ids: Vec<GatewayId> = merchant.active_gateways().iter().copied().collect();
        let streams = ids
            .iter()
            .map(stream_of::<Gateway>)
            .collect::<Result<Vec<StreamId>, _>>()?;
        // Streams this process has not seen yet start from their snapshots, not their first event.
        self.wallets
            .warm(std::slice::from_ref(&wallet_stream))
            .await?;
        self.gateways.warm(&streams).await?;
        // Each state from the cache, and whether it is recent enough to use without a read.
        let within = if reuse { STATE_REUSE } else { Duration::ZERO };
        let cached = || {
            (
                self.wallets.cached_within(&wallet_stream, within),
                self.quotas.cached_within(&quota_stream, within),
                streams
                    .iter()
                    .map(|s| self.gateways.cached_within(s, within))
                    .collect::<Vec<_>>(),
            )
        };
        let ((mut wallet, mut wallet_recent), mut quota, mut gateways) = cached();
        let _refreshing;
        if reuse && !(wallet_recent && quota.1 && gateways.iter().all(|(_, recent)| *recent)) {
            // Concurrent requests of one merchant would all read the same events; the first
            // reads, the others wait for it and use what it read.
            let slot = wallet_stream.slot(self.funds_refreshes.len());
            _refreshing = self.funds_refreshes[slot].lock().await;
            ((wallet, wallet_recent), quota, gateways) = cached();
        }
        let events = self
            .read_stale(
                [
                    (&wallet_stream, wallet.version, wallet_recent),
                    (&quota_stream, quota.0.version, quota.1),
                ],
                &streams,
                &gateways,
            )
            .await?;
        let wallet = up_to_date(
            &self.wallets,
            &wallet_stream,
            (wallet, wallet_recent),
            &events,
        )?;
        let quota = up_to_date(&self.quotas, &quota_stream, quota, &events)?;
        let states = streams
            .iter()
            .zip(gateways)
            .map(|(stream, cached)| up_to_date(&self.gateways, stream, cached, &events))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MerchantFunds {
            wallet,
            quota,
            gateway_ids: ids,
            gateway_streams: streams,
            gateways: states,
        })
    }

    /// In one read, the events of the merchant's own streams (wallet, quota caps: stream,
    /// cached version, whether recent) and gateway streams whose cached states are not recent,
    /// after the versions the caches hold.
    async fn read_stale(
        &self,
        own: [(&StreamId, u64, bool); 2],
        gateway_streams: &[StreamId],
        gateways: &[Cached<Option<Gateway>>],
    ) -> Result<Vec<RecordedEvent>, ServiceError> {
        let mut after = Vec::with_capacity(gateway_streams.len() + own.len());
        for (stream, version, recent) in own {
            if !recent {
                after.push((stream.clone(), version));
            }
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
