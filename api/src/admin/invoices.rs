//! Monthly commission invoices: a merchant's list, one invoice as JSON or its PDF, and the
//! address invoices are mailed to. Reads are for the roles that handle the books (admin,
//! finance, auditor: those allowed `export_audit`); setting the address is a merchant change.
//!
//! An invoice is its `InvoiceIssued` event on `merchant_invoices-<merchant>`; the PDF is made
//! from it by `lightspeed_invoice` on each download, the same bytes each time.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use lightspeed_domain::MerchantId;
use lightspeed_domain::access::Action;
use lightspeed_domain::invoice::{Invoice, InvoiceError, InvoiceNumber, MerchantInvoices};
use lightspeed_eventstore::{CommandContext, Metadata};
use lightspeed_invoice::{Seller, file_name, render};
use lightspeed_services::{Invoicing, InvoicingError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{JsonBody, admin_error, parse_id};
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// One tax line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaxLineView {
    /// e.g. `IGST`.
    pub name: String,
    /// Rate in basis points (1 800 = 18 %).
    pub rate_bps: u32,
    /// Taxable value × rate / 10 000, rounded half-up, in paise.
    pub amount_paise: i64,
}

/// An invoice's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvoiceView {
    /// e.g. `LS-2627-000042`: gapless per financial year.
    pub number: String,
    /// The financial year, e.g. `2026-27`.
    pub financial_year: String,
    /// The merchant billed.
    pub merchant_id: Uuid,
    /// Its company name when issued.
    pub company_name: String,
    /// The IST month billed, `yyyy-mm`.
    pub month: String,
    /// The invoice date.
    pub issued_at: DateTime<Utc>,
    /// Commission accrued in the month, in paise.
    pub commission_accrued_paise: i64,
    /// Payments whose commission accrued in the month.
    pub payments: u64,
    /// Commission reversed by refunds in the month, in paise.
    pub commission_reversed_paise: i64,
    /// Accrued − reversed, in paise.
    pub taxable_paise: i64,
    /// The tax lines (none unless configured).
    pub taxes: Vec<TaxLineView>,
    /// Taxable value + every tax line, in paise.
    pub total_paise: i64,
    /// When it was mailed to the merchant, if it was.
    pub mailed_at: Option<DateTime<Utc>>,
    /// Where its PDF is downloaded from (on this API: admin or merchant route).
    pub pdf: String,
}

impl InvoiceView {
    /// The view of `invoice`, its PDF at `pdf_base` + `<number>.pdf`.
    pub(crate) fn new(invoice: &Invoice, books: &MerchantInvoices, pdf_base: &str) -> Self {
        Self {
            number: invoice.number.to_string(),
            financial_year: invoice.number.year.to_string(),
            merchant_id: invoice.merchant_id.0,
            company_name: invoice.company_name.clone(),
            month: invoice.month.to_string(),
            issued_at: invoice.issued_at,
            commission_accrued_paise: invoice.figures.accrued.0,
            payments: invoice.figures.payments,
            commission_reversed_paise: invoice.figures.reversed.0,
            taxable_paise: invoice.taxable.0,
            taxes: invoice
                .taxes
                .iter()
                .map(|t| TaxLineView {
                    name: t.name.clone(),
                    rate_bps: t.rate.bps(),
                    amount_paise: t.amount.0,
                })
                .collect(),
            total_paise: invoice.total.0,
            mailed_at: books.mailed_at(invoice.number),
            pdf: format!("{pdf_base}{}", file_name(invoice)),
        }
    }
}

/// A merchant's invoices, newest month first, and where they are mailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvoiceListView {
    /// The merchant.
    pub merchant_id: Uuid,
    /// The address invoices are mailed to, if set.
    pub email: Option<String>,
    /// Every invoice, newest month first.
    pub invoices: Vec<InvoiceView>,
}

impl InvoiceListView {
    pub(crate) fn new(merchant_id: MerchantId, books: &MerchantInvoices, pdf_base: &str) -> Self {
        Self {
            merchant_id: merchant_id.0,
            email: books.email().map(str::to_owned),
            invoices: books
                .invoices()
                .rev()
                .map(|invoice| InvoiceView::new(invoice, books, pdf_base))
                .collect(),
        }
    }
}

/// The address to mail invoices to; `null` stops mailing them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceEmailBody {
    /// e.g. `billing@merchant.example`, at most 254 bytes; `null` to remove.
    #[schema(max_length = 254)]
    pub email: Option<String>,
}

/// Invoicing over the API's ledger. Reads only: made per request (no tax lines needed), so the
/// API's state carries nothing of it; each read folds the merchant's short invoices stream.
pub(crate) fn invoicing(state: &AppState) -> Invoicing {
    Invoicing::new(state.ledger.clone(), Vec::new())
}

