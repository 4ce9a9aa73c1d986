//! The wallets read model as the auditor compares it with a commission replay: its active
//! version, the checkpoint it stands at, and each merchant's figures.

use lightspeed_domain::MerchantId;
use lightspeed_eventstore::LogPosition;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::error::ProjectionError;

/// One merchant's row of `read.wallet_balances`, the figures a replay recomputes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WalletFigures {
    /// The merchant.
    pub merchant_id: Uuid,
    /// Payments that succeeded.
    pub payments_succeeded: i64,
    /// Their volume.
    pub volume_paise: i64,
    /// Commission accrued.
    pub commission_accrued_paise: i64,
    /// Commission reversed by refunds.
    pub commission_reversed_paise: i64,
    /// Commission paid out.
    pub paid_out_paise: i64,
    /// Paid-out payouts reversed (restored to the balance due).
    pub reversed_paise: i64,
    /// Commission settled outside payouts.
    pub settled_paise: i64,
    /// Payouts requested and not settled yet.
    pub pending_payouts_paise: i64,
    /// What the merchant owes.
    pub balance_due_paise: i64,
}

/// The live wallets read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditedWallets {
    /// The last log position its active version applied.
    pub checkpoint: LogPosition,
    /// Its active version.
    pub version: i32,
    /// Its rows.
    pub wallets: Vec<WalletFigures>,
}

/// The active wallets version's checkpoint and rows (only `merchant`'s when given), read on
/// `conn` so they share the caller's snapshot; `None` when no version is active.
pub async fn wallets_for_audit(
    conn: &mut PgConnection,
    merchant: Option<MerchantId>,
) -> Result<Option<AuditedWallets>, ProjectionError> {
    let active = sqlx::query(
        "SELECT transaction_id::text AS tx, position, version FROM projections.versions
          WHERE projection = 'wallets' AND state = 'active'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(active) = active else {
        return Ok(None);
    };
    let tx: String = active.try_get("tx")?;
    let position: i64 = active.try_get("position")?;
    let checkpoint = LogPosition {
        transaction_id: tx.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        position: u64::try_from(position).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
    };
    let wallets = sqlx::query_as(
        "SELECT merchant_id, payments_succeeded, volume_paise, commission_accrued_paise,
                commission_reversed_paise, paid_out_paise, reversed_paise, settled_paise, pending_payouts_paise,
                balance_due_paise
           FROM read.wallet_balances WHERE ($1::uuid IS NULL OR merchant_id = $1)",
    )
    .persistent(false)
    .bind(merchant.map(|m| m.0))
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(AuditedWallets {
        checkpoint,
        version: active.try_get("version")?,
        wallets,
    }))
}
