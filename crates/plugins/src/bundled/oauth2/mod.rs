//! oauth2: an OAuth 2.0 authorization server on the route's own paths (`/oauth2/authorize`,
//! `/oauth2/token`) and bearer-token authentication for everything else on the route.
//!
//! Client applications are `oauth2_credentials` (config, indexed here per snapshot); codes and
//! tokens are runtime state written through [`crate::runtime::OAuth2Tokens`], never through
//! the config, so issuing a token does not rebuild anything.
//!
//! The endpoints require HTTPS, as in Kong: a plain request passes only with
//! `accept_http_if_already_terminated` and `X-Forwarded-Proto: https` from a client in
//! `trusted_ips` (a TLS-terminating proxy in front). Bearer-token access has no such rule.
//! PKCE follows Kong 3.10: S256 only (`plain` is refused).

mod flows;
mod schema;

use crate::handler::{Handler, Phase, Phases};
use crate::pdk::{ArgValue, BodyArgs, ConsumerRef, CredentialRef, Ctx, Exit, QueryValue};
use crate::registry::{IndexDef, PluginDef};
use crate::runtime::now_secs;
use hashbrown::HashMap;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use schema::OAuth2Config;
use serde_json::Value;
use silverback_model::Row;
use std::any::Any;
use std::sync::Arc;
use uuid::Uuid;

/// The query/body parameter a token may come in, redacted in log records.
static ACCESS_TOKEN_NAME: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| Arc::from("access_token"));

pub(crate) const NAME: &str = "oauth2";

const AUTHENTICATED_SCOPE: HeaderName = HeaderName::from_static("x-authenticated-scope");
const AUTHENTICATED_USERID: HeaderName = HeaderName::from_static("x-authenticated-userid");

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 1400,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: true,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases::ACCESS,
        build,
        index: Some(IndexDef {
            entity: "oauth2_credentials",
            build: build_index,
        }),
    }
}

/// A client application (`oauth2_credentials` row).
#[derive(Debug)]
pub(crate) struct Client {
    pub id: Uuid,
    pub consumer: Uuid,
    pub client_secret: Option<String>,
    pub hash_secret: bool,
    /// `None` when the application has none (Kong then refuses it where a redirect URI is
    /// checked).
    pub redirect_uris: Option<Vec<String>>,
    pub public: bool,
    identifier: HeaderValue,
}

impl Client {
    pub fn verify_secret(&self, candidate: Option<&str>) -> bool {
        match (&self.client_secret, candidate) {
            (Some(stored), Some(c)) => {
                silverback_model::entities::credentials::verify_client_secret(
                    stored,
                    self.hash_secret,
                    c,
                )
            }
            _ => false,
        }
    }

    pub fn client_type(&self) -> &'static str {
        if self.public {
            "public"
        } else {
            "confidential"
        }
    }
}

/// Client applications by `client_id` and by id.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    by_client_id: HashMap<String, Arc<Client>>,
    by_id: HashMap<Uuid, Arc<Client>>,
}

fn build_index(rows: &[Arc<Row>]) -> Arc<dyn Any + Send + Sync> {
    let mut clients = Clients::default();
    for row in rows {
        let text = |f: &str| row.get(f).and_then(Value::as_str).map(str::to_string);
        let (Some(id), Some(client_id), Some(consumer)) = (
            row.id(),
            text("client_id"),
            row.get("consumer")
                .and_then(|c| c.get("id"))
                .and_then(Value::as_str)
                .and_then(|c| c.parse().ok()),
        ) else {
            continue;
        };
        let client = Arc::new(Client {
            id,
            consumer,
            identifier: HeaderValue::from_str(&client_id)
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            client_secret: text("client_secret"),
            hash_secret: row.get("hash_secret") == Some(&Value::Bool(true)),
            redirect_uris: row.get("redirect_uris").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            }),
            public: text("client_type").as_deref() == Some("public"),
        });
        clients.by_client_id.insert(client_id, client.clone());
        clients.by_id.insert(id, client);
    }
    Arc::new(clients)
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: OAuth2Config = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let bearer = |error: Option<&str>, description: Option<&str>| {
        let mut params = Vec::new();
        if let Some(realm) = conf.realm.as_deref().filter(|r| !r.is_empty()) {
            params.push(format!("realm=\"{realm}\""));
        }
        if let Some(e) = error {
            params.push(format!("error=\"{e}\""));
        }
        if let Some(d) = description {
            params.push(format!("error_description=\"{d}\""));
        }
        let text = if params.is_empty() {
            "Bearer".to_string()
        } else {
            format!("Bearer {}", params.join(", "))
        };
        HeaderValue::from_str(&text).map_err(|e| e.to_string())
    };
    Ok(Arc::new(OAuth2 {
        missing_challenge: bearer(None, None)?,
        invalid_challenge: bearer(Some("invalid_token"), Some(INVALID_TOKEN))?,
        auth_header: conf
            .auth_header_name
            .clone()
            .unwrap_or_else(|| "authorization".into())
            .to_ascii_lowercase(),
        token_expiration: conf.token_expiration.max(0.0) as i64,
        conf,
    }))
}

