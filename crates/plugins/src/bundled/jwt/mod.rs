//! jwt: a consumer is whoever presents a JSON Web Token signed with one of its `jwt_secrets`,
//! found by the token's `iss` (or `key_claim_name`) claim.
//!
//! The credential decides the algorithm: a token whose `alg` differs from the credential's is
//! refused before any signature check, so an HS256 token cannot be verified with an RSA
//! credential's public key as its HMAC secret, and `alg: none` is no algorithm at all.
//! Signatures are checked with `ring` (HMAC in constant time).

mod schema;
mod token;

use super::auth;
use crate::handler::{Handler, Phase, Phases};
use crate::pdk::{CredentialRef, Ctx, Exit};
use crate::registry::{IndexDef, PluginDef};
use hashbrown::HashMap;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, Method, StatusCode};
use regex::Regex;
use schema::JwtConfig;
use serde_json::{Map, Value, json};
use silverback_model::Row;
use std::any::Any;
use std::sync::{Arc, LazyLock};
use token::{Alg, Token};
use uuid::Uuid;

pub(crate) const NAME: &str = "jwt";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 1450,
        protocols: &["grpc", "grpcs", "http", "https", "ws", "wss"],
        no_consumer: true,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases::ACCESS,
        build,
        index: Some(IndexDef {
            entity: "jwt_secrets",
            build: build_index,
        }),
    }
}

/// A `jwt_secrets` row, with its secret decoded and its public key parsed once per config.
struct Secret {
    id: Uuid,
    consumer: Uuid,
    /// `X-Credential-Identifier`: the credential's key.
    identifier: HeaderValue,
    /// `None` for an algorithm this build cannot verify (ES512).
    alg: Option<Alg>,
    algorithm: String,
    /// The public key as `ring` takes it; `None` when absent or unreadable.
    public_key: Option<Vec<u8>>,
    /// HS* credentials: the HMAC keys of the secret as text and read as base64url
    /// (`secret_is_base64`; `None` when it is not base64url), made once.
    hmac: Option<ring::hmac::Key>,
    hmac_decoded: Option<ring::hmac::Key>,
}

struct Secrets(HashMap<String, Secret>);

fn build_index(rows: &[Arc<Row>]) -> Arc<dyn Any + Send + Sync> {
    let mut secrets = HashMap::with_capacity(rows.len());
    for row in rows {
        let text = |f: &str| row.get(f).and_then(Value::as_str);
        let (Some(id), Some(key), Some(consumer)) = (row.id(), text("key"), auth::consumer_of(row))
        else {
            continue;
        };
        let Ok(identifier) = HeaderValue::from_str(key) else {
            continue;
        };
        let algorithm = text("algorithm").unwrap_or("HS256");
        let secret = text("secret");
        let alg = Alg::parse(algorithm);
        let secret_decoded = secret.and_then(|s| auth::decode_base64url(s.as_bytes()));
        let hmac = |bytes: Option<&[u8]>| alg.and_then(|a| token::hmac_key(a, bytes?));
        secrets.insert(
            key.to_string(),
            Secret {
                id,
                consumer,
                identifier,
                alg,
                algorithm: algorithm.to_string(),
                hmac: hmac(secret.map(str::as_bytes)),
                hmac_decoded: hmac(secret_decoded.as_deref()),
                public_key: text("rsa_public_key").and_then(token::public_key_der),
            },
        );
    }
    Arc::new(Secrets(secrets))
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: JwtConfig = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let base = auth::challenge("Bearer", conf.realm.as_deref());
    let with_error = match &conf.realm {
        Some(_) => format!("{base}, error=\"invalid_token\""),
        None => "Bearer error=\"invalid_token\"".to_string(),
    };
    // Where tokens may come from, so log records redact them (cookies and Authorization
    // always are).
    let secret_names = conf
        .uri_param_names
        .iter()
        .map(|n| Arc::from(n.as_str()))
        .chain(
            conf.header_names
                .iter()
                .map(|h| Arc::from(crate::pdk::header_key(h))),
        )
        .collect();
    Ok(Arc::new(Jwt {
        secret_names,
        header_names: conf
            .header_names
            .iter()
            .map(|h| crate::pdk::header_key(h))
            .collect(),
        challenge: HeaderValue::from_str(&base).map_err(|e| e.to_string())?,
        challenge_error: HeaderValue::from_str(&with_error).map_err(|e| e.to_string())?,
        conf,
    }))
}

struct Jwt {
    conf: JwtConfig,
    header_names: Vec<String>,
    /// Query and header names tokens are read from, redacted in log records.
    secret_names: Vec<Arc<str>>,
    /// `WWW-Authenticate` when no token was sent, and with `error="invalid_token"`.
    challenge: HeaderValue,
    challenge_error: HeaderValue,
}

/// A token as Kong's Lua sees a query argument: text, or `true` for a bare `?jwt`.
#[derive(PartialEq, Eq)]
enum Found {
    Text(String),
    Flag,
}

/// Kong's `\s*[Bb]earer\s+(.+)`, searched anywhere in the header (PCRE's ASCII `\s`).
static BEARER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[ \t\n\x0B\f\r]*[Bb]earer[ \t\n\x0B\f\r]+(.+)").ok());

/// nginx's `$cookie_<name>`: the first cookie of that name (any case), as sent.
fn cookie<'a>(ctx: &'a Ctx, name: &str) -> Option<&'a str> {
    ctx.request
        .headers
        .get_all("cookie")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim_start().split_once('='))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

