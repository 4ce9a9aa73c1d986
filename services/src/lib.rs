//! The ledger's operations: commands that span several streams.
//!
//! The domain decides one aggregate at a time; an operation such as "initiate a payment" needs
//! the merchant, its wallet and its gateways, decides on the payment, the gateway booking and
//! the order-id claim, and appends all of it atomically. [`Ledger`] holds one command handler
//! (with its state cache) per aggregate and does exactly that, retrying when another writer got
//! to a stream first. It performs no I/O other than the event log: the API and the workers call
//! it after (or before) talking to the outside world.

mod alerts;
mod batch;
mod error;
mod gateways;
mod invoices;
mod keys;
mod ledger;
mod merchants;
mod notifications;
mod payments;
mod payouts;
mod pending;
mod people;
mod queues;
mod quotas;
mod refunds;
mod statements;
mod unit_of_work;

pub use alerts::AlertChange;
pub use error::{Inconsistency, ServiceError};
pub use gateways::NewGateway;
pub use invoices::{Invoicing, InvoicingError, IssueOutcome};
pub use keys::{ResealFailure, ResealReport, Resealer};
pub use ledger::{Ledger, SuccessRates};
pub use merchants::{AuthenticatedMerchant, NewMerchant};
pub use notifications::LowBalanceAlert;
pub use payments::{Initiated, PaymentRequest, Settled, StatusCursor};
pub use payouts::{
    MAX_RUN_LABEL_CHARS, PayoutRunFailure, PayoutRunReport, PayoutSettlement, PayoutUpdateRecorded,
    RequestedPayout, payout_id_for,
};
pub use pending::AwaitingOutcome;
pub use people::PersonAccess;
pub use quotas::{DEFAULT_QUOTA_TEMPLATE, QuotaStatus, QuotaUse};
pub use refunds::{OpenRefund, RefundOutcome, RefundRequest, RequestedRefund};
pub use statements::{Statement, StatementEntry, StatementEntryKind, StatementMonth, ist};
pub use unit_of_work::UnitOfWork;
