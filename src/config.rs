//! Every setting of the server, from CLI flags and environment variables.
//!
//! Defaults are chosen so that `agentport` with no arguments and no services runs
//! anywhere: a platform only has to set `PORT`.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::{Parser, ValueEnum};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A value that must never be printed: `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Secret(value.to_string()))
    }
}

/// Who may use the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Anyone who reaches the port: for development only.
    None,
    /// Static bearer tokens (`AGENTPORT_TOKENS`, `AGENTPORT_TOKENS_FILE`).
    Token,
    /// Signed JWTs (`AGENTPORT_JWT_SECRET`, a public key or a JWKS file).
    Jwt,
}

/// Which executor runs agents' calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// `evm` when EVM_RPC_URL is set, else `http` when CONTRACT_API_URL is set.
    Auto,
    Evm,
    Http,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "agentport",
    version,
    about = "Hosts autonomous agents: HTTP health checks, REST and the agent WebSocket on one port."
)]
pub struct Config {
    /// Address to listen on. `::` is dual-stack (IPv4 and IPv6); it falls back to
    /// `0.0.0.0` where IPv6 is unavailable.
    #[arg(long, env = "HOST", default_value = "::")]
    pub host: String,

    /// Port to listen on (platforms inject `PORT`). 0 picks a free port.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Log format: auto (text on a terminal, JSON otherwise), text or json.
    /// The level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// PEM certificate chain: serve TLS (`https://`, `wss://`) on the same port.
    /// Reloaded from disk on SIGHUP.
    #[arg(long, env = "AGENTPORT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key matching `--tls-cert`.
    #[arg(long, env = "AGENTPORT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Where agents, runs and events are stored: `sqlite://FILE` (a bare path
    /// works too; created if missing) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://agentport.db")]
    pub database_url: String,

