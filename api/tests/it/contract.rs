//! The committed OpenAPI document as a contract: requests derived from it for every operation,
//! schema-valid ones and ones that break each stated rule, sent to the real app (signed for
//! merchant routes, with an admin token for admin routes). No answer may be a 5xx, every answer
//! must be documented for its operation and match its schema, and every error must be
//! `application/problem+json`.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::common::{TestApp, TestMerchant, payment, spawn_app};

const COMMITTED: &str = include_str!("../../openapi.json");

/// The ids the requests name: real ones, so valid requests reach the handlers' work.
struct Known {
    merchant: TestMerchant,
    gateway: String,
    payment: String,
}

/// One request derived from the document.
struct Case {
    why: String,
    method: Method,
    path: String,
    body: Option<Value>,
}

/// The schema at a `$ref` (or the schema itself).
fn resolve(document: &Value, schema: &Value) -> Value {
    match schema["$ref"].as_str() {
        Some(pointer) => document
            .pointer(pointer.trim_start_matches('#'))
            .map_or(Value::Null, |target| resolve(document, target)),
        None => schema.clone(),
    }
}

/// A value the schema accepts, preferring the ids and shapes the server knows.
fn example(document: &Value, schema: &Value, name: &str, known: &Known) -> Value {
    let schema = &resolve(document, schema);
    if let Some(all) = schema["allOf"].as_array() {
        let mut merged = Map::new();
        for part in all {
            if let Value::Object(fields) = example(document, part, name, known) {
                merged.extend(fields);
            }
        }
        return Value::Object(merged);
    }
    if let Some(first) = schema["oneOf"].as_array().and_then(|v| v.last()) {
        return example(document, first, name, known);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|v| v.first()) {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .find(|k| *k != "null")
            .cloned()
            .unwrap_or(Value::Null),
        other => other.clone(),
    };
    match kind.as_str().unwrap_or("object") {
        "object" => {
            let mut fields = Map::new();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(properties) = schema["properties"].as_object() {
                for (field, property) in properties {
                    if required.contains(&field.as_str()) {
                        fields.insert(field.clone(), example(document, property, field, known));
                    }
                }
            }
            Value::Object(fields)
        }
        "array" => {
            let item = example(document, &schema["items"], name, known);
            Value::Array(vec![item])
        }
        "integer" | "number" => {
            let minimum = schema["minimum"].as_i64().unwrap_or(1).max(1);
            let maximum = schema["maximum"].as_i64().unwrap_or(i64::MAX);
            json!(minimum.min(maximum).min(100))
        }
        "boolean" => json!(true),
        _ => example_string(schema, name, known),
    }
}

fn example_string(schema: &Value, name: &str, known: &Known) -> Value {
    let format = schema["format"].as_str().unwrap_or_default();
    let text = match (name, format) {
        ("merchant_id", _) => known.merchant.id.to_string(),
        ("gateway_id", _) => known.gateway.clone(),
        (_, "uuid") => known.payment.clone(),
        (_, "uri") => "https://shop.example/return".to_owned(),
        (_, "date") | ("from" | "to", _) => "2026-01-01".to_owned(),
        ("order_id", _) => format!("ORD-{}", uuid::Uuid::now_v7().simple()),
        ("email", _) => "asha@example.com".to_owned(),
        ("phone", _) => "919867800451".to_owned(),
        ("cursor", _) => "c".to_owned(),
        ("webhook_secret", _) => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ("key_id", _) => "rzp_test_1DP5mmOlF5G5ag".to_owned(),
        _ => "Acme".to_owned(),
    };
    Value::String(text)
}

/// Values that break one rule each of `schema`, with what they break.
fn violations(document: &Value, schema: &Value) -> Vec<(String, Value)> {
    let schema = &resolve(document, schema);
    let mut out = Vec::new();
    if let Some(values) = schema["enum"].as_array()
        && values.iter().all(Value::is_string)
    {
        out.push(("not in the enum".to_owned(), json!("zz-not-a-value")));
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .find(|k| *k != "null")
            .cloned()
            .unwrap_or(Value::Null),
        other => other.clone(),
    };
    match kind.as_str() {
        Some("integer" | "number") => {
            out.push(("a string for a number".into(), json!("x")));
            if let Some(min) = schema["minimum"].as_i64() {
                out.push(("below its minimum".into(), json!(min - 1)));
            }
            if let Some(max) = schema["maximum"].as_i64() {
                out.push(("above its maximum".into(), json!(max + 1)));
            }
        }
        Some("string") => {
            out.push(("a number for a string".into(), json!(12)));
            if schema["minLength"].as_u64().is_some_and(|min| min > 0) {
                out.push(("empty".into(), json!("")));
            }
            if let Some(max) = schema["maxLength"].as_u64() {
                out.push(("too long".into(), json!("a".repeat(max as usize + 1))));
            }
            if let Some(pattern) = schema["pattern"].as_str() {
                let pattern = json!({ "type": "string", "pattern": pattern });
                let breaking = [" ", "bell\u{7} ring", "no"]
                    .into_iter()
                    .find(|candidate| !jsonschema::is_valid(&pattern, &json!(candidate)));
                if let Some(value) = breaking {
                    out.push(("against its pattern".into(), json!(value)));
                }
            }
        }
        Some("boolean") => out.push(("a string for a boolean".into(), json!("yes"))),
        Some("array") => {
            out.push(("an object for an array".into(), json!({})));
            if schema["minItems"].as_u64().is_some_and(|min| min > 0) {
                out.push(("no items".into(), json!([])));
            }
        }
        _ => {}
    }
    out
}

