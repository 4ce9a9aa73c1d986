//! `lightspeed keys rotate` on a real database: every merchant salt, webhook secret (of every
//! endpoint) and gateway credential is resealed under the new key, so the old one can be dropped.

use std::sync::Arc;

use chrono::Utc;
use lightspeed_adapters::merchant_webhook::{WebhookSecret, verify};
use lightspeed_adapters::psp::{PspAccount, PspCredentials};
use lightspeed_adapters::secrets::{Keyring, Secret, generate_webhook_secret};
use lightspeed_adapters::webhook_target::TargetPolicy;
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::merchant::{ClientKey, MerchantCommand};
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::webhook_delivery::WebhookDeliveryStatus;
use lightspeed_domain::{
    BasisPoints, GatewayId, ManualClock, MerchantId, Provider, WebhookEndpointId,
};
use lightspeed_eventstore::testing::{TestDatabase, nats_url};
use lightspeed_eventstore::{CommandContext, PgEventStore};
use lightspeed_services::{Ledger, NewGateway, NewMerchant};
use lightspeed_workers::merchant_webhooks::send_test_event;
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const OLD_KEY: &str = "old:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const NEW_KEY: &str = "new:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

#[tokio::test]
async fn key_rotation_reseals_everything_so_the_old_key_can_be_dropped() {
    let db = TestDatabase::new().await;
    let ledger = Ledger::new(PgEventStore::new(
        db.pool.clone(),
        Arc::new(ManualClock::new(Utc::now())),
    ));
    let old = Keyring::parse(OLD_KEY).expect("old");
    let merchant_id = MerchantId::new();
    ledger
        .onboard_merchant(
            NewMerchant {
                merchant_id,
                company_name: "Acme".into(),
                webhook_url: None,
                whatsapp: None,
                client_key: ClientKey::parse("ck_ROTATIONrotation0123456").expect("key"),
                client_salt: old.seal(b"cs_salt"),
                webhook_secret: old.seal(b"whsec_secret"),
                fee: BasisPoints::DEFAULT_FEE,
                thresholds: Thresholds::default(),
                checkout: CheckoutSettings::default(),
                at: ledger.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("onboard");
    let gateway_id = GatewayId::new();
    let account = PspAccount::test(PspCredentials::Sandbox {
        webhook_secret: Secret::from("whsec_c2FuZGJveA=="),
    });
    ledger
        .register_gateway(
            NewGateway {
                gateway_id,
                merchant_id,
                provider: Provider::Sandbox,
                label: "sandbox".into(),
                credentials: account.seal(&old).expect("seal"),
                settings: GatewaySettings::default(),
                enabled: true,
                at: ledger.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("register");
    let endpoint = MockServer::start().await;
    let (endpoint_id, secrets) = second_endpoint(&ledger, &old, merchant_id, &endpoint.uri()).await;

    let report = rotate_keys(&db, &format!("{NEW_KEY},{OLD_KEY}")).await;
    assert_eq!(
        (&report["merchants_resealed"], &report["gateways_resealed"]),
        (&Value::from(1), &Value::from(1)),
        "{report}"
    );
    assert_eq!(report["failures"], Value::Array(Vec::new()), "{report}");

    let only_new = Keyring::parse(NEW_KEY).expect("new");
    let fresh = Ledger::new(ledger.store().clone());
    let merchant = fresh.merchant(merchant_id).await.expect("merchant");
    assert_eq!(
        only_new
            .open(merchant.client_salt())
            .expect("salt")
            .expose(),
        b"cs_salt"
    );
    assert_eq!(
        only_new
            .open(merchant.webhook_secret())
            .expect("secret")
            .expose(),
        b"whsec_secret"
    );
    let gateway = fresh.gateway(gateway_id).await.expect("gateway");
    assert!(PspAccount::open(&only_new, gateway.credentials()).is_ok());
    second_endpoint_still_signs(
        &fresh,
        &only_new,
        merchant_id,
        endpoint_id,
        &endpoint,
        &secrets,
    )
    .await;
    let again = rotate_keys(&db, NEW_KEY).await;
    assert_eq!(again["already_current"], 2, "{again}");
}

/// Adds a second webhook endpoint at `url`, sealed under `old`, and rotates its secret so it
/// holds a current and a previous one; answers its id and its two secrets in clear.
async fn second_endpoint(
    ledger: &Ledger,
    old: &Keyring,
    merchant_id: MerchantId,
    url: &str,
) -> (WebhookEndpointId, [Secret; 2]) {
    let (first, second) = (generate_webhook_secret(), generate_webhook_secret());
    let endpoint_id = WebhookEndpointId::new();
    let commands = [
        MerchantCommand::AddWebhookEndpoint {
            endpoint_id,
            url: url.to_owned(),
            description: "orders".into(),
            event_types: vec!["*".into()],
            secret: old.seal(first.expose()),
            at: ledger.now(),
        },
        MerchantCommand::RotateWebhookEndpointSecret {
            endpoint_id,
            secret: old.seal(second.expose()),
            grace_secs: 3600,
            at: ledger.now(),
        },
    ];
    ledger
        .update_merchant(merchant_id, &commands, &CommandContext::default())
        .await
        .expect("second endpoint");
    (endpoint_id, [second, first])
}

/// A test event to the second endpoint, signed with only the new key held, verifies with the
/// endpoint's current and its previous secret (still in its grace period).
async fn second_endpoint_still_signs(
    ledger: &Ledger,
    only_new: &Keyring,
    merchant_id: MerchantId,
    endpoint_id: WebhookEndpointId,
    server: &MockServer,
    secrets: &[Secret; 2],
) {
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(server)
        .await;
    let merchant = ledger.merchant(merchant_id).await.expect("merchant");
    let endpoint = merchant.webhook_endpoint(endpoint_id).expect("endpoint");
    let sent = send_test_event(
        ledger,
        only_new,
        TargetPolicy {
            allow_loopback_http: true,
        },
        &merchant,
        endpoint,
        "payment.succeeded",
        &CommandContext::default(),
    )
    .await
    .expect("signed with the new key alone");
    assert_eq!(sent.delivery.status(), WebhookDeliveryStatus::Delivered);
    let received = server.received_requests().await.expect("recorded");
    assert_eq!(received.len(), 1);
    for secret in secrets {
        let secret = WebhookSecret::from_secret(secret).expect("whsec");
        assert!(
            verify(
                &secret,
                &received[0].headers,
                &received[0].body,
                ledger.now()
            )
            .is_ok()
        );
    }
}

/// Runs `lightspeed keys rotate` on `db` with `ENCRYPTION_KEY` = `keys`; answers its report.
async fn rotate_keys(db: &TestDatabase, keys: &str) -> Value {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_lightspeed"))
        .args(["keys", "rotate"])
        .env("DATABASE_URL", &db.url)
        .env("NATS_URL", nats_url())
        .env("ENCRYPTION_KEY", keys)
        .output()
        .await
        .expect("run lightspeed keys rotate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}
