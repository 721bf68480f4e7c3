//! One redaction step for every string the server emits: log lines, events,
//! replies, run records and notifications. It removes URL userinfo and query
//! values, and every configured secret (signing key, RPC URL and its key,
//! API keys, bot token, SMTP password, JWT secret, tokens), so that an error
//! quoting a URL or a setting never carries one out.

use std::{
    borrow::Cow,
    sync::{LazyLock, RwLock},
};

use regex_lite::Regex;

use crate::config::Config;

/// Secrets of this process. Only ever grows: servers started later in the same
/// process (tests) add theirs, and nothing is ever shown again.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// `scheme://user:password@` → `scheme://***@`.
static USERINFO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@"'<>]+@"#).unwrap());

/// `?key=value&…` in a URL → `?key=***&…`.
static QUERY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(://[^\s?"'<>]*\?|&)([^=&\s"'<>#)]+)=([^&\s"'<>#)]+)"#).unwrap()
});

/// Values shorter than this are not secrets worth hiding (and would hide
/// ordinary words).
const SHORTEST: usize = 8;

/// Remembers a secret value.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < SHORTEST {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_string());
        // Longest first: a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Remembers every secret the configuration holds.
pub fn register_config(config: &Config) {
    let secrets = [
        config.evm_private_key.as_ref(),
        config.openai_api_key.as_ref(),
        config.telegram_bot_token.as_ref(),
        config.smtp_url.as_ref(),
        config.jwt_secret.as_ref(),
    ];
    for secret in secrets.into_iter().flatten() {
        register(secret.expose());
        register(secret.expose().trim_start_matches("0x"));
        register_url_parts(secret.expose());
    }
    if let Some(url) = &config.evm_rpc_url {
        register(url);
        register_url_parts(url);
    }
    for url in [
        config.contract_api_url.as_deref(),
        Some(config.openai_base_url.as_str()),
    ] {
        url.into_iter().for_each(register_url_parts);
    }
    register_url_parts(&config.database_url);
    let mut entries: Vec<String> = Vec::new();
    if let Some(tokens) = &config.tokens {
        entries.extend(tokens.expose().split(',').map(str::to_string));
    }
    if let Some(path) = &config.tokens_file {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        entries.extend(text.lines().map(str::to_string));
    }
    for entry in entries {
        register(entry.trim().split(':').nth(1).unwrap_or_default());
    }
}

/// The parts of a URL that usually are keys: the password, query values, and
/// long path segments (`/v2/<api key>`).
fn register_url_parts(url: &str) {
    let Ok(url) = reqwest::Url::parse(url) else {
        return;
    };
    if let Some(password) = url.password() {
        register(password);
    }
    for (_, value) in url.query_pairs() {
        register(&value);
    }
    for segment in url.path_segments().into_iter().flatten() {
        if segment.len() >= 16 {
            register(segment);
        }
    }
}

/// The text without secrets.
pub fn clean(text: &str) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(text);
    if text.contains("://") {
        if let Cow::Owned(done) = USERINFO.replace_all(&text, "${1}***@") {
            text = Cow::Owned(done);
        }
        if let Cow::Owned(done) = QUERY.replace_all(&text, "${1}${2}=***") {
            text = Cow::Owned(done);
        }
    }
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    for secret in secrets.iter() {
        if text.contains(secret.as_str()) {
            text = Cow::Owned(text.replace(secret.as_str(), "***"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_userinfo_and_query_values_and_secrets_vanish() {
        let text = "error sending request for url (https://me:pw@node.example/v2?apikey=abc&x=1)";
        assert_eq!(
            clean(text),
            "error sending request for url (https://***@node.example/v2?apikey=***&x=***)"
        );
        register("a-very-secret-value-42");
        assert_eq!(clean("key a-very-secret-value-42 leaked"), "key *** leaked");
        assert!(matches!(clean("nothing to hide"), Cow::Borrowed(_)));
    }
}
