//! Merchant administration over real HTTP: onboarding answers the credentials once, keys
//! regenerate and the old ones are refused at once on every replica, edits are all or nothing,
//! webhook secrets rotate with a grace period, and a merchant's own rate is enforced.

use chrono::TimeDelta;
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::MerchantId;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{EventCount, TestApp, TestMerchant, payment, problem, spawn_app};

async fn onboard(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    problem(
        app.admin_json(Method::POST, "/admin/merchants", body)
            .send()
            .await
            .expect("request"),
    )
    .await
}

/// Onboards through the admin API and answers the merchant as a signing client.
async fn onboarded(app: &TestApp) -> (TestMerchant, Value) {
    let (status, body) = onboard(
        app,
        &json!({
            "company_name": "Acme Retail",
            "webhook_url": "https://acme.example/hooks",
            "fee_bps": 250,
            "thresholds": { "suspend_at_paise": 1_000_000, "warn_at_paise": 500_000, "auto_payout_minimum_paise": 100_000 },
            "whatsapp": { "number": "+919867800451", "low_balance": true },
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (TestMerchant::from_onboarded(&body), body)
}

#[tokio::test]
async fn onboarding_answers_the_credentials_once_and_they_sign_requests() {
    let app = spawn_app().await;
    let (merchant, body) = onboarded(&app).await;
    let salt = body["client_salt"].as_str().expect("salt");
    let webhook_secret = body["webhook_secret"].as_str().expect("secret");
    assert!(salt.starts_with("cs_") && webhook_secret.starts_with("whsec_"));
    assert_eq!(
        body["psp_webhook_url"],
        format!("{}/webhook/{}", app.url, merchant.client_key)
    );
    assert_eq!(body["merchant"]["fee_bps"], 250);
    assert_eq!(body["merchant"]["whatsapp"]["number"], "919867800451");

    let detail = app
        .admin(Method::GET, &format!("/admin/merchants/{}", merchant.id))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    assert!(detail.contains(&merchant.client_key));
    assert!(
        !detail.contains(salt) && !detail.contains(webhook_secret),
        "{detail}"
    );

    app.sandbox_gateway(&merchant, 1, None).await;
    let created = app.initiate(&merchant, &payment("ORD-1", 49_900)).await;
    assert_eq!(created.status(), StatusCode::CREATED);

    let actors: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT event_type, metadata->>'actor' FROM ledger.events
          WHERE event_type IN ('MerchantOnboarded', 'ClientKeyAssigned')",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("actors");
    assert!(!actors.is_empty());
    for (event_type, actor) in actors {
        assert_eq!(
            actor.as_deref(),
            Some("admin:ops@example.com"),
            "{event_type}"
        );
    }
}

#[tokio::test]
async fn bad_onboarding_input_is_refused_field_by_field_and_records_nothing() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    for (body, field) in [
        (json!({ "company_name": "" }), "company_name"),
        (
            json!({ "company_name": "Acme", "fee_bps": 10_001 }),
            "fee_bps",
        ),
        (
            json!({ "company_name": "Acme", "webhook_url": "ftp://x" }),
            "webhook_url",
        ),
        (
            json!({ "company_name": "Acme", "whatsapp": { "number": "123" } }),
            "whatsapp_number",
        ),
        (json!({ "company_name": "Acme", "colour": "red" }), "colour"),
        (json!({ "company_name": 7 }), "company_name"),
    ] {
        let (status, problem) = onboard(&app, &body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} -> {problem}"
        );
        assert_eq!(problem["code"], "INVALID_FIELD");
        assert_eq!(problem["field"], field, "{body}");
    }
    let malformed = app
        .admin(Method::POST, "/admin/merchants")
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("request");
    assert_eq!(problem(malformed).await.1["code"], "MALFORMED_JSON");
    let not_json = app
        .admin(Method::POST, "/admin/merchants")
        .body("company_name=Acme")
        .send()
        .await
        .expect("request");
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn regenerated_keys_refuse_the_old_pair_from_the_next_request_on_every_replica() {
    let app = spawn_app().await;
    let (merchant, _) = onboarded(&app).await;
    let (gateway_id, _) = app.sandbox_gateway(&merchant, 1, None).await;
    let replica = app.replica().await;
    let on_replica = |who: &TestMerchant, order: &str| {
        let body = serde_json::to_vec(&payment(order, 100)).expect("json");
        let request = app.signed(who, Method::POST, "/payment/initiate", &body);
        let mut built = request.build().expect("request");
        *built.url_mut() = format!("{}/payment/initiate", replica.url)
            .parse()
            .expect("url");
        app.http.execute(built)
    };
    // The replica knows the merchant (and its key) before the rotation.
    assert_eq!(
        on_replica(&merchant, "ORD-0").await.expect("send").status(),
        StatusCode::CREATED
    );

    let (status, fresh) = problem(
        app.admin(
            Method::POST,
            &format!("/admin/merchants/{}/keys/regenerate", merchant.id),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let rotated = TestMerchant {
        id: merchant.id,
        client_key: fresh["client_key"].as_str().expect("key").to_owned(),
        client_salt: Secret::from(fresh["client_salt"].as_str().expect("salt")),
        webhook_secret: merchant.webhook_secret.clone(),
    };
    assert_ne!(rotated.client_key, merchant.client_key);

    for response in [
        app.initiate(&merchant, &payment("ORD-1", 100)).await,
        on_replica(&merchant, "ORD-2").await.expect("send"),
    ] {
        let (status, body) = problem(response).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("UNKNOWN_CLIENT_KEY"))
        );
    }
    let old_key_new_salt = TestMerchant {
        id: merchant.id,
        client_key: merchant.client_key.clone(),
        client_salt: rotated.client_salt.clone(),
        webhook_secret: merchant.webhook_secret.clone(),
    };
    assert_eq!(
        app.initiate(&old_key_new_salt, &payment("ORD-3", 100))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.initiate(&rotated, &payment("ORD-4", 100))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        on_replica(&rotated, "ORD-5").await.expect("send").status(),
        StatusCode::CREATED
    );
    // The PSP webhook URL with the old key still reaches the merchant (the PSP's signature is
    // what authenticates it): an unsigned message is refused as unverified, not as unknown.
    let webhook = app
        .http
        .post(format!(
            "{}/webhook/{}/{gateway_id}",
            app.url, merchant.client_key
        ))
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(problem(webhook).await.1["code"], "WEBHOOK_NOT_VERIFIED");
}

#[tokio::test]
async fn contacts_and_their_consent_are_set_by_an_edit_and_a_bad_address_is_refused() {
    let app = spawn_app().await;
    let (merchant, body) = onboarded(&app).await;
    assert_eq!(body["merchant"]["email"], Value::Null, "no email until set");
    assert_eq!(
        body["merchant"]["whatsapp"]["invoices"], false,
        "off unless said"
    );
    let path = format!("/admin/merchants/{}", merchant.id);
    let patch = |body: Value| app.admin_json(Method::PATCH, &path, &body).send();
    let before = app.event_count().await;
    for address in ["ops@acme", "two@acme.example, three@acme.example", ""] {
        let (status, problem) = problem(
            patch(json!({ "email": { "address": address, "account_status": true } }))
                .await
                .expect("request"),
        )
        .await;
        assert_eq!(
            (status, problem["code"].as_str(), problem["field"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("INVALID_FIELD"),
                Some("email")
            ),
            "{address:?}: {problem}"
        );
    }
    assert_eq!(app.event_count().await, before, "nothing recorded");

    let (status, body) = problem(
        patch(json!({
            "email": { "address": " ops@acme.example ", "account_status": true, "payout_updates": true },
            "whatsapp": { "number": "+919867800451", "invoices": true },
        }))
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["email"],
        json!({ "address": "ops@acme.example", "account_status": true, "payout_updates": true, "low_balance": false })
    );
    assert_eq!(body["whatsapp"]["invoices"], true);
    assert_eq!(body["whatsapp"]["low_balance"], false, "replaced whole");

    let (status, body) = problem(patch(json!({ "email": null })).await.expect("request")).await;
    assert_eq!((status, &body["email"]), (StatusCode::OK, &Value::Null));
}

#[tokio::test]
async fn an_edit_is_all_or_nothing() {
    let app = spawn_app().await;
    let (merchant, _) = onboarded(&app).await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let path = format!("/admin/merchants/{}", merchant.id);
    let patch = |body: Value| app.admin_json(Method::PATCH, &path, &body).send();
    let before = app.event_count().await;

    let (status, body) = problem(
        patch(json!({
            "fee_bps": 200,
            "thresholds": { "suspend_at_paise": 100, "warn_at_paise": 500, "auto_payout_minimum_paise": 100 },
        }))
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("warn_at"))
    );
    let (status, body) = problem(
        patch(json!({ "status": "suspended" }))
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status_reason"))
    );
    let (status, _) = problem(patch(json!({ "fee": 1 })).await.expect("request")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.event_count().await,
        before,
        "nothing of a refused edit is kept"
    );

    let (status, body) = problem(
        patch(json!({
            "fee_bps": 200,
            "webhook_url": null,
            "checkout": { "routing_mode": "round_robin", "default_rpm_cap": 10, "skip_temporarily_failed": false },
            "api_rate_per_minute": 500,
        }))
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fee_bps"], 200);
    assert_eq!(body["webhook_url"], Value::Null);
    assert_eq!(body["checkout"]["routing_mode"], "round_robin");
    assert_eq!(body["checkout"]["default_rpm_cap"], 10);
    assert_eq!(body["checkout"]["skip_temporarily_failed"], false);
    assert_eq!(body["checkout"]["temporary_failure_secs"], 300, "kept");
    assert_eq!(body["api_rate_per_minute"], 500);
    assert_eq!(body["company_name"], "Acme Retail", "kept");

    let (status, body) = problem(
        patch(json!({ "status": "suspended", "status_reason": "KYC review" }))
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("suspended"))
    );
    let (status, refused) = problem(app.initiate(&merchant, &payment("ORD-1", 100)).await).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("MERCHANT_NOT_ACTIVE"))
    );
    let (status, _) = problem(patch(json!({ "status": "active" })).await.expect("request")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.initiate(&merchant, &payment("ORD-2", 100))
            .await
            .status(),
        StatusCode::CREATED
    );

    for (path, code) in [
        (
            format!("/admin/merchants/{}", MerchantId::new()),
            "MERCHANT_NOT_FOUND",
        ),
        (
            "/admin/merchants/not-an-id".to_owned(),
            "MERCHANT_NOT_FOUND",
        ),
    ] {
        let (status, body) = problem(
            app.admin_json(Method::PATCH, &path, &json!({ "fee_bps": 1 }))
                .send()
                .await
                .expect("request"),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some(code))
        );
    }
}

