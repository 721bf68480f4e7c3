//! Who is calling, for both edges. A request's token comes from the path prefix
//! `/t/{token}/…` (when enabled), `Authorization: Bearer`, or, for browsers'
//! WebSockets, `Sec-WebSocket-Protocol: bearer, <token>`; the `Authenticator`
//! turns it into a `Caller` (subject, role, scope), or refuses it with 401.

use std::path::Path;

use anyhow::{Context, bail};
use axum::{
    Json,
    extract::FromRequestParts,
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::Deserialize;
use serde_json::json;

use crate::{
    config::{AuthMode, Config, Secret},
    model::{Caller, Role, Scope},
};

/// The token a request came with by its path (`/t/{token}/…`), put there by
/// the router before the route sees the request.
#[derive(Debug, Clone)]
pub struct PathToken(pub Secret);

/// Why a request is not authenticated. The message never repeats the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthorized(pub &'static str);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": "unauthorized", "message": self.0}});
        let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
        (StatusCode::UNAUTHORIZED, challenge, Json(body)).into_response()
    }
}

/// Turns tokens into callers, as `AGENTPORT_AUTH` says.
pub enum Authenticator {
    /// Everyone is `Caller::local()`.
    Open,
    /// Static tokens, each with its caller.
    Tokens(Vec<(Secret, Caller)>),
    Jwt(Box<Jwt>),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Authenticator::Open => "Authenticator::Open",
            Authenticator::Tokens(_) => "Authenticator::Tokens(***)",
            Authenticator::Jwt(_) => "Authenticator::Jwt(***)",
        })
    }
}

impl Authenticator {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        match config.auth {
            AuthMode::None => Ok(Authenticator::Open),
            AuthMode::Token => Ok(Authenticator::Tokens(tokens(config)?)),
            AuthMode::Jwt => Ok(Authenticator::Jwt(Box::new(Jwt::from_config(config)?))),
        }
    }

    /// Whether anyone who reaches the port is let in.
    pub fn is_open(&self) -> bool {
        matches!(self, Authenticator::Open)
    }

    pub fn authenticate(&self, token: Option<&str>) -> Result<Caller, Unauthorized> {
        let token = match (self, token) {
            (Authenticator::Open, _) => return Ok(Caller::local()),
            (_, None) => return Err(Unauthorized("a bearer token is required")),
            (_, Some(token)) => token,
        };
        match self {
            Authenticator::Open => Ok(Caller::local()),
            Authenticator::Tokens(tokens) => tokens
                .iter()
                .fold(None, |found, (secret, caller)| {
                    // Every entry is compared, in constant time.
                    let same = constant_time_eq(secret.expose().as_bytes(), token.as_bytes());
                    found.or(same.then_some(caller))
                })
                .cloned()
                .ok_or(Unauthorized("the token is not valid")),
            Authenticator::Jwt(jwt) => jwt.verify(token),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `role:token[:agents]` entries from `AGENTPORT_TOKENS` (comma-separated) and
/// `AGENTPORT_TOKENS_FILE` (one per line, `#` comments); agents separated by `|`.
fn tokens(config: &Config) -> anyhow::Result<Vec<(Secret, Caller)>> {
    let mut entries: Vec<String> = Vec::new();
    if let Some(list) = &config.tokens {
        entries.extend(list.expose().split(',').map(str::to_string));
    }
    if let Some(path) = &config.tokens_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading AGENTPORT_TOKENS_FILE {}", path.display()))?;
        entries.extend(text.lines().map(str::to_string));
    }
    let entries: Vec<(Secret, Caller)> = entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty() && !e.starts_with('#'))
        .enumerate()
        .map(|(i, entry)| token_entry(entry).with_context(|| format!("token entry {}", i + 1)))
        .collect::<anyhow::Result<_>>()?;
    if entries.is_empty() {
        bail!("AGENTPORT_AUTH=token needs AGENTPORT_TOKENS or AGENTPORT_TOKENS_FILE");
    }
    Ok(entries)
}

fn token_entry(entry: &str) -> anyhow::Result<(Secret, Caller)> {
    let mut parts = entry.splitn(3, ':');
    let role = parts.next().unwrap_or_default();
    let role = Role::parse(role.trim())
        .with_context(|| format!("role `{role}` is not admin, operator or viewer"))?;
    let token = parts.next().map(str::trim).unwrap_or_default();
    if token.len() < 16 {
        bail!("a token must have at least 16 characters");
    }
    let scope = match parts.next() {
        None => Scope::All,
        Some(agents) => Scope::parse(agents.split('|')),
    };
    let digest = alloy::primitives::keccak256(token.as_bytes());
    let caller = Caller {
        subject: format!("token:{}", alloy::hex::encode(&digest[..6])),
        role,
        scope,
        expires: None,
    };
    Ok((Secret::new(token), caller))
}

/// Verifies JWTs: signature, `exp`, `nbf`, and `aud`/`iss` when configured.
pub struct Jwt {
    keys: Vec<(Option<String>, DecodingKey, Algorithm)>,
    audience: Option<String>,
    issuer: Option<String>,
}

