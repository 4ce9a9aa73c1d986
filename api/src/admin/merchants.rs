//! Merchant administration: onboarding (the only answer that shows secrets, once), edits of
//! fee, thresholds, webhook URL, status, WhatsApp and email contacts, checkout settings and API
//! rate, key regeneration and
//! webhook secret rotation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use lightspeed_adapters::secrets::{
    generate_client_key, generate_client_salt, generate_webhook_secret,
};
use lightspeed_domain::checkout_settings::{CheckoutSettings, RoutingMode};
use lightspeed_domain::merchant::{
    ClientKey, DEFAULT_WEBHOOK_SECRET_GRACE_SECS, EmailContact, EmailOptIns, Merchant,
    MerchantCommand, OnboardMerchant, WhatsappContact, WhatsappOptIns,
};
use lightspeed_domain::standing::{MerchantStatus, Thresholds};
use lightspeed_domain::{BasisPoints, MerchantId, Paise};
use lightspeed_projections::merchants::MerchantFilter;
use lightspeed_projections::pagination::PageRequest;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::views::{MerchantView, PageBody};
use super::{AdminQuery, JsonBody, admin_error, parse_id};
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::schema_rules;
use crate::state::AppState;

/// Reads `null` as `Some(None)` and an absent field (with `#[serde(default)]`) as `None`, so a
/// PATCH can tell "remove" from "leave as is".
fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Balance thresholds, in paise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsBody {
    /// Balance due from which new payments are refused (default ₹10,000).
    pub suspend_at_paise: i64,
    /// Balance due from which the merchant is warned (default ₹5,000).
    pub warn_at_paise: i64,
    /// Smallest balance the automatic payout collects (default ₹1,000).
    pub auto_payout_minimum_paise: i64,
}

impl From<ThresholdsBody> for Thresholds {
    fn from(body: ThresholdsBody) -> Self {
        Thresholds {
            suspend_at: Paise(body.suspend_at_paise),
            warn_at: Paise(body.warn_at_paise),
            auto_payout_minimum: Paise(body.auto_payout_minimum_paise),
        }
    }
}

impl From<&Thresholds> for ThresholdsBody {
    fn from(thresholds: &Thresholds) -> Self {
        ThresholdsBody {
            suspend_at_paise: thresholds.suspend_at.0,
            warn_at_paise: thresholds.warn_at.0,
            auto_payout_minimum_paise: thresholds.auto_payout_minimum.0,
        }
    }
}

/// The WhatsApp contact and what the merchant agreed to receive (all off unless said).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatsappBody {
    /// International format, e.g. `919867800451`.
    pub number: String,
    /// `LOW_BALANCE` alerts.
    #[serde(default)]
    pub low_balance: bool,
    /// `TXN_UPDATE` messages.
    #[serde(default)]
    pub transaction_updates: bool,
    /// `PAYOUT_UPDATE` messages.
    #[serde(default)]
    pub payout_updates: bool,
    /// `ACCOUNT_STATUS` messages (suspension, reinstatement, quota thresholds).
    #[serde(default)]
    pub account_status: bool,
    /// `INVOICE` messages (the month's invoice was issued).
    #[serde(default)]
    pub invoices: bool,
}

impl From<WhatsappBody> for WhatsappContact {
    fn from(body: WhatsappBody) -> Self {
        WhatsappContact {
            number: body.number,
            opt_ins: WhatsappOptIns {
                low_balance: body.low_balance,
                transaction_updates: body.transaction_updates,
                payout_updates: body.payout_updates,
                account_status: body.account_status,
                invoices: body.invoices,
            },
        }
    }
}

impl From<&WhatsappContact> for WhatsappBody {
    fn from(contact: &WhatsappContact) -> Self {
        WhatsappBody {
            number: contact.number.clone(),
            low_balance: contact.opt_ins.low_balance,
            transaction_updates: contact.opt_ins.transaction_updates,
            payout_updates: contact.opt_ins.payout_updates,
            account_status: contact.opt_ins.account_status,
            invoices: contact.opt_ins.invoices,
        }
    }
}

