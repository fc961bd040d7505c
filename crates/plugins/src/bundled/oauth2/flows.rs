//! The OAuth 2.0 endpoints: `/oauth2/authorize` (authorization code and implicit grants) and
//! `/oauth2/token` (authorization_code, client_credentials, password and refresh_token
//! grants), with Kong's checks in Kong's order, its error codes and descriptions.

use super::{Client, Clients, NAME, OAuth2, Params, endpoint_reply, oauth_error};
use crate::handler::PluginError;
use crate::pdk::{Ctx, Exit};
use crate::runtime::{AuthorizationCode, Token, now_secs};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::StatusCode;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use silverback_model::schema::random_string;
use std::sync::Arc;
use uuid::Uuid;

/// How long an authorization code lives (Kong: 5 minutes).
const CODE_TTL: i64 = 300;

type Fields = Map<String, Value>;

fn has_error(m: &Fields) -> bool {
    m.contains_key("error")
}

fn lookup_client(ctx: &Ctx, client_id: Option<&str>) -> Option<Arc<Client>> {
    let id = client_id.filter(|c| !c.is_empty())?;
    ctx.directory
        .index::<Clients>(NAME)?
        .by_client_id
        .get(id)
        .cloned()
}

/// Kong's `check_https`: plain HTTP passes only with `accept_http_if_already_terminated`
/// and `X-Forwarded-Proto: https` from a trusted client.
fn check_https(ctx: &Ctx, accept_terminated: bool) -> Result<(), &'static str> {
    const DENIED: &str = "You must use HTTPS";
    if ctx.request.scheme == crate::pdk::Scheme::Https {
        return Ok(());
    }
    if !accept_terminated || !ctx.client_trusted {
        return Err(DENIED);
    }
    let req = &ctx.request;
    let Some(proto) = req.header("x-forwarded-proto") else {
        return Err(DENIED);
    };
    if proto.contains(',') || req.header_count("x-forwarded-proto") > 1 {
        return Err("Only one X-Forwarded-Proto header allowed");
    }
    if proto.eq_ignore_ascii_case("https") {
        Ok(())
    } else {
        Err(DENIED)
    }
}

/// `base64url(sha256(verifier))` without padding.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Kong's `retrieve_code_challenge`: the challenge (normalized to unpadded base64url) and its
/// method; only S256 is supported.
fn code_challenge(p: &Params) -> Result<(Option<String>, Option<String>), String> {
    let challenge = p.get("code_challenge");
    let method = p.get("code_challenge_method");
    if method.is_some() && challenge.is_none() {
        return Err("code_challenge is required when code_method is present".into());
    }
    let Some(challenge) = challenge else {
        return Ok((None, None));
    };
    let decoded = URL_SAFE_NO_PAD
        .decode(
            challenge
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_"),
        )
        .ok();
    let challenge = decoded.map_or_else(|| challenge.to_string(), |d| URL_SAFE_NO_PAD.encode(d));
    match method {
        None | Some("S256" | "s256") => Ok((Some(challenge), Some("S256".into()))),
        Some(_) => Err("code_challenge_method is not supported, must be S256".into()),
    }
}

impl OAuth2 {
    /// Kong's `retrieve_scope`: the requested scopes, all of which must be configured.
    fn scope(&self, p: &Params) -> Result<Option<String>, Fields> {
        let mut scopes = Vec::new();
        match (&self.conf.scopes, p.has("scope")) {
            (Some(allowed), true) => {
                let Some(scope) = p.get("scope") else {
                    return Err(oauth_error("invalid_scope", "scope must be a string"));
                };
                for s in scope.split_whitespace() {
                    if !allowed.iter().any(|a| a == s) {
                        return Err(oauth_error(
                            "invalid_scope",
                            format!("\"{s}\" is an invalid scope"),
                        ));
                    }
                    scopes.push(s);
                }
            }
            (_, false) if self.conf.mandatory_scope => {
                return Err(oauth_error("invalid_scope", "You must specify a scope"));
            }
            _ => {}
        }
        Ok((!scopes.is_empty()).then(|| scopes.join(" ")))
    }

    /// Kong's `requires_pkce`.
    fn requires_pkce(&self, client: &Client, used_pkce: bool) -> bool {
        let pkce = self.conf.pkce.as_deref().unwrap_or("lax");
        used_pkce || (client.public && pkce != "none") || (!client.public && pkce == "strict")
    }

    fn service_id(&self, ctx: &Ctx) -> Option<Uuid> {
        if self.conf.global_credentials {
            None
        } else {
            ctx.service.as_ref().map(|s| s.id)
        }
    }

