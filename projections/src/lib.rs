//! LightSpeed read models: the projector runtime, one module per read model, and versioned
//! blue/green rebuilds.
//!
//! # Read models
//!
//! Readers (the admin API, the auditor) read the views in schema `read`, never a version's own
//! schema. Each module has typed read functions returning serde structs (money in `*_paise`).
//!
//! | projection | views in `read` | read functions |
//! |---|---|---|
//! | `wallets` | `wallet_balances`, `wallet_entries` | [`wallets::list`], [`wallets::get`], [`commission::ledger`] |
//! | `commission` | `commission_daily` | [`commission::daily`] |
//! | `gateways` | `gateways` | [`gateways::health`] |
//! | `transactions` | `transactions` | [`transactions::search`], [`transactions::get`] |
//! | `refunds` | `refunds`, `refund_payments` | [`refunds::search`], [`refunds::get`] |
//! | `merchants` | `merchants` | [`merchants::list`], [`merchants::get`] |
//! | `whatsapp` | `whatsapp_log`, `whatsapp_usage`, `whatsapp_standing` | [`whatsapp::log`], [`whatsapp::usage`] |
//! | `webhook_deliveries` | `webhook_deliveries`, `webhook_delivery_attempts` | [`webhooks::deliveries`], [`webhooks::attempts`] |
//! | `audit_log` | `audit_log` | [`audit_log::list`] |
//! | (runtime) | `projections.versions` | [`status::all`] |
//!
//! A read with optional filters (`$n IS NULL OR …`) is planned for each call's values
//! (`.persistent(false)`): the generic plan PostgreSQL would cache for such a statement after
//! five calls serves every filter alike, and on a million transactions scanned the whole table
//! for a first page (38 s) that the call's own plan answers from an index in a millisecond.
//!
//! # Runtime
//!
//! [`run_projector`] (one process per projection) or [`run_all`] (all-in-one) follow the log
//! from each projection's checkpoint: PostgreSQL while catching up, JetStream live. Each batch's
//! rows and checkpoint commit in one transaction that first locks the version's checkpoint row,
//! so a crash anywhere neither loses nor doubles an event, and a redelivered event is skipped.
//! Lag is stored in `projections.versions` and exported as `projection_lag_events` and
//! `projection_lag_seconds` gauges.
//!
//! # Versions and rebuilds
//!
//! Each version of a projection lives in schema `proj_<name>_v<version>`; `projections.versions`
//! records its layout, state and checkpoint, with at most one active version per projection.
//! [`rebuild`] builds this code's layout as a new version beside the active one, straight from
//! PostgreSQL in batches of 10 000 (its plain indexes are created once the rows are in, keys and
//! unique indexes from the start), then switches in one transaction (views in `read` and the
//! registry rows together), leaving the previous version retired until dropped on request
//! ([`RebuildOptions::drop_previous`], [`versions::drop_version`]). [`compare::differences`]
//! tells whether two versions hold the same rows.
//!
//! Rolling out a layout change: keep the old projectors running (they keep the old version
//! fresh and serving), run `lightspeed rebuild <name>` with the new binary, then start the new
//! projectors. A projector whose layout is newer than the active one waits for the switch; one
//! whose layout is older stops with [`ProjectionError::Superseded`] once the new one is active.
//!
//! # No side effects
//!
//! Projections only write their own tables: nothing in this crate sends a notification, a
//! webhook or any request, so rebuilding from the start of the log never triggers one again.

pub mod alert_inputs;
pub mod audit_log;
pub mod catalog;
pub mod commission;
pub mod compare;
mod copy_text;
pub mod error;
pub mod gateways;
pub mod gauges;
pub mod merchants;
pub mod pagination;
pub mod progress;
pub mod projection;
pub mod projector;
pub mod rebuild;
pub mod refunds;
mod row_cache;
pub mod runtime;
#[cfg(feature = "testing")]
pub mod scenario;
pub mod status;
pub mod transactions;
pub mod versions;
pub mod wallet_audit;
pub mod wallets;
pub mod webhooks;
pub mod whatsapp;

pub use error::ProjectionError;
pub use projection::Projection;
pub use projector::{BatchOutcome, ProjectorDeps, apply_batch};
pub use rebuild::{RebuildOptions, RebuildReport, rebuild, rebuild_projection};
pub use runtime::{RunConfig, run_all, run_projection, run_projector};