    /// Events kept per agent for `since` replays; older ones are removed.
    #[arg(
        long,
        env = "AGENTPORT_EVENT_RETENTION_COUNT",
        default_value_t = 10_000
    )]
    pub event_retention_count: u64,

    /// Days an event is kept for `since` replays (0: no age limit).
    #[arg(long, env = "AGENTPORT_EVENT_RETENTION_DAYS", default_value_t = 30)]
    pub event_retention_days: u64,

    /// Runs kept per agent (the newest); older ones are removed.
    #[arg(long, env = "AGENTPORT_RUN_RETENTION_COUNT", default_value_t = 1000)]
    pub run_retention_count: u64,

    /// Days a run is kept (0: no age limit).
    #[arg(long, env = "AGENTPORT_RUN_RETENTION_DAYS", default_value_t = 90)]
    pub run_retention_days: u64,

    /// Runs in progress at once, over every agent; a trigger beyond it is
    /// recorded as skipped.
    #[arg(long, env = "AGENTPORT_MAX_CONCURRENT_RUNS", default_value_t = 64)]
    pub max_concurrent_runs: usize,

    /// Who may use the server: `none` (anyone who reaches the port; refused
    /// when a signing key is set, unless AGENTPORT_ALLOW_UNAUTHENTICATED), `token`
    /// or `jwt`.
    #[arg(long, env = "AGENTPORT_AUTH", value_enum, default_value_t = AuthMode::None)]
    pub auth: AuthMode,

    /// Static tokens for `AGENTPORT_AUTH=token`: comma-separated
    /// `role:token[:agents]`, role admin|operator|viewer, agents (ids or
    /// contract addresses) separated by `|`, all when left out.
    #[arg(long, env = "AGENTPORT_TOKENS", hide_env_values = true)]
    pub tokens: Option<Secret>,

    /// A file of `role:token[:agents]` entries, one per line (`#` comments).
    #[arg(long, env = "AGENTPORT_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// HS256 secret of the JWTs of `AGENTPORT_AUTH=jwt`.
    #[arg(long, env = "AGENTPORT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// PEM public key (RSA: RS256, EC: ES256) of the JWTs of `AGENTPORT_AUTH=jwt`.
    #[arg(long, env = "AGENTPORT_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// A JWKS file (RSA or EC keys, chosen by `kid`) for `AGENTPORT_AUTH=jwt`.
    #[arg(long, env = "AGENTPORT_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,

    /// The `aud` JWTs must carry, when set.
    #[arg(long, env = "AGENTPORT_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// The `iss` JWTs must carry, when set.
    #[arg(long, env = "AGENTPORT_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Start with `AGENTPORT_AUTH=none` even though a signing key is set:
    /// anyone who reaches the port can then spend from it.
    #[arg(long, env = "AGENTPORT_ALLOW_UNAUTHENTICATED", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_unauthenticated: bool,

    /// Accept a token as a path prefix, `/t/{token}/…` before every route, for
    /// a frontend that can set its base URL but no header. Logs and metrics
    /// never show it; proxies' access logs may.
    #[arg(long, env = "AGENTPORT_PATH_TOKENS", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub path_tokens: bool,

    /// Let notifications reach private, local and link-local addresses (tests,
    /// private deployments). Off: webhook and Discord URLs must resolve to
    /// public addresses, when configured and at every send.
    #[arg(long, env = "AGENTPORT_ALLOW_PRIVATE_TARGETS", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_private_targets: bool,

    /// Notifications one agent may send per hour (every channel counted).
    #[arg(long, env = "AGENTPORT_NOTIFICATIONS_PER_HOUR", default_value_t = 60)]
    pub notifications_per_hour: u32,

    /// Messages one WebSocket connection may send per second (bursts of twice
    /// that); beyond it `rate_limited` errors, and close 1008 when it goes on.
    /// 0: no limit.
    #[arg(long, env = "AGENTPORT_WS_MESSAGES_PER_SECOND", default_value_t = 100)]
    pub ws_messages_per_second: u32,

    /// New WebSocket connections one client address may open per second
    /// (bursts of twice that); beyond it 429. 0: no limit.
    #[arg(
        long,
        env = "AGENTPORT_WS_CONNECTIONS_PER_SECOND",
        default_value_t = 20
    )]
    pub ws_connections_per_second: u32,

    /// Proxies whose `X-Forwarded-For` names the client, comma-separated
    /// addresses or ranges (`10.0.0.0/8`). Without it the peer address is the
    /// client: behind a platform's proxy, set it to the proxy's range.
    #[arg(long, env = "AGENTPORT_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Agents one subject (token, JWT `sub`) may create. 0: no limit.
    #[arg(long, env = "AGENTPORT_MAX_AGENTS_PER_OWNER", default_value_t = 10_000)]
    pub max_agents_per_owner: u64,

    /// Browser origins allowed to open the WebSocket and call the REST API,
    /// comma-separated (`*` for any, `http://localhost:*` for any local port).
    /// Same-origin pages are always allowed, and `http://localhost:*` too while
    /// AGENTPORT_AUTH is none.
    #[arg(long, env = "AGENTPORT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// JSON-RPC endpoint of the EVM node agents read from and write to.
    #[arg(long, env = "EVM_RPC_URL")]
    pub evm_rpc_url: Option<String>,

    /// Private key that signs agents' transactions. Environment only in
    /// production; never stored, logged or echoed.
    #[arg(long, env = "EVM_PRIVATE_KEY", hide_env_values = true)]
    pub evm_private_key: Option<Secret>,

    /// Seconds one database statement (PostgreSQL) or one wait for SQLite's
    /// write lock may take before the command fails.
    #[arg(long = "db-timeout-secs", value_name = "SECS", env = "AGENTPORT_DB_TIMEOUT_SECS", default_value = "10", value_parser = parse_secs)]
    pub db_timeout: Duration,

    /// Seconds one JSON-RPC request to the EVM node may take (connecting
    /// included); a node that never answers fails the run with a timeout.
    #[arg(long = "rpc-timeout-secs", value_name = "SECS", env = "AGENTPORT_RPC_TIMEOUT_SECS", default_value = "10", value_parser = parse_secs)]
    pub rpc_timeout: Duration,

    /// Most a transaction may pay per gas, in gwei (base fee and priority fee
    /// together); when the network asks more, the action is not sent.
    #[arg(long, env = "AGENTPORT_MAX_FEE_GWEI", default_value = "500")]
    pub max_fee_gwei: String,

    /// Seconds a run stopped by shutdown (or by stopping its agent) still waits
    /// for the receipt of a transaction it already broadcast; after that the
    /// transaction is left `sent`, for reconciliation. Keep it under the
    /// shutdown grace period, itself under the platform's drain time.
    #[arg(long = "run-grace-secs", value_name = "SECS", env = "AGENTPORT_RUN_GRACE_SECS", default_value = "5", value_parser = parse_secs)]
    pub run_grace: Duration,

    /// Seconds between looks at the chain for transactions not final yet (a
    /// crash between broadcast and receipt is settled this way).
    #[arg(long = "reconcile-secs", value_name = "SECS", env = "AGENTPORT_RECONCILE_SECS", default_value = "15", value_parser = parse_secs)]
    pub reconcile_every: Duration,

    /// Contract addresses the signing key may call, comma-separated; empty:
    /// any. Contracts outside it cannot be registered, and writes to them are
    /// rejected by the guard.
    #[arg(long, env = "AGENTPORT_CONTRACT_ALLOWLIST", value_delimiter = ',')]
    pub contract_allowlist: Vec<String>,

    /// The legacy contract API (`POST {url}/contracts/read|write`).
    #[arg(long, env = "CONTRACT_API_URL")]
    pub contract_api_url: Option<String>,

    /// Which executor agents use: auto, evm or http.
    #[arg(long, env = "AGENTPORT_EXECUTOR", value_enum, default_value_t = ExecutorKind::Auto)]
    pub executor: ExecutorKind,

    /// Seconds to wait for a transaction's receipt.
    #[arg(long = "receipt-timeout-secs", value_name = "SECS", env = "AGENTPORT_RECEIPT_TIMEOUT_SECS", default_value = "60", value_parser = parse_secs)]
    pub receipt_timeout: Duration,

    /// Most actions one run may take (a policy's `max_actions` can only lower it).
    #[arg(long, env = "AGENTPORT_MAX_ACTIONS_PER_RUN", default_value_t = 5)]
    pub max_actions_per_run: usize,

    /// Key of the OpenAI-compatible API used by `llm` policies.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<Secret>,

    /// Base URL of the OpenAI-compatible API (`…/chat/completions` is appended).
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub openai_base_url: String,

    /// Model of `llm` policies that name none.
    #[arg(long, env = "AGENTPORT_MODEL", default_value = "gpt-4o-mini")]
    pub model: String,

    /// The models `llm` policies may name, comma-separated; the first is the
    /// default (then AGENTPORT_MODEL is not used). Empty: AGENTPORT_MODEL only.
    /// A client never picks a model the operator did not pay for.
    #[arg(long, env = "AGENTPORT_LLM_MODELS", value_delimiter = ',')]
    pub llm_models: Vec<String>,

    /// Seconds one LLM request may take (it is retried twice on failure).
    #[arg(long = "llm-timeout-secs", value_name = "SECS", env = "AGENTPORT_LLM_TIMEOUT_SECS", default_value = "30", value_parser = parse_secs)]
    pub llm_timeout: Duration,

    /// Bot token for Telegram notifications.
    #[arg(long, env = "TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    pub telegram_bot_token: Option<Secret>,

    /// Telegram Bot API base URL.
    #[arg(
        long,
        env = "AGENTPORT_TELEGRAM_API_URL",
        default_value = "https://api.telegram.org"
    )]
    pub telegram_api_url: String,

    /// SMTP server for email notifications: `smtps://user:pass@host` (TLS),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtp://host:25`
    /// (plain, for a relay on a private network).
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,

    /// Sender of email notifications.
    #[arg(
        long,
        env = "AGENTPORT_SMTP_FROM",
        default_value = "agentport <agentport@localhost>"
    )]
    pub smtp_from: String,

    /// Attempts per notification before it is reported as failed.
    #[arg(long, env = "AGENTPORT_NOTIFY_ATTEMPTS", default_value_t = 3)]
    pub notify_attempts: u32,

    /// Seconds before the first retry of a notification (doubling after).
    #[arg(long = "notify-backoff-secs", value_name = "SECS", env = "AGENTPORT_NOTIFY_BACKOFF_SECS", default_value = "1", value_parser = parse_secs)]
    pub notify_backoff: Duration,

    /// Most WebSocket connections open at once; upgrades beyond it get 503.
    #[arg(long, env = "AGENTPORT_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// Most plain HTTP connections open at once (WebSockets count separately, see
    /// `--max-connections`); more wait in the listen backlog.
    #[arg(long, env = "AGENTPORT_MAX_HTTP_CONNECTIONS", default_value_t = 10_000)]
    pub max_http_connections: usize,

    /// Largest WebSocket message accepted, in bytes; a larger one closes the
    /// connection with 1009.
    #[arg(long, env = "AGENTPORT_MAX_MESSAGE_BYTES", default_value_t = 1 << 20)]
    pub max_message_bytes: usize,

    /// Read buffer of each WebSocket connection, in bytes. Small, so that an idle
    /// connection costs little memory (it is most of what one costs): a larger
    /// message grows it to that message's size.
    #[arg(long, env = "AGENTPORT_WS_READ_BUFFER_BYTES", default_value_t = 1024)]
    pub ws_read_buffer_bytes: usize,

    /// Most frames waiting to be written to one connection. A client that lets its
    /// queue fill up is closed with 1013.
    #[arg(long, env = "AGENTPORT_WS_OUTBOUND_FRAMES", default_value_t = 1024)]
    pub ws_outbound_frames: usize,

    /// Most bytes waiting to be written to one connection (see `--ws-outbound-frames`).
    #[arg(long, env = "AGENTPORT_WS_OUTBOUND_BYTES", default_value_t = 4 << 20)]
    pub ws_outbound_bytes: usize,

    /// Seconds between WebSocket Pings sent by the server.
    #[arg(long = "ws-ping-interval-secs", value_name = "SECS", env = "AGENTPORT_WS_PING_INTERVAL_SECS", default_value = "20", value_parser = parse_secs)]
    pub ws_ping_interval: Duration,

    /// Seconds a connection may stay silent (no frame, no Pong) before it is closed.
    #[arg(long = "ws-idle-timeout-secs", value_name = "SECS", env = "AGENTPORT_WS_IDLE_TIMEOUT_SECS", default_value = "60", value_parser = parse_secs)]
    pub ws_idle_timeout: Duration,

    /// Seconds one write to a client may wait for it to read before the
    /// connection is closed as a slow consumer (1013): the session stops
    /// reading while its writes wait, so a client that sends without reading
    /// is bounded by this.
    #[arg(long = "ws-write-timeout-secs", value_name = "SECS", env = "AGENTPORT_WS_WRITE_TIMEOUT_SECS", default_value = "10", value_parser = parse_secs)]
    pub ws_write_timeout: Duration,

    /// Seconds to wait for the peer during a close handshake before dropping it.
    #[arg(long = "ws-close-timeout-secs", value_name = "SECS", env = "AGENTPORT_WS_CLOSE_TIMEOUT_SECS", default_value = "5", value_parser = parse_secs)]
    pub ws_close_timeout: Duration,

    /// Seconds between SIGTERM and a forced exit: sockets are closed and
    /// in-flight work finishes within it.
    #[arg(long = "shutdown-grace-secs", value_name = "SECS", env = "AGENTPORT_SHUTDOWN_GRACE_SECS", default_value = "10", value_parser = parse_secs)]
    pub shutdown_grace: Duration,

    /// Seconds after SIGTERM during which `/ready` answers 503 while the port
    /// still serves, so that a load balancer stops routing before the listener
    /// closes. Counted inside the grace period.
    #[arg(long = "shutdown-drain-secs", value_name = "SECS", env = "AGENTPORT_SHUTDOWN_DRAIN_SECS", default_value = "0", value_parser = parse_secs)]
    pub shutdown_drain: Duration,

    /// WebSockets closed per batch on shutdown, so that clients do not all
    /// reconnect at the same instant.
    #[arg(long, env = "AGENTPORT_SHUTDOWN_CLOSE_BATCH", default_value_t = 500)]
    pub shutdown_close_batch: usize,

    /// Seconds a client has to send its request headers (and finish a TLS
    /// handshake) before the connection is dropped.
    #[arg(long = "header-timeout-secs", value_name = "SECS", env = "AGENTPORT_HEADER_TIMEOUT_SECS", default_value = "10", value_parser = parse_secs)]
    pub header_timeout: Duration,
}

