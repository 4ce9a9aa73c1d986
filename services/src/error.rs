//! Why an operation did nothing.

use lightspeed_domain::claims::ClaimError;
use lightspeed_domain::gateway::GatewayError;
use lightspeed_domain::merchant::MerchantError;
use lightspeed_domain::merchant_alerts::MerchantAlertsError;
use lightspeed_domain::notification::NotificationError;
use lightspeed_domain::ops_alert::OpsAlertError;
use lightspeed_domain::payment::PaymentError;
use lightspeed_domain::routing::NoGatewayAvailable;
use lightspeed_domain::wallet::WalletError;
use lightspeed_domain::{GatewayId, MerchantId, NotificationId, PaymentId};
use lightspeed_eventstore::{AppendError, CommandError, InvalidInput, ReadError};

/// Why an operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No merchant with this id (or client key).
    #[error("unknown merchant")]
    UnknownMerchant,
    /// The client key and salt a request was signed with were replaced before it was applied.
    #[error("the client key was regenerated")]
    KeysRotated,
    /// No gateway with this id (for this merchant).
    #[error("unknown gateway {0}")]
    UnknownGateway(GatewayId),
    /// No payment with this id (for this merchant).
    #[error("unknown payment {0}")]
    UnknownPayment(PaymentId),
    /// No notification with this id.
    #[error("unknown notification {0}")]
    UnknownNotification(NotificationId),
    /// The merchant's order id already started another payment with a different request.
    #[error("order id already used for payment {payment_id} with a different request")]
    OrderIdReused {
        /// The payment the order id started.
        payment_id: PaymentId,
    },
    /// The merchant's refund id already asked for another refund (or another payment).
    #[error("refund id already used for refund {refund_id} with a different request")]
    RefundIdReused {
        /// The refund the refund id asked for.
        refund_id: lightspeed_domain::RefundId,
    },
    /// The merchant is closed.
    #[error("merchant is closed")]
    MerchantClosed,
    /// No gateway of the merchant can take the payment now.
    #[error(transparent)]
    NoGatewayAvailable(#[from] NoGatewayAvailable),
    /// The payment rules refused.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The gateway rules refused.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The merchant rules refused.
    #[error(transparent)]
    Merchant(#[from] MerchantError),
    /// The wallet rules refused.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// A unique claim refused.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// The alert rules refused.
    #[error(transparent)]
    Alert(#[from] OpsAlertError),
    /// The merchant alert rules refused.
    #[error(transparent)]
    MerchantAlerts(#[from] MerchantAlertsError),
    /// The notification rules refused.
    #[error(transparent)]
    Notification(#[from] NotificationError),
    /// The quota caps an admin asked for are refused.
    #[error(transparent)]
    Quota(#[from] lightspeed_domain::quota::QuotaError),
    /// The payment would pass one of the merchant's quota caps.
    #[error(transparent)]
    QuotaExceeded(#[from] lightspeed_domain::quota::UsageError),
    /// The person rules refused.
    #[error(transparent)]
    Person(#[from] lightspeed_domain::person::PersonError),
    /// The person is an admin by the `ADMIN_EMAILS` setting, which only the setting changes.
    #[error("an admin by ADMIN_EMAILS; change the setting to change them")]
    BootstrapAdmin,
    /// The same gateway was named twice in one request.
    #[error("gateway {0} is named twice")]
    DuplicateGateway(GatewayId),
    /// Other writers kept winning the race for the same streams.
    #[error("the merchant's streams stayed contended; try again")]
    Contended,
    /// Input the log refuses (ids, sizes).
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A command id's events are already stored with other content: the command decided other
    /// events than its first try did, which trying again cannot change.
    #[error("event {event_id} was already stored with different content")]
    IdempotencyConflict {
        /// The event id both tries derived.
        event_id: uuid::Uuid,
    },
    /// The log failed.
    #[error("event log: {0}")]
    Store(String),
    /// The ledger broke one of its own invariants: a bug, never the caller's doing, so callers
    /// answer it as an internal error.
    #[error("broken invariant: {0}")]
    Inconsistent(#[from] Inconsistency),
}

/// An invariant of the ledger found broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Inconsistency {
    /// Routing chose a gateway that is not among the merchant's active gateways it was offered.
    #[error("routing chose gateway {0}, which is not among the merchant's active gateways")]
    RoutedOutsideGateways(GatewayId),
    /// A client key's claim names a merchant whose stream holds no merchant.
    #[error("a client key is claimed by merchant {0}, which the log does not hold")]
    ClaimedByNoMerchant(MerchantId),
    /// Recording a payment's success decided no commission accrual.
    #[error("the success of payment {0} decided no commission accrual")]
    SuccessWithoutAccrual(PaymentId),
}

impl From<AppendError> for ServiceError {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::Invalid(invalid) => Self::Invalid(invalid),
            AppendError::IdempotencyConflict { event_id } => Self::IdempotencyConflict { event_id },
            other => Self::Store(other.to_string()),
        }
    }
}

impl From<ReadError> for ServiceError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Invalid(invalid) => Self::Invalid(invalid),
            other => Self::Store(other.to_string()),
        }
    }
}

impl<E> From<CommandError<E>> for ServiceError
where
    E: std::error::Error + Into<ServiceError> + 'static,
{
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(rejection) => rejection.into(),
            CommandError::Contended { .. } => Self::Contended,
            CommandError::Append(append) => append.into(),
            CommandError::Read(read) => read.into(),
            CommandError::Decode(decode) => Self::Store(decode.to_string()),
        }
    }
}

/// For deciders that never refuse (queues).
impl From<std::convert::Infallible> for ServiceError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<lightspeed_domain::psp_outcome::PspOutcomeError> for ServiceError {
    fn from(error: lightspeed_domain::psp_outcome::PspOutcomeError) -> Self {
        Self::Store(error.to_string())
    }
}