/// The email contact and what the merchant agreed to receive by email (all off unless said).
/// Invoices are mailed to the invoice address (`PUT /admin/merchants/{id}/invoice-email`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    /// One address, e.g. `ops@acme.example`.
    #[schema(min_length = 3, max_length = 254, example = "ops@acme.example")]
    pub address: String,
    /// `LOW_BALANCE` alerts.
    #[serde(default)]
    pub low_balance: bool,
    /// `PAYOUT_UPDATE` messages (payout sent, payout failed).
    #[serde(default)]
    pub payout_updates: bool,
    /// `ACCOUNT_STATUS` messages (suspension, reinstatement, quota thresholds).
    #[serde(default)]
    pub account_status: bool,
}

impl From<EmailBody> for EmailContact {
    fn from(body: EmailBody) -> Self {
        EmailContact {
            address: body.address,
            opt_ins: EmailOptIns {
                low_balance: body.low_balance,
                payout_updates: body.payout_updates,
                account_status: body.account_status,
            },
        }
    }
}

impl From<&EmailContact> for EmailBody {
    fn from(contact: &EmailContact) -> Self {
        EmailBody {
            address: contact.address.clone(),
            low_balance: contact.opt_ins.low_balance,
            payout_updates: contact.opt_ins.payout_updates,
            account_status: contact.opt_ins.account_status,
        }
    }
}

/// Checkout settings; fields left out keep their current (or default) value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// `smart` (priority, then success rate) or `round_robin`.
    #[schema(value_type = Option<String>, example = "smart")]
    pub routing_mode: Option<RoutingMode>,
    /// Whether temporarily failed gateways are skipped.
    pub skip_temporarily_failed: Option<bool>,
    /// RPM cap for gateways without one of their own; `null` for none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>, nullable)]
    pub default_rpm_cap: Option<Option<u32>>,
    /// How long a failed gateway rests, in seconds.
    pub temporary_failure_secs: Option<u64>,
}

impl CheckoutBody {
    fn applied_to(&self, current: &CheckoutSettings) -> CheckoutSettings {
        CheckoutSettings {
            routing_mode: self.routing_mode.unwrap_or(current.routing_mode),
            skip_temporarily_failed: self
                .skip_temporarily_failed
                .unwrap_or(current.skip_temporarily_failed),
            default_rpm_cap: self.default_rpm_cap.unwrap_or(current.default_rpm_cap),
            temporary_failure_secs: self
                .temporary_failure_secs
                .unwrap_or(current.temporary_failure_secs),
        }
    }
}

/// Checkout settings as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckoutView {
    /// `smart` or `round_robin`.
    #[schema(value_type = String, example = "smart")]
    pub routing_mode: RoutingMode,
    /// Whether temporarily failed gateways are skipped.
    pub skip_temporarily_failed: bool,
    /// RPM cap for gateways without one of their own.
    pub default_rpm_cap: Option<u32>,
    /// How long a failed gateway rests, in seconds.
    pub temporary_failure_secs: u64,
}

/// A merchant as its stream says now (no secret: the salt and webhook secrets stay sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MerchantDetail {
    /// The merchant's id.
    pub merchant_id: Uuid,
    /// Company name.
    pub company_name: String,
    /// The current public API key id.
    pub client_key: String,
    /// Where payment webhooks go.
    pub webhook_url: Option<String>,
    /// Whether webhooks are delivered (a URL is set and the endpoint is not disabled).
    pub webhook_endpoint_enabled: bool,
    /// WhatsApp contact and opt-ins.
    pub whatsapp: Option<WhatsappBody>,
    /// Email contact and opt-ins.
    pub email: Option<EmailBody>,
    /// `active`, `suspended` or `closed`.
    pub status: String,
    /// Fee for new payments, in basis points.
    pub fee_bps: u32,
    /// Balance thresholds.
    pub thresholds: ThresholdsBody,
    /// Checkout settings.
    pub checkout: CheckoutView,
    /// Its own `POST /payment/initiate` rate per minute; `null`: the API's default.
    pub api_rate_per_minute: Option<u32>,
    /// Gateways attached and not retired.
    pub active_gateways: Vec<Uuid>,
    /// When the keys were last regenerated.
    pub keys_rotated_at: Option<DateTime<Utc>>,
    /// Until when the previous webhook secret still signs, if one was rotated out.
    pub previous_webhook_secret_valid_until: Option<DateTime<Utc>>,
    /// When it was onboarded.
    pub onboarded_at: DateTime<Utc>,
}

