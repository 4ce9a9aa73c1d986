//! RazorpayX payout webhook intake: verified on the raw bytes with the webhook secret, then
//! applied to the payout's wallet at once (a wallet command is small and idempotent, so there
//! is no queue between).
//!
//! `processed` records the payout paid out; `reversed`, `failed`, `rejected` and `cancelled`
//! record it reversed with RazorpayX's reason (restoring the balance due of a paid-out payout, or
//! releasing a pending one's reservation); `queued`, `pending` and `processing` change nothing.
//! A redelivery (same event id) or an event after a terminal state answers 200 with
//! `recorded: false` and appends nothing, so RazorpayX stops retrying. A payout that is not ours
//! (no or unknown `reference_id`) is acknowledged the same way.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use lightspeed_adapters::payouts::{PayoutStatus, PayoutUpdate, verify_payout_webhook};
use lightspeed_adapters::psp::WebhookError;
use lightspeed_domain::PayoutId;
use lightspeed_domain::wallet::PayoutReversalReason;
use lightspeed_eventstore::{CommandContext, Metadata};
use lightspeed_services::{PayoutSettlement, PayoutUpdateRecorded};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// The answer to a verified payout webhook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PayoutWebhookReceived {
    /// Always true: the message verified.
    pub received: bool,
    /// True when the wallet recorded a change; false for a redelivery, an event after a terminal
    /// state, an in-progress status or a payout that is not ours.
    pub recorded: bool,
}

/// A RazorpayX payout webhook (`payout.processed`, `.reversed`, `.failed`, `.rejected`, …).
#[utoipa::path(
    post,
    path = "/webhook/razorpayx",
    tag = "psp-webhooks",
    request_body(content = String, description = "RazorpayX's event, exactly as sent; `X-Razorpay-Signature` is the hex HMAC-SHA256 of these bytes under the webhook secret, `X-Razorpay-Event-Id` its id"),
    responses(
        (status = 200, description = "Verified; recorded once, or acknowledged without effect", body = PayoutWebhookReceived),
        (status = 400, description = "Verified but not a payout event in the documented shape (MALFORMED_WEBHOOK); nothing recorded", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Signature missing or wrong (WEBHOOK_NOT_VERIFIED); nothing recorded", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Payouts are not configured on this server (PAYOUTS_DISABLED)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn razorpayx_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PayoutWebhookReceived>, ApiError> {
    let secret = state
        .config
        .payouts
        .webhook_secret
        .as_ref()
        .ok_or(ApiError::PayoutsDisabled)?;
    let update = verify_payout_webhook(secret, &headers, &body).map_err(|error| match error {
        WebhookError::Malformed(why) => ApiError::MalformedWebhook(why),
        _ => {
            tracing::warn!("RazorpayX webhook did not verify");
            ApiError::WebhookNotVerified
        }
    })?;
    let recorded = record(&state, &headers, update).await?;
    Ok(Json(PayoutWebhookReceived {
        received: true,
        recorded,
    }))
}

async fn record(
    state: &AppState,
    headers: &HeaderMap,
    update: PayoutUpdate,
) -> Result<bool, ApiError> {
    let Some(settlement) = settlement(&update) else {
        return Ok(false);
    };
    let Some(payout_id) = update
        .reference_id
        .as_deref()
        .and_then(|reference| reference.parse::<Uuid>().ok())
        .map(PayoutId)
    else {
        tracing::info!(razorpayx_payout = %update.payout_id, "payout webhook for a payout that is not ours");
        return Ok(false);
    };
    let Some(merchant_id) = state.ledger.payout_merchant(payout_id).await? else {
        tracing::info!(%payout_id, "payout webhook for an unknown payout");
        return Ok(false);
    };
    let context = CommandContext {
        // The event id names the command: a redelivery stores nothing new.
        command_id: Some(command_id(&update.dedupe_key)),
        metadata: Metadata {
            correlation_id: Some(Uuid::now_v7()),
            actor: Some("psp:razorpayx".to_owned()),
            request_id: headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ..Metadata::default()
        },
    };
    let recorded = state
        .ledger
        .record_payout_update(merchant_id, payout_id, settlement, &context)
        .await?;
    tracing::info!(%merchant_id, %payout_id, ?recorded, "payout webhook");
    Ok(matches!(recorded, PayoutUpdateRecorded::Recorded(_)))
}

/// What a payout status means for the wallet; `None` while the payout is in progress.
fn settlement(update: &PayoutUpdate) -> Option<PayoutSettlement> {
    let reversed = |reason, detail: &str| PayoutSettlement::Reversed {
        reason,
        detail: detail.to_owned(),
    };
    Some(match &update.status {
        PayoutStatus::Queued | PayoutStatus::Pending | PayoutStatus::Processing => return None,
        PayoutStatus::Processed => PayoutSettlement::Paid {
            reference: update
                .utr
                .clone()
                .filter(|utr| !utr.trim().is_empty())
                .unwrap_or_else(|| update.payout_id.clone()),
        },
        PayoutStatus::Reversed { reason } => reversed(PayoutReversalReason::Reversed, reason),
        PayoutStatus::Failed { reason } => reversed(PayoutReversalReason::Failed, reason),
        PayoutStatus::Rejected { reason } => reversed(PayoutReversalReason::Rejected, reason),
        PayoutStatus::Cancelled { reason } => reversed(PayoutReversalReason::Cancelled, reason),
    })
}

/// A command id (UUID v8) from the webhook's de-duplication key.
fn command_id(dedupe_key: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"razorpayx-payout-webhook")
        .chain_update(dedupe_key.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}
