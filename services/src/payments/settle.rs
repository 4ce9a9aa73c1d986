//! Settlement: a PSP's outcome turned into the payment's success (with its commission) or
//! failure.

use chrono::{DateTime, Utc};
use lightspeed_domain::gateway::{Gateway, GatewayCommand};
use lightspeed_domain::payment::{Payment, PaymentCommand, PaymentEvent};
use lightspeed_domain::psp_outcome::{PspOutcome, ReportOutcome};
use lightspeed_domain::wallet::{Wallet, WalletCommand};
use lightspeed_domain::{Paise, PaymentId};
use lightspeed_eventstore::{AppendError, CommandContext, Loaded, StreamId, stream_of};

use super::Settled;
use crate::error::{Inconsistency, ServiceError};
use crate::ledger::{Ledger, MAX_ATTEMPTS};
use crate::unit_of_work::UnitOfWork;

impl Ledger {
    /// Applies a recorded PSP outcome to its payment: success appends the payment's success
    /// and the wallet's commission accrual together (and a new booking for a late success);
    /// failure appends the failure and releases the booking. A second success is impossible by
    /// the payment's rules, so every success accrues exactly one commission.
    ///
    /// Everything is decided as of the report (its instant, not the clock's), so a retry of the
    /// same settlement on the same payment decides the same events and stores nothing new.
    ///
    /// A refund report moves its refund instead ([`Ledger::settle_refund_report`]) and leaves
    /// the payment's own outcome unchanged.
    pub async fn settle_outcome(
        &self,
        report: &ReportOutcome,
        context: &CommandContext,
    ) -> Result<Settled, ServiceError> {
        if matches!(report.outcome, PspOutcome::Refund { .. }) {
            self.settle_refund_report(report, context).await?;
            return Ok(Settled::Unchanged);
        }
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
            let at = report.at;
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
                PspOutcome::Pending | PspOutcome::Refund { .. } | PspOutcome::Ignored { .. } => {
                    Settled::Unchanged
                }
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
