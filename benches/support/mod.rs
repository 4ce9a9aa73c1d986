//! What the benches share: a merchant onboarded through the ledger, with sandbox gateways.

#![allow(dead_code, reason = "each bench uses the part it needs")]

pub mod cold;

use lightspeed_adapters::psp::{PspAccount, PspCredentials};
use lightspeed_adapters::secrets::{
    Keyring, Secret, generate_client_key, generate_client_salt, generate_webhook_secret,
};
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::merchant::ClientKey;
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::{BasisPoints, GatewayId, MerchantId, Paise, Provider};
use lightspeed_eventstore::CommandContext;
use lightspeed_services::{Ledger, NewGateway, NewMerchant};

/// A merchant the bench signs requests for.
pub struct Merchant {
    /// Its id.
    pub id: MerchantId,
    /// Its client key.
    pub key: String,
    /// Its client salt, in clear.
    pub salt: Secret,
    /// Its gateways, by priority.
    pub gateways: Vec<GatewayId>,
}

/// Onboards a merchant with `gateways` sandbox gateways at `url`, thresholds out of reach.
pub async fn onboard(ledger: &Ledger, keyring: &Keyring, gateways: usize, url: &str) -> Merchant {
    let id = MerchantId::new();
    let key = generate_client_key();
    let salt = generate_client_salt();
    let thresholds = Thresholds {
        suspend_at: Paise::rupees(1_000_000_000),
        warn_at: Paise::rupees(1_000_000_000),
        auto_payout_minimum: Paise::rupees(1_000),
    };
    let merchant = NewMerchant {
        merchant_id: id,
        company_name: "Bench Retail".into(),
        webhook_url: None,
        whatsapp: None,
        client_key: ClientKey::parse(&key).expect("key"),
        client_salt: keyring.seal(salt.expose()),
        webhook_secret: keyring.seal(generate_webhook_secret().expose()),
        fee: BasisPoints::DEFAULT_FEE,
        thresholds,
        checkout: CheckoutSettings::default(),
        at: ledger.now(),
    };
    let context = CommandContext::default();
    ledger
        .onboard_merchant(merchant, &context)
        .await
        .expect("onboard");
    let mut ids = Vec::new();
    for priority in 0..gateways {
        ids.push(register_gateway(ledger, keyring, id, priority, url).await);
    }
    Merchant {
        id,
        key,
        salt,
        gateways: ids,
    }
}

async fn register_gateway(
    ledger: &Ledger,
    keyring: &Keyring,
    merchant_id: MerchantId,
    priority: usize,
    url: &str,
) -> GatewayId {
    let account = PspAccount::test(PspCredentials::Sandbox {
        webhook_secret: generate_webhook_secret(),
    })
    .with_base_url(format!("{url}/sandbox"));
    let gateway_id = GatewayId::new();
    let gateway = NewGateway {
        gateway_id,
        merchant_id,
        provider: Provider::Sandbox,
        label: format!("sandbox {priority}"),
        credentials: account.seal(keyring).expect("seal"),
        settings: GatewaySettings {
            priority: u16::try_from(priority).expect("priority"),
            monthly_limit: None,
            rpm_cap: None,
        },
        enabled: true,
        at: ledger.now(),
    };
    ledger
        .register_gateway(gateway, &CommandContext::default())
        .await
        .expect("gateway");
    gateway_id
}