fn concrete_path(template: &str, known: &Known, replace: Option<(&str, &str)>) -> String {
    let mut path = template.to_owned();
    let merchant_id = known.merchant.id.to_string();
    let defaults: [(&str, &str); 7] = [
        ("{client_key}", &known.merchant.client_key),
        ("{gateway_id}", &known.gateway),
        ("{month}", "2026-01"),
        ("{name}", "merchant-webhooks"),
        ("{action}", "pause"),
        ("{id}", ""),
        ("", ""),
    ];
    if let Some((name, value)) = replace {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    for (placeholder, value) in defaults {
        if placeholder.is_empty() || !path.contains(placeholder) {
            continue;
        }
        let value = match placeholder {
            "{id}" if template.starts_with("/admin/merchants") => merchant_id.as_str(),
            "{id}" if template.starts_with("/admin/gateways") => known.gateway.as_str(),
            "{id}" => known.payment.as_str(),
            _ => value,
        };
        path = path.replace(placeholder, value);
    }
    path
}

/// Every request derived from one operation: a valid one, then one per broken rule.
fn cases(
    document: &Value,
    template: &str,
    method: &Method,
    operation: &Value,
    known: &Known,
) -> Vec<Case> {
    let body_schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    let body = (!body_schema.is_null()).then(|| example(document, body_schema, "", known));
    let valid = concrete_path(template, known, None);
    let mut cases = vec![Case {
        why: "valid".into(),
        method: method.clone(),
        path: valid.clone(),
        body: body.clone(),
    }];
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let name = parameter["name"].as_str().unwrap_or_default();
        // Every query and path value is text: a number for a string is no violation there.
        let broken = violations(document, &parameter["schema"])
            .into_iter()
            .filter(|(_, value)| !value.is_number());
        for (why, value) in broken {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            let text: String = url_encode(&text);
            let path = match parameter["in"].as_str() {
                Some("query") => format!("{valid}?{name}={text}"),
                Some("path") => concrete_path(template, known, Some((name, &text))),
                _ => continue,
            };
            cases.push(Case {
                why: format!("{name} {why}"),
                method: method.clone(),
                path,
                body: body.clone(),
            });
        }
    }
    if let Some(Value::Object(valid_body)) = &body {
        cases.extend(body_cases(
            document,
            body_schema,
            valid_body,
            method,
            &valid,
        ));
    }
    cases
}

fn body_cases(
    document: &Value,
    schema: &Value,
    valid: &Map<String, Value>,
    method: &Method,
    path: &str,
) -> Vec<Case> {
    let schema = &resolve(document, schema);
    let case = |why: String, body: Value| Case {
        why,
        method: method.clone(),
        path: path.to_owned(),
        body: Some(body),
    };
    let mut out = vec![case("an unknown field".into(), {
        let mut body = valid.clone();
        body.insert("unexpected_field".into(), json!(1));
        Value::Object(body)
    })];
    for required in schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let mut body = valid.clone();
        body.remove(required);
        out.push(case(format!("{required} missing"), Value::Object(body)));
    }
    for (field, property) in schema["properties"].as_object().into_iter().flatten() {
        for (why, value) in violations(document, property) {
            let mut body = valid.clone();
            body.insert(field.clone(), value);
            out.push(case(format!("{field} {why}"), Value::Object(body)));
        }
    }
    out
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn send(app: &TestApp, known: &Known, operation: &Value, case: &Case) -> reqwest::Response {
    let bytes = case
        .body
        .as_ref()
        .map(|b| serde_json::to_vec(b).expect("json"))
        .unwrap_or_default();
    let security = operation["security"].to_string();
    let request = if security.contains("merchant_signature") {
        app.signed(&known.merchant, case.method.clone(), &case.path, &bytes)
    } else if security.contains("admin_jwt") {
        app.admin(case.method.clone(), &case.path)
            .header("content-type", "application/json")
            .body(bytes)
    } else {
        let request = app
            .http
            .request(case.method.clone(), format!("{}{}", app.url, case.path));
        match &case.body {
            Some(_) => request
                .header("content-type", "application/json")
                .body(bytes),
            None => request,
        }
    };
    request.send().await.expect("request")
}

