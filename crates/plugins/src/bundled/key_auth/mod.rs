//! key-auth: a consumer is whoever holds a key, sent in a header, the query string or the body.

mod schema;

use crate::handler::{Handler, Phase, Phases};
use crate::pdk::{ArgValue, CredentialRef, Ctx, Exit, QueryValue};
use crate::registry::{IndexDef, PluginDef};
use hashbrown::HashMap;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, Method, StatusCode};
use schema::KeyAuthConfig;
use serde_json::Value;
use silverback_model::Row;
use silverback_model::entities::credentials;
use std::any::Any;
use std::sync::Arc;
use uuid::Uuid;

pub(crate) const NAME: &str = "key-auth";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 1250,
        protocols: &["grpc", "grpcs", "http", "https", "ws", "wss"],
        no_consumer: true,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases::ACCESS,
        build,
        index: Some(IndexDef {
            entity: "keyauth_credentials",
            build: build_index,
        }),
    }
}

/// A key's credential.
#[derive(Debug)]
struct Credential {
    id: Uuid,
    consumer: Uuid,
    /// When a key with a `ttl` stops working.
    expires_at: Option<i64>,
    identifier: HeaderValue,
}

/// Credentials by key. A `HashMap` with a randomly keyed SipHash: lookup time does not leak
/// how much of a wrong key matched a stored one.
#[derive(Debug, Default)]
struct Keys(HashMap<String, Credential>);

fn build_index(rows: &[Arc<Row>]) -> Arc<dyn Any + Send + Sync> {
    let mut keys = Keys::default();
    for row in rows {
        let (Some(id), Some(key), Some(consumer)) = (
            row.id(),
            row.get("key").and_then(Value::as_str),
            row.get("consumer")
                .and_then(|c| c.get("id"))
                .and_then(Value::as_str)
                .and_then(|c| c.parse().ok()),
        ) else {
            continue;
        };
        let expires_at = credentials::expires_at(
            row.get("created_at").and_then(Value::as_i64),
            row.get("ttl").and_then(Value::as_i64),
        );
        keys.0.insert(
            key.to_string(),
            Credential {
                id,
                consumer,
                expires_at,
                identifier: HeaderValue::from_str(&id.to_string())
                    .unwrap_or_else(|_| HeaderValue::from_static("")),
            },
        );
    }
    Arc::new(keys)
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: KeyAuthConfig = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let challenge = match &conf.realm {
        Some(realm) => format!("Key realm=\"{realm}\""),
        None => "Key".to_string(),
    };
    // Both spellings, so log records redact the key wherever it came from.
    let secret_names = conf
        .key_names
        .iter()
        .map(|n| (Arc::from(n.as_str()), Arc::from(crate::pdk::header_key(n))))
        .collect();
    Ok(Arc::new(KeyAuth {
        secret_names,
        header_names: conf
            .key_names
            .iter()
            .map(|n| crate::pdk::header_key(n))
            .collect(),
        challenge: HeaderValue::from_str(&challenge).map_err(|e| e.to_string())?,
        conf,
    }))
}

struct KeyAuth {
    conf: KeyAuthConfig,
    /// `key_names` as header names: nginx reads `api_key` as the header `api-key`.
    header_names: Vec<String>,
    /// Each key name as a query/body argument and as a header, for log redaction.
    secret_names: Vec<(Arc<str>, Arc<str>)>,
    challenge: HeaderValue,
}

enum Failure {
    NoKey,
    Duplicate,
    Invalid,
}

impl KeyAuth {
    fn unauthorized(&self, message: &str) -> Exit {
        Exit::error(StatusCode::UNAUTHORIZED, message)
            .with_header(WWW_AUTHENTICATE, self.challenge.clone())
    }

