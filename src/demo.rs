//! `lightspeed demo`: everything in one process, a demo merchant with three sandbox gateways,
//! one payment driven through the sandbox PSP to success, a quarter of it refunded through the
//! refund worker and the sandbox PSP (which settles refunds after [`REFUND_SETTLES_AFTER_MS`])
//! with the commission effect shown, and a signed `curl` for the next.

use std::time::Duration;

use anyhow::{Context as _, bail};
use lightspeed_adapters::merchant_auth::sign_request;
use lightspeed_adapters::psp::{PspAccount, PspCredentials};
use lightspeed_adapters::secrets::{Secret, generate_client_salt, generate_webhook_secret};
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::merchant::ClientKey;
use lightspeed_domain::payment::refunds::RefundCommission;
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::wallet::Wallet;
use lightspeed_domain::{BasisPoints, GatewayId, MerchantId, Paise, PaymentId, Provider};
use lightspeed_eventstore::{CommandContext, Metadata, stream_of};
use lightspeed_services::{NewGateway, NewMerchant};
use serde_json::Value;

use crate::config::{Infra, Server};
use crate::roles::Roles;

/// The demo merchant's client key: fixed, so running the demo again reuses the merchant.
const DEMO_CLIENT_KEY: &str = "ck_LightSpeedDemoStore0001";
/// When the sandbox PSP settles the demo's refund, unless `SANDBOX_REFUND_AUTO_SETTLE_MS` says.
const REFUND_SETTLES_AFTER_MS: u64 = 2_000;
/// How long the demo waits for each step of the payment.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

struct DemoMerchant {
    id: MerchantId,
    salt: Secret,
}