/// Why the answer breaks the document, if it does.
async fn check(
    document: &Value,
    validators: &mut HashMap<String, jsonschema::Validator>,
    key: &str,
    operation: &Value,
    response: reqwest::Response,
) -> Result<u16, String> {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if status >= 500 && status != 503 {
        return Err(format!("answered {status}"));
    }
    let responses = &operation["responses"];
    let documented = [
        status.to_string(),
        format!("{}XX", status / 100),
        "default".into(),
    ]
    .into_iter()
    .find(|s| !responses[s].is_null())
    .ok_or_else(|| format!("answered {status}, which is not documented"))?;
    let content = &responses[&documented]["content"][&content_type];
    // An error is a problem document, unless the document says this answer is something else
    // (a page for a person's browser, the readiness report).
    if status >= 400 && content_type != "application/problem+json" && content.is_null() {
        return Err(format!(
            "error {status} as {content_type:?}, not problem+json"
        ));
    }
    if !content_type.is_empty() && content.is_null() {
        return Err(format!(
            "{status} as {content_type}, which is not documented"
        ));
    }
    let schema = &content["schema"];
    if !content_type.ends_with("json") || schema.is_null() {
        return Ok(status);
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("{status}: body is not JSON: {e}"))?;
    let validator_key = format!("{key} {status} {content_type}");
    if !validators.contains_key(&validator_key) {
        let mut root = document.clone();
        root["allOf"] = json!([schema]);
        let validator = jsonschema::draft202012::new(&root)
            .map_err(|e| format!("schema of {validator_key}: {e}"))?;
        validators.insert(validator_key.clone(), validator);
    }
    let errors: Vec<String> = validators[&validator_key]
        .iter_errors(&body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(3)
        .collect();
    if errors.is_empty() {
        Ok(status)
    } else {
        Err(format!(
            "{status} body does not match its schema: {errors:?}"
        ))
    }
}

/// Operations that change what the next requests can do run last (retiring the gateway,
/// replacing the merchant's keys).
fn last(template: &str, method: &Method) -> bool {
    *method == Method::DELETE || template.contains("regenerate")
}

#[tokio::test]
async fn requests_derived_from_the_document_get_documented_answers_and_never_a_5xx() {
    let app = spawn_app().await;
    let document: Value = serde_json::from_str(COMMITTED).expect("document");
    let merchant = app.merchant().await;
    let (gateway, _) = app.sandbox_gateway(&merchant, 1, None).await;
    let created: Value = app
        .initiate(&merchant, &payment("CONTRACT-1", 49_900))
        .await
        .json()
        .await
        .expect("json");
    app.project().await;
    let known = Known {
        merchant,
        gateway: gateway.to_string(),
        payment: created["transaction_id"].as_str().expect("id").to_owned(),
    };
    let mut operations = Vec::new();
    for (template, item) in document["paths"].as_object().expect("paths") {
        for (name, method) in [
            ("get", Method::GET),
            ("post", Method::POST),
            ("put", Method::PUT),
            ("patch", Method::PATCH),
            ("delete", Method::DELETE),
        ] {
            if !item[name].is_null() {
                operations.push((template.clone(), method, item[name].clone()));
            }
        }
    }
    operations.sort_by_key(|(template, method, _)| last(template, method));
    let mut validators = HashMap::new();
    let mut failures = Vec::new();
    let mut sent = 0;
    for (template, method, operation) in &operations {
        for case in cases(&document, template, method, operation, &known) {
            let response = send(&app, &known, operation, &case).await;
            sent += 1;
            let key = format!("{method} {template}");
            let checked = check(&document, &mut validators, &key, operation, response)
                .await
                .and_then(|status| {
                    // Refused: a 4xx, or a documented 503 of a part not running here.
                    let refused = status >= 400;
                    if case.why == "valid" || refused {
                        Ok(status)
                    } else {
                        Err(format!(
                            "a request that breaks a stated rule answered {status}"
                        ))
                    }
                });
            if let Err(why) = checked {
                failures.push(format!("{key} ({}; {}): {why}", case.why, case.path));
            }
        }
    }
    assert!(sent > 150, "requests derived from the document: {sent}");
    assert!(
        failures.is_empty(),
        "{} of {sent} answers break the document:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
