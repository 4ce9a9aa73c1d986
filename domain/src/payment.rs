//! Payment (the API calls it transaction): from initiation to a verified outcome.
//!
//! Stream `payment-<PaymentId>`. Lifecycle: initiated (routed to a gateway, which was booked in
//! the same atomic append) → PSP order created (checkout handed out) → succeeded or failed. While
//! no PSP order exists a gateway failure may reroute the payment: at most [`MAX_ATTEMPTS`]
//! gateways per payment (the first and two reroutes). A success after a failure is a late
//! success (Razorpay may send `payment.failed` and then `payment.captured`) and is accepted once.
//!
//! Rules:
//! - Admission ([`admit`]): the merchant must be active and its balance due below the suspend
//!   threshold, else a dedicated refusal carries the amount due.
//! - Commission is decided once, at success: `amount × fee / 10 000` rounded half-up, with the
//!   fee in force at initiation (carried in `PaymentInitiated`), and recorded in
//!   `PaymentSucceeded` (appended atomically with the wallet's `CommissionAccrued`). A second
//!   success is refused with [`PaymentError::AlreadySucceeded`], so there is exactly one
//!   commission per successful payment.
//! - Refunds (full or partial, several partials up to the amount) are requests on this stream,
//!   so the log decides what is left to refund ([`refunds`]); the commission is kept or reversed
//!   pro rata per the merchant's setting, and the gateway booking is not released.
//! - Duplicate or stale facts from PSPs are refused with errors whose
//!   [`PaymentError::is_already_recorded`] is true; callers treat them as idempotent no-ops.

pub mod refunds;

use crate::decider::Decider;
use crate::gateway::GatewayCommand;
use crate::ids::{GatewayId, MerchantId, PaymentId, RefundId};
use crate::money::{BasisPoints, Currency, Paise};
use crate::standing::{MerchantStatus, Standing, Thresholds, standing};
use crate::validation::{self, FieldError, Problem};
use chrono::{DateTime, Utc};
use refunds::{Refund, RefundCommission, RequestRefund};
use serde::{Deserialize, Serialize};

/// Gateways a payment may try in total: the first one and two reroutes.
pub const MAX_ATTEMPTS: usize = 3;

/// Largest payment accepted: ₹1,00,00,000 (one crore).
pub const MAX_PAYMENT_AMOUNT: Paise = Paise::rupees(10_000_000);

/// Longest merchant order id, in characters.
pub const MAX_ORDER_ID_CHARS: usize = 40;

/// Longest PSP identifier (order, payment or refund id) accepted, in characters.
pub const MAX_PSP_ID_CHARS: usize = 100;

/// Longest failure code or description kept, in characters.
pub const MAX_FAILURE_TEXT_CHARS: usize = 500;

/// The characters a merchant order id may use.
pub fn is_order_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// What payment initiation needs to know about the merchant, taken when the command is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantSnapshot {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// Its status.
    pub status: MerchantStatus,
    /// The fee in force now; carried into the payment.
    pub fee: BasisPoints,
    /// Its thresholds.
    pub thresholds: Thresholds,
    /// Its wallet's balance due now.
    pub balance_due: Paise,
}

/// Whether the merchant may start a new payment: active, and balance due below the suspend
/// threshold.
pub fn admit(merchant: &MerchantSnapshot) -> Result<(), PaymentError> {
    if merchant.status != MerchantStatus::Active {
        return Err(PaymentError::MerchantNotActive {
            status: merchant.status,
        });
    }
    if standing(merchant.balance_due, &merchant.thresholds) == Standing::Suspended {
        return Err(PaymentError::BalanceDueOverLimit {
            balance_due: merchant.balance_due,
            suspend_at: merchant.thresholds.suspend_at,
        });
    }
    Ok(())
}

/// Where a payment stands: the one vocabulary of the merchant API, the status stream, merchant
/// webhooks and admin reads (`created → pending → succeeded | failed`, `failed → succeeded`
/// for a late success, `succeeded → refunded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Routed and booked on a gateway; no PSP order yet.
    Created,
    /// The PSP order exists; waiting for the payer and the PSP's outcome.
    Pending,
    /// Paid; commission decided.
    Succeeded,
    /// Failed (a late success may still follow).
    Failed,
    /// Paid, then refunded in full.
    Refunded,
}

