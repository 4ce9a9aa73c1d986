//! `GET /invoices` (the signing merchant's monthly commission invoices) and
//! `GET /invoices/{number}` (one of them as JSON, or with `.pdf` its PDF). Another merchant's
//! invoice number answers 404, as an unknown one does.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::admin::invoices::{
    InvoiceListView, InvoiceView, invoicing, invoicing_error, number_and_pdf, pdf_response,
};
use crate::auth::SignedRequest;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// The signing merchant's monthly commission invoices, newest first.
#[utoipa::path(
    get,
    path = "/invoices",
    tag = "payments",
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "Your invoices; each `pdf` is its download", body = InvoiceListView),
        (status = 401, description = "Missing, stale or wrong signature, or unknown client key", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    request: SignedRequest,
) -> Result<Json<InvoiceListView>, ApiError> {
    let merchant_id = request.merchant.merchant.id();
    let books = invoicing(&state)
        .of_merchant(merchant_id)
        .await
        .map_err(invoicing_error)?;
    Ok(Json(InvoiceListView::new(
        merchant_id,
        &books,
        "/invoices/",
    )))
}

/// One of the signing merchant's invoices: JSON, or with `.pdf` the PDF.
#[utoipa::path(
    get,
    path = "/invoices/{number}",
    tag = "payments",
    params(("number" = String, Path, description = "`LS-2627-000042` for JSON (the PDF with `Accept: application/pdf`), `LS-2627-000042.pdf` for the PDF")),
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The invoice", content(
            (InvoiceView = "application/json"),
            (Vec<u8> = "application/pdf"),
        )),
        (status = 401, description = "Missing, stale or wrong signature, or unknown client key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "None of yours has this number (`INVOICE_NOT_FOUND`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(segment): Path<String>,
    request: SignedRequest,
) -> Result<Response, ApiError> {
    let merchant_id = request.merchant.merchant.id();
    let (number, pdf) = number_and_pdf(&segment, &headers)?;
    let books = invoicing(&state)
        .of_merchant(merchant_id)
        .await
        .map_err(invoicing_error)?;
    let invoice = books.by_number(number).ok_or(ApiError::InvoiceNotFound)?;
    if pdf {
        return pdf_response(invoice);
    }
    Ok(Json(InvoiceView::new(invoice, &books, "/invoices/")).into_response())
}
