//! Which browser pages may use the server: the `Origin` of a WebSocket upgrade
//! (a disallowed one gets 403) and of a cross-origin REST call (CORS). A page
//! of the server's own origin is always allowed; requests without `Origin`
//! are not from a browser page and are judged by their token alone.

use crate::config::Config;

#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Authentication is off: the `Host` of a request is checked too.
    open: bool,
    any: bool,
    /// `http://localhost:*`: any port on localhost.
    localhost: bool,
    exact: Vec<String>,
}

impl Origins {
    pub fn from_config(config: &Config) -> Self {
        let mut origins = Origins {
            open: config.auth == crate::config::AuthMode::None,
            ..Origins::default()
        };
        let mut listed: Vec<String> = config.allowed_origins.clone();
        if origins.open {
            listed.push("http://localhost:*".into());
        }
        for origin in listed.iter().map(|o| o.trim().trim_end_matches('/')) {
            match origin {
                "" => {}
                "*" => origins.any = true,
                "http://localhost:*" => origins.localhost = true,
                exact => origins.exact.push(exact.to_ascii_lowercase()),
            }
        }
        origins
    }

    /// Whether a page of `origin` may call a server reached as `host`.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        if host.is_some_and(|host| authority == Some(host.to_ascii_lowercase().as_str())) {
            return true;
        }
        self.any || self.exact.contains(&origin) || (self.localhost && is_localhost(&origin))
    }

    /// Whether a cross-origin page may call the REST API (no same-origin case:
    /// those requests need no CORS).
    pub fn allows_cross(&self, origin: &str) -> bool {
        self.allows(origin, None)
    }
}

impl Origins {
    /// On an open server, whether a request's `Host` is one a page cannot
    /// have rebound to this machine by DNS: an address, `localhost`, or the host
    /// of an allowed origin. With authentication every host is fine: a rebound
    /// page has no token.
    pub fn allows_host(&self, host: &str) -> bool {
        if !self.open || self.any {
            return true;
        }
        let host = host.trim().to_ascii_lowercase();
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host
                .rsplit_once(':')
                .map_or(host.as_str(), |(name, _)| name),
        };
        name == "localhost"
            || name.parse::<std::net::IpAddr>().is_ok()
            || self.exact.iter().any(|origin| {
                origin.split_once("://").map(|(_, authority)| authority) == Some(host.as_str())
            })
    }
}

/// `http://localhost` or `http://localhost:<port>`.
fn is_localhost(origin: &str) -> bool {
    match origin.strip_prefix("http://localhost") {
        Some("") => true,
        Some(port) => port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str], auth: crate::config::AuthMode) -> Origins {
        let mut config = Config::for_tests("sqlite::memory:");
        config.allowed_origins = list.iter().map(|s| s.to_string()).collect();
        config.auth = auth;
        Origins::from_config(&config)
    }

    #[test]
    fn same_origin_listed_and_local_pages_only() {
        use crate::config::AuthMode;
        let open = origins(&["https://app.example.com"], AuthMode::None);
        assert!(open.allows("https://app.example.com", None));
        assert!(open.allows("http://localhost:5173", None));
        assert!(open.allows("https://agents.example.org", Some("agents.example.org")));
        assert!(!open.allows("https://evil.example.com", Some("agents.example.org")));
        assert!(!open.allows("http://localhost.evil.com", None));
        let closed = origins(&[], AuthMode::Token);
        assert!(!closed.allows("http://localhost:5173", None));
        assert!(origins(&["*"], AuthMode::Token).allows("https://any.where", None));
        // An open server answers only hosts a rebinding page cannot name.
        assert!(open.allows_host("127.0.0.1:8080"));
        assert!(open.allows_host("[::1]:8080"));
        assert!(open.allows_host("localhost:8080"));
        assert!(open.allows_host("app.example.com"));
        assert!(!open.allows_host("evil.example:8080"));
        assert!(closed.allows_host("evil.example:8080"));
    }
}