    /// Kong's `generate_token`: a new token (or, refreshing with `reuse_refresh_token`, the
    /// old one with a new access token), as the endpoint returns it.
    async fn generate_token(
        &self,
        ctx: &Ctx,
        client: &Client,
        userid: Option<String>,
        scope: Option<String>,
        disable_refresh: bool,
        existing: Option<&Token>,
    ) -> Result<Fields, PluginError> {
        let expiration = self.token_expiration;
        let row_ttl = (expiration > 0 && self.conf.refresh_token_ttl > 0)
            .then_some(self.conf.refresh_token_ttl);
        let tokens = &ctx.runtime.oauth2;
        let now = now_secs();
        let token = match existing {
            Some(old) if self.conf.reuse_refresh_token => {
                let t = Token {
                    access_token: random_string(),
                    expires_in: expiration,
                    created_at: now,
                    ttl: row_ttl,
                    ..old.clone()
                };
                tokens.update(t.clone()).await?;
                t
            }
            _ => {
                let refresh = (!disable_refresh && expiration > 0).then(random_string);
                let t = Token {
                    id: Uuid::new_v4(),
                    created_at: now,
                    service: self.service_id(ctx),
                    credential: client.id,
                    expires_in: expiration,
                    access_token: random_string(),
                    refresh_token: refresh,
                    authenticated_userid: userid,
                    scope,
                    ttl: row_ttl,
                };
                tokens.insert(t.clone()).await?;
                t
            }
        };
        let mut out = Fields::new();
        out.insert("access_token".into(), token.access_token.into());
        out.insert("token_type".into(), "bearer".into());
        if expiration > 0 {
            out.insert("expires_in".into(), token.expires_in.into());
        }
        if let Some(r) = token.refresh_token {
            out.insert("refresh_token".into(), r.into());
        }
        Ok(out)
    }

    /// `POST /oauth2/authorize`.
    pub(super) async fn authorize(&self, ctx: &mut Ctx) -> Exit {
        match self.authorize_inner(ctx).await {
            Ok(exit) => exit,
            Err(e) => internal(ctx, &e),
        }
    }

