//! The admin API's answer shapes for the read models: one per `read.*` row, documented in the
//! OpenAPI document. Each mirrors its projection row field for field; the conversion
//! destructures the row without `..`, so a column added to a read model fails to compile here
//! until the API decides whether to show it.

use chrono::{DateTime, NaiveDate, Utc};
use lightspeed_projections::audit_log::AuditEntry;
use lightspeed_projections::commission::CommissionDay;
use lightspeed_projections::gateways::{GatewayHealth, GatewayRow};
use lightspeed_projections::merchants::MerchantRow;
use lightspeed_projections::pagination::{CursorPage, Page};
use lightspeed_projections::status::ProjectionStatus;
use lightspeed_projections::transactions::TransactionRow;
use lightspeed_projections::wallets::{WalletBalance, WalletEntry};
use lightspeed_projections::whatsapp::{WhatsappMessage, WhatsappUsageDay};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Declares an answer struct mirroring a read-model row, and the conversion from the row.
macro_rules! mirror {
    (
        $(#[$meta:meta])*
        pub struct $name:ident from $row:ident {
            $( $(#[$field_meta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty ),*
        }

        impl From<$row> for $name {
            fn from(row: $row) -> Self {
                let $row { $( $field ),* } = row;
                Self { $( $field ),* }
            }
        }
    };
}

/// One numbered page of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PageBody<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Which page, from 1.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
    /// Rows matching the filter, on all pages.
    pub total: i64,
}

impl<T> PageBody<T> {
    /// The page of `page`'s rows converted.
    pub fn of<R: Into<T>>(page: Page<R>) -> Self {
        Self {
            items: page.items.into_iter().map(Into::into).collect(),
            page: page.page,
            per_page: page.per_page,
            total: page.total,
        }
    }
}

/// One step through rows in a stable order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CursorBody<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next step; absent when there are no more rows.
    pub next_cursor: Option<String>,
}

impl<T> CursorBody<T> {
    /// The step of `page`'s rows converted.
    pub fn of<R: Into<T>>(page: CursorPage<R>) -> Self {
        Self {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

mirror! {
    /// One merchant's wallet.
    pub struct WalletView from WalletBalance {
        /// The merchant.
        merchant_id: Uuid,
        /// The merchant's company name, once onboarded.
        company_name: Option<String>,
        /// `active`, `suspended` or `closed` (the status set by ops).
        merchant_status: String,
        /// Total commission accrued.
        commission_accrued_paise: i64,
        /// Total commission reversed by refunds.
        commission_reversed_paise: i64,
        /// Total paid out.
        paid_out_paise: i64,
        /// Total restored by reversals of paid-out payouts.
        reversed_paise: i64,
        /// Total settled manually.
        settled_paise: i64,
        /// Reserved by payouts requested and not yet paid out or reversed.
        pending_payouts_paise: i64,
        /// What the merchant owes: accrued − commission reversed − paid out + reversed − settled
        /// (below zero: a credit).
        balance_due_paise: i64,
        /// Balance due not reserved by pending payouts.
        available_paise: i64,
        /// Payments that succeeded (one commission each).
        payments_succeeded: i64,
        /// Their total amount.
        volume_paise: i64,
        /// When the last payout was paid out.
        last_payout_at: Option<DateTime<Utc>>,
        /// Its amount.
        last_payout_paise: Option<i64>,
        /// Balance due from which new payments are refused.
        suspend_at_paise: i64,
        /// Balance due from which the merchant is warned.
        warn_at_paise: i64,
        /// Smallest balance the automatic payout collects.
        auto_payout_minimum_paise: i64,
        /// `good`, `warn` or `suspended`.
        standing: String,
        /// True when new payments are refused.
        suspended: bool,
        /// When the last event changing this row happened.
        updated_at: DateTime<Utc>,
    }
}

mirror! {
    /// One fact of the commission ledger (wallet entries).
    pub struct LedgerEntryView from WalletEntry {
        /// `COMMISSION`, `COMMISSION_REVERSED`, `COMMISSION_PAYOUT`, `PAYOUT_REVERSED` or
        /// `MANUAL_SETTLEMENT`.
        entry_type: String,
        /// The payment (commission), the refund (reversal), the payout, or the settlement's
        /// event id.
        source_id: Uuid,
        /// The merchant.
        merchant_id: Uuid,
        /// The amount of the fact (always positive).
        amount_paise: i64,
        /// How it moved the balance due.
        balance_effect_paise: i64,
        /// For a commission: the payment's amount; for a reversal: the refund's.
        payment_amount_paise: Option<i64>,
        /// For a commission: the fee applied, in basis points.
        fee_bps: Option<i32>,
        /// The payout or settlement reference; for a reversal, the refunded payment.
        reference: Option<String>,
        /// Why a payout was reversed, or the settlement note.
        detail: Option<String>,
        /// When the fact happened.
        occurred_at: DateTime<Utc>,
        /// The event's global log position (the ledger's order and cursor).
        log_position: i64,
    }
}

mirror! {
    /// One merchant's commission on one IST day.
    pub struct CommissionDayView from CommissionDay {
        /// The IST calendar day.
        day: NaiveDate,
        /// The merchant.
        merchant_id: Uuid,
        /// Payments that succeeded that day.
        payments: i64,
        /// Their total amount.
        volume_paise: i64,
        /// Commission accrued on them.
        commission_paise: i64,
        /// Commission reversed that day by refunds.
        commission_reversed_paise: i64,
        /// Payouts paid out that day.
        payouts: i64,
        /// Their total amount.
        payouts_paise: i64,
        /// Paid-out payouts reversed that day.
        payouts_reversed_paise: i64,
        /// Settled manually that day.
        settled_paise: i64,
    }
}

mirror! {
    /// One gateway as the read model holds it (settings, volume, rate window, outcomes).
    pub struct GatewayView from GatewayRow {
        /// The gateway.
        gateway_id: Uuid,
        /// The merchant who owns it.
        merchant_id: Uuid,
        /// The PSP, e.g. `razorpay`.
        provider: String,
        /// The merchant's name for it.
        label: String,
        /// Toggled on.
        enabled: bool,
        /// Retired for good.
        retired: bool,
        /// Routing priority (higher preferred).
        priority: i32,
        /// Monthly volume limit, if any.
        monthly_limit_paise: Option<i64>,
        /// Its own requests-per-minute cap, if any.
        rpm_cap: Option<i32>,
        /// Resting after a failure until then.
        temporarily_failed_until: Option<DateTime<Utc>>,
        /// Why it rests.
        temporary_failure_reason: Option<String>,
        /// The IST month (`YYYY-MM`) the volume columns count.
        volume_month: Option<String>,
        /// Unreleased volume booked in that month.
        month_volume_paise: i64,
        /// Unreleased bookings made in that month.
        month_payments: i64,
        /// When a payment was last routed to it.
        last_used_at: Option<DateTime<Utc>>,
        /// The latest clock minute with a routed booking.
        rpm_minute: Option<DateTime<Utc>>,
        /// Routed bookings in that minute.
        rpm_minute_bookings: i64,
        /// Routed bookings in the minute before it.
        rpm_previous_minute_bookings: i64,
        /// The recent outcomes, newest in bit 0 (1 = succeeded).
        recent_outcomes: i64,
        /// How many outcomes the mask holds.
        recent_attempted: i32,
        /// How many of them succeeded.
        recent_succeeded: i32,
        /// Recent success rate in basis points; none before any outcome.
        success_rate_bps: Option<i32>,
        /// Payments that succeeded here, ever.
        payments_succeeded: i64,
        /// Payments that failed here, ever.
        payments_failed: i64,
        /// The code of the last failure.
        last_failure_code: Option<String>,
        /// When it failed.
        last_failure_at: Option<DateTime<Utc>>,
        /// When it was registered.
        registered_at: DateTime<Utc>,
        /// When the last event changing this row happened.
        updated_at: DateTime<Utc>,
    }
}

/// A gateway's health as of now: the stored row and what it means at this instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GatewayHealthView {
    /// The stored row.
    #[serde(flatten)]
    pub gateway: GatewayView,
    /// Volume booked in the current IST month.
    pub this_month_volume_paise: i64,
    /// Bookings in the current IST month.
    pub this_month_payments: i64,
    /// Routed bookings in this clock minute and the one before it.
    pub requests_last_two_minutes: i64,
    /// Whether it rests after a failure now.
    pub temporarily_failed: bool,
}

impl From<GatewayHealth> for GatewayHealthView {
    fn from(health: GatewayHealth) -> Self {
        let GatewayHealth {
            gateway,
            this_month_volume_paise,
            this_month_payments,
            requests_last_two_minutes,
            temporarily_failed,
        } = health;
        Self {
            gateway: gateway.into(),
            this_month_volume_paise,
            this_month_payments,
            requests_last_two_minutes,
            temporarily_failed,
        }
    }
}

mirror! {
    /// One payment.
    pub struct TransactionView from TransactionRow {
        /// The payment.
        payment_id: Uuid,
        /// The merchant.
        merchant_id: Uuid,
        /// The merchant's order id.
        merchant_order_id: String,
        /// Amount.
        amount_paise: i64,
        /// Currency code (`INR`).
        currency: String,
        /// Where the payment stands, in the merchant API's words.
        #[schema(schema_with = crate::payments::payment_status_schema)]
        status: String,
        /// The gateway currently (or last) routed to.
        gateway_id: Uuid,
        /// Gateways tried.
        attempts: i32,
        /// Fee in force at initiation, in basis points.
        fee_bps: i32,
        /// Commission decided at success.
        commission_paise: Option<i64>,
        /// The PSP's order id.
        psp_order_id: Option<String>,
        /// The PSP's payment id.
        psp_payment_id: Option<String>,
        /// The last failure's code.
        failure_code: Option<String>,
        /// The last failure's description.
        failure_description: Option<String>,
        /// Whether the success followed a failure.
        late_success: bool,
        /// Total refunded.
        refunded_paise: i64,
        /// Refunds recorded.
        refunds: i32,
        /// Our ids of the refunds requested and awaiting their outcome.
        open_refunds: Vec<String>,
        /// When it was initiated.
        initiated_at: DateTime<Utc>,
        /// When it succeeded.
        succeeded_at: Option<DateTime<Utc>>,
        /// When it (last) failed.
        failed_at: Option<DateTime<Utc>>,
        /// When the last event changing this row happened.
        updated_at: DateTime<Utc>,
    }
}

mirror! {
    /// One merchant, as ops see it (no secret, only the public client key).
    pub struct MerchantView from MerchantRow {
        /// The merchant.
        merchant_id: Uuid,
        /// Company name.
        company_name: String,
        /// The current public API key id.
        client_key: String,
        /// Where payment webhooks go.
        webhook_url: Option<String>,
        /// WhatsApp number, if given.
        whatsapp_number: Option<String>,
        /// Opted in to `LOW_BALANCE` messages.
        whatsapp_low_balance: bool,
        /// Opted in to `TXN_UPDATE` messages.
        whatsapp_transaction_updates: bool,
        /// Opted in to `PAYOUT_UPDATE` messages.
        whatsapp_payout_updates: bool,
        /// Opted in to `ACCOUNT_STATUS` messages.
        whatsapp_account_status: bool,
        /// `active`, `suspended` or `closed`.
        status: String,
        /// Why it was suspended or closed.
        status_reason: Option<String>,
        /// Fee for new payments, in basis points.
        fee_bps: i32,
        /// Suspend threshold.
        suspend_at_paise: i64,
        /// Warn threshold.
        warn_at_paise: i64,
        /// Automatic payout minimum.
        auto_payout_minimum_paise: i64,
        /// `smart` or `round_robin`.
        routing_mode: String,
        /// Whether temporarily failed gateways are skipped.
        skip_temporarily_failed: bool,
        /// RPM cap for gateways without their own.
        default_rpm_cap: Option<i32>,
        /// How long a failed gateway rests, in seconds.
        temporary_failure_secs: i64,
        /// When the webhook endpoint was disabled for failing, if it is.
        webhook_endpoint_disabled_at: Option<DateTime<Utc>>,
        /// When the webhook secret was last rotated.
        webhook_secret_rotated_at: Option<DateTime<Utc>>,
        /// When the keys were last rotated.
        keys_rotated_at: Option<DateTime<Utc>>,
        /// Gateways attached and not retired.
        active_gateways: i32,
        /// When it was onboarded.
        onboarded_at: DateTime<Utc>,
        /// When the last event changing this row happened.
        updated_at: DateTime<Utc>,
    }
}

mirror! {
    /// One WhatsApp notification.
    pub struct WhatsappMessageView from WhatsappMessage {
        /// The notification.
        notification_id: Uuid,
        /// The merchant (client) it is for.
        merchant_id: Uuid,
        /// `LOW_BALANCE`, `TXN_UPDATE`, `PAYOUT_UPDATE` or `ACCOUNT_STATUS`.
        notification_type: String,
        /// The WhatsApp template.
        template: String,
        /// The recipient's number.
        recipient: String,
        /// The template parameters, as a JSON array.
        #[schema(value_type = Vec<String>)]
        payload: serde_json::Value,
        /// `queued`, `sent` or `failed`.
        status: String,
        /// Attempts since it was (re)queued.
        attempts: i32,
        /// Attempts allowed since it was (re)queued.
        attempt_limit: i32,
        /// The last provider error code.
        last_error_code: Option<String>,
        /// The last provider error message.
        last_error_message: Option<String>,
        /// The provider's message id, once sent.
        provider_message_id: Option<String>,
        /// When the next attempt is due, while queued.
        next_attempt_at: Option<DateTime<Utc>>,
        /// When it was first queued.
        queued_at: DateTime<Utc>,
        /// When it was sent.
        sent_at: Option<DateTime<Utc>>,
        /// When it was given up on.
        failed_at: Option<DateTime<Utc>>,
        /// When the last event changing this row happened.
        updated_at: DateTime<Utc>,
    }
}

mirror! {
    /// One merchant's messages of one template on one IST day.
    pub struct WhatsappUsageView from WhatsappUsageDay {
        /// The merchant.
        merchant_id: Uuid,
        /// The IST day.
        day: NaiveDate,
        /// The template.
        template: String,
        /// Notifications queued or requeued.
        queued: i64,
        /// Notifications sent.
        sent: i64,
        /// Notifications given up on.
        failed: i64,
    }
}

mirror! {
    /// One admin action from the audit log (secrets shown as `"[sealed]"`).
    pub struct AuditEntryView from AuditEntry {
        /// The event recording the action.
        event_id: Uuid,
        /// Its global log position (the log's order and cursor).
        log_position: i64,
        /// The admin's email.
        actor: String,
        /// What was done: the event type, e.g. `MerchantFeeChanged`.
        action: String,
        /// The kind of thing acted on, e.g. `merchant`.
        entity_type: String,
        /// Its id.
        entity_id: String,
        /// The state before, where the event says it.
        #[schema(value_type = Option<Object>)]
        before: Option<serde_json::Value>,
        /// The state after (or the payload).
        #[schema(value_type = Object)]
        after: serde_json::Value,
        /// The request id, if the action came over HTTP.
        request_id: Option<String>,
        /// The correlation id.
        correlation_id: Option<Uuid>,
        /// When it was recorded.
        at: DateTime<Utc>,
    }
}

mirror! {
    /// One version of one projection and how far behind the log it is.
    pub struct ProjectionView from ProjectionStatus {
        /// The projection.
        projection: String,
        /// The version.
        version: i32,
        /// The table layout it follows.
        layout: i32,
        /// `building`, `active`, `retired` or `dropped`.
        state: String,
        /// The schema holding its tables.
        schema_name: String,
        /// The last log position applied, `<transaction id>:<position>`.
        checkpoint: String,
        /// Events applied since it was created.
        events_applied: i64,
        /// When the last event applied was recorded in the log.
        last_event_recorded_at: Option<DateTime<Utc>>,
        /// When the checkpoint last moved.
        checkpoint_at: Option<DateTime<Utc>>,
        /// Events of its categories not applied yet (capped).
        lag_events: i64,
        /// How long the oldest event not applied yet has waited, in milliseconds.
        lag_ms: i64,
        /// When lag was last measured (stale: its projector is not running).
        lag_measured_at: Option<DateTime<Utc>>,
        /// When the version was created.
        created_at: DateTime<Utc>,
        /// When readers started to see it.
        activated_at: Option<DateTime<Utc>>,
        /// When another version replaced it.
        retired_at: Option<DateTime<Utc>>,
    }
}
