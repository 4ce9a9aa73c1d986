//! Protection at the edge: the per-merchant payment API rate, CORS for the admin origins, the
//! client address behind trusted proxies, and optional per-PSP source IP allow-lists for the
//! webhook intake.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, header};
use chrono::{DateTime, TimeDelta, Utc};
use lightspeed_domain::{Clock, MerchantId, Provider};
use lightspeed_monitoring::allowances::{self, Claimed};
use sqlx::PgPool;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;

/// Most merchants whose unspent claims are kept; past it they start afresh (a bound, not a
/// policy: it is far above the number of merchants one deployment serves).
const MAX_TRACKED_MERCHANTS: usize = 100_000;

/// How much of a merchant's rate a replica claims at a time: a twentieth (at least one), so a
/// replica asks PostgreSQL about twenty times a minute at most for a merchant at full rate.
const CLAIM_FRACTION: u32 = 20;

/// How long a replica may spend what it claimed: past it, the rest is dropped, so the replicas
/// together exceed the rate by at most a second's worth of it.
const CLAIM_LIFETIME: TimeDelta = TimeDelta::seconds(1);

/// `POST /payment/initiate` limits at the merchant's own rate or the API's default, a minute's
/// worth at once at most, held across every API replica: each claims a few requests at a time
/// from the rate kept in PostgreSQL (`lightspeed_monitoring::allowances`) and spends them from
/// memory.
pub(crate) struct InitiateLimits {
    default: NonZeroU32,
    clock: Arc<dyn Clock>,
    pool: PgPool,
    claims: Mutex<HashMap<MerchantId, Arc<tokio::sync::Mutex<Unspent>>>>,
}

/// What is left of a replica's last claim for a merchant.
#[derive(Default)]
struct Unspent {
    left: u32,
    until: Option<DateTime<Utc>>,
}

impl InitiateLimits {
    /// Limits kept in `pool`, shared with every replica on it.
    pub(crate) fn new(default: NonZeroU32, clock: Arc<dyn Clock>, pool: PgPool) -> Self {
        Self {
            default,
            clock,
            pool,
            claims: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one initiation for the merchant, or answers `429` with the whole seconds to wait.
    pub(crate) async fn check(
        &self,
        merchant: MerchantId,
        own_rate: Option<u32>,
    ) -> Result<(), ApiError> {
        let rate = own_rate.and_then(NonZeroU32::new).unwrap_or(self.default);
        let unspent = self.unspent_of(merchant);
        // One claim at a time per merchant in this replica; the others wait for its answer.
        let mut unspent = unspent.lock().await;
        let now = self.clock.now();
        if unspent.until.is_none_or(|until| until <= now) {
            unspent.left = 0;
        }
        if unspent.left == 0 {
            let want = (rate.get() / CLAIM_FRACTION).max(1);
            let rate = allowances::Rate {
                per_minute: rate.get(),
            };
            match allowances::claim(&self.pool, &merchant.to_string(), now, want, rate).await? {
                Claimed::Granted(granted) => {
                    *unspent = Unspent {
                        left: granted,
                        until: Some(now + CLAIM_LIFETIME),
                    };
                }
                Claimed::Wait(wait) => {
                    return Err(ApiError::RateLimited(
                        wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                    ));
                }
            }
        }
        unspent.left -= 1;
        Ok(())
    }

    fn unspent_of(&self, merchant: MerchantId) -> Arc<tokio::sync::Mutex<Unspent>> {
        let mut claims = self
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if claims.len() >= MAX_TRACKED_MERCHANTS && !claims.contains_key(&merchant) {
            claims.clear();
        }
        Arc::clone(claims.entry(merchant).or_default())
    }
}

/// CORS for the admin API: only the configured origins, only what the admin API uses; `None`
/// when no origin is configured (browsers then refuse cross-origin calls).
pub fn admin_cors(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .expose_headers([header::HeaderName::from_static("x-request-id")])
            .max_age(Duration::from_secs(600)),
    )
}

/// Parses `ADMIN_ORIGINS`: comma-separated origins such as `https://ops.example.com`.
pub fn parse_origins(spec: &str) -> Result<Vec<HeaderValue>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let well_formed = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/');
            if !well_formed {
                return Err(format!(
                    "{origin:?} is not an origin (scheme://host[:port], no path)"
                ));
            }
            HeaderValue::from_str(origin).map_err(|_| format!("{origin:?} is not an origin"))
        })
        .collect()
}