fn status_name(status: MerchantStatus) -> &'static str {
    match status {
        MerchantStatus::Active => "active",
        MerchantStatus::Suspended => "suspended",
        MerchantStatus::Closed => "closed",
    }
}

impl From<&Merchant> for MerchantDetail {
    fn from(merchant: &Merchant) -> Self {
        let checkout = merchant.checkout();
        MerchantDetail {
            merchant_id: merchant.id().0,
            company_name: merchant.company_name().to_owned(),
            client_key: merchant.client_key().to_string(),
            webhook_url: merchant.webhook_url().map(str::to_owned),
            webhook_endpoint_enabled: merchant.webhook_endpoint_enabled(),
            whatsapp: merchant.whatsapp().map(WhatsappBody::from),
            email: merchant.email().map(EmailBody::from),
            status: status_name(merchant.status()).to_owned(),
            fee_bps: merchant.fee().bps(),
            thresholds: merchant.thresholds().into(),
            checkout: CheckoutView {
                routing_mode: checkout.routing_mode,
                skip_temporarily_failed: checkout.skip_temporarily_failed,
                default_rpm_cap: checkout.default_rpm_cap,
                temporary_failure_secs: checkout.temporary_failure_secs,
            },
            api_rate_per_minute: merchant.api_rate_per_minute(),
            active_gateways: merchant.active_gateways().iter().map(|g| g.0).collect(),
            keys_rotated_at: merchant.keys_rotated_at(),
            previous_webhook_secret_valid_until: merchant
                .previous_webhook_secret()
                .map(|previous| previous.valid_until),
            onboarded_at: merchant.onboarded_at(),
        }
    }
}

/// A merchant to onboard.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchantBody {
    /// Registered company name: 1 to 200 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub company_name: String,
    /// Where payment webhooks go (optional).
    #[serde(default)]
    #[schema(schema_with = schema_rules::http_url)]
    pub webhook_url: Option<String>,
    /// Fee in basis points, 0 to 10 000 (default 350 = 3.50 %).
    #[serde(default)]
    #[schema(maximum = 10_000)]
    pub fee_bps: Option<u32>,
    /// Balance thresholds (defaults: suspend ₹10,000, warn ₹5,000, payout from ₹1,000).
    #[serde(default)]
    pub thresholds: Option<ThresholdsBody>,
    /// WhatsApp contact and opt-ins (optional).
    #[serde(default)]
    pub whatsapp: Option<WhatsappBody>,
    /// Checkout settings (defaults: smart routing, skip failed gateways, no cap, 300 s rest).
    #[serde(default)]
    pub checkout: Option<CheckoutBody>,
}

/// The answer to onboarding: the merchant's credentials, shown this once and never again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OnboardedBody {
    /// The merchant's id.
    pub merchant_id: Uuid,
    /// Public API key id, sent as `x-client-key`.
    pub client_key: String,
    /// The salt that keys request signatures. Shown once: store it now.
    pub client_salt: String,
    /// The `whsec_…` secret our webhooks to the merchant are signed with. Shown once.
    pub webhook_secret: String,
    /// The URL to configure in the PSPs' dashboards: `<public URL>/webhook/<client_key>`.
    pub psp_webhook_url: String,
    /// The merchant as recorded.
    pub merchant: MerchantDetail,
}