#[tokio::test]
async fn a_rotated_webhook_secret_signs_beside_the_old_one_until_its_grace_ends() {
    let app = spawn_app().await;
    let (merchant, onboarded) = onboarded(&app).await;
    let old_secret = onboarded["webhook_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let (status, body) = problem(
        app.admin_json(
            Method::POST,
            &format!("/admin/merchants/{}/webhook-secret/rotate", merchant.id),
            &json!({ "grace_secs": 3600 }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_secret = body["webhook_secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, old_secret);

    let state = app.ledger.merchant(merchant.id).await.expect("merchant");
    let open = |at| -> Vec<String> {
        state
            .webhook_secrets_valid_at(at)
            .into_iter()
            .map(|sealed| {
                app.keyring
                    .open(sealed)
                    .expect("open")
                    .expose_str()
                    .expect("utf-8")
                    .to_owned()
            })
            .collect()
    };
    let now = app.ledger.now();
    assert_eq!(open(now), vec![new_secret.clone(), old_secret]);
    assert_eq!(open(now + TimeDelta::seconds(3600)), vec![new_secret]);

    let (status, body) = problem(
        app.admin_json(
            Method::POST,
            &format!("/admin/merchants/{}/webhook-secret/rotate", merchant.id),
            &json!({ "grace_secs": 999_999_999 }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("grace_secs"))
    );
}

#[tokio::test]
async fn a_merchants_own_rate_is_answered_with_429_at_that_rate() {
    let app = spawn_app().await;
    let (merchant, _) = onboarded(&app).await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let (status, _) = problem(
        app.admin_json(
            Method::PATCH,
            &format!("/admin/merchants/{}", merchant.id),
            &json!({ "api_rate_per_minute": 2 }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for n in 0..2 {
        assert_eq!(
            app.initiate(&merchant, &payment(&format!("ORD-{n}"), 100))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let limited = app.initiate(&merchant, &payment("ORD-2", 100)).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("30"),
        "one request every 30 s at 2 per minute; the clock has not moved"
    );
    assert_eq!(problem(limited).await.1["code"], "RATE_LIMITED");
    app.clock.advance(TimeDelta::seconds(30));
    assert_eq!(
        app.initiate(&merchant, &payment("ORD-3", 100))
            .await
            .status(),
        StatusCode::CREATED
    );
}
