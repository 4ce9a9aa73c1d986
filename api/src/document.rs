//! What the OpenAPI document states beyond each handler's own description: the refusals every
//! JSON body may get, and the webhooks we send to merchants (OpenAPI 3.1 `webhooks`).

use serde_json::json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, OpenApi, PathItem, Paths, Ref, ResponseBuilder};

/// The document with the refusals of JSON bodies and query parameters on every operation that
/// takes them, and the merchant webhooks.
pub(crate) fn completed(mut openapi: OpenApi) -> OpenApi {
    for item in openapi.paths.paths.values_mut() {
        // PSP webhooks and pages read their input their own way; the signed and admin routes
        // share the JSON body and query extractors.
        for operation in operations(item).filter(|op| op.security.is_some()) {
            add_input_refusals(operation);
        }
    }
    openapi.webhooks = Some(merchant_webhooks());
    let components = openapi.components.get_or_insert_with(Default::default);
    for (name, schema) in webhook_schemas() {
        components.schemas.insert(name, schema);
    }
    openapi
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// What a request body or a query parameter can be refused with, as the extractors answer it.
fn add_input_refusals(operation: &mut Operation) {
    let has_body = operation.request_body.is_some();
    let has_query = operation.parameters.as_ref().is_some_and(|parameters| {
        parameters.iter().any(
            |p| matches!(p, utoipa::openapi::RefOr::T(p) if p.parameter_in == ParameterIn::Query),
        )
    });
    let mut refusals: Vec<(&str, &str)> = Vec::new();
    if has_body {
        refusals.extend([
            ("400", "The body is not JSON, or has trailing bytes (`MALFORMED_JSON`)"),
            ("413", "The body is over the server's limit (`PAYLOAD_TOO_LARGE`)"),
            ("415", "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`)"),
            (
                "422",
                "Well-formed JSON that breaks a rule: a wrong type, a missing or unknown field, a value out of bounds (`INVALID_FIELD`; `field` names it). Nothing was recorded",
            ),
        ]);
    }
    // An operation that documents its own 422 for its query (the merchant reads, which name
    // the parameter at fault) never answers the extractor's 400.
    let query_refused_as_field = !has_body && operation.responses.responses.contains_key("422");
    if has_query && !query_refused_as_field && !operation.responses.responses.contains_key("400") {
        refusals.push(("400", "A query parameter is invalid (`INVALID_QUERY`)"));
    }
    for (status, description) in refusals {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(description).into());
    }
}

fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// The events merchants receive, with what `data` carries beyond the common fields.
const WEBHOOK_EVENTS: [(&str, &str, &str); 6] = [
    (
        "payment.created",
        "The payment was started (routed and booked on a gateway); `data.status` is `created`.",
        "PaymentCreatedData",
    ),
    (
        "payment.succeeded",
        "The PSP reported the payment paid; `data.commission`, `data.psp_payment_id` and `data.late_success` (true when it follows a `payment.failed`) are set.",
        "PaymentSucceededData",
    ),
    (
        "payment.failed",
        "The PSP reported the payment failed, or no gateway could create its order; `data.error` says why.",
        "PaymentFailedData",
    ),
    (
        "refund.succeeded",
        "The PSP returned a refund's amount to the payer; `data.refund` has the merchant's `refund_id` (null for a refund made at the PSP, whose `psp_refund_id` is then set), `amount` and `refunded_total`. Sent for every refund, partial or full.",
        "RefundData",
    ),
    (
        "refund.failed",
        "The PSP refused or failed a refund; its amount may be refunded again. `data.refund.error` says why.",
        "RefundData",
    ),
    (
        "payment.refunded",
        "The payment is refunded in full (`data.refund.refunded_total` equals `data.amount`); sent after the `refund.succeeded` of the refund that completed it.",
        "RefundData",
    ),
];

const SIGNATURE_SCHEME: &str = "Sent in the Standard Webhooks format (https://www.standardwebhooks.com/), at least once, to each of the merchant's enabled webhook endpoints whose event types match (`/webhook-endpoints`; the onboarding `webhook_url` is the first). `webhook-signature` is `v1,` followed by the base64 HMAC-SHA256, keyed with the base64-decoded part of that endpoint's `whsec_` secret, of `\"{webhook-id}.{webhook-timestamp}.{raw body}\"`; during a secret rotation's grace period it holds two signatures separated by a space. The body is compact JSON with its keys sorted. A 2xx answer within 30 s is a delivery; anything else is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (±20 %), 8 attempts in all, honouring a longer `Retry-After` up to 10 h.";