/// Onboards a merchant and answers its generated credentials, once.
#[utoipa::path(
    post,
    path = "/admin/merchants",
    tag = "admin-merchants",
    request_body = CreateMerchantBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 201, description = "Onboarded; the salt and webhook secret are shown only here", body = OnboardedBody),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule; `field` names it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateMerchantBody>,
) -> Result<(StatusCode, Json<OnboardedBody>), ApiError> {
    let client_key = generate_client_key();
    let client_salt = generate_client_salt();
    let webhook_secret = generate_webhook_secret();
    let fee = match body.fee_bps {
        Some(bps) => BasisPoints::new(bps).map_err(|_| ApiError::InvalidField {
            field: "fee_bps".into(),
            detail: format!("must be between 0 and {}", BasisPoints::WHOLE),
        })?,
        None => BasisPoints::DEFAULT_FEE,
    };
    let command = OnboardMerchant {
        merchant_id: MerchantId::new(),
        company_name: body.company_name,
        webhook_url: body.webhook_url,
        whatsapp: body.whatsapp.map(WhatsappContact::from),
        client_key: ClientKey::parse(&client_key)
            .map_err(|e| ApiError::Internal(format!("generated client key: {e}")))?,
        client_salt: state.keyring.seal(client_salt.expose()),
        webhook_secret: state.keyring.seal(webhook_secret.expose()),
        fee,
        thresholds: body.thresholds.map(Thresholds::from).unwrap_or_default(),
        checkout: body
            .checkout
            .unwrap_or_default()
            .applied_to(&CheckoutSettings::default()),
        at: state.ledger.now(),
    };
    let merchant = state
        .ledger
        .onboard_merchant(command, &admin.context(&headers))
        .await
        .map_err(admin_error)?;
    tracing::info!(merchant_id = %merchant.id(), admin = %admin.email, "merchant onboarded");
    Ok((
        StatusCode::CREATED,
        Json(OnboardedBody {
            merchant_id: merchant.id().0,
            psp_webhook_url: psp_webhook_url(&state, &client_key),
            client_key,
            client_salt: secret_text(&client_salt)?,
            webhook_secret: secret_text(&webhook_secret)?,
            merchant: MerchantDetail::from(&merchant),
        }),
    ))
}

/// The one place a freshly generated secret becomes text: the one-time answer.
fn secret_text(secret: &lightspeed_adapters::secrets::Secret) -> Result<String, ApiError> {
    secret
        .expose_str()
        .map(str::to_owned)
        .map_err(|_| ApiError::Internal("a generated secret is not UTF-8".into()))
}

fn psp_webhook_url(state: &AppState, client_key: &str) -> String {
    format!("{}/webhook/{client_key}", state.config.public_url)
}

/// Filters and page of the merchant list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MerchantListQuery {
    /// Only this status: `active`, `suspended` or `closed`.
    pub status: Option<String>,
    /// Company name or client key contains this (case-insensitive).
    pub q: Option<String>,
    /// Page, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Rows per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<u32>,
}

/// Merchants from the read model, by company name.
#[utoipa::path(
    get,
    path = "/admin/merchants",
    tag = "admin-merchants",
    params(MerchantListQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "One page of merchants", body = PageBody<MerchantView>),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    AdminQuery(query): AdminQuery<MerchantListQuery>,
) -> Result<Json<PageBody<MerchantView>>, ApiError> {
    let filter = MerchantFilter {
        status: query.status,
        q: query.q,
    };
    let page = page_request(query.page, query.per_page);
    let page = lightspeed_projections::merchants::list(state.pool(), &filter, page).await?;
    Ok(Json(PageBody::of(page)))
}

/// A page request with defaults for what was left out.
pub(crate) fn page_request(page: Option<u32>, per_page: Option<u32>) -> PageRequest {
    let default = PageRequest::default();
    PageRequest {
        page: page.unwrap_or(default.page),
        per_page: per_page.unwrap_or(default.per_page),
    }
}

fn merchant_id(id: &str) -> Result<MerchantId, ApiError> {
    parse_id(id, ApiError::MerchantNotFound)
}

/// A merchant as its stream says now.
#[utoipa::path(
    get,
    path = "/admin/merchants/{id}",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The merchant", body = MerchantDetail),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<MerchantDetail>, ApiError> {
    let merchant = state
        .ledger
        .merchant(merchant_id(&id)?)
        .await
        .map_err(admin_error)?;
    Ok(Json(MerchantDetail::from(&merchant)))
}