const INVALID_TOKEN: &str = "The access token is invalid or has expired";

pub(crate) struct OAuth2 {
    pub conf: OAuth2Config,
    pub auth_header: String,
    pub token_expiration: i64,
    missing_challenge: HeaderValue,
    invalid_challenge: HeaderValue,
}

/// A request parameter: text, or something else (a repeated field, a JSON number or object, a
/// bare query flag) that Kong's Lua sees as a non-string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Other,
}

/// Kong's `retrieve_parameters`: the query, merged with the body for POST, PUT and PATCH (the
/// body wins).
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, Param>);

impl Params {
    fn from_request(ctx: &Ctx) -> Params {
        let mut map: HashMap<String, Param> = HashMap::new();
        let req = &ctx.request;
        for (k, _) in req.query_args() {
            if map.contains_key(&k) {
                continue;
            }
            let v = match req.query_arg(&k) {
                QueryValue::One(v) => Param::Text(v),
                _ => Param::Other,
            };
            map.insert(k, v);
        }
        if matches!(req.method, Method::POST | Method::PUT | Method::PATCH)
            && let Ok(body) = req.body_args()
        {
            let names: Vec<String> = match &body {
                BodyArgs::Form(p) | BodyArgs::Multipart { parts: p, .. } => {
                    p.iter().map(|(k, _)| k.clone()).collect()
                }
                BodyArgs::Json(o) => o.keys().cloned().collect(),
            };
            for k in names {
                let v = match body.get(&k) {
                    ArgValue::Text(v) => Param::Text(v.to_string()),
                    ArgValue::Missing => continue,
                    ArgValue::Table | ArgValue::Scalar => Param::Other,
                };
                map.insert(k, v);
            }
        }
        Params(map)
    }

    /// A text parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(Param::Text(s)) => Some(s),
            _ => None,
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// An OAuth 2.0 error body (`error`, `error_description`).
pub(crate) fn oauth_error(
    error: &str,
    description: impl Into<String>,
) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("error".into(), Value::String(error.into()));
    m.insert(
        "error_description".into(),
        Value::String(description.into()),
    );
    m
}

enum AuthFailure {
    /// Answered as it is, even with `anonymous` set (Kong exits from inside its lookup).
    Exit(Exit),
    Unauthorized(Exit),
}

impl OAuth2 {
    fn unauthorized(&self, error: &str, description: &str, challenge: &HeaderValue) -> Exit {
        Exit::json(
            StatusCode::UNAUTHORIZED,
            Value::Object(oauth_error(error, description)),
        )
        .with_header(WWW_AUTHENTICATE, challenge.clone())
    }

    fn invalid_token(&self) -> AuthFailure {
        AuthFailure::Unauthorized(self.unauthorized(
            "invalid_token",
            INVALID_TOKEN,
            &self.invalid_challenge,
        ))
    }