    async fn authorize_inner(&self, ctx: &mut Ctx) -> Result<Exit, PluginError> {
        let p = Params::from_request(ctx);
        let state = p.get("state").map(str::to_string);
        let mut response = Fields::new();
        let mut redirect_uri: Option<String> = None;
        let mut implicit = false;
        if let Err(description) = check_https(ctx, self.conf.accept_http_if_already_terminated) {
            response = oauth_error("access_denied", description);
        } else if p.get("provision_key") != Some(self.conf.provision_key.as_str()) {
            response = oauth_error("invalid_provision_key", "Invalid provision_key");
        } else if p
            .get("authenticated_userid")
            .is_none_or(|u| u.trim().is_empty())
        {
            response = oauth_error(
                "invalid_authenticated_userid",
                "Missing authenticated_userid parameter",
            );
        } else {
            let response_type = p.get("response_type");
            let code_flow = response_type == Some("code") && self.conf.enable_authorization_code;
            let token_flow = response_type == Some("token") && self.conf.enable_implicit_grant;
            if !code_flow && !token_flow {
                response = oauth_error("unsupported_response_type", "Invalid response_type");
            }
            let scopes = match self.scope(&p) {
                Ok(s) => s,
                Err(e) => {
                    response = e;
                    None
                }
            };
            let client = lookup_client(ctx, p.get("client_id"));
            match client.as_ref().and_then(|c| c.redirect_uris.as_ref()) {
                None => {
                    response = oauth_error("invalid_client", "Invalid client authentication");
                }
                Some(allowed) => {
                    let wanted = p
                        .get("redirect_uri")
                        .map(str::to_string)
                        .or_else(|| allowed.first().cloned());
                    if wanted
                        .as_ref()
                        .is_some_and(|w| allowed.iter().any(|a| a == w))
                    {
                        redirect_uri = wanted;
                    } else {
                        response = oauth_error(
                            "invalid_request",
                            "Invalid redirect_uri that does not match with any redirect_uri \
                             created with the application",
                        );
                        redirect_uri = allowed.first().cloned();
                    }
                }
            }
            let (challenge, method) = match code_challenge(&p) {
                Ok((challenge, method)) => {
                    if let Some(c) = &client
                        && challenge.is_none()
                        && self.requires_pkce(c, false)
                    {
                        response = oauth_error(
                            "invalid_request",
                            format!("code_challenge is required for {} clients", c.client_type()),
                        );
                    }
                    (challenge, method)
                }
                Err(e) => {
                    response = oauth_error("invalid_request", e);
                    (None, None)
                }
            };
            if !has_error(&response)
                && let Some(client) = &client
            {
                if response_type == Some("code") {
                    let code = AuthorizationCode {
                        id: Uuid::new_v4(),
                        created_at: now_secs(),
                        service: self.service_id(ctx),
                        credential: client.id,
                        code: random_string(),
                        authenticated_userid: p.get("authenticated_userid").map(str::to_string),
                        scope: scopes,
                        challenge,
                        challenge_method: method,
                        plugin: ctx.plugin_id(),
                        ttl: Some(CODE_TTL),
                    };
                    ctx.runtime.oauth2.store().insert_code(code.clone()).await?;
                    response.insert("code".into(), code.code.into());
                } else {
                    response = self
                        .generate_token(
                            ctx,
                            client,
                            p.get("authenticated_userid").map(str::to_string),
                            scopes,
                            true,
                            None,
                        )
                        .await?;
                    implicit = true;
                }
            }
        }
        if let Some(s) = &state {
            response.insert("state".into(), s.clone().into());
        }
        let status = if has_error(&response) {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        let body = match redirect_uri {
            Some(uri) => {
                let mut m = Fields::new();
                m.insert(
                    "redirect_uri".into(),
                    add_params(&uri, &response, implicit).into(),
                );
                Value::Object(m)
            }
            None => Value::Object(response),
        };
        Ok(endpoint_reply(status, body))
    }

    /// `POST /oauth2/token`.
    pub(super) async fn issue_token(&self, ctx: &mut Ctx) -> Exit {
        match self.issue_token_inner(ctx).await {
            Ok(exit) => exit,
            Err(e) => internal(ctx, &e),
        }
    }

    async fn issue_token_inner(&self, ctx: &mut Ctx) -> Result<Exit, PluginError> {
        let p = Params::from_request(ctx);
        let state = p.get("state").map(str::to_string);
        let mut response = Fields::new();
        // A failed client authentication by Basic header answers 401 with a challenge.
        let mut basic_failure = false;
        if let Err(description) = check_https(ctx, self.conf.accept_http_if_already_terminated) {
            response = oauth_error("access_denied", description);
        } else {
            let grant = p.get("grant_type");
            let supported = match grant {
                Some("authorization_code" | "refresh_token") => true,
                Some("client_credentials") => self.conf.enable_client_credentials,
                Some("password") => self.conf.enable_password_grant,
                _ => false,
            };
            if !supported {
                response = oauth_error("unsupported_grant_type", "Invalid grant_type");
            }
            let (client_id, secret, from_header) = self.client_credentials(ctx, &p);
            let client = lookup_client(ctx, client_id.as_deref());
            if grant != Some("client_credentials") {
                match client.as_ref().and_then(|c| c.redirect_uris.as_ref()) {
                    Some(allowed) => {
                        let wanted = p
                            .get("redirect_uri")
                            .map(str::to_string)
                            .or_else(|| allowed.first().cloned());
                        if !wanted
                            .as_ref()
                            .is_some_and(|w| allowed.iter().any(|a| a == w))
                        {
                            response = oauth_error(
                                "invalid_request",
                                "Invalid redirect_uri that does not match with any \
                                 redirect_uri created with the application",
                            );
                        }
                    }
                    None => {
                        response = oauth_error("invalid_client", "Invalid client authentication");
                        basic_failure = from_header;
                    }
                }
            }
            if let Some(c) = &client {
                if !c.public {
                    if !c.verify_secret(secret.as_deref()) {
                        response = oauth_error("invalid_client", "Invalid client authentication");
                        basic_failure = from_header;
                    }
                } else if secret.as_deref().is_some_and(|s| !s.trim().is_empty()) {
                    response = oauth_error(
                        "invalid_request",
                        "client_secret is disallowed for public clients",
                    );
                }
            }
            if !has_error(&response) {
                response = match (grant, client) {
                    (Some("authorization_code"), Some(c)) => self.grant_code(ctx, &p, &c).await?,
                    (Some("client_credentials"), c) => {
                        self.grant_client_credentials(ctx, &p, c.as_deref()).await?
                    }
                    (Some("password"), Some(c)) => self.grant_password(ctx, &p, &c).await?,
                    (Some("refresh_token"), Some(c)) => self.grant_refresh(ctx, &p, &c).await?,
                    _ => oauth_error("invalid_client", "Invalid client authentication"),
                };
            }
        }
        if let Some(s) = &state {
            response.insert("state".into(), s.clone().into());
        }
        let failed = has_error(&response);
        let status = match (failed, basic_failure) {
            (false, _) => StatusCode::OK,
            (true, true) => StatusCode::UNAUTHORIZED,
            (true, false) => StatusCode::BAD_REQUEST,
        };
        let mut exit = endpoint_reply(status, Value::Object(response));
        if failed && basic_failure {
            exit = exit.with_header(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"OAuth2.0\""),
            );
        }
        Ok(exit)
    }

