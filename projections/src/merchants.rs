//! Merchants, one row per merchant (`read.merchants`). Never a secret: the sealed salt, the
//! sealed webhook secrets and anything sealed stay out; only when they were rotated is kept.
//! The client key is a public identifier and is shown.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lightspeed_domain::merchant::MerchantEvent;
use lightspeed_domain::{Decider, Merchant};
use lightspeed_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::pagination::{Page, PageRequest, escape_like, into_page};
use crate::projection::{Projection, decode, load_rows, serde_name, stream_uuid, upsert_rows};

/// The merchants projection (`merchants`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Merchants;

/// One merchant, as `read.merchants` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantRow {
    /// The merchant.
    pub merchant_id: Uuid,
    /// Company name.
    pub company_name: String,
    /// The current public API key id.
    pub client_key: String,
    /// Where payment webhooks go.
    pub webhook_url: Option<String>,
    /// WhatsApp number, if given.
    pub whatsapp_number: Option<String>,
    /// Opted in to `LOW_BALANCE` messages.
    pub whatsapp_low_balance: bool,
    /// Opted in to `TXN_UPDATE` messages.
    pub whatsapp_transaction_updates: bool,
    /// Opted in to `PAYOUT_UPDATE` messages.
    pub whatsapp_payout_updates: bool,
    /// Opted in to `ACCOUNT_STATUS` messages.
    pub whatsapp_account_status: bool,
    /// `active`, `suspended` or `closed`.
    pub status: String,
    /// Why it was suspended or closed.
    pub status_reason: Option<String>,
    /// Fee for new payments, in basis points.
    pub fee_bps: i32,
    /// Suspend threshold.
    pub suspend_at_paise: i64,
    /// Warn threshold.
    pub warn_at_paise: i64,
    /// Automatic payout minimum.
    pub auto_payout_minimum_paise: i64,
    /// `smart` or `round_robin`.
    pub routing_mode: String,
    /// Whether temporarily failed gateways are skipped.
    pub skip_temporarily_failed: bool,
    /// RPM cap for gateways without their own.
    pub default_rpm_cap: Option<i32>,
    /// How long a failed gateway rests, in seconds.
    pub temporary_failure_secs: i64,
    /// When the webhook endpoint was disabled for failing, if it is.
    pub webhook_endpoint_disabled_at: Option<DateTime<Utc>>,
    /// When the webhook secret was last rotated.
    pub webhook_secret_rotated_at: Option<DateTime<Utc>>,
    /// When the keys were last rotated.
    pub keys_rotated_at: Option<DateTime<Utc>>,
    /// Gateways attached and not retired.
    pub active_gateways: i32,
    /// When it was onboarded.
    pub onboarded_at: DateTime<Utc>,
    /// When the last event changing this row happened.
    pub updated_at: DateTime<Utc>,
}

const DDL: &str = "
CREATE TABLE {s}.merchants (
    merchant_id                    uuid PRIMARY KEY,
    company_name                   text NOT NULL,
    client_key                     text NOT NULL,
    webhook_url                    text,
    whatsapp_number                text,
    whatsapp_low_balance           boolean NOT NULL,
    whatsapp_transaction_updates   boolean NOT NULL,
    whatsapp_payout_updates        boolean NOT NULL,
    whatsapp_account_status        boolean NOT NULL,
    status                         text NOT NULL,
    status_reason                  text,
    fee_bps                        integer NOT NULL,
    suspend_at_paise               bigint NOT NULL,
    warn_at_paise                  bigint NOT NULL,
    auto_payout_minimum_paise      bigint NOT NULL,
    routing_mode                   text NOT NULL,
    skip_temporarily_failed        boolean NOT NULL,
    default_rpm_cap                integer,
    temporary_failure_secs         bigint NOT NULL,
    webhook_endpoint_disabled_at   timestamptz,
    webhook_secret_rotated_at      timestamptz,
    keys_rotated_at                timestamptz,
    active_gateways                integer NOT NULL,
    onboarded_at                   timestamptz NOT NULL,
    updated_at                     timestamptz NOT NULL
);
CREATE INDEX ON {s}.merchants (status, company_name);
CREATE INDEX ON {s}.merchants (client_key);
";