/// What a token says of its bearer.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    agents: Option<AgentsClaim>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AgentsClaim {
    One(String),
    Many(Vec<String>),
}

impl Jwt {
    fn from_config(config: &Config) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        if let Some(secret) = &config.jwt_secret {
            let key = DecodingKey::from_secret(secret.expose().as_bytes())
                .context("AGENTPORT_JWT_SECRET is not usable as an HS256 key")?;
            keys.push((None, key, Algorithm::HS256));
        }
        if let Some(path) = &config.jwt_public_key_file {
            keys.push(public_key(path)?);
        }
        if let Some(path) = &config.jwks_file {
            keys.extend(jwks(path)?);
        }
        if keys.is_empty() {
            bail!(
                "AGENTPORT_AUTH=jwt needs AGENTPORT_JWT_SECRET, AGENTPORT_JWT_PUBLIC_KEY_FILE \
                 or AGENTPORT_JWKS_FILE"
            );
        }
        Ok(Jwt {
            keys,
            audience: config.jwt_audience.clone(),
            issuer: config.jwt_issuer.clone(),
        })
    }

    fn verify(&self, token: &str) -> Result<Caller, Unauthorized> {
        let invalid = Unauthorized("the token is not valid");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid.clone())?;
        let (_, key, algorithm) = self
            .keys
            .iter()
            .find(|(kid, _, alg)| *alg == header.alg && (kid.is_none() || *kid == header.kid))
            .ok_or_else(|| invalid.clone())?;
        let mut validation = Validation::new(*algorithm);
        // A configured audience or issuer must be present, not just right when
        // present.
        let mut required = vec!["exp", "sub"];
        required.extend(self.audience.as_ref().map(|_| "aud"));
        required.extend(self.issuer.as_ref().map(|_| "iss"));
        validation.set_required_spec_claims(&required);
        validation.validate_nbf = true;
        validation.validate_aud = self.audience.is_some();
        if let Some(audience) = &self.audience {
            validation.set_audience(&[audience]);
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|_| invalid.clone())?
            .claims;
        let role = match claims.role.as_deref() {
            None => Role::Viewer,
            Some(role) => Role::parse(role).ok_or(invalid)?,
        };
        let scope = match &claims.agents {
            None => Scope::Only(Vec::new()),
            Some(AgentsClaim::One(one)) => Scope::parse([one.as_str()]),
            Some(AgentsClaim::Many(many)) => Scope::parse(many.iter().map(String::as_str)),
        };
        Ok(Caller {
            // A namespace of its own: no JWT can be `local` or a token.
            subject: format!("jwt:{}", claims.sub),
            role,
            scope,
            expires: Some(claims.exp),
        })
    }
}

fn public_key(path: &Path) -> anyhow::Result<(Option<String>, DecodingKey, Algorithm)> {
    let pem = std::fs::read(path)
        .with_context(|| format!("reading AGENTPORT_JWT_PUBLIC_KEY_FILE {}", path.display()))?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((None, key, Algorithm::RS256));
    }
    let key = DecodingKey::from_ec_pem(&pem)
        .with_context(|| format!("{} is not an RSA or EC public key in PEM", path.display()))?;
    Ok((None, key, Algorithm::ES256))
}

fn jwks(path: &Path) -> anyhow::Result<Vec<(Option<String>, DecodingKey, Algorithm)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading AGENTPORT_JWKS_FILE {}", path.display()))?;
    let set: JwkSet = serde_json::from_str(&text).context("AGENTPORT_JWKS_FILE is not a JWKS")?;
    set.keys
        .iter()
        .map(|jwk| {
            let key = DecodingKey::from_jwk(jwk).context("a JWKS key is not usable")?;
            let algorithm = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => bail!("JWKS keys must be RSA (RS256) or EC (ES256)"),
            };
            Ok((jwk.common.key_id.clone(), key, algorithm))
        })
        .collect()
}

/// The request's token, from the first place that has one.
pub fn token_of(parts: &Parts) -> Option<String> {
    if let Some(PathToken(token)) = parts.extensions.get::<PathToken>() {
        return Some(token.expose().to_string());
    }
    bearer(&parts.headers).or_else(|| subprotocol_token(&parts.headers))
}

/// `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// `Sec-WebSocket-Protocol: bearer, <token>`: what a browser can send.
fn subprotocol_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    let mut offered = value.split(',').map(str::trim);
    while let Some(protocol) = offered.next() {
        if protocol.eq_ignore_ascii_case("bearer") {
            return offered.next().map(str::to_string).filter(|t| !t.is_empty());
        }
    }
    None
}

/// A router state that knows how to authenticate.
pub trait Authenticates {
    fn authenticator(&self) -> &Authenticator;
}

impl<S: Authenticates + Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Unauthorized;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = token_of(parts);
        state.authenticator().authenticate(token.as_deref())
    }
}