    /// Kong's `retrieve_client_credentials`: `client_id` and `client_secret` parameters, else
    /// a Basic Authorization header, else a lone `client_id`.
    fn client_credentials(&self, ctx: &Ctx, p: &Params) -> (Option<String>, Option<String>, bool) {
        if let (Some(id), Some(secret)) = (p.get("client_id"), p.get("client_secret")) {
            return (Some(id.into()), Some(secret.into()), false);
        }
        if let Some(header) = ctx.request.header(&self.auth_header) {
            let trimmed = header.trim_start();
            let rest = trimmed
                .get(..5)
                .filter(|k| k.eq_ignore_ascii_case("basic"))
                .map(|_| trimmed[5..].trim_start());
            let decoded = rest
                .filter(|r| !r.is_empty())
                .and_then(|r| STANDARD.decode(r.trim_end()).ok())
                .and_then(|d| String::from_utf8(d).ok());
            return match decoded.as_deref().and_then(|d| d.split_once(':')) {
                Some((id, secret)) => (Some(id.into()), Some(secret.into()), true),
                None => (None, None, true),
            };
        }
        (p.get("client_id").map(str::to_string), None, false)
    }

    async fn grant_code(
        &self,
        ctx: &Ctx,
        p: &Params,
        client: &Client,
    ) -> Result<Fields, PluginError> {
        let invalid = || oauth_error("invalid_request", "Invalid code");
        let store = ctx.runtime.oauth2.store();
        let code = match p.get("code") {
            Some(c) => store.code(c).await?,
            None => None,
        };
        let service = self.service_id(ctx);
        let Some(code) = code.filter(|c| !c.is_gone(now_secs())) else {
            return Ok(invalid());
        };
        if service.is_some() && service != code.service || code.credential != client.id {
            return Ok(invalid());
        }
        if self.requires_pkce(client, code.challenge_method.is_some()) {
            let verifier = match p.get("code_verifier") {
                Some(v) => v,
                None if p.has("code_verifier") => {
                    return Ok(oauth_error(
                        "invalid_request",
                        "code_verifier is not a string",
                    ));
                }
                None => {
                    return Ok(oauth_error(
                        "invalid_request",
                        "code_verifier is required for PKCE authorization requests",
                    ));
                }
            };
            if !(43..=128).contains(&verifier.len()) {
                return Ok(oauth_error(
                    "invalid_request",
                    "code_verifier must be between 43 and 128 characters",
                ));
            }
            if code.challenge.as_deref() != Some(s256(verifier).as_str()) {
                return Ok(oauth_error("invalid_grant", "Invalid code"));
            }
        }
        if self.conf.global_credentials
            && code
                .plugin
                .is_some_and(|plugin| Some(plugin) != ctx.plugin_id())
        {
            return Ok(invalid());
        }
        let out = self
            .generate_token(
                ctx,
                client,
                code.authenticated_userid.clone(),
                code.scope.clone(),
                false,
                None,
            )
            .await?;
        // A code is used once.
        store.delete_code(code.id).await?;
        Ok(out)
    }

    async fn grant_client_credentials(
        &self,
        ctx: &Ctx,
        p: &Params,
        client: Option<&Client>,
    ) -> Result<Fields, PluginError> {
        if p.get("authenticated_userid").is_some()
            && p.get("provision_key") != Some(self.conf.provision_key.as_str())
        {
            return Ok(oauth_error(
                "invalid_provision_key",
                "Invalid provision_key",
            ));
        }
        let Some(client) = client else {
            return Ok(oauth_error(
                "invalid_client",
                "Invalid client authentication",
            ));
        };
        match self.scope(p) {
            Err(e) => Ok(e),
            Ok(scope) => {
                self.generate_token(
                    ctx,
                    client,
                    p.get("authenticated_userid").map(str::to_string),
                    scope,
                    true,
                    None,
                )
                .await
            }
        }
    }