impl PaymentStatus {
    /// Every status, in the order a payment may pass through them.
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Created,
        PaymentStatus::Pending,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Refunded,
    ];

    /// The status's name everywhere it is shown or stored.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Created => "created",
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
        }
    }

    /// The status of a name; also reads the names merchant webhooks queued by earlier releases
    /// carry (`initiated`, `awaiting_payment`), which recorded payloads keep.
    pub fn parse(name: &str) -> Option<PaymentStatus> {
        match name {
            "initiated" => Some(PaymentStatus::Created),
            "awaiting_payment" => Some(PaymentStatus::Pending),
            other => PaymentStatus::ALL.into_iter().find(|s| s.as_str() == other),
        }
    }

    /// True once the status will not change by itself any more (a failed payment's late
    /// success comes from the PSP, not from waiting).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PaymentStatus::Succeeded | PaymentStatus::Failed | PaymentStatus::Refunded
        )
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Capacity booked on a gateway for this payment and not released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// The booked gateway.
    pub gateway_id: GatewayId,
    /// The booked amount.
    pub amount: Paise,
    /// When it was booked.
    pub booked_at: DateTime<Utc>,
}

impl Booking {
    /// The gateway command that releases this booking (append it with the failure or reroute).
    pub fn release(&self, payment_id: PaymentId, at: DateTime<Utc>) -> GatewayCommand {
        GatewayCommand::ReleaseBooking {
            payment_id,
            amount: self.amount,
            booked_at: self.booked_at,
            at,
        }
    }
}

/// The order created at the PSP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PspOrder {
    /// The PSP's order id.
    pub psp_order_id: String,
    /// Provider-specific checkout data handed to the customer (URL, form fields).
    pub checkout: serde_json::Value,
}

/// The verified success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    /// The PSP's payment id.
    pub psp_payment_id: String,
    /// Commission decided at success.
    pub commission: Paise,
    /// Whether it came after a failure.
    pub late: bool,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// Why the payment failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// PSP or internal error code.
    pub code: String,
    /// Human description.
    pub description: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// A payment as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    id: PaymentId,
    merchant_id: MerchantId,
    amount: Paise,
    currency: Currency,
    merchant_order_id: String,
    details: PaymentDetails,
    fee: BasisPoints,
    gateway_id: GatewayId,
    tried_gateways: Vec<GatewayId>,
    booked_at: Option<DateTime<Utc>>,
    psp_order: Option<PspOrder>,
    status: PaymentStatus,
    success: Option<Success>,
    failure: Option<Failure>,
    refunds: Vec<Refund>,
    commission_reversed: Paise,
    initiated_at: DateTime<Utc>,
}

impl Payment {
    /// The payment's id.
    pub fn id(&self) -> PaymentId {
        self.id
    }

    /// The merchant it is for.
    pub fn merchant_id(&self) -> MerchantId {
        self.merchant_id
    }

    /// Amount in paise.
    pub fn amount(&self) -> Paise {
        self.amount
    }

    /// Currency (INR).
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Payer, redirect and notes.
    pub fn details(&self) -> &PaymentDetails {
        &self.details
    }

    /// The merchant's order id.
    pub fn merchant_order_id(&self) -> &str {
        &self.merchant_order_id
    }

    /// The fee in force at initiation; the commission uses this one.
    pub fn fee(&self) -> BasisPoints {
        self.fee
    }

    /// The gateway currently (or last) routed to.
    pub fn gateway_id(&self) -> GatewayId {
        self.gateway_id
    }

    /// Every gateway tried, in order.
    pub fn tried_gateways(&self) -> &[GatewayId] {
        &self.tried_gateways
    }

    /// How many gateways were tried.
    pub fn attempts(&self) -> usize {
        self.tried_gateways.len()
    }

    /// The booking held on the current gateway, if not released.
    pub fn live_booking(&self) -> Option<Booking> {
        self.booked_at.map(|booked_at| Booking {
            gateway_id: self.gateway_id,
            amount: self.amount,
            booked_at,
        })
    }

    /// The PSP order, once created.
    pub fn psp_order(&self) -> Option<&PspOrder> {
        self.psp_order.as_ref()
    }

    /// Where the payment stands.
    pub fn status(&self) -> PaymentStatus {
        self.status
    }