/// Changes to a merchant; fields left out stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchantBody {
    /// Company name: 1 to 200 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub company_name: Option<String>,
    /// Webhook URL; `null` stops webhooks. A new URL re-enables a disabled endpoint.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = schema_rules::nullable_http_url)]
    pub webhook_url: Option<Option<String>>,
    /// Fee for payments initiated from now on, in basis points (0 to 10 000).
    #[schema(maximum = 10_000)]
    pub fee_bps: Option<u32>,
    /// Balance thresholds.
    pub thresholds: Option<ThresholdsBody>,
    /// WhatsApp contact and opt-ins; `null` stops all WhatsApp messages.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<WhatsappBody>, nullable)]
    pub whatsapp: Option<Option<WhatsappBody>>,
    /// Email contact and opt-ins; `null` stops all email messages (invoices still go to the
    /// invoice address).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<EmailBody>, nullable)]
    pub email: Option<Option<EmailBody>>,
    /// Checkout settings (rotation mode, default RPM cap, skipping temporarily failed gateways).
    pub checkout: Option<CheckoutBody>,
    /// Its own `POST /payment/initiate` rate per minute; `null` for the API's default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>, nullable)]
    pub api_rate_per_minute: Option<Option<u32>>,
    /// `active` (reactivate), `suspended` or `closed` (both need `status_reason`).
    pub status: Option<String>,
    /// Why it is suspended or closed.
    pub status_reason: Option<String>,
}

impl UpdateMerchantBody {
    /// The commands this edit asks for, given the merchant's current state.
    fn commands(
        self,
        merchant: &Merchant,
        at: DateTime<Utc>,
    ) -> Result<Vec<MerchantCommand>, ApiError> {
        let mut commands = Vec::new();
        if self.company_name.is_some() || self.webhook_url.is_some() {
            commands.push(MerchantCommand::UpdateProfile {
                company_name: self
                    .company_name
                    .unwrap_or_else(|| merchant.company_name().to_owned()),
                webhook_url: self
                    .webhook_url
                    .unwrap_or_else(|| merchant.webhook_url().map(str::to_owned)),
                at,
            });
        }
        if let Some(bps) = self.fee_bps {
            let fee = BasisPoints::new(bps).map_err(|_| ApiError::InvalidField {
                field: "fee_bps".into(),
                detail: format!("must be between 0 and {}", BasisPoints::WHOLE),
            })?;
            commands.push(MerchantCommand::ChangeFee { fee, at });
        }
        if let Some(thresholds) = self.thresholds {
            commands.push(MerchantCommand::ChangeThresholds {
                thresholds: thresholds.into(),
                at,
            });
        }
        if let Some(contact) = self.whatsapp {
            commands.push(MerchantCommand::ChangeWhatsappContact {
                contact: contact.map(WhatsappContact::from),
                at,
            });
        }
        if let Some(contact) = self.email {
            commands.push(MerchantCommand::ChangeEmailContact {
                contact: contact.map(EmailContact::from),
                at,
            });
        }
        if let Some(checkout) = self.checkout {
            commands.push(MerchantCommand::ChangeCheckoutSettings {
                settings: checkout.applied_to(merchant.checkout()),
                at,
            });
        }
        if let Some(per_minute) = self.api_rate_per_minute {
            commands.push(MerchantCommand::ChangeApiRateLimit { per_minute, at });
        }
        if let Some(status) = self.status {
            let reason = || {
                self.status_reason.clone().ok_or(ApiError::InvalidField {
                    field: "status_reason".into(),
                    detail: format!("is required to make a merchant {status}"),
                })
            };
            commands.push(match status.as_str() {
                "active" => MerchantCommand::Reactivate { at },
                "suspended" => MerchantCommand::Suspend {
                    reason: reason()?,
                    at,
                },
                "closed" => MerchantCommand::Close {
                    reason: reason()?,
                    at,
                },
                _ => {
                    return Err(ApiError::InvalidField {
                        field: "status".into(),
                        detail: "must be active, suspended or closed".into(),
                    });
                }
            });
        }
        Ok(commands)
    }
}

