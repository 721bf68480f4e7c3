//! Where the server's own requests may go. A notification URL is the client's
//! choice, and the server's network is not the client's: targets must resolve
//! to public addresses only — checked when a URL is configured, and again at
//! every connection (a resolver that drops private addresses, so a name that
//! changes its answer in between gains nothing), with no redirects.
//! `AGENTPORT_ALLOW_PRIVATE_TARGETS` lifts this for tests and private networks.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The policy of outbound targets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Targets {
    pub allow_private: bool,
}

impl Targets {
    /// An HTTP client that reaches only allowed targets, follows no redirect
    /// and gives up after `timeout`.
    pub fn client(self, timeout: Duration) -> reqwest::Client {
        crate::tls::install_crypto_provider();
        // No proxy from the environment: it would resolve targets itself.
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        let builder = if self.allow_private {
            builder
        } else {
            builder.dns_resolver(Arc::new(PublicOnly))
        };
        builder.build().unwrap_or_default()
    }

    /// Checks a URL the client gave: http(s), and a host that resolves to
    /// allowed addresses only. `Err` says why not, without echoing secrets.
    pub async fn check_url(self, text: &str) -> Result<(), String> {
        let url = reqwest::Url::parse(text).map_err(|_| "is not a URL".to_string())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".into());
        }
        let host = url.host_str().ok_or("has no host")?;
        if self.allow_private {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let host = host.trim_matches(['[', ']']);
        let addrs: Vec<SocketAddr> = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host, port)),
        )
        .await
        .map_err(|_| "does not resolve in time".to_string())?
        .map_err(|_| "does not resolve".to_string())?
        .collect();
        if addrs.is_empty() {
            return Err("does not resolve".into());
        }
        match addrs.iter().find(|a| !is_public(a.ip())) {
            Some(_) => Err("resolves to a private, local or reserved address".into()),
            None => Ok(()),
        }
    }
}

/// Resolves names, keeping public addresses only.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err("the target resolves to no public address".into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local (cloud metadata), shared, multicast, documentation or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    let embeds_v4 = ip.segments()[..6].iter().all(|s| *s == 0); // ::a.b.c.d
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || embeds_v4
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (first == 0x2001 && second == 0x0db8) // documentation
        || first == 0x2002 // 6to4: any IPv4 behind it
        || (first == 0x64 && (second == 0xff9b || second == 0xff9b + 1))) // NAT64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_local_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
            "2002:7f00:1::",
            "fec0::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_to_private_targets_are_refused_unless_allowed() {
        let strict = Targets::default();
        for url in [
            "http://127.0.0.1:9/hook",
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:8080/",
            "http://[::1]/",
            "ftp://example.com/",
        ] {
            assert!(strict.check_url(url).await.is_err(), "{url}");
        }
        let open = Targets {
            allow_private: true,
        };
        assert!(open.check_url("http://127.0.0.1:9/hook").await.is_ok());
    }

    /// A local HTTP server answering every request with `reply`; counts hits.
    async fn server(reply: String) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        (port, hits)
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        use std::sync::atomic::Ordering;
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let (inner, inner_hits) = server(ok.to_string()).await;
        let redirect = format!(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{inner}/\r\n\
             content-length: 0\r\nconnection: close\r\n\r\n"
        );
        let (outer, _) = server(redirect).await;
        let client = Targets {
            allow_private: true,
        }
        .client(Duration::from_secs(5));
        let response = client
            .post(format!("http://127.0.0.1:{outer}/hook"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 302);
        assert_eq!(inner_hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_never_connected_to() {
        use std::sync::atomic::Ordering;
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let (port, hits) = server(ok.to_string()).await;
        let client = Targets::default().client(Duration::from_secs(5));
        let sent = client
            .post(format!("http://localhost:{port}/hook"))
            .send()
            .await;
        assert!(sent.is_err());
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }
}
