//! Every projection of the product, by name: what `lightspeed project <name>` and
//! `lightspeed rebuild <name>` look up.

use std::sync::Arc;

use crate::projection::Projection;
use crate::{
    audit_log, commission, gateways, merchants, refunds, transactions, wallets, webhooks, whatsapp,
};

/// Every projection, in a stable order.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(wallets::Wallets),
        Arc::new(commission::Commission),
        Arc::new(gateways::Gateways),
        Arc::new(transactions::Transactions),
        Arc::new(refunds::Refunds),
        Arc::new(merchants::Merchants),
        Arc::new(whatsapp::Whatsapp),
        Arc::new(webhooks::WebhookDeliveries),
        Arc::new(audit_log::AuditLog),
    ]
}

/// The names of every projection.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|p| p.name()).collect()
}

/// The projection named `name`.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}