impl Projection for Merchants {
    fn name(&self) -> &'static str {
        "merchants"
    }

    fn layout(&self) -> i32 {
        1
    }

    fn categories(&self) -> Option<&'static [&'static str]> {
        Some(&[<Merchant as Decider>::CATEGORY])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["merchants"]
    }

    fn create_tables(&self, schema: &str) -> String {
        DDL.replace("{s}", schema)
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        schema: &'a str,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, schema, events))
    }
}

fn cap(value: Option<u32>) -> Option<i32> {
    value.map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

async fn apply(
    conn: &mut PgConnection,
    schema: &str,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let mut facts = Vec::with_capacity(events.len());
    for event in events {
        if event.stream_id.category() == <Merchant as Decider>::CATEGORY {
            facts.push((stream_uuid(event)?, decode::<MerchantEvent>(event)?));
        }
    }
    let mut keys: Vec<Uuid> = facts.iter().map(|(merchant, _)| *merchant).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut rows: HashMap<Uuid, MerchantRow> =
        load_rows::<MerchantRow>(conn, schema, "merchants", "merchant_id", &keys)
            .await?
            .into_iter()
            .map(|row| (row.merchant_id, row))
            .collect();
    for (merchant_id, event) in facts {
        if let MerchantEvent::MerchantOnboarded {
            merchant_id,
            company_name,
            webhook_url,
            whatsapp,
            client_key,
            fee,
            thresholds,
            checkout,
            at,
            ..
        } = event
        {
            let opt_ins = whatsapp.as_ref().map(|w| w.opt_ins).unwrap_or_default();
            rows.insert(
                merchant_id.0,
                MerchantRow {
                    merchant_id: merchant_id.0,
                    company_name,
                    client_key: client_key.as_str().into(),
                    webhook_url,
                    whatsapp_number: whatsapp.map(|w| w.number),
                    whatsapp_low_balance: opt_ins.low_balance,
                    whatsapp_transaction_updates: opt_ins.transaction_updates,
                    whatsapp_payout_updates: opt_ins.payout_updates,
                    whatsapp_account_status: opt_ins.account_status,
                    status: "active".into(),
                    status_reason: None,
                    fee_bps: i32::try_from(fee.bps()).unwrap_or(i32::MAX),
                    suspend_at_paise: thresholds.suspend_at.0,
                    warn_at_paise: thresholds.warn_at.0,
                    auto_payout_minimum_paise: thresholds.auto_payout_minimum.0,
                    routing_mode: serde_name(&checkout.routing_mode),
                    skip_temporarily_failed: checkout.skip_temporarily_failed,
                    default_rpm_cap: cap(checkout.default_rpm_cap),
                    temporary_failure_secs: i64::try_from(checkout.temporary_failure_secs)
                        .unwrap_or(i64::MAX),
                    webhook_endpoint_disabled_at: None,
                    webhook_secret_rotated_at: None,
                    keys_rotated_at: None,
                    active_gateways: 0,
                    onboarded_at: at,
                    updated_at: at,
                },
            );
            continue;
        }
        // Events of a merchant never onboarded cannot be placed; the log never has them.
        let Some(row) = rows.get_mut(&merchant_id) else {
            continue;
        };
        row.updated_at = event.at();
        match event {
            MerchantEvent::MerchantOnboarded { .. } => {}
            MerchantEvent::MerchantProfileUpdated {
                company_name,
                webhook_url,
                ..
            } => {
                row.company_name = company_name;
                row.webhook_url = webhook_url;
            }
            MerchantEvent::MerchantWhatsappContactChanged { contact, .. } => {
                let opt_ins = contact.as_ref().map(|c| c.opt_ins).unwrap_or_default();
                row.whatsapp_number = contact.map(|c| c.number);
                row.whatsapp_low_balance = opt_ins.low_balance;
                row.whatsapp_transaction_updates = opt_ins.transaction_updates;
                row.whatsapp_payout_updates = opt_ins.payout_updates;
                row.whatsapp_account_status = opt_ins.account_status;
            }
            MerchantEvent::MerchantKeysRotated { client_key, at, .. } => {
                row.client_key = client_key.as_str().into();
                row.keys_rotated_at = Some(at);
            }
            MerchantEvent::MerchantFeeChanged { to, .. } => {
                row.fee_bps = i32::try_from(to.bps()).unwrap_or(i32::MAX)
            }
            MerchantEvent::MerchantThresholdsChanged { thresholds, .. } => {
                row.suspend_at_paise = thresholds.suspend_at.0;
                row.warn_at_paise = thresholds.warn_at.0;
                row.auto_payout_minimum_paise = thresholds.auto_payout_minimum.0;
            }
            MerchantEvent::MerchantCheckoutSettingsChanged { settings, .. } => {
                row.routing_mode = serde_name(&settings.routing_mode);
                row.skip_temporarily_failed = settings.skip_temporarily_failed;
                row.default_rpm_cap = cap(settings.default_rpm_cap);
                row.temporary_failure_secs =
                    i64::try_from(settings.temporary_failure_secs).unwrap_or(i64::MAX);
            }
            MerchantEvent::MerchantWebhookSecretRotated { at, .. } => {
                row.webhook_secret_rotated_at = Some(at)
            }
            MerchantEvent::MerchantWebhookEndpointDisabled { at, .. } => {
                row.webhook_endpoint_disabled_at = Some(at)
            }
            MerchantEvent::MerchantWebhookEndpointEnabled { .. } => {
                row.webhook_endpoint_disabled_at = None
            }
            MerchantEvent::MerchantGatewayAttached { .. } => {
                row.active_gateways = row.active_gateways.saturating_add(1)
            }
            MerchantEvent::MerchantGatewayDetached { .. } => {
                row.active_gateways = row.active_gateways.saturating_sub(1).max(0)
            }
            MerchantEvent::MerchantSuspended { reason, .. } => {
                row.status = "suspended".into();
                row.status_reason = Some(reason);
            }
            MerchantEvent::MerchantReactivated { .. } => {
                row.status = "active".into();
                row.status_reason = None;
            }
            MerchantEvent::MerchantClosed { reason, .. } => {
                row.status = "closed".into();
                row.status_reason = Some(reason);
            }
            // Neither the rate nor sealed blobs are shown by this read model.
            MerchantEvent::MerchantApiRateLimitChanged { .. }
            | MerchantEvent::MerchantSecretsResealed { .. } => {}
        }
    }
    let changed: Vec<&MerchantRow> = keys.iter().filter_map(|k| rows.get(k)).collect();
    upsert_rows(conn, schema, "merchants", "merchant_id", &changed).await
}

/// Which merchants to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantFilter {
    /// Only this status (`active`, `suspended`, `closed`).
    pub status: Option<String>,
    /// Company name or client key contains this (case-insensitive).
    pub q: Option<String>,
}