impl Config {
    /// The settings with every default, listening on `127.0.0.1:0` with a
    /// database at `database_url`: what tests start from.
    pub fn for_tests(database_url: &str) -> Self {
        let mut config = Config::parse_from(["agentport"]);
        config.host = "127.0.0.1".into();
        config.port = 0;
        config.database_url = database_url.into();
        // Tests sign with anvil's well-known keys on an open server, and
        // notify receivers they start on 127.0.0.1.
        config.allow_unauthenticated = true;
        config.allow_private_targets = true;
        // Load tests flood on purpose; the abuse tests set their own limits.
        config.ws_messages_per_second = 0;
        config.ws_connections_per_second = 0;
        config
    }

    /// The address to bind when `host` is a literal IP address.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip = self.host.trim_matches(['[', ']']).parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }
}

/// Seconds as a decimal number (`20`, `0.5`), so that tests can use short timers.
fn parse_secs(value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .parse()
        .map_err(|_| format!("`{value}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{value}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_arguments() {
        let config = Config::try_parse_from(["agentport"]).unwrap();
        assert_eq!(config.host, "::");
        assert_eq!(config.max_message_bytes, 1 << 20);
        assert_eq!(config.ws_ping_interval, Duration::from_secs(20));
        assert_eq!(config.ws_idle_timeout, Duration::from_secs(60));
        assert_eq!(config.shutdown_grace, Duration::from_secs(10));
    }

    #[test]
    fn seconds_accept_fractions_and_reject_junk() {
        assert_eq!(parse_secs("0.25").unwrap(), Duration::from_millis(250));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("soon").is_err());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let config =
            Config::try_parse_from(["agentport", "--evm-private-key", "0xdeadbeef"]).unwrap();
        assert!(!format!("{config:?}").contains("deadbeef"));
        assert_eq!(config.evm_private_key.unwrap().expose(), "0xdeadbeef");
    }

    #[test]
    fn flags_read_from_the_environment_accept_1_and_true() {
        let config = Config::try_parse_from(["agentport", "--path-tokens"]).unwrap();
        assert!(config.path_tokens);
        assert!(!config.allow_unauthenticated);
        let parsed = Config::try_parse_from(["agentport", "--auth", "token"]).unwrap();
        assert_eq!(parsed.auth, AuthMode::Token);
    }

    #[test]
    fn tls_needs_both_files() {
        assert!(Config::try_parse_from(["agentport", "--tls-cert", "c.pem"]).is_err());
    }
}