    /// The success, if any.
    pub fn success(&self) -> Option<&Success> {
        self.success.as_ref()
    }

    /// The commission, once succeeded.
    pub fn commission(&self) -> Option<Paise> {
        self.success.as_ref().map(|success| success.commission)
    }

    /// The last failure, if any (kept after a late success, for the record).
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// When it was initiated.
    pub fn initiated_at(&self) -> DateTime<Utc> {
        self.initiated_at
    }
}

/// Most notes a payment may carry (Razorpay's limit, the strictest of the PSPs).
pub const MAX_NOTES: usize = 15;
/// Longest note key, in characters.
pub const MAX_NOTE_KEY_CHARS: usize = 40;
/// Longest note value, in characters.
pub const MAX_NOTE_VALUE_CHARS: usize = 256;
/// Longest customer name, in characters.
pub const MAX_CUSTOMER_NAME_CHARS: usize = 100;
/// Longest customer email, in characters.
pub const MAX_EMAIL_CHARS: usize = 254;

/// What the merchant told us about the payer and the payment, beyond the amount: passed to the
/// PSP (some require a phone) and used to send the payer back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDetails {
    /// The payer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// The payer's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    /// The payer's phone, digits in international format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_phone: Option<String>,
    /// Where the payer's browser goes after paying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// The merchant's own key/value notes.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub notes: std::collections::BTreeMap<String, String>,
}

impl PaymentDetails {
    /// Checks every field; answers the details normalised (trimmed name, phone digits).
    pub fn validated(&self) -> Result<PaymentDetails, FieldError> {
        let customer_name = self
            .customer_name
            .as_deref()
            .map(|name| validation::text("customer.name", name, MAX_CUSTOMER_NAME_CHARS))
            .transpose()?;
        let customer_email = self.customer_email.as_deref().map(email).transpose()?;
        let customer_phone = self
            .customer_phone
            .as_deref()
            .map(|phone| validation::phone("customer.phone", phone))
            .transpose()?;
        if let Some(url) = &self.redirect_url {
            validation::http_url("redirect_url", url)?;
        }
        validate_notes(&self.notes)?;
        Ok(PaymentDetails {
            customer_name,
            customer_email,
            customer_phone,
            redirect_url: self.redirect_url.clone(),
            notes: self.notes.clone(),
        })
    }
}

/// A payer's email, trimmed: `user@host.tld` without spaces or control characters.
fn email(value: &str) -> Result<String, FieldError> {
    let email = value.trim();
    let well_formed = email.split_once('@').is_some_and(|(user, host)| {
        !user.is_empty() && host.contains('.') && !host.starts_with('.')
    });
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(Problem::TooLong {
            max: MAX_EMAIL_CHARS,
        }
        .at("customer.email"));
    }
    if !well_formed || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Problem::BadCharacters {
            allowed: "an email address",
        }
        .at("customer.email"));
    }
    Ok(email.to_owned())
}

/// At most [`MAX_NOTES`] notes, each key plain text and each value printable, within their
/// lengths.
fn validate_notes(notes: &std::collections::BTreeMap<String, String>) -> Result<(), FieldError> {
    if notes.len() > MAX_NOTES {
        return Err(Problem::OutOfRange {
            min: 0,
            max: MAX_NOTES as i64,
        }
        .at("notes"));
    }
    for (key, value) in notes {
        validation::text("notes", key, MAX_NOTE_KEY_CHARS)?;
        if value.chars().count() > MAX_NOTE_VALUE_CHARS {
            return Err(Problem::TooLong {
                max: MAX_NOTE_VALUE_CHARS,
            }
            .at("notes"));
        }
        if value.chars().any(char::is_control) {
            return Err(Problem::BadCharacters {
                allowed: "printable characters",
            }
            .at("notes"));
        }
    }
    Ok(())
}

/// Everything needed to initiate a payment. Routing already chose `gateway_id`; the same append
/// books it (`GatewayCommand::Book`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitiatePayment {
    /// The new payment's id.
    pub payment_id: PaymentId,
    /// The merchant's standing and fee, with its balance due.
    pub merchant: MerchantSnapshot,
    /// Amount in paise (positive, at most [`MAX_PAYMENT_AMOUNT`]).
    pub amount: Paise,
    /// Currency code as sent; only `INR`.
    pub currency: String,
    /// The merchant's order id (1 to 40 of `A-Z a-z 0-9 - _ .`).
    pub merchant_order_id: String,
    /// Payer, redirect and notes.
    pub details: PaymentDetails,
    /// The gateway routing chose.
    pub gateway_id: GatewayId,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