/// The caller's address: the TCP peer, or (behind `trusted_proxy_hops` proxies that append to
/// `X-Forwarded-For`) the address the outermost trusted proxy saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

/// The caller's address given the request's headers, its TCP peer and how many trusted proxies
/// append to `X-Forwarded-For`.
pub(crate) fn client_ip(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted_hops: usize,
) -> Option<IpAddr> {
    if trusted_hops == 0 {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // Each trusted proxy appended the address it saw; anything further left was sent by the
    // caller and cannot be trusted.
    let index = forwarded.len().checked_sub(trusted_hops)?;
    forwarded.get(index)?.parse().ok()
}

/// A network: an address and a prefix length (`/32` or `/128` for one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, or the IPv6 equivalents.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an IP address or CIDR range");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { network, prefix })
    }

    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => prefix_match(
                u128::from(network.to_bits()),
                u128::from(ip.to_bits()),
                32,
                self.prefix,
            ),
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                prefix_match(network.to_bits(), ip.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_match(network: u128, ip: u128, bits: u8, prefix: u8) -> bool {
    let shift = u32::from(bits - prefix);
    network.checked_shr(shift).unwrap_or(0) == ip.checked_shr(shift).unwrap_or(0)
}

/// The webhook source addresses each provider publishes (psp-protocols §6: production and
/// test hosts). PhonePe and the sandbox publish none.
pub fn published_webhook_ranges(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Razorpay => &[
            "52.66.75.174",
            "52.66.76.63",
            "52.66.151.218",
            "35.154.217.40",
            "35.154.22.73",
            "35.154.143.15",
            "13.126.199.247",
            "13.126.238.192",
            "13.232.194.134",
            "18.96.225.0/26",
            "18.99.161.0/26",
            "52.66.76.68",
            "52.66.95.207",
            "13.127.201.109",
        ],
        Provider::Payu => &[
            "3.7.89.1",
            "3.7.89.2",
            "3.7.89.3",
            "52.140.8.88",
            "52.140.8.89",
            "52.140.8.64",
            "180.179.174.2",
            "180.179.165.250",
            "3.6.73.183",
            "3.6.83.44",
            "3.7.89.8",
            "3.7.89.9",
            "3.7.89.10",
            "52.140.8.65",
            "180.179.174.1",
        ],
        Provider::Cashfree => &[
            "52.66.25.127",
            "15.206.45.168",
            "52.66.101.190",
            "3.109.102.144",
            "18.60.134.245",
            "18.60.183.142",
        ],
        Provider::Phonepe | Provider::Sandbox => &[],
    }
}

/// Which source addresses each provider's webhooks may come from. A provider without an entry
/// is not restricted: the allow-lists are off by default, and signatures are verified anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookIpAllowlist {
    by_provider: BTreeMap<Provider, Vec<IpRange>>,
}