pub(crate) fn invoicing_error(error: InvoicingError) -> ApiError {
    match error {
        InvoicingError::Service(error) => admin_error(error),
        InvoicingError::Refused(InvoiceError::InvalidEmail) => ApiError::InvalidField {
            field: "email".to_owned(),
            detail: "must be one email address".to_owned(),
        },
        InvoicingError::Refused(InvoiceError::UnknownInvoice(_)) => ApiError::InvoiceNotFound,
        InvoicingError::Refused(other) => ApiError::InvalidField {
            field: "invoice".to_owned(),
            detail: other.to_string(),
        },
    }
}

/// Admits readers of the books: admin, finance and auditor.
fn books_reader(admin: &AdminUser) -> Result<(), ApiError> {
    if admin.role.permits(Action::ExportAudit) {
        Ok(())
    } else {
        Err(ApiError::RoleForbidden {
            role: admin.role,
            action: Action::ExportAudit,
        })
    }
}

/// A path segment naming an invoice: `LS-2627-000042` (JSON, or the PDF with
/// `Accept: application/pdf`) or `LS-2627-000042.pdf` (PDF).
pub(crate) fn number_and_pdf(
    segment: &str,
    headers: &HeaderMap,
) -> Result<(InvoiceNumber, bool), ApiError> {
    let (text, pdf) = match segment.strip_suffix(".pdf") {
        Some(number) => (number, true),
        None => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            (segment, accept.contains("application/pdf"))
        }
    };
    let number = InvoiceNumber::parse(text).ok_or(ApiError::InvoiceNotFound)?;
    Ok((number, pdf))
}

/// The invoice's PDF as a download.
pub(crate) fn pdf_response(invoice: &Invoice) -> Result<Response, ApiError> {
    let pdf = render(invoice, &Seller::default())
        .map_err(|e| ApiError::Internal(format!("invoice PDF: {e}")))?;
    let disposition = format!("attachment; filename=\"{}\"", file_name(invoice));
    let mut response = pdf.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// A merchant's monthly commission invoices, newest first, and the address they are mailed to.
#[utoipa::path(
    get,
    path = "/admin/merchants/{id}/invoices",
    tag = "admin-payouts",
    params(("id" = String, Path, description = "The merchant")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The merchant's invoices", body = InvoiceListView),
        (status = 403, description = "Not a role that reads the books (`ROLE_FORBIDDEN`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<InvoiceListView>, ApiError> {
    books_reader(&admin)?;
    let merchant_id: MerchantId = parse_id(&id, ApiError::MerchantNotFound)?;
    state
        .ledger
        .merchant(merchant_id)
        .await
        .map_err(admin_error)?;
    let books = invoicing(&state)
        .of_merchant(merchant_id)
        .await
        .map_err(invoicing_error)?;
    Ok(Json(InvoiceListView::new(
        merchant_id,
        &books,
        "/admin/invoices/",
    )))
}

/// One invoice by number: its figures as JSON, or with `.pdf` its PDF (rendered with an
/// embedded font, amounts in ₹).
#[utoipa::path(
    get,
    path = "/admin/invoices/{number}",
    tag = "admin-payouts",
    params(("number" = String, Path, description = "`LS-2627-000042` for JSON (the PDF with `Accept: application/pdf`), `LS-2627-000042.pdf` for the PDF")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The invoice", content(
            (InvoiceView = "application/json"),
            (Vec<u8> = "application/pdf"),
        )),
        (status = 403, description = "Not a role that reads the books (`ROLE_FORBIDDEN`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invoice (`INVOICE_NOT_FOUND`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(segment): Path<String>,
) -> Result<Response, ApiError> {
    books_reader(&admin)?;
    let (number, pdf) = number_and_pdf(&segment, &headers)?;
    let invoicing = invoicing(&state);
    let invoice = invoicing
        .by_number(number)
        .await
        .map_err(invoicing_error)?
        .ok_or(ApiError::InvoiceNotFound)?;
    if pdf {
        return pdf_response(&invoice);
    }
    let books = invoicing
        .of_merchant(invoice.merchant_id)
        .await
        .map_err(invoicing_error)?;
    Ok(Json(InvoiceView::new(&invoice, &books, "/admin/invoices/")).into_response())
}

/// Sets the address a merchant's invoices are mailed to (`null` stops mailing them).
#[utoipa::path(
    put,
    path = "/admin/merchants/{id}/invoice-email",
    tag = "admin-payouts",
    params(("id" = String, Path, description = "The merchant")),
    request_body = InvoiceEmailBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The merchant's invoices and the address now", body = InvoiceListView),
        (status = 403, description = "The role may not change merchants (`ROLE_FORBIDDEN`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an email address (`INVALID_FIELD`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_email(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<InvoiceEmailBody>,
) -> Result<Json<InvoiceListView>, ApiError> {
    let merchant_id: MerchantId = parse_id(&id, ApiError::MerchantNotFound)?;
    let context = CommandContext {
        command_id: None,
        metadata: Metadata {
            actor: Some(format!("admin:{}", admin.email)),
            ..Metadata::default()
        },
    };
    let books = invoicing(&state)
        .set_email(merchant_id, body.email, &context)
        .await
        .map_err(invoicing_error)?;
    Ok(Json(InvoiceListView::new(
        merchant_id,
        &books,
        "/admin/invoices/",
    )))
}
