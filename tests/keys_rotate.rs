//! `lightspeed keys rotate` on a real database: every merchant salt, webhook secret and gateway
//! credential is resealed under the new key, so the old one can be dropped.

use std::sync::Arc;

use chrono::Utc;
use lightspeed_adapters::psp::{PspAccount, PspCredentials};
use lightspeed_adapters::secrets::{Keyring, Secret};
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::merchant::ClientKey;
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::{BasisPoints, GatewayId, ManualClock, MerchantId, Provider};
use lightspeed_eventstore::testing::{TestDatabase, nats_url};
use lightspeed_eventstore::{CommandContext, PgEventStore};
use lightspeed_services::{Ledger, NewGateway, NewMerchant};
use serde_json::Value;

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
    let again = rotate_keys(&db, NEW_KEY).await;
    assert_eq!(again["already_current"], 2, "{again}");
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