    /// Kong's `parse_access_token`: the Authorization header (`Bearer x` or `Token x`; any
    /// other value is taken whole), else an `access_token` parameter. Hides it when asked.
    fn access_token(&self, ctx: &mut Ctx) -> Option<String> {
        let req = &mut ctx.request;
        if let Some(value) = req.header(&self.auth_header).map(str::to_string) {
            let parts: Vec<&str> = value.split_whitespace().collect();
            let (token, in_header) = match parts.as_slice() {
                [kind, token]
                    if kind.eq_ignore_ascii_case("bearer")
                        || kind.eq_ignore_ascii_case("token") =>
                {
                    (token.to_string(), true)
                }
                _ => (value.clone(), false),
            };
            if self.conf.hide_credentials && in_header {
                req.clear_header(&self.auth_header);
            }
            return Some(token);
        }
        let token = Params::from_request(ctx).get("access_token")?.to_string();
        ctx.add_secret_name(ACCESS_TOKEN_NAME.clone());
        if self.conf.hide_credentials {
            let req = &mut ctx.request;
            req.clear_query_arg("access_token");
            let form = req
                .header("content-type")
                .is_some_and(|ct| ct.contains("application/x-www-form-urlencoded"));
            if req.method != Method::GET
                && form
                && let Ok(mut args) = req.body_args()
            {
                args.remove("access_token");
                req.set_body_args(&args);
            }
        }
        Some(token)
    }

    /// Kong's `do_authentication`.
    async fn authenticate(&self, ctx: &mut Ctx) -> Result<(), AuthFailure> {
        let token = match self.access_token(ctx) {
            Some(t) if !t.is_empty() => t,
            _ => {
                return Err(AuthFailure::Unauthorized(self.unauthorized(
                    "invalid_request",
                    "The access token is missing",
                    &self.missing_challenge,
                )));
            }
        };
        let runtime = ctx.runtime.clone();
        let token = runtime
            .oauth2
            .by_access(&token)
            .await
            .map_err(|e| {
                tracing::error!(request_id = ctx.request_id(), error = %e, "oauth2 token lookup failed");
                AuthFailure::Exit(Exit::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unexpected error occurred",
                ))
            })?
            .ok_or_else(|| self.invalid_token())?;
        let service = ctx.service.as_ref().map(|s| s.id);
        if !self.conf.global_credentials {
            match token.service {
                None => {
                    return Err(AuthFailure::Exit(self.unauthorized(
                        "invalid_token",
                        "The access token is global, but the current plugin is configured \
                         without 'global_credentials'",
                        &self.invalid_challenge,
                    )));
                }
                Some(s) if Some(s) != service => return Err(self.invalid_token()),
                Some(_) => {}
            }
        } else if token.service.is_some_and(|s| Some(s) != service) {
            return Err(self.invalid_token());
        }
        if token.is_expired(now_secs()) {
            return Err(self.invalid_token());
        }
        let directory = ctx.directory.clone();
        let client = directory
            .index::<Clients>(NAME)
            .and_then(|c| c.by_id.get(&token.credential))
            .ok_or_else(|| self.invalid_token())?;
        let consumer = directory
            .consumer(&client.consumer)
            .cloned()
            .ok_or_else(|| self.invalid_token())?;
        set_consumer(
            ctx,
            Some(consumer),
            Some(client),
            token.scope.as_deref(),
            token.authenticated_userid.as_deref(),
        );
        Ok(())
    }

    async fn access_async(&self, ctx: &mut Ctx) -> Option<Exit> {
        let path = ctx.request.path();
        let path = path.strip_suffix('/').unwrap_or(path);
        let endpoint = if path.ends_with("/oauth2/token") {
            Some(("token", true))
        } else if path.ends_with("/oauth2/authorize") {
            Some(("authorization", false))
        } else {
            None
        };
        if let Some((name, token)) = endpoint {
            if ctx.request.method != Method::POST {
                let description = format!(
                    "The HTTP method {} is invalid for the {name} endpoint",
                    ctx.request.method
                );
                let challenge = self.challenge_for("invalid_method", &description);
                return Some(
                    Exit::json(
                        StatusCode::METHOD_NOT_ALLOWED,
                        Value::Object(oauth_error("invalid_method", description)),
                    )
                    .with_header(WWW_AUTHENTICATE, challenge),
                );
            }
            return Some(if token {
                self.issue_token(ctx).await
            } else {
                self.authorize(ctx).await
            });
        }
        let Some(anonymous) = &self.conf.anonymous else {
            return match self.authenticate(ctx).await {
                Ok(()) => None,
                Err(AuthFailure::Exit(e) | AuthFailure::Unauthorized(e)) => Some(e),
            };
        };
        if ctx.has_credential() {
            ctx.request.clear_header(AUTHENTICATED_SCOPE.as_str());
            ctx.request.clear_header(AUTHENTICATED_USERID.as_str());
            return None;
        }
        match self.authenticate(ctx).await {
            Ok(()) => None,
            Err(AuthFailure::Exit(e)) => Some(e),
            Err(AuthFailure::Unauthorized(_)) => {
                let consumer = ctx.directory.consumer_by_id_or_username(anonymous).cloned();
                match consumer {
                    Some(c) => {
                        set_consumer(ctx, Some(c), None, None, None);
                        None
                    }
                    // Not found: Kong's 500 for a missing anonymous consumer.
                    None => ctx.authenticate_anonymous(anonymous).err(),
                }
            }
        }
    }

    fn challenge_for(&self, error: &str, description: &str) -> HeaderValue {
        let mut params = Vec::new();
        if let Some(realm) = self.conf.realm.as_deref().filter(|r| !r.is_empty()) {
            params.push(format!("realm=\"{realm}\""));
        }
        params.push(format!("error=\"{error}\""));
        params.push(format!("error_description=\"{description}\""));
        HeaderValue::from_str(&format!("Bearer {}", params.join(", ")))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }
}