    async fn grant_password(
        &self,
        ctx: &Ctx,
        p: &Params,
        client: &Client,
    ) -> Result<Fields, PluginError> {
        if p.get("provision_key") != Some(self.conf.provision_key.as_str()) {
            return Ok(oauth_error(
                "invalid_provision_key",
                "Invalid provision_key",
            ));
        }
        let Some(userid) = p
            .get("authenticated_userid")
            .filter(|u| !u.trim().is_empty())
        else {
            return Ok(oauth_error(
                "invalid_authenticated_userid",
                "Missing authenticated_userid parameter",
            ));
        };
        match self.scope(p) {
            Err(e) => Ok(e),
            Ok(scope) => {
                self.generate_token(ctx, client, Some(userid.to_string()), scope, false, None)
                    .await
            }
        }
    }

    async fn grant_refresh(
        &self,
        ctx: &Ctx,
        p: &Params,
        client: &Client,
    ) -> Result<Fields, PluginError> {
        let service = self.service_id(ctx);
        let tokens = &ctx.runtime.oauth2;
        let token = match p.get("refresh_token") {
            Some(r) => tokens.store().token_by_refresh(r).await?,
            None => None,
        };
        let Some(token) = token.filter(|t| !t.is_gone(now_secs())) else {
            return Ok(oauth_error("invalid_request", "Invalid refresh_token"));
        };
        if service.is_some() && service != token.service {
            return Ok(oauth_error("invalid_request", "Invalid refresh_token"));
        }
        if token.credential != client.id {
            return Ok(oauth_error(
                "invalid_client",
                "Invalid client authentication",
            ));
        }
        if let Some(scope) = &token.scope {
            let allowed = self.conf.scopes.as_deref().unwrap_or_default();
            if scope
                .split_whitespace()
                .any(|s| !allowed.iter().any(|a| a == s))
            {
                return Ok(oauth_error("invalid_scope", "Scope mismatch"));
            }
        }
        let out = self
            .generate_token(
                ctx,
                client,
                token.authenticated_userid.clone(),
                token.scope.clone(),
                false,
                Some(&token),
            )
            .await?;
        if !self.conf.reuse_refresh_token {
            tokens.delete(token.id).await?;
        }
        Ok(out)
    }
}

fn internal(ctx: &Ctx, e: &PluginError) -> Exit {
    tracing::error!(plugin = NAME, request_id = ctx.request_id(), error = %e, "plugin failed");
    Exit::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "An unexpected error occurred",
    )
}

/// Percent-encodes all but unreserved characters (nginx's `escape_uri` for arguments).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The redirect URI with the response's fields merged into its query (or, for the implicit
/// grant, its fragment), keys sorted as Kong's `encode_args` writes them.
fn add_params(uri: &str, fields: &Fields, in_fragment: bool) -> String {
    let (rest, fragment) = match uri.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (uri, None),
    };
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let existing = if in_fragment { fragment } else { query };
    let mut args: std::collections::BTreeMap<String, String> = existing
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    for (k, v) in fields {
        args.insert(k.clone(), value_text(v));
    }
    let encoded = args
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut out = base.to_string();
    let (query, fragment) = if in_fragment {
        (query.map(str::to_string), Some(encoded))
    } else {
        (Some(encoded), fragment.map(str::to_string))
    };
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(&q);
    }
    if let Some(f) = fragment.filter(|f| !f.is_empty()) {
        out.push('#');
        out.push_str(&f);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn redirect_uris_keep_their_arguments() {
        let mut f = Fields::new();
        f.insert("code".into(), "abc".into());
        f.insert("state".into(), "a b".into());
        assert_eq!(
            add_params("https://app.test/cb?x=1", &f, false),
            "https://app.test/cb?code=abc&state=a%20b&x=1"
        );
        f.insert("expires_in".into(), 7200.into());
        assert_eq!(
            add_params("https://app.test/cb", &f, true),
            "https://app.test/cb#code=abc&expires_in=7200&state=a%20b"
        );
    }

    #[test]
    fn pkce_s256_and_challenge_normalization() {
        // RFC 7636 appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let mut p = Params::default();
        p.0.insert(
            "code_challenge".into(),
            super::super::Param::Text("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=".into()),
        );
        let (c, m) = code_challenge(&p).unwrap();
        assert_eq!(
            c.as_deref(),
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        );
        assert_eq!(m.as_deref(), Some("S256"));
        p.0.insert(
            "code_challenge_method".into(),
            super::super::Param::Text("plain".into()),
        );
        assert!(code_challenge(&p).is_err());
    }
}