    /// The key of the request, per Kong's search order: for each name, header, then query,
    /// then body. Hides it from the upstream when asked.
    fn find_key(&self, ctx: &mut Ctx) -> Result<String, Failure> {
        let req = &mut ctx.request;
        let mut body = None;
        for (i, (name, header)) in self
            .conf
            .key_names
            .iter()
            .zip(&self.header_names)
            .enumerate()
        {
            let mut found = None;
            if self.conf.key_in_header {
                let mut sent = req.header_values(header);
                match (sent.next(), sent.next()) {
                    (None, _) => {}
                    (Some(v), None) => found = std::str::from_utf8(v).ok().map(str::to_string),
                    (Some(_), Some(_)) => return Err(Failure::Duplicate),
                }
            }
            if found.is_none() && self.conf.key_in_query {
                match req.query_arg(name) {
                    QueryValue::One(v) => found = Some(v),
                    QueryValue::Many => return Err(Failure::Duplicate),
                    QueryValue::Flag | QueryValue::Missing => {}
                }
            }
            if found.is_none() && self.conf.key_in_body {
                let args = body.get_or_insert_with(|| req.body_args().ok());
                if let Some(args) = args {
                    match args.get(name) {
                        ArgValue::Text(v) => found = Some(v.to_string()),
                        ArgValue::Table => return Err(Failure::Duplicate),
                        ArgValue::Missing | ArgValue::Scalar => {}
                    }
                }
            }
            let Some(key) = found else { continue };
            if self.conf.hide_credentials {
                req.clear_query_arg(name);
                req.clear_header(header);
                if self.conf.key_in_body {
                    let args = body.get_or_insert_with(|| req.body_args().ok());
                    if let Some(args) = args {
                        args.remove(name);
                        let args = args.clone();
                        req.set_body_args(&args);
                    }
                }
            }
            if let Some((arg, header)) = self.secret_names.get(i) {
                ctx.add_secret_name(arg.clone());
                ctx.add_secret_name(header.clone());
            }
            return if key.is_empty() {
                Err(Failure::NoKey)
            } else {
                Ok(key)
            };
        }
        Err(Failure::NoKey)
    }

    fn authenticate(&self, ctx: &mut Ctx) -> Result<(), Failure> {
        let key = self.find_key(ctx)?;
        let directory = ctx.directory.clone();
        let keys = directory.index::<Keys>(NAME).ok_or(Failure::Invalid)?;
        let cred = keys.0.get(&key).ok_or(Failure::Invalid)?;
        if cred
            .expires_at
            .is_some_and(|t| t <= crate::runtime::now_secs())
        {
            return Err(Failure::Invalid);
        }
        let credential = CredentialRef {
            id: cred.id,
            consumer_id: Some(cred.consumer),
            identifier: cred.identifier.clone(),
        };
        if ctx.authenticate_credential(credential) {
            Ok(())
        } else {
            Err(Failure::Invalid)
        }
    }
}

impl Handler for KeyAuth {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        if !self.conf.run_on_preflight && ctx.request.method == Method::OPTIONS {
            return Phase::CONTINUE;
        }
        let Some(anonymous) = &self.conf.anonymous else {
            // Logical AND: this plugin must authenticate the request.
            return match self.authenticate(ctx) {
                Ok(()) => Phase::CONTINUE,
                Err(Failure::NoKey) => self.unauthorized("No API key found in request").into(),
                Err(Failure::Duplicate) => self.unauthorized("Duplicate API key found").into(),
                Err(Failure::Invalid) => self.unauthorized("Unauthorized").into(),
            };
        };
        // Logical OR: an earlier authentication plugin may already have succeeded; otherwise
        // a failure falls back to the anonymous consumer.
        if ctx.has_credential() || self.authenticate(ctx).is_ok() {
            return Phase::CONTINUE;
        }
        match ctx.authenticate_anonymous(anonymous) {
            Ok(()) => Phase::CONTINUE,
            Err(exit) => exit.into(),
        }
    }

    fn reads_body(&self) -> bool {
        self.conf.key_in_body
    }
}