/// `webhooks`: one entry per event type, each a `POST` to the merchant's endpoint.
fn merchant_webhooks() -> Paths {
    let mut paths = Paths::new();
    for (event_type, when, data) in WEBHOOK_EVENTS {
        let item = json!({
            "post": {
                "summary": format!("`{event_type}`"),
                "description": format!("{when}\n\n{SIGNATURE_SCHEME}"),
                "operationId": format!("webhook_{}", event_type.replace('.', "_")),
                "tags": ["merchant-webhooks"],
                "parameters": webhook_headers(),
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": {
                        "allOf": [
                            {"$ref": "#/components/schemas/MerchantWebhook"},
                            {
                                "type": "object",
                                "properties": {
                                    "type": {"type": "string", "enum": [event_type]},
                                    "data": {"$ref": format!("#/components/schemas/{data}")}
                                }
                            }
                        ]
                    }}}
                },
                "responses": {
                    "2XX": {"description": "Delivered"},
                    "default": {"description": "A failed attempt: retried on the schedule above"}
                }
            }
        });
        match serde_json::from_value::<PathItem>(item) {
            Ok(item) => paths.paths.insert(event_type.to_owned(), item),
            Err(e) => unreachable!("the webhook description of {event_type} is a path item: {e}"),
        };
    }
    paths
}

fn webhook_headers() -> serde_json::Value {
    json!([
        {"name": "webhook-id", "in": "header", "required": true,
         "description": "The message's id, the same on every retry: skip ids already handled",
         "schema": {"type": "string", "format": "uuid"}},
        {"name": "webhook-timestamp", "in": "header", "required": true,
         "description": "Unix time of this attempt, in seconds; refuse one more than 5 minutes from your clock",
         "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        {"name": "webhook-signature", "in": "header", "required": true,
         "description": "`v1,<base64 HMAC-SHA256>`, one per secret, separated by spaces",
         "schema": {"type": "string", "pattern": "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$"}}
    ])
}

/// The webhook bodies' schemas.
fn webhook_schemas() -> Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)> {
    let common = json!({
        "transaction_id": {"type": "string", "format": "uuid"},
        "order_id": {"type": "string"},
        "amount": {"type": "integer", "format": "int64", "minimum": 1, "description": "Paise"},
        "currency": {"type": "string", "enum": ["INR"]},
        "status": {"$ref": "#/components/schemas/PaymentStatus"},
        "gateway_id": {"type": "string", "format": "uuid"},
        "provider": {"type": "string", "enum": ["razorpay", "payu", "cashfree", "phonepe", "sandbox"]},
        "initiated_at": {"type": "string", "format": "date-time"},
        "notes": {"type": "object", "additionalProperties": {"type": "string"},
                  "description": "Present when the payment has notes"}
    });
    let required = json!([
        "transaction_id",
        "order_id",
        "amount",
        "currency",
        "status",
        "gateway_id",
        "provider",
        "initiated_at"
    ]);
    let data = |extra: serde_json::Value, extra_required: &[&str]| {
        let mut properties = common.clone();
        if let (Some(all), Some(more)) = (properties.as_object_mut(), extra.as_object()) {
            all.extend(more.clone());
        }
        let mut all_required = required.as_array().cloned().unwrap_or_default();
        all_required.extend(extra_required.iter().map(|f| json!(f)));
        json!({"type": "object", "properties": properties, "required": all_required})
    };
    let schemas = [
        (
            "MerchantWebhook",
            json!({
                "type": "object",
                "description": "The body of every merchant webhook",
                "required": ["type", "timestamp", "data"],
                "properties": {
                    "type": {"type": "string", "enum": WEBHOOK_EVENTS.map(|(t, _, _)| t)},
                    "timestamp": {"type": "string", "format": "date-time",
                                  "description": "When the change happened"},
                    "data": {"type": "object"}
                }
            }),
        ),
        ("PaymentCreatedData", data(json!({}), &[])),
        (
            "PaymentSucceededData",
            data(
                json!({
                    "commission": {"type": "integer", "format": "int64", "description": "Our commission, in paise"},
                    "psp_payment_id": {"type": "string"},
                    "late_success": {"type": "boolean"}
                }),
                &["commission", "psp_payment_id", "late_success"],
            ),
        ),
        (
            "PaymentFailedData",
            data(
                json!({
                    "error": {"type": "object", "required": ["code", "description"],
                              "properties": {"code": {"type": "string"}, "description": {"type": "string"}}}
                }),
                &["error"],
            ),
        ),
        (
            "RefundData",
            data(
                json!({
                    "refund": {"type": "object",
                               "required": ["refund_id", "amount", "refunded_total", "status"],
                               "properties": {
                                   "refund_id": {"type": ["string", "null"], "description": "The merchant's refund id"},
                                   "amount": {"type": "integer", "format": "int64", "description": "This refund, in paise"},
                                   "refunded_total": {"type": "integer", "format": "int64", "description": "Refunded so far, in paise"},
                                   "status": {"type": "string", "enum": ["succeeded", "failed"]},
                                   "psp_refund_id": {"type": ["string", "null"]},
                                   "error": {"type": "object", "required": ["code", "description"],
                                             "properties": {"code": {"type": "string"}, "description": {"type": "string"}}}
                               }}
                }),
                &["refund"],
            ),
        ),
    ];
    schemas
        .into_iter()
        .map(|(name, schema)| {
            let schema = serde_json::from_value(schema)
                .unwrap_or_else(|e| unreachable!("the {name} schema is a schema: {e}"));
            (name.to_owned(), schema)
        })
        .collect()
}