impl Jwt {
    /// Every distinct token of the request: query arguments, then cookies, then headers.
    fn tokens(&self, ctx: &Ctx) -> Vec<Found> {
        let mut found: Vec<Found> = Vec::new();
        let mut add = |t: Found| {
            if !found.contains(&t) {
                found.push(t);
            }
        };
        if !self.conf.uri_param_names.is_empty() {
            let args = ctx.request.query_args();
            for name in &self.conf.uri_param_names {
                for (_, v) in args.iter().filter(|(k, _)| k == name) {
                    match v {
                        Some(v) if !v.is_empty() => add(Found::Text(v.clone())),
                        Some(_) => {}
                        None => add(Found::Flag),
                    }
                }
            }
        }
        for name in &self.conf.cookie_names {
            if let Some(c) = cookie(ctx, name).filter(|c| !c.is_empty()) {
                add(Found::Text(c.to_string()));
            }
        }
        for name in &self.header_names {
            let token = ctx
                .request
                .header(name)
                .and_then(|h| BEARER.as_ref()?.captures(h)?.get(1));
            if let Some(t) = token {
                add(Found::Text(t.as_str().to_string()));
            }
        }
        found
    }

    fn fail(&self, message: impl Into<String>) -> Exit {
        Exit::message(StatusCode::UNAUTHORIZED, message)
            .with_header(WWW_AUTHENTICATE, self.challenge_error.clone())
    }

    fn fail_claims(&self, errors: Map<String, Value>) -> Exit {
        Exit::json(StatusCode::UNAUTHORIZED, Value::Object(errors))
            .with_header(WWW_AUTHENTICATE, self.challenge_error.clone())
    }

    fn authenticate(&self, ctx: &mut Ctx) -> Result<(), Exit> {
        let mut tokens = self.tokens(ctx);
        if !tokens.is_empty() {
            for name in &self.secret_names {
                ctx.add_secret_name(name.clone());
            }
        }
        let text = match (tokens.pop(), tokens.is_empty()) {
            (None, _) => {
                return Err(Exit::message(StatusCode::UNAUTHORIZED, "Unauthorized")
                    .with_header(WWW_AUTHENTICATE, self.challenge.clone()));
            }
            (Some(_), false) => return Err(self.fail("Multiple tokens provided")),
            (Some(Found::Flag), true) => return Err(self.fail("Unrecognizable token")),
            (Some(Found::Text(t)), true) => t,
        };
        let jwt = Token::parse_for(&text, &self.conf.key_claim_name)
            .map_err(|e| self.fail(format!("Bad token; {e}")))?;

        let claim = &self.conf.key_claim_name;
        let key = match jwt.key_claim(claim) {
            None => return Err(self.fail(format!("No mandatory '{claim}' in claims"))),
            Some(Value::String(s)) if s.is_empty() => {
                return Err(self.fail(format!("Invalid '{claim}' in claims")));
            }
            Some(v) => v,
        };
        let directory = ctx.directory.clone();
        let secret = key
            .as_str()
            .and_then(|k| directory.index::<Secrets>(NAME)?.0.get(k))
            .ok_or_else(|| self.fail(format!("No credentials found for given '{claim}'")))?;

        if jwt.alg != secret.algorithm {
            return Err(self.fail("Invalid algorithm"));
        }
        let Some(alg) = secret.alg else {
            tracing::warn!(
                algorithm = secret.algorithm,
                "jwt: this build cannot verify this algorithm"
            );
            return Err(self.fail("Invalid signature"));
        };
        let verified = if alg.is_hmac() {
            let key = if self.conf.secret_is_base64 {
                secret.hmac_decoded.as_ref()
            } else {
                secret.hmac.as_ref()
            };
            jwt.verify_hmac(key.ok_or_else(|| self.fail("Invalid key/secret"))?)
        } else {
            let key = secret.public_key.as_deref();
            jwt.verify(alg, key.ok_or_else(|| self.fail("Invalid key/secret"))?)
        };
        if !verified {
            return Err(self.fail("Invalid signature"));
        }

        let now = crate::runtime::now_secs() as f64;
        let mut errors = Map::new();
        for name in self.conf.claims_to_verify.iter().flatten() {
            let problem = match (name.as_str(), jwt.claims.get(name).and_then(Value::as_f64)) {
                (_, None) => "must be a number",
                ("exp", Some(exp)) if exp <= now => "token expired",
                ("nbf", Some(nbf)) if nbf > now => "token not valid yet",
                _ => continue,
            };
            errors.insert(name.clone(), Value::from(problem));
        }
        if !errors.is_empty() {
            return Err(self.fail_claims(errors));
        }
        let max = self.conf.maximum_expiration;
        if max > 0.0 {
            let exp = jwt.claims.get("exp").and_then(Value::as_f64);
            if exp.is_none_or(|exp| exp - now > max) {
                let errors = json!({"exp": "exceeds maximum allowed expiration"});
                return Err(Exit::json(StatusCode::UNAUTHORIZED, errors)
                    .with_header(WWW_AUTHENTICATE, self.challenge_error.clone()));
            }
        }

        let Some(consumer) = directory.consumer(&secret.consumer).cloned() else {
            let key = key.as_str().unwrap_or_default();
            return Err(Exit::message(
                StatusCode::UNAUTHORIZED,
                format!("Could not find consumer for '{claim}={key}'"),
            ));
        };
        ctx.authenticate(
            Some(consumer),
            Some(CredentialRef {
                id: secret.id,
                consumer_id: Some(secret.consumer),
                identifier: secret.identifier.clone(),
            }),
        );
        Ok(())
    }
}

impl Handler for Jwt {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        if !self.conf.run_on_preflight && ctx.request.method == Method::OPTIONS {
            return Phase::CONTINUE;
        }
        auth::run(ctx, self.conf.anonymous.as_deref(), |ctx| {
            self.authenticate(ctx)
        })
    }
}
