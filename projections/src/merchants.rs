//! Merchants, one row per merchant (`read.merchants`). Never a secret: the sealed salt, the
//! sealed webhook secrets and anything sealed stay out; only when they were rotated is kept.
//! The client key is a public identifier and is shown.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::merchant::{MerchantEvent, WhatsappContact};
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::{BasisPoints, Decider, Merchant};
use lightspeed_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::pagination::{Page, PageRequest, escape_like, into_page};
use crate::projection::{Projection, RowCache, RowChange, row_changes_of, serde_name};

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
        rows: &'a mut RowCache,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, schema, events, rows))
    }
}

fn cap(value: Option<u32>) -> Option<i32> {
    value.map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

fn fee_bps(fee: BasisPoints) -> i32 {
    i32::try_from(fee.bps()).unwrap_or(i32::MAX)
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

async fn apply(
    conn: &mut PgConnection,
    schema: &str,
    events: &[RecordedEvent],
    rows: &mut RowCache,
) -> Result<(), ProjectionError> {
    let changes = row_changes_of::<MerchantEvent, _>(
        events,
        <Merchant as Decider>::CATEGORY,
        MerchantRow::of,
    )?;
    let merchants = rows
        .load(
            conn,
            schema,
            "merchants",
            "merchant_id",
            changes
                .iter()
                .map(|(merchant_id, _, change)| (*merchant_id, change.creates())),
            |row: &MerchantRow| row.merchant_id,
        )
        .await?;
    for (merchant_id, recorded, change) in changes {
        match change {
            RowChange::Created(row) => merchants.insert(row.merchant_id, row),
            RowChange::Changed(event) => merchants.existing(merchant_id, recorded)?.apply(event),
        }
    }
    Ok(())
}

impl MerchantRow {
    /// What `event` does to its row: a merchant's onboarding creates it; any other event
    /// changes it.
    fn of(event: MerchantEvent) -> RowChange<Self, MerchantEvent> {
        let MerchantEvent::MerchantOnboarded {
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
        else {
            return RowChange::Changed(event);
        };
        let opt_ins = whatsapp.as_ref().map(|w| w.opt_ins).unwrap_or_default();
        RowChange::Created(Self {
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
            fee_bps: fee_bps(fee),
            suspend_at_paise: thresholds.suspend_at.0,
            warn_at_paise: thresholds.warn_at.0,
            auto_payout_minimum_paise: thresholds.auto_payout_minimum.0,
            routing_mode: serde_name(&checkout.routing_mode),
            skip_temporarily_failed: checkout.skip_temporarily_failed,
            default_rpm_cap: cap(checkout.default_rpm_cap),
            temporary_failure_secs: secs(checkout.temporary_failure_secs),
            webhook_endpoint_disabled_at: None,
            webhook_secret_rotated_at: None,
            keys_rotated_at: None,
            active_gateways: 0,
            onboarded_at: at,
            updated_at: at,
        })
    }

    /// Applies an event of an onboarded merchant.
    fn apply(&mut self, event: MerchantEvent) {
        self.updated_at = event.at();
        match event {
            // It makes the row: see `of`.
            MerchantEvent::MerchantOnboarded { .. } => {}
            MerchantEvent::MerchantProfileUpdated {
                company_name,
                webhook_url,
                ..
            } => {
                self.company_name = company_name;
                self.webhook_url = webhook_url;
            }
            MerchantEvent::MerchantWhatsappContactChanged { contact, .. } => {
                self.set_whatsapp(contact)
            }
            MerchantEvent::MerchantKeysRotated { client_key, at, .. } => {
                self.client_key = client_key.as_str().into();
                self.keys_rotated_at = Some(at);
            }
            MerchantEvent::MerchantFeeChanged { to, .. } => self.fee_bps = fee_bps(to),
            MerchantEvent::MerchantRefundCommissionChanged { .. } => {}
            MerchantEvent::MerchantThresholdsChanged { thresholds, .. } => {
                self.set_thresholds(&thresholds)
            }
            MerchantEvent::MerchantCheckoutSettingsChanged { settings, .. } => {
                self.set_checkout(&settings)
            }
            MerchantEvent::MerchantWebhookSecretRotated { at, .. } => {
                self.webhook_secret_rotated_at = Some(at)
            }
            MerchantEvent::MerchantWebhookEndpointDisabled { at, .. } => {
                self.webhook_endpoint_disabled_at = Some(at)
            }
            MerchantEvent::MerchantWebhookEndpointEnabled { .. } => {
                self.webhook_endpoint_disabled_at = None
            }
            MerchantEvent::MerchantGatewayAttached { .. } => {
                self.active_gateways = self.active_gateways.saturating_add(1)
            }
            MerchantEvent::MerchantGatewayDetached { .. } => {
                self.active_gateways = self.active_gateways.saturating_sub(1).max(0)
            }
            MerchantEvent::MerchantSuspended { reason, .. } => {
                self.set_status("suspended", Some(reason))
            }
            MerchantEvent::MerchantReactivated { .. } => self.set_status("active", None),
            MerchantEvent::MerchantClosed { reason, .. } => self.set_status("closed", Some(reason)),
            // Neither the rate, the email contact nor sealed blobs are shown by this read model.
            MerchantEvent::MerchantApiRateLimitChanged { .. }
            | MerchantEvent::MerchantEmailContactChanged { .. }
            | MerchantEvent::MerchantSecretsResealed { .. } => {}
            // The row shows the first endpoint (the onboarding `webhook_url`); the others are
            // read from the merchant's stream (`Merchant::webhook_endpoints`).
            MerchantEvent::WebhookEndpointUpdated {
                endpoint_id, url, ..
            } if self.is_first(endpoint_id) => self.webhook_url = Some(url),
            MerchantEvent::WebhookEndpointRemoved { endpoint_id, .. }
                if self.is_first(endpoint_id) =>
            {
                self.webhook_url = None
            }
            MerchantEvent::WebhookEndpointSecretRotated {
                endpoint_id, at, ..
            } if self.is_first(endpoint_id) => self.webhook_secret_rotated_at = Some(at),
            MerchantEvent::WebhookEndpointDisabled {
                endpoint_id, at, ..
            } if self.is_first(endpoint_id) => self.webhook_endpoint_disabled_at = Some(at),
            MerchantEvent::WebhookEndpointEnabled { endpoint_id, .. }
                if self.is_first(endpoint_id) =>
            {
                self.webhook_endpoint_disabled_at = None
            }
            MerchantEvent::WebhookEndpointAdded { .. }
            | MerchantEvent::WebhookEndpointUpdated { .. }
            | MerchantEvent::WebhookEndpointRemoved { .. }
            | MerchantEvent::WebhookEndpointSecretRotated { .. }
            | MerchantEvent::WebhookEndpointDisabled { .. }
            | MerchantEvent::WebhookEndpointEnabled { .. }
            | MerchantEvent::WebhookEndpointSecretResealed { .. } => {}
        }
    }

    /// Whether `endpoint` is the merchant's first webhook endpoint (it shares the merchant's id).
    fn is_first(&self, endpoint: lightspeed_domain::WebhookEndpointId) -> bool {
        endpoint.0 == self.merchant_id
    }

    fn set_whatsapp(&mut self, contact: Option<WhatsappContact>) {
        let opt_ins = contact.as_ref().map(|c| c.opt_ins).unwrap_or_default();
        self.whatsapp_number = contact.map(|c| c.number);
        self.whatsapp_low_balance = opt_ins.low_balance;
        self.whatsapp_transaction_updates = opt_ins.transaction_updates;
        self.whatsapp_payout_updates = opt_ins.payout_updates;
        self.whatsapp_account_status = opt_ins.account_status;
    }

    fn set_thresholds(&mut self, thresholds: &Thresholds) {
        self.suspend_at_paise = thresholds.suspend_at.0;
        self.warn_at_paise = thresholds.warn_at.0;
        self.auto_payout_minimum_paise = thresholds.auto_payout_minimum.0;
    }

    fn set_checkout(&mut self, settings: &CheckoutSettings) {
        self.routing_mode = serde_name(&settings.routing_mode);
        self.skip_temporarily_failed = settings.skip_temporarily_failed;
        self.default_rpm_cap = cap(settings.default_rpm_cap);
        self.temporary_failure_secs = secs(settings.temporary_failure_secs);
    }

    fn set_status(&mut self, status: &str, reason: Option<String>) {
        self.status = status.into();
        self.status_reason = reason;
    }
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
    .persistent(false)
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