/// Merchants matching `filter`, by company name.
pub async fn list(
    pool: &PgPool,
    filter: &MerchantFilter,
    page: PageRequest,
) -> Result<Page<MerchantRow>, ProjectionError> {
    let (limit, offset) = page.limit_offset()?;
    let rows: Vec<(Json<MerchantRow>, i64)> = sqlx::query_as(
        "SELECT to_jsonb(m), count(*) OVER () FROM read.merchants m
          WHERE ($1::text IS NULL OR status = $1)
            AND ($2::text IS NULL OR company_name ILIKE '%' || $2 || '%'
                                  OR client_key ILIKE '%' || $2 || '%')
          ORDER BY company_name, merchant_id
          LIMIT $3 OFFSET $4",
    )
    .bind(&filter.status)
    .bind(filter.q.as_deref().map(escape_like))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("merchants", e))?;
    Ok(into_page(rows, page))
}

/// One merchant.
pub async fn get(pool: &PgPool, merchant_id: Uuid) -> Result<Option<MerchantRow>, ProjectionError> {
    let row: Option<Json<MerchantRow>> =
        sqlx::query_scalar("SELECT to_jsonb(m) FROM read.merchants m WHERE merchant_id = $1")
            .bind(merchant_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| ProjectionError::from_read("merchants", e))?;
    Ok(row.map(|Json(row)| row))
}
