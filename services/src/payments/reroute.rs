//! Reroutes: a payment whose gateway could not create its order moves to the next gateway.

use chrono::{DateTime, Utc};
use lightspeed_domain::gateway::{BookingRequest, Gateway, GatewayCommand};
use lightspeed_domain::merchant::Merchant;
use lightspeed_domain::payment::{Payment, PaymentCommand, PaymentEvent};
use lightspeed_domain::{Decider, GatewayId, PaymentId};
use lightspeed_eventstore::{AppendError, CommandContext, Loaded, StreamId, stream_of};

use crate::error::ServiceError;
use crate::ledger::{Ledger, MAX_ATTEMPTS};
use crate::unit_of_work::UnitOfWork;

impl Ledger {
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
