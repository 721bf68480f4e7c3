//! Abuse limits at the edges: messages per second on one connection, new
//! WebSocket connections per client address, and which address is the
//! client's when proxies stand in front (`X-Forwarded-For`, trusted only from
//! the proxies named in `AGENTPORT_TRUSTED_PROXIES`).

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
};

use axum::http::HeaderMap;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use crate::config::Config;

/// Refused messages in a row after which a connection is closed with 1008.
pub const ABUSE_STRIKES: u32 = 50;

/// A token bucket of `per_second`, with a burst of twice that; `None` when 0.
fn quota(per_second: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// The message budget of one connection (`None`: unlimited).
pub fn messages(per_second: u32) -> Option<DefaultDirectRateLimiter> {
    quota(per_second).map(DefaultDirectRateLimiter::direct)
}

/// New connections per client address.
pub struct Connections {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    proxies: Vec<Cidr>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("limited", &self.limiter.is_some())
            .field("proxies", &self.proxies.len())
            .finish()
    }
}

impl Connections {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let proxies = config
            .trusted_proxies
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .map(Cidr::parse)
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            limiter: quota(config.ws_connections_per_second).map(DefaultKeyedRateLimiter::keyed),
            proxies,
        })
    }

    /// Whether one more connection from `client` is allowed now.
    pub fn admit(&self, client: IpAddr) -> bool {
        self.limiter
            .as_ref()
            .is_none_or(|l| l.check_key(&client).is_ok())
    }

    /// Forgets addresses that have been quiet: the map stays bounded.
    pub fn forget_quiet(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy,
    /// the last address in `X-Forwarded-For` that is not a trusted proxy.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`.
        let peer = peer.ip().to_canonical();
        if !self.trusted(peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .map(|a| a.to_canonical())
            .collect::<Vec<_>>();
        forwarded
            .into_iter()
            .rev()
            .find(|a| !self.trusted(*a))
            .unwrap_or(peer)
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|p| p.contains(ip))
    }
}

/// An address range: `10.0.0.0/8`, `fd00::/8` or one address.
#[derive(Debug, Clone, Copy)]
struct Cidr {
    base: IpAddr,
    bits: u32,
}

impl Cidr {
    fn parse(text: &str) -> anyhow::Result<Cidr> {
        let (addr, bits) = text.split_once('/').unwrap_or((text, ""));
        let base: IpAddr = addr.parse().map_err(|_| {
            anyhow::anyhow!("AGENTPORT_TRUSTED_PROXIES: `{text}` is not an address")
        })?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let bits = if bits.is_empty() { max } else { bits.parse()? };
        anyhow::ensure!(
            bits <= max,
            "AGENTPORT_TRUSTED_PROXIES: `{text}` has a bad prefix"
        );
        Ok(Cidr { base, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (base, ip, max) = match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(i)) => (u32::from(b) as u128, u32::from(i) as u128, 32),
            (IpAddr::V6(b), IpAddr::V6(i)) => (u128::from(b), u128::from(i), 128),
            _ => return false,
        };
        let shift = max - self.bits;
        shift >= 128 || (base >> shift) == (ip >> shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connections(proxies: &[&str]) -> Connections {
        let mut config = Config::for_tests("sqlite::memory:");
        config.trusted_proxies = proxies.iter().map(|p| p.to_string()).collect();
        Connections::from_config(&config).unwrap()
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.7".parse().unwrap());
        let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        assert_eq!(connections(&[]).client(peer, &headers), peer.ip());
        let behind = connections(&["10.0.0.0/8"]);
        assert_eq!(
            behind.client(peer, &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let mapped: SocketAddr = "[::ffff:10.0.0.2]:4000".parse().unwrap();
        assert_eq!(
            behind.client(mapped, &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let stranger: SocketAddr = "198.51.100.1:1".parse().unwrap();
        assert_eq!(behind.client(stranger, &headers), stranger.ip());
    }
}
