//! Upstream payment service providers (PSPs) a gateway can be an account of.

use serde::{Deserialize, Serialize};

/// A PSP we can route payments to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Razorpay (orders API, Standard Checkout).
    Razorpay,
    /// PayU India (hosted checkout form, reverse-hash callbacks).
    Payu,
    /// Cashfree Payments (orders API, payment sessions).
    Cashfree,
    /// PhonePe PG (v1 salt-key standard checkout).
    Phonepe,
    /// The sandbox PSP built into the product, for demos and tests.
    Sandbox,
}

impl Provider {
    /// Every provider, in a stable order.
    pub const ALL: [Provider; 5] = [
        Provider::Razorpay,
        Provider::Payu,
        Provider::Cashfree,
        Provider::Phonepe,
        Provider::Sandbox,
    ];

    /// The lowercase name used in APIs, configuration and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Razorpay => "razorpay",
            Provider::Payu => "payu",
            Provider::Cashfree => "cashfree",
            Provider::Phonepe => "phonepe",
            Provider::Sandbox => "sandbox",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

/// A provider name we do not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {0:?}; expected one of razorpay, payu, cashfree, phonepe, sandbox")]
pub struct UnknownProvider(pub String);