impl WebhookIpAllowlist {
    /// Parses `WEBHOOK_IP_ALLOWLIST`: `;`-separated `provider=ranges`, where ranges are
    /// space- or comma-separated addresses and CIDRs, or `published` for the provider's
    /// published list, e.g. `razorpay=published;payu=published 10.0.0.0/8`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut by_provider = BTreeMap::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (provider, ranges) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not provider=ranges"))?;
            let provider: Provider = provider.trim().parse().map_err(|e| format!("{e}"))?;
            let mut parsed = Vec::new();
            for token in ranges
                .split([' ', ','])
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                if token == "published" {
                    let published = published_webhook_ranges(provider);
                    if published.is_empty() {
                        return Err(format!("{provider} publishes no webhook addresses"));
                    }
                    for range in published {
                        parsed.push(IpRange::parse(range)?);
                    }
                } else {
                    parsed.push(IpRange::parse(token)?);
                }
            }
            if parsed.is_empty() {
                return Err(format!("{provider} has an empty allow-list"));
            }
            by_provider.insert(provider, parsed);
        }
        Ok(Self { by_provider })
    }

    /// Whether a webhook of `provider` from `source` may be considered.
    pub fn allows(&self, provider: Provider, source: Option<IpAddr>) -> bool {
        match self.by_provider.get(&provider) {
            None => true,
            Some(ranges) => source.is_some_and(|ip| {
                let ip = ip.to_canonical();
                ranges.iter().any(|range| range.contains(ip))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_by_prefix() {
        let range = IpRange::parse("18.96.225.0/26").expect("cidr");
        assert!(range.contains("18.96.225.63".parse().expect("ip")));
        assert!(!range.contains("18.96.225.64".parse().expect("ip")));
        let host = IpRange::parse("52.66.75.174").expect("host");
        assert!(host.contains("52.66.75.174".parse().expect("ip")));
        assert!(!host.contains("52.66.75.175".parse().expect("ip")));
        assert!(
            IpRange::parse("::1/128")
                .expect("v6")
                .contains("::1".parse().expect("ip"))
        );
        assert!(
            IpRange::parse("0.0.0.0/0")
                .expect("all")
                .contains("8.8.8.8".parse().expect("ip"))
        );
        assert!(IpRange::parse("1.2.3.4/33").is_err());
        assert!(IpRange::parse("example.com").is_err());
    }

    #[test]
    fn allow_lists_restrict_only_the_providers_they_name() {
        let list = WebhookIpAllowlist::parse("razorpay=published; sandbox=127.0.0.1, 10.0.0.0/8")
            .expect("spec");
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        assert!(list.allows(Provider::Razorpay, ip("52.66.151.218")));
        assert!(!list.allows(Provider::Razorpay, ip("1.1.1.1")));
        assert!(!list.allows(Provider::Razorpay, None));
        assert!(list.allows(Provider::Sandbox, ip("10.1.2.3")));
        assert!(list.allows(Provider::Sandbox, ip("::ffff:127.0.0.1")));
        assert!(
            list.allows(Provider::Cashfree, ip("1.1.1.1")),
            "not restricted"
        );
        assert!(WebhookIpAllowlist::parse("phonepe=published").is_err());
        assert!(WebhookIpAllowlist::parse("acme=1.2.3.4").is_err());
        assert!(WebhookIpAllowlist::parse("payu=").is_err());
        assert_eq!(
            WebhookIpAllowlist::parse("").expect("empty"),
            WebhookIpAllowlist::default()
        );
    }

    #[test]
    fn forwarded_addresses_are_trusted_only_as_far_as_the_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.0.0.2"),
        );
        let peer = Some("10.0.0.1".parse().expect("ip"));
        assert_eq!(client_ip(&headers, peer, 0), peer);
        assert_eq!(
            client_ip(&headers, peer, 1),
            Some("10.0.0.2".parse().expect("ip"))
        );
        assert_eq!(
            client_ip(&headers, peer, 2),
            Some("203.0.113.9".parse().expect("ip"))
        );
        assert_eq!(client_ip(&headers, peer, 4), None);
    }

    #[test]
    fn origins_must_be_bare() {
        assert_eq!(
            parse_origins("https://ops.example.com, http://localhost:5173")
                .expect("origins")
                .len(),
            2
        );
        assert!(parse_origins("https://ops.example.com/").is_err());
        assert!(parse_origins("ops.example.com").is_err());
    }
}