/// Kong's oauth2 `set_consumer`: the consumer headers, `X-Credential-Identifier` (the
/// client_id), and the token's scope and user.
fn set_consumer(
    ctx: &mut Ctx,
    consumer: Option<Arc<ConsumerRef>>,
    client: Option<&Arc<Client>>,
    scope: Option<&str>,
    userid: Option<&str>,
) {
    ctx.authenticate(
        consumer,
        client.map(|c| CredentialRef {
            id: c.id,
            consumer_id: Some(c.consumer),
            identifier: c.identifier.clone(),
        }),
    );
    let req = &mut ctx.request;
    for (name, value) in [(AUTHENTICATED_SCOPE, scope), (AUTHENTICATED_USERID, userid)] {
        match value.and_then(|v| HeaderValue::from_str(v).ok()) {
            Some(v) => req.set_header(name, v),
            None => req.clear_header(name.as_str()),
        }
    }
}

impl Handler for OAuth2 {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        Phase::Pending(Box::pin(async move {
            Ok(match self.access_async(ctx).await {
                Some(exit) => crate::handler::Flow::Exit(exit),
                None => crate::handler::Flow::Continue,
            })
        }))
    }

    /// The token endpoints read their parameters from the body, and tokens may come in it.
    fn reads_body(&self) -> bool {
        true
    }
}

/// Kong's JSON answer of the OAuth endpoints (never cached by the client).
pub(crate) fn endpoint_reply(status: StatusCode, body: Value) -> Exit {
    Exit::json(status, body)
        .with_header(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        )
        .with_header(http::header::PRAGMA, HeaderValue::from_static("no-cache"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_requires_a_flow_and_scopes_with_mandatory_scope() {
        let v = silverback_model::schema::Validator::new(0);
        let record = schema::config();
        let mut errors = silverback_model::schema::FieldErrors::default();
        let mut m = json!({}).as_object().unwrap().clone();
        v.process(&record, &mut m, &mut errors);
        assert!(
            errors
                .summary()
                .contains("at least one of these fields must be true")
        );
        assert_eq!(m["token_expiration"], json!(7200));
        assert_eq!(m["refresh_token_ttl"], json!(1_209_600));
        assert_eq!(m["pkce"], json!("lax"));
        assert_eq!(m["provision_key"].as_str().unwrap().len(), 32);

        let mut errors = silverback_model::schema::FieldErrors::default();
        let mut m = json!({"enable_password_grant": true, "mandatory_scope": true})
            .as_object()
            .unwrap()
            .clone();
        v.process(&record, &mut m, &mut errors);
        assert!(errors.summary().contains("scopes"), "{}", errors.summary());
        assert!(build(&Value::Object(m)).is_ok());
    }
}