/// Runs the demo; returns only if a role fails or on Ctrl-C.
pub async fn run(
    infra: &Infra,
    server: &Server,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<()> {
    infra.migrate().await?;
    let context = Roles::connect(infra, metrics).await?;
    let local = format!("http://{}", server.listen);
    let merchant = seed(&context, &local).await?;
    let console = crate::console::demo_lines(&context.ledger, server, &infra.public_url).await;
    let mut server = server.clone();
    server
        .sandbox_refund_auto_settle_ms
        .get_or_insert(REFUND_SETTLES_AFTER_MS);
    let roles = {
        let context = context.clone();
        tokio::spawn(async move {
            crate::run_all_roles(&context, &server, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
        })
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    wait_for(|| async {
        let up = http.get(format!("{local}/openapi.json")).send().await;
        up.is_ok_and(|r| r.status().is_success()).then_some(())
    })
    .await
    .context("the API did not come up")?;

    let transaction = drive_payment(&http, &local, &merchant).await?;
    let wallet = context
        .ledger
        .wallets()
        .load(&stream_of::<Wallet>(merchant.id)?)
        .await?
        .state;
    println!(
        "\nA payment went through the sandbox PSP:\n{}",
        serde_json::to_string_pretty(&transaction)?
    );
    let commission = transaction["commission"]
        .as_i64()
        .context("the succeeded payment shows no commission")?;
    println!(
        "\nCommission recorded: {commission} paise (₹{}); the merchant's balance due is ₹{}.",
        lightspeed_domain::Paise(commission),
        wallet.balance_due()
    );
    refund_part(&context, &http, &local, &merchant, &transaction).await?;
    println!(
        "\nThe next payment, signed (needs bash, openssl and curl):\n\n{}",
        curl(&infra.public_url, &merchant)?
    );
    println!("\n{console}");
    println!(
        "\nOpen its checkout_url in a browser and press Pay or Fail. The API keeps serving on {local} \
         (OpenAPI at {local}/docs); Ctrl-C stops everything."
    );
    roles.await??;
    Ok(())
}

/// The actor of what the demo records itself.
fn demo_context() -> CommandContext {
    CommandContext {
        command_id: None,
        metadata: Metadata {
            actor: Some("system:demo".into()),
            ..Metadata::default()
        },
    }
}

/// Refunds a quarter of the payment through the signed refund route, waits for the refund
/// worker and the sandbox PSP's webhook to settle it, and prints what it did to the commission
/// under each treatment.
async fn refund_part(
    context: &Roles,
    http: &reqwest::Client,
    local: &str,
    merchant: &DemoMerchant,
    transaction: &Value,
) -> anyhow::Result<()> {
    let id: PaymentId = transaction["transaction_id"]
        .as_str()
        .context("no transaction id")?
        .parse()?;
    let amount = Paise(transaction["amount"].as_i64().context("no amount")?);
    let commission = Paise(
        transaction["commission"]
            .as_i64()
            .context("no commission")?,
    );
    let part = Paise(amount.0 / 4);
    let settled = refund_and_wait(http, local, merchant, id, part).await?;
    println!(
        "Refund {}: {}",
        settled["psp_refund_id"].as_str().unwrap_or("(no PSP id)"),
        settled["status"]
    );
    let wallet = context
        .ledger
        .wallets()
        .load(&stream_of::<Wallet>(merchant.id)?)
        .await?
        .state;
    let payment = context.ledger.payment_of(merchant.id, id).await?;
    let treatment = context
        .ledger
        .merchant(merchant.id)
        .await?
        .refund_commission();
    print_commission_effect(
        treatment,
        commission,
        amount,
        part,
        payment.commission_reversed(),
    );
    println!(
        "Refunded so far ₹{}, still refundable ₹{}; the merchant's balance due is ₹{}.",
        payment.refunded(),
        payment.refundable(),
        wallet.balance_due()
    );
    Ok(())
}

/// Requests a refund of `part` of the payment through the signed route and waits until its
/// outcome is recorded; answers the refund as `GET /refunds/{refund_id}` shows it.
async fn refund_and_wait(
    http: &reqwest::Client,
    local: &str,
    merchant: &DemoMerchant,
    id: PaymentId,
    part: Paise,
) -> anyhow::Result<Value> {
    let merchant_refund_id = format!("DEMO-RF-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let body = serde_json::json!({
        "amount": part.0,
        "reason": "one item returned",
        "refund_id": merchant_refund_id,
    })
    .to_string();
    let path = format!("/payment/{id}/refunds");
    let requested: Value = signed(http, reqwest::Method::POST, local, &path, &body, merchant)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!(
        "\nRefund {merchant_refund_id} of ₹{part} requested: {}; the refund worker sends it to the \
         sandbox PSP, which settles it and posts its signed refund webhook.",
        requested["status"]
    );
    let path = format!("/refunds/{merchant_refund_id}");
    wait_for(|| async {
        let response = signed(http, reqwest::Method::GET, local, &path, "", merchant)
            .send()
            .await
            .ok()?;
        let refund = response.json::<Value>().await.ok()?;
        (refund["status"] == "succeeded" || refund["status"] == "failed").then_some(refund)
    })
    .await
    .context("the refund was not settled")
}

/// What the refund did to the commission under the merchant's treatment, and what the other
/// treatment would have done (the domain's half-up rule).
fn print_commission_effect(
    treatment: RefundCommission,
    commission: Paise,
    amount: Paise,
    part: Paise,
    reversed: Paise,
) {
    let share = commission.pro_rata(part, amount);
    match treatment {
        RefundCommission::Retain => println!(
            "Commission under `retain` (this merchant's setting): the ₹{commission} is kept; \
             `reverse_proportional` would have reversed ₹{share} of it."
        ),
        RefundCommission::ReverseProportional => println!(
            "Commission under `reverse_proportional` (this merchant's setting): ₹{reversed} of \
             the ₹{commission} reversed; `retain` would have kept it all."
        ),
    }
}

/// Polls `check` until it answers something, for at most [`STEP_TIMEOUT`].
async fn wait_for<T, F, Fut>(mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if let Some(found) = check().await {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("gave up after {} s", STEP_TIMEOUT.as_secs())
}

/// The demo merchant and its three sandbox gateways, created on the first run.
async fn seed(context: &Roles, local: &str) -> anyhow::Result<DemoMerchant> {
    let ledger = &context.ledger;
    let demo = demo_context();
    if let Some(existing) = ledger.merchant_by_client_key(DEMO_CLIENT_KEY).await? {
        let salt = context.keyring.open(existing.merchant.client_salt()).context(
            "the demo merchant was sealed under another ENCRYPTION_KEY; use a fresh DATABASE_URL",
        )?;
        return Ok(DemoMerchant {
            id: existing.merchant.id(),
            salt,
        });
    }
    let id = MerchantId::new();
    let salt = generate_client_salt();
    ledger
        .onboard_merchant(
            NewMerchant {
                merchant_id: id,
                company_name: "LightSpeed Demo Store".into(),
                webhook_url: None,
                whatsapp: None,
                client_key: ClientKey::parse(DEMO_CLIENT_KEY)?,
                client_salt: context.keyring.seal(salt.expose()),
                webhook_secret: context.keyring.seal(generate_webhook_secret().expose()),
                fee: BasisPoints::DEFAULT_FEE,
                thresholds: Thresholds::default(),
                checkout: CheckoutSettings::default(),
                at: ledger.now(),
            },
            &demo,
        )
        .await?;
    register_sandbox_gateways(context, id, local, &demo).await?;
    tracing::info!(merchant_id = %id, "seeded the demo merchant with three sandbox gateways");
    Ok(DemoMerchant { id, salt })
}

/// Registers three sandbox gateways (PSP accounts at the built-in sandbox) for `merchant_id`.
async fn register_sandbox_gateways(
    context: &Roles,
    merchant_id: MerchantId,
    local: &str,
    demo: &CommandContext,
) -> anyhow::Result<()> {
    let ledger = &context.ledger;
    for (n, priority) in [30u16, 20, 10].into_iter().enumerate() {
        let account = PspAccount::test(PspCredentials::Sandbox {
            webhook_secret: generate_webhook_secret(),
        })
        .with_base_url(format!("{local}/sandbox"));
        ledger
            .register_gateway(
                NewGateway {
                    gateway_id: GatewayId::new(),
                    merchant_id,
                    provider: Provider::Sandbox,
                    label: format!("Sandbox account {}", n + 1),
                    credentials: account.seal(&context.keyring)?,
                    settings: GatewaySettings {
                        priority,
                        monthly_limit: None,
                        rpm_cap: None,
                    },
                    enabled: true,
                    at: ledger.now(),
                },
                demo,
            )
            .await?;
    }
    Ok(())
}

/// A request to the API signed as the demo merchant.
fn signed(
    http: &reqwest::Client,
    method: reqwest::Method,
    base: &str,
    path: &str,
    body: &str,
    merchant: &DemoMerchant,
) -> reqwest::RequestBuilder {
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign_request(
        merchant.salt.expose(),
        timestamp,
        method.as_str(),
        path,
        body.as_bytes(),
    );
    http.request(method, format!("{base}{path}"))
        .header("x-client-key", DEMO_CLIENT_KEY)
        .header("x-timestamp", timestamp.to_string())
        .header("x-signature", signature)
        .header("content-type", "application/json")
        .body(body.to_owned())
}

/// Initiates a payment, waits for its sandbox order, presses Pay, waits for the commission.
async fn drive_payment(
    http: &reqwest::Client,
    local: &str,
    merchant: &DemoMerchant,
) -> anyhow::Result<Value> {
    let order_id = format!("DEMO-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let body = serde_json::json!({
        "amount": 49_900,
        "currency": "INR",
        "order_id": order_id,
        "customer": { "name": "Asha Verma", "email": "asha@example.com", "phone": "919867800451" },
        "notes": { "source": "lightspeed demo" },
    })
    .to_string();
    let created: Value = signed(
        http,
        reqwest::Method::POST,
        local,
        "/payment/initiate",
        &body,
        merchant,
    )
    .send()
    .await?
    .error_for_status()?
    .json()
    .await?;
    let id = created["transaction_id"]
        .as_str()
        .context("no transaction id")?
        .to_owned();
    println!("Initiated {id}: {}", created["checkout_url"]);

    let read = |id: String| async move {
        let path = format!("/transaction/{id}");
        let response = signed(http, reqwest::Method::GET, local, &path, "", merchant)
            .send()
            .await
            .ok()?;
        response.json::<Value>().await.ok()
    };
    let psp_order = wait_for(|| async {
        read(id.clone())
            .await
            .and_then(|t| t["psp_order_id"].as_str().map(str::to_owned))
    })
    .await
    .context("the transaction processor did not create the sandbox order")?;
    println!("The sandbox PSP created order {psp_order}; pressing Pay on its checkout page.");
    http.post(format!("{local}/sandbox/checkout/{psp_order}/pay"))
        .send()
        .await?;

    wait_for(|| async {
        read(id.clone())
            .await
            .filter(|t| t["status"] == "succeeded")
    })
    .await
    .context("the payment did not succeed")
}

/// A shell snippet that signs and sends the next payment.
fn curl(public_url: &str, merchant: &DemoMerchant) -> anyhow::Result<String> {
    let salt = merchant
        .salt
        .expose_str()
        .context("the demo merchant's client salt is not text")?;
    Ok(format!(
        "SALT='{salt}'  # the demo merchant's client salt: a secret, shown here only for the demo\n\
         BODY='{{\"amount\":49900,\"currency\":\"INR\",\"order_id\":\"ORD-'$(date +%s)'\",\"customer\":{{\"name\":\"Asha\"}}}}'\n\
         TS=$(date +%s)\n\
         SIG=$(printf '%s\\nPOST\\n/payment/initiate\\n%s' \"$TS\" \"$BODY\" | openssl dgst -sha256 -hmac \"$SALT\" -hex | sed 's/^.* //')\n\
         curl -s -X POST {public_url}/payment/initiate -H 'content-type: application/json' \\\n  \
         -H 'x-client-key: {DEMO_CLIENT_KEY}' -H \"x-timestamp: $TS\" -H \"x-signature: $SIG\" -d \"$BODY\""
    ))
}
