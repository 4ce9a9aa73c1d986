//! One module per page. A new page: a module here with its handlers, its routes in
//! [`routes`], and its entry in [`crate::layout::NAV`].

pub mod alerts;
pub mod audit;
pub mod commission;
pub mod deliveries;
pub mod gateways;
pub mod merchants;
pub mod overview;
pub mod projections;
pub mod queues;
pub mod refunds;
pub mod sessions;
pub mod sign_in;
pub mod transactions;
pub mod whatsapp;

use axum::Router;
use axum::routing::{get, post};

use crate::web::Console;

/// Every page's routes.
pub(crate) fn routes() -> Router<Console> {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/merchants", get(merchants::list))
        .route("/console/merchants/{id}", get(merchants::detail))
        .route(
            "/console/merchants/{id}/keys",
            post(merchants::regenerate_keys),
        )
        .route(
            "/console/merchants/{id}/checkout",
            post(merchants::change_checkout),
        )
        .route(
            "/console/merchants/{id}/statements/{file}",
            get(merchants::statement),
        )
        .route("/console/gateways", get(gateways::list))
        .route(
            "/console/gateways/priorities",
            post(gateways::set_priorities),
        )
        .route("/console/gateways/new", post(gateways::add))
        .route("/console/gateways/{id}/toggle", post(gateways::toggle))
        .route("/console/gateways/{id}/recover", post(gateways::recover))
        .route("/console/gateways/{id}/test", post(gateways::test))
        .route("/console/transactions", get(transactions::list))
        .route("/console/transactions/{id}", get(transactions::detail))
        .route("/console/queues", get(queues::list))
        .route(
            "/console/queues/{name}/{action}",
            get(queues::confirm).post(queues::act),
        )
        .route("/console/commission", get(commission::page_handler))
        .route("/console/commission/ledger.csv", get(commission::csv))
        .route("/console/commission/settlements", post(commission::settle))
        .route("/console/whatsapp", get(whatsapp::list))
        .route("/console/whatsapp/{id}/resend", post(whatsapp::resend))
        .route("/console/deliveries", get(deliveries::list))
        .route("/console/deliveries/{id}", get(deliveries::detail))
        .route("/console/deliveries/{id}/resend", post(deliveries::resend))
        .route("/console/refunds", get(refunds::list))
        .route("/console/refunds/{key}", get(refunds::detail))
        .route("/console/alerts", get(alerts::list))
        .route("/console/alerts/{key}/ack", post(alerts::acknowledge))
        .route("/console/audit", get(audit::list))
        .route("/console/projections", get(projections::list))
        .route(
            "/console/projections/{name}/rebuild",
            get(projections::confirm).post(projections::start),
        )
        .route("/console/sessions", get(sessions::list))
        .route("/console/sessions/{id}/revoke", post(sessions::revoke))
}