/// Edits a merchant: every change in the body is recorded together, or none is.
#[utoipa::path(
    patch,
    path = "/admin/merchants/{id}",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id")),
    request_body = UpdateMerchantBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The merchant after the edit", body = MerchantDetail),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The merchant is closed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule; nothing was changed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateMerchantBody>,
) -> Result<Json<MerchantDetail>, ApiError> {
    let merchant_id = merchant_id(&id)?;
    let current = state
        .ledger
        .merchant(merchant_id)
        .await
        .map_err(admin_error)?;
    let commands = body.commands(&current, state.ledger.now())?;
    let merchant = state
        .ledger
        .update_merchant(merchant_id, &commands, &admin.context(&headers))
        .await
        .map_err(admin_error)?;
    Ok(Json(MerchantDetail::from(&merchant)))
}

/// New merchant credentials, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegeneratedKeysBody {
    /// The new public API key id.
    pub client_key: String,
    /// The new salt. Shown once: store it now.
    pub client_salt: String,
    /// The PSP webhook URL with the new key (the old URL keeps routing PSP webhooks, which are
    /// authenticated by the PSP's signature, so the dashboards can be updated at leisure).
    pub psp_webhook_url: String,
}

/// Replaces the merchant's client key and salt; the old pair is refused from the next request
/// on, on every replica.
#[utoipa::path(
    post,
    path = "/admin/merchants/{id}/keys/regenerate",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "New credentials, shown only here", body = RegeneratedKeysBody),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The merchant is closed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn regenerate_keys(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<RegeneratedKeysBody>, ApiError> {
    let merchant_id = merchant_id(&id)?;
    let client_key = generate_client_key();
    let client_salt = generate_client_salt();
    let key = ClientKey::parse(&client_key)
        .map_err(|e| ApiError::Internal(format!("generated client key: {e}")))?;
    state
        .ledger
        .rotate_merchant_keys(
            merchant_id,
            key,
            state.keyring.seal(client_salt.expose()),
            &admin.context(&headers),
        )
        .await
        .map_err(admin_error)?;
    tracing::info!(%merchant_id, admin = %admin.email, "merchant keys regenerated");
    Ok(Json(RegeneratedKeysBody {
        psp_webhook_url: psp_webhook_url(&state, &client_key),
        client_key,
        client_salt: secret_text(&client_salt)?,
    }))
}

/// How long the old webhook secret keeps signing.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookSecretBody {
    /// Grace period of the previous secret in seconds (default 86 400, at most 604 800).
    #[schema(maximum = 604_800)]
    pub grace_secs: Option<u64>,
}

/// The new webhook secret, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotatedWebhookSecretBody {
    /// The new `whsec_…` secret. Shown once: store it now.
    pub webhook_secret: String,
    /// Until then webhooks carry signatures under both secrets.
    pub previous_valid_until: Option<DateTime<Utc>>,
}

/// Replaces the merchant's webhook secret; during the grace period webhooks are signed with
/// both the new and the previous secret.
#[utoipa::path(
    post,
    path = "/admin/merchants/{id}/webhook-secret/rotate",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id")),
    request_body(content = RotateWebhookSecretBody, description = "Optional; `{}` for the default grace period"),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The new secret, shown only here", body = RotatedWebhookSecretBody),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Grace period out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RotateWebhookSecretBody>,
) -> Result<Json<RotatedWebhookSecretBody>, ApiError> {
    let merchant_id = merchant_id(&id)?;
    let secret = generate_webhook_secret();
    let command = MerchantCommand::RotateWebhookSecret {
        secret: state.keyring.seal(secret.expose()),
        grace_secs: body.grace_secs.unwrap_or(DEFAULT_WEBHOOK_SECRET_GRACE_SECS),
        at: state.ledger.now(),
    };
    let merchant = state
        .ledger
        .update_merchant(merchant_id, &[command], &admin.context(&headers))
        .await
        .map_err(admin_error)?;
    tracing::info!(%merchant_id, admin = %admin.email, "merchant webhook secret rotated");
    Ok(Json(RotatedWebhookSecretBody {
        webhook_secret: secret_text(&secret)?,
        previous_valid_until: merchant
            .previous_webhook_secret()
            .map(|previous| previous.valid_until),
    }))
}
