//! Where a merchant webhook may go (SSRF protection): an `https` URL whose host resolves only
//! to public addresses. Private, link-local, CGNAT, multicast, unspecified and cloud metadata
//! addresses are refused after DNS resolution, at registration and again before every attempt;
//! the attempt then connects only to the vetted address ([`pinned_client`]), so a name that
//! resolves differently a moment later (DNS rebinding) cannot redirect it. Loopback and plain
//! `http` are allowed only by the development setting ([`TargetPolicy::allow_loopback_http`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::http::client_builder;

/// What the deployment allows besides public `https` endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Development only: loopback addresses and plain `http` URLs are allowed.
    pub allow_loopback_http: bool,
}

/// What kind of address an IP is, for deciding whether a webhook may go there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Routable on the internet.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7 (and 0.0.0.0/8, reserved 240/4).
    Private,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// 100.64/10, carrier-grade NAT.
    SharedCgnat,
    /// 224/4, ff00::/8, and the broadcast address.
    Multicast,
    /// 0.0.0.0, ::.
    Unspecified,
    /// Cloud instance metadata: 169.254.169.254, fd00:ec2::254.
    Metadata,
}

impl AddressClass {
    /// The stable name used in refusals.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link_local",
            Self::SharedCgnat => "cgnat",
            Self::Multicast => "multicast",
            Self::Unspecified => "unspecified",
            Self::Metadata => "metadata",
        }
    }
}

/// Classifies an address; an IPv4-mapped IPv6 address is judged as its IPv4 address.
pub fn classify(address: IpAddr) -> AddressClass {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        AddressClass::Metadata
    } else if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if a == 100 && (64..128).contains(&b) {
        AddressClass::SharedCgnat
    } else if ip.is_multicast() || ip.is_broadcast() {
        AddressClass::Multicast
    } else if ip.is_private() || a == 0 || a >= 240 {
        AddressClass::Private
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        AddressClass::Metadata
    } else if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if first & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if first & 0xfe00 == 0xfc00 {
        AddressClass::Private
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else {
        AddressClass::Public
    }
}

/// Why a webhook target is refused. The text never quotes the URL (it may carry a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefusal {
    /// Not an absolute URL with a host.
    #[error("not an absolute URL with a host")]
    NotAUrl,
    /// `http` (or another scheme) where `https` is required.
    #[error("must use https")]
    NotHttps,
    /// The host did not resolve to any address.
    #[error("the host does not resolve")]
    Unresolvable,
    /// The host resolves to an address webhooks may not go to.
    #[error("the host resolves to a {} address", .0.as_str())]
    Forbidden(AddressClass),
}

/// A URL vetted for one attempt: the host and the one address to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VettedTarget {
    /// The URL to request.
    pub url: reqwest::Url,
    /// The host name, as the URL names it.
    pub host: String,
    /// The vetted address to connect to.
    pub address: SocketAddr,
}

/// Checks `url` under `policy`: scheme, then every address its host resolves to. A host
/// with any forbidden address is refused, so a mixed answer cannot smuggle one in.
pub async fn vet(url: &str, policy: TargetPolicy) -> Result<VettedTarget, TargetRefusal> {
    let parsed = reqwest::Url::parse(url).map_err(|_| TargetRefusal::NotAUrl)?;
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_loopback_http => {}
        _ => return Err(TargetRefusal::NotHttps),
    }
    let host = parsed
        .host_str()
        .ok_or(TargetRefusal::NotAUrl)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or(TargetRefusal::NotAUrl)?;
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| TargetRefusal::Unresolvable)?
        .collect();
    let address = *addresses.first().ok_or(TargetRefusal::Unresolvable)?;
    for candidate in &addresses {
        allowed(classify(candidate.ip()), policy)?;
    }
    Ok(VettedTarget {
        url: parsed,
        host,
        address,
    })
}