/// What can be asked of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentCommand {
    /// Starts a payment.
    Initiate(InitiatePayment),
    /// Records the order the PSP created.
    RecordPspOrder {
        /// The gateway the order was created on (must be the current one).
        gateway_id: GatewayId,
        /// The PSP's order id.
        psp_order_id: String,
        /// Checkout data for the customer.
        checkout: serde_json::Value,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Moves the payment to another gateway after the current one failed to create an order.
    /// Appended with the old booking's release and the new gateway's booking.
    Reroute {
        /// The gateway routing chose next.
        to_gateway: GatewayId,
        /// Why the current gateway failed.
        reason: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records a verified PSP success. Appended with the wallet's commission accrual (and, when
    /// late, a new booking on the gateway).
    RecordSuccess {
        /// The PSP's payment id.
        psp_payment_id: String,
        /// The amount the PSP reports as paid; must equal the payment's amount.
        amount: Paise,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records a verified PSP failure (or an expiry). Appended with the booking's release.
    RecordFailure {
        /// PSP or internal error code.
        code: String,
        /// Human description.
        description: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records a refund the PSP reported that was not requested through us (made in its
    /// dashboard); it keeps the commission.
    RecordRefund {
        /// The PSP's refund id.
        refund_id: String,
        /// Amount refunded.
        amount: Paise,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Asks for (part of) a succeeded payment back, holding the amount.
    RequestRefund(RequestRefund),
    /// Records the PSP's id for a requested refund it accepted.
    RecordRefundSubmitted {
        /// The refund.
        refund_id: RefundId,
        /// The PSP's refund id.
        psp_refund_id: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records that the PSP returned a requested refund's money (with its commission reversal,
    /// under the treatment taken at the request).
    RecordRefundSucceeded {
        /// The refund.
        refund_id: RefundId,
        /// The PSP's refund id, when the report names it.
        psp_refund_id: Option<String>,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records that the PSP refused or failed a requested refund; its amount may be refunded
    /// again.
    RecordRefundFailed {
        /// The refund.
        refund_id: RefundId,
        /// The PSP's (or our) error code.
        code: String,
        /// The reason, in words.
        reason: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What a payment stream records.
    pub enum PaymentEvent {
        /// A payment was initiated and routed.
        PaymentInitiated {
            /// The payment's id.
            payment_id: PaymentId,
            /// The merchant.
            merchant_id: MerchantId,
            /// Amount in paise.
            amount: Paise,
            /// Currency.
            currency: Currency,
            /// The merchant's order id.
            merchant_order_id: String,
            /// Payer, redirect and notes.
            #[serde(default)]
            details: PaymentDetails,
            /// The gateway routed to (and booked).
            gateway_id: GatewayId,
            /// The merchant's fee in force now; the commission will use it.
            fee: BasisPoints,
            /// When.
            at: DateTime<Utc>,
        },
        /// The PSP created an order.
        PspOrderCreated {
            /// The gateway.
            gateway_id: GatewayId,
            /// The PSP's order id.
            psp_order_id: String,
            /// Checkout data for the customer.
            checkout: serde_json::Value,
            /// When.
            at: DateTime<Utc>,
        },
        /// The payment moved to another gateway.
        PaymentRerouted {
            /// The gateway that failed (its booking released).
            from_gateway: GatewayId,
            /// The gateway now booked.
            to_gateway: GatewayId,
            /// Which attempt this starts (2 or 3).
            attempt: u32,
            /// Why the previous gateway failed.
            reason: String,
            /// When.
            at: DateTime<Utc>,
        },
        /// The PSP confirmed payment; commission decided.
        PaymentSucceeded {
            /// The gateway that took the money.
            gateway_id: GatewayId,
            /// Amount paid.
            amount: Paise,
            /// Fee in force at initiation.
            fee: BasisPoints,
            /// `amount × fee / 10 000`, rounded half-up.
            commission: Paise,
            /// The PSP's payment id.
            psp_payment_id: String,
            /// True when it followed a failure.
            late_success: bool,
            /// When.
            at: DateTime<Utc>,
        },
        /// The payment failed.
        PaymentFailed {
            /// The gateway it failed on.
            gateway_id: GatewayId,
            /// PSP or internal error code.
            code: String,
            /// Human description.
            description: String,
            /// When.
            at: DateTime<Utc>,
        },
        /// A refund succeeded: the PSP returned its amount to the payer.
        PaymentRefunded {
            /// Our refund id (a `RefundId`), or the PSP's for a refund it reported that was not
            /// requested through us.
            refund_id: String,
            /// Amount of this refund.
            amount: Paise,
            /// Total refunded so far, this one included.
            refunded_total: Paise,
            /// Commission reversed by this refund (zero when the commission is retained).
            #[serde(default)]
            commission_reversed: Paise,
            /// The PSP's refund id, when known.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            psp_refund_id: Option<String>,
            /// When.
            at: DateTime<Utc>,
        },
        /// A refund was requested; its amount is held until it succeeds or fails.
        RefundRequested {
            /// Our refund id.
            refund_id: RefundId,
            /// The merchant's refund id.
            merchant_refund_id: String,
            /// Amount to return.
            amount: Paise,
            /// The merchant's reason.
            reason: String,
            /// The commission treatment in force.
            commission: RefundCommission,
            /// When.
            at: DateTime<Utc>,
        },
        /// The PSP accepted a refund and named its id.
        RefundSubmitted {
            /// Our refund id.
            refund_id: RefundId,
            /// The PSP's refund id.
            psp_refund_id: String,
            /// When.
            at: DateTime<Utc>,
        },
        /// A refund failed; its amount may be refunded again.
        RefundFailed {
            /// Our refund id.
            refund_id: RefundId,
            /// Its amount, given back to what may be refunded.
            amount: Paise,
            /// The PSP's (or our) error code.
            code: String,
            /// The reason, in words.
            reason: String,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why a payment command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The stream has no `PaymentInitiated` yet.
    #[error("payment not initiated")]
    NotInitiated,
    /// `Initiate` on an existing payment.
    #[error("payment already initiated")]
    AlreadyInitiated,
    /// A field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The merchant is suspended or closed.
    #[error("merchant is {status:?}")]
    MerchantNotActive {
        /// The merchant's status.
        status: MerchantStatus,
    },
    /// The merchant owes at least its suspend threshold in commission.
    #[error("merchant owes {balance_due} in commission (suspended from {suspend_at})")]
    BalanceDueOverLimit {
        /// What the merchant owes.
        balance_due: Paise,
        /// The suspend threshold.
        suspend_at: Paise,
    },
    /// The payment already succeeded: a duplicate success, or a stale failure.
    #[error("payment already succeeded")]
    AlreadySucceeded,
    /// The payment already failed: a duplicate failure.
    #[error("payment already failed")]
    AlreadyFailed,
    /// A PSP order was already recorded with another id.
    #[error("PSP order {psp_order_id} already created")]
    PspOrderAlreadyCreated {
        /// The recorded order id.
        psp_order_id: String,
    },
    /// The command names a gateway the payment is no longer routed to.
    #[error("payment is routed to {current}, not {reported}")]
    StaleGateway {
        /// The current gateway.
        current: GatewayId,
        /// The gateway named.
        reported: GatewayId,
    },
    /// Rerouting is only possible before a PSP order exists.
    #[error("payment cannot be rerouted once its PSP order exists")]
    PspOrderExists,
    /// The payment tried [`MAX_ATTEMPTS`] gateways already.
    #[error("payment already tried {attempts} gateways")]
    RerouteLimitReached {
        /// Gateways tried.
        attempts: usize,
    },
    /// The payment already tried this gateway.
    #[error("payment already tried gateway {0}")]
    GatewayAlreadyTried(GatewayId),
    /// The PSP reports a different amount than the payment's.
    #[error("PSP reports {reported} but the payment is for {expected}")]
    AmountMismatch {
        /// The payment's amount.
        expected: Paise,
        /// The PSP's amount.
        reported: Paise,
    },
    /// Only a succeeded payment can be refunded.
    #[error("payment is {status:?}; only a succeeded payment can be refunded")]
    NotRefundable {
        /// Current status.
        status: PaymentStatus,
    },
    /// The refund would take the total refunded past the amount.
    #[error("refund of {requested} exceeds the refundable {refundable}")]
    RefundExceedsAmount {
        /// Still refundable.
        refundable: Paise,
        /// Asked for.
        requested: Paise,
    },
    /// This PSP refund id was already recorded.
    #[error("refund {refund_id} already recorded")]
    RefundAlreadyRecorded {
        /// The refund id.
        refund_id: String,
    },
    /// A refund with this id was already requested.
    #[error("refund {0} already requested")]
    RefundAlreadyRequested(RefundId),
    /// No refund with this id on the payment.
    #[error("refund {0} unknown on this payment")]
    UnknownRefund(RefundId),
    /// The refund already succeeded (a repeated success, or a failure after it).
    #[error("refund {0} already succeeded")]
    RefundAlreadySucceeded(RefundId),
    /// The refund already failed (a repeated failure).
    #[error("refund {0} already failed")]
    RefundAlreadyFailed(RefundId),
    /// A success reported for a refund recorded as failed: its amount was given back to what
    /// may be refunded, so ops must look.
    #[error("refund {0} reported succeeded after it was recorded failed")]
    RefundSucceededAfterFailure(RefundId),
    /// The refund was submitted under another PSP refund id.
    #[error("refund already submitted as {psp_refund_id}")]
    RefundSubmittedAs {
        /// The PSP refund id recorded.
        psp_refund_id: String,
    },
}

impl PaymentError {
    /// True when the fact is already reflected in the payment (duplicate or stale PSP report):
    /// callers acknowledge it without effect instead of reporting an error.
    pub fn is_already_recorded(&self) -> bool {
        matches!(
            self,
            PaymentError::AlreadySucceeded
                | PaymentError::AlreadyFailed
                | PaymentError::RefundAlreadyRecorded { .. }
                | PaymentError::RefundAlreadyRequested(_)
                | PaymentError::RefundAlreadySucceeded(_)
                | PaymentError::RefundAlreadyFailed(_)
        )
    }

    /// The command field at fault, for validation errors.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            PaymentError::Invalid(error) => Some(error.field),
            _ => None,
        }
    }
}

impl Decider for Payment {
    const CATEGORY: &'static str = "payment";
    type State = Option<Payment>;
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;

    fn decide(
        state: &Option<Payment>,
        command: &PaymentCommand,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        match (state, command) {
            (None, PaymentCommand::Initiate(initiate)) => initiate_payment(initiate),
            (Some(_), PaymentCommand::Initiate(_)) => Err(PaymentError::AlreadyInitiated),
            (None, _) => Err(PaymentError::NotInitiated),
            (
                Some(payment),
                PaymentCommand::RecordPspOrder {
                    gateway_id,
                    psp_order_id,
                    checkout,
                    at,
                },
            ) => record_psp_order(payment, *gateway_id, psp_order_id, checkout, *at),
            (
                Some(payment),
                PaymentCommand::Reroute {
                    to_gateway,
                    reason,
                    at,
                },
            ) => reroute(payment, *to_gateway, reason, *at),
            (
                Some(payment),
                PaymentCommand::RecordSuccess {
                    psp_payment_id,
                    amount,
                    at,
                },
            ) => record_success(payment, psp_payment_id, *amount, *at),
            (
                Some(payment),
                PaymentCommand::RecordFailure {
                    code,
                    description,
                    at,
                },
            ) => record_failure(payment, code, description, *at),
            (
                Some(payment),
                PaymentCommand::RecordRefund {
                    refund_id,
                    amount,
                    at,
                },
            ) => refunds::record_external(payment, refund_id, *amount, *at),
            (Some(payment), PaymentCommand::RequestRefund(request)) => {
                refunds::request_refund(payment, request)
            }
            (
                Some(payment),
                PaymentCommand::RecordRefundSubmitted {
                    refund_id,
                    psp_refund_id,
                    at,
                },
            ) => refunds::record_submitted(payment, *refund_id, psp_refund_id, *at),
            (
                Some(payment),
                PaymentCommand::RecordRefundSucceeded {
                    refund_id,
                    psp_refund_id,
                    at,
                },
            ) => refunds::record_succeeded(payment, *refund_id, psp_refund_id.as_deref(), *at),
            (
                Some(payment),
                PaymentCommand::RecordRefundFailed {
                    refund_id,
                    code,
                    reason,
                    at,
                },
            ) => refunds::record_failed(payment, *refund_id, code, reason, *at),
        }
    }

    fn evolve(state: Option<Payment>, event: &PaymentEvent) -> Option<Payment> {
        match state {
            Some(payment) => payment.apply(event),
            // Events before the initiation describe no payment yet.
            None => Payment::initiated(event),
        }
    }
}

impl Payment {
    /// The payment an initiation event starts; `None` for any other event.
    fn initiated(event: &PaymentEvent) -> Option<Payment> {
        let PaymentEvent::PaymentInitiated {
            payment_id,
            merchant_id,
            amount,
            currency,
            merchant_order_id,
            details,
            gateway_id,
            fee,
            at,
        } = event
        else {
            return None;
        };
        Some(Payment {
            id: *payment_id,
            merchant_id: *merchant_id,
            amount: *amount,
            currency: *currency,
            merchant_order_id: merchant_order_id.clone(),
            details: details.clone(),
            fee: *fee,
            gateway_id: *gateway_id,
            tried_gateways: vec![*gateway_id],
            booked_at: Some(*at),
            psp_order: None,
            status: PaymentStatus::Created,
            success: None,
            failure: None,
            refunds: Vec::new(),
            commission_reversed: Paise::ZERO,
            initiated_at: *at,
        })
    }

    /// The payment after `event`; an initiation event starts it afresh.
    fn apply(mut self, event: &PaymentEvent) -> Option<Payment> {
        match event {
            PaymentEvent::PaymentInitiated { .. } => return Payment::initiated(event),
            PaymentEvent::PspOrderCreated {
                psp_order_id,
                checkout,
                ..
            } => {
                self.psp_order = Some(PspOrder {
                    psp_order_id: psp_order_id.clone(),
                    checkout: checkout.clone(),
                });
                self.status = PaymentStatus::Pending;
            }
            PaymentEvent::PaymentRerouted { to_gateway, at, .. } => {
                self.gateway_id = *to_gateway;
                self.tried_gateways.push(*to_gateway);
                self.booked_at = Some(*at);
            }
            PaymentEvent::PaymentSucceeded {
                commission,
                psp_payment_id,
                late_success,
                at,
                ..
            } => self.succeed(Success {
                psp_payment_id: psp_payment_id.clone(),
                commission: *commission,
                late: *late_success,
                at: *at,
            }),
            PaymentEvent::PaymentFailed {
                code,
                description,
                at,
                ..
            } => self.fail(Failure {
                code: code.clone(),
                description: description.clone(),
                at: *at,
            }),
            PaymentEvent::PaymentRefunded { .. }
            | PaymentEvent::RefundRequested { .. }
            | PaymentEvent::RefundSubmitted { .. }
            | PaymentEvent::RefundFailed { .. } => self.apply_refund_event(event),
        }
        Some(self)
    }

    fn succeed(&mut self, success: Success) {
        // A late success books the gateway again (GatewayBooked with late_success).
        if success.late {
            self.booked_at = Some(success.at);
        }
        self.success = Some(success);
        self.status = PaymentStatus::Succeeded;
    }

    /// A failure releases the booking.
    fn fail(&mut self, failure: Failure) {
        self.failure = Some(failure);
        self.status = PaymentStatus::Failed;
        self.booked_at = None;
    }
}

fn initiate_payment(initiate: &InitiatePayment) -> Result<Vec<PaymentEvent>, PaymentError> {
    validation::amount("amount", initiate.amount, MAX_PAYMENT_AMOUNT)?;
    let currency: Currency = initiate
        .currency
        .parse()
        .map_err(|_| Problem::Unsupported.at("currency"))?;
    validation::token(
        "merchant_order_id",
        &initiate.merchant_order_id,
        MAX_ORDER_ID_CHARS,
        is_order_id_char,
        "letters, digits, '-', '_' and '.'",
    )?;
    let details = initiate.details.validated()?;
    admit(&initiate.merchant)?;
    Ok(vec![PaymentEvent::PaymentInitiated {
        payment_id: initiate.payment_id,
        merchant_id: initiate.merchant.merchant_id,
        amount: initiate.amount,
        currency,
        merchant_order_id: initiate.merchant_order_id.clone(),
        details,
        gateway_id: initiate.gateway_id,
        fee: initiate.merchant.fee,
        at: initiate.at,
    }])
}

/// Refuses when the payment already reached an outcome.
fn ensure_open(payment: &Payment) -> Result<(), PaymentError> {
    match payment.status {
        PaymentStatus::Created | PaymentStatus::Pending => Ok(()),
        PaymentStatus::Succeeded | PaymentStatus::Refunded => Err(PaymentError::AlreadySucceeded),
        PaymentStatus::Failed => Err(PaymentError::AlreadyFailed),
    }
}

fn psp_id(field: &'static str, value: &str) -> Result<(), FieldError> {
    validation::token(
        field,
        value,
        MAX_PSP_ID_CHARS,
        |c| c.is_ascii_graphic(),
        "printable ASCII",
    )
}

fn record_psp_order(
    payment: &Payment,
    gateway_id: GatewayId,
    psp_order_id: &str,
    checkout: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<Vec<PaymentEvent>, PaymentError> {
    ensure_open(payment)?;
    psp_id("psp_order_id", psp_order_id)?;
    if gateway_id != payment.gateway_id {
        return Err(PaymentError::StaleGateway {
            current: payment.gateway_id,
            reported: gateway_id,
        });
    }
    if let Some(order) = &payment.psp_order {
        return if order.psp_order_id == psp_order_id {
            Ok(vec![])
        } else {
            Err(PaymentError::PspOrderAlreadyCreated {
                psp_order_id: order.psp_order_id.clone(),
            })
        };
    }
    Ok(vec![PaymentEvent::PspOrderCreated {
        gateway_id,
        psp_order_id: psp_order_id.to_owned(),
        checkout: checkout.clone(),
        at,
    }])
}

fn reroute(
    payment: &Payment,
    to_gateway: GatewayId,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Vec<PaymentEvent>, PaymentError> {
    ensure_open(payment)?;
    if payment.psp_order.is_some() {
        return Err(PaymentError::PspOrderExists);
    }
    let attempts = payment.tried_gateways.len();
    // The attempt this reroute starts; past MAX_ATTEMPTS there is none.
    let attempt = u32::try_from(attempts + 1)
        .ok()
        .filter(|_| attempts < MAX_ATTEMPTS)
        .ok_or(PaymentError::RerouteLimitReached { attempts })?;
    if payment.tried_gateways.contains(&to_gateway) {
        return Err(PaymentError::GatewayAlreadyTried(to_gateway));
    }
    Ok(vec![PaymentEvent::PaymentRerouted {
        from_gateway: payment.gateway_id,
        to_gateway,
        attempt,
        reason: validation::excerpt(reason, MAX_FAILURE_TEXT_CHARS),
        at,
    }])
}

fn record_success(
    payment: &Payment,
    psp_payment_id: &str,
    amount: Paise,
    at: DateTime<Utc>,
) -> Result<Vec<PaymentEvent>, PaymentError> {
    let late_success = match payment.status {
        PaymentStatus::Created | PaymentStatus::Pending => false,
        PaymentStatus::Failed => true,
        PaymentStatus::Succeeded | PaymentStatus::Refunded => {
            return Err(PaymentError::AlreadySucceeded);
        }
    };
    psp_id("psp_payment_id", psp_payment_id)?;
    if amount != payment.amount {
        return Err(PaymentError::AmountMismatch {
            expected: payment.amount,
            reported: amount,
        });
    }
    Ok(vec![PaymentEvent::PaymentSucceeded {
        gateway_id: payment.gateway_id,
        amount: payment.amount,
        fee: payment.fee,
        commission: payment.fee.of(payment.amount),
        psp_payment_id: psp_payment_id.to_owned(),
        late_success,
        at,
    }])
}

fn record_failure(
    payment: &Payment,
    code: &str,
    description: &str,
    at: DateTime<Utc>,
) -> Result<Vec<PaymentEvent>, PaymentError> {
    ensure_open(payment)?;
    let code = validation::text("code", code, MAX_FAILURE_TEXT_CHARS)?;
    Ok(vec![PaymentEvent::PaymentFailed {
        gateway_id: payment.gateway_id,
        code,
        description: validation::excerpt(description, MAX_FAILURE_TEXT_CHARS),
        at,
    }])
}

#[cfg(test)]
mod tests;
