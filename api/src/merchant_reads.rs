//! What a merchant may read about itself with a signed request: its WhatsApp usage.

use axum::Json;
use axum::extract::State;
use lightspeed_domain::calendar::IST;

use crate::admin::views::WhatsappUsageView;
use crate::auth::SignedRequest;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// How many IST days the usage covers.
pub const USAGE_DAYS: u32 = 30;

/// The signing merchant's WhatsApp messages over the last 30 IST days, by day and template.
#[utoipa::path(
    get,
    path = "/merchant/whatsapp/usage",
    tag = "payments",
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "Usage, newest day first", body = Vec<WhatsappUsageView>),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn whatsapp_usage(
    State(state): State<AppState>,
    request: SignedRequest,
) -> Result<Json<Vec<WhatsappUsageView>>, ApiError> {
    let today = state.ledger.now().with_timezone(&IST).date_naive();
    let usage = lightspeed_projections::whatsapp::usage(
        state.pool(),
        request.merchant.merchant.id().0,
        USAGE_DAYS,
        today,
    )
    .await?;
    Ok(Json(usage.into_iter().map(Into::into).collect()))
}