fn allowed(class: AddressClass, policy: TargetPolicy) -> Result<(), TargetRefusal> {
    match class {
        AddressClass::Public => Ok(()),
        AddressClass::Loopback if policy.allow_loopback_http => Ok(()),
        forbidden => Err(TargetRefusal::Forbidden(forbidden)),
    }
}

/// A client that connects `target`'s host only to its vetted address, follows no redirect and
/// gives up after `timeout`.
pub fn pinned_client(
    target: &VettedTarget,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    client_builder()
        .resolve(&target.host, target.address)
        .no_proxy()
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("lightspeed-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(address: &str) -> AddressClass {
        classify(address.parse().expect("an address"))
    }

    #[test]
    fn internal_addresses_are_classified_as_what_they_are() {
        assert_eq!(class("10.0.0.1"), AddressClass::Private);
        assert_eq!(class("172.16.5.4"), AddressClass::Private);
        assert_eq!(class("192.168.1.1"), AddressClass::Private);
        assert_eq!(class("fd12::1"), AddressClass::Private);
        assert_eq!(class("169.254.10.1"), AddressClass::LinkLocal);
        assert_eq!(class("fe80::1"), AddressClass::LinkLocal);
        assert_eq!(class("100.64.0.1"), AddressClass::SharedCgnat);
        assert_eq!(class("224.0.0.1"), AddressClass::Multicast);
        assert_eq!(class("ff02::1"), AddressClass::Multicast);
        assert_eq!(class("0.0.0.0"), AddressClass::Unspecified);
        assert_eq!(class("::"), AddressClass::Unspecified);
        assert_eq!(class("169.254.169.254"), AddressClass::Metadata);
        assert_eq!(class("fd00:ec2::254"), AddressClass::Metadata);
        assert_eq!(class("127.0.0.1"), AddressClass::Loopback);
        assert_eq!(class("::1"), AddressClass::Loopback);
        assert_eq!(class("::ffff:10.0.0.1"), AddressClass::Private);
        assert_eq!(class("::ffff:169.254.169.254"), AddressClass::Metadata);
    }

    #[test]
    fn public_addresses_are_public() {
        assert_eq!(class("8.8.8.8"), AddressClass::Public);
        assert_eq!(class("100.128.0.1"), AddressClass::Public);
        assert_eq!(class("172.32.0.1"), AddressClass::Public);
        assert_eq!(class("2606:4700::1111"), AddressClass::Public);
    }

    #[tokio::test]
    async fn internal_targets_are_refused_after_resolution() {
        let strict = TargetPolicy::default();
        let refused = |url: &'static str| async move { vet(url, strict).await.err() };
        assert_eq!(
            refused("https://10.0.0.1/hooks").await,
            Some(TargetRefusal::Forbidden(AddressClass::Private))
        );
        assert_eq!(
            refused("https://169.254.169.254/latest").await,
            Some(TargetRefusal::Forbidden(AddressClass::Metadata))
        );
        assert_eq!(
            refused("https://[fd00:ec2::254]/latest").await,
            Some(TargetRefusal::Forbidden(AddressClass::Metadata))
        );
        assert_eq!(
            refused("https://localhost:8443/hooks").await,
            Some(TargetRefusal::Forbidden(AddressClass::Loopback))
        );
        assert_eq!(
            refused("http://8.8.8.8/hooks").await,
            Some(TargetRefusal::NotHttps)
        );
    }

    #[tokio::test]
    async fn the_development_setting_allows_loopback_over_http() {
        let development = TargetPolicy {
            allow_loopback_http: true,
        };
        let target = vet("http://localhost:8080/hooks", development)
            .await
            .expect("loopback allowed");
        assert!(target.address.ip().is_loopback());
        assert_eq!(target.host, "localhost");
        assert_eq!(
            vet("http://10.0.0.1/hooks", development).await.err(),
            Some(TargetRefusal::Forbidden(AddressClass::Private))
        );
    }
}
