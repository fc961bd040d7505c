//! hmac-auth: a consumer is whoever signs the request with a credential's secret, per the
//! `hmac username="",algorithm="",headers="",signature=""` scheme in `Proxy-Authorization` or
//! `Authorization`, with a `Date` or `X-Date` within `clock_skew` and, when asked, a `Digest`
//! of the body.

mod schema;

use super::auth;
use crate::handler::{Handler, Phase, Phases};
use crate::pdk::{Body, CredentialRef, Ctx, Exit};
use crate::registry::{IndexDef, PluginDef};
use base64::Engine;
use hashbrown::HashMap;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, StatusCode, Version};
use regex::Regex;
use ring::{digest, hmac};
use schema::HmacAuthConfig;
use serde_json::Value;
use silverback_model::Row;
use std::any::Any;
use std::sync::{Arc, LazyLock};

pub(crate) const NAME: &str = "hmac-auth";

const NOT_VALID: &str = "HMAC signature cannot be verified";
const NOT_SAME: &str = "HMAC signature does not match";
const NO_DATE: &str = "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 1030,
        protocols: &["grpc", "grpcs", "http", "https", "ws", "wss"],
        no_consumer: true,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases::ACCESS,
        build,
        index: Some(IndexDef {
            entity: "hmacauth_credentials",
            build: build_index,
        }),
    }
}

type Credential = auth::UserCredential;

struct Credentials(HashMap<String, Credential>);

fn build_index(rows: &[Arc<Row>]) -> Arc<dyn Any + Send + Sync> {
    let creds = auth::by_username(rows, "secret");
    Arc::new(Credentials(creds))
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: HmacAuthConfig = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let challenge = auth::challenge("hmac", conf.realm.as_deref());
    Ok(Arc::new(HmacAuth {
        challenge: HeaderValue::from_str(&challenge).map_err(|e| e.to_string())?,
        conf,
    }))
}

struct HmacAuth {
    conf: HmacAuthConfig,
    challenge: HeaderValue,
}

/// The fields of an `hmac` authorization header.
#[derive(Debug, PartialEq, Eq)]
struct Params {
    username: String,
    algorithm: String,
    headers: Vec<String>,
    signature: String,
}

/// Kong's pattern, searched anywhere in the header; `.+` is greedy as in PCRE, and `\s` is
/// PCRE's ASCII class.
static HMAC: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"[ \t\n\x0B\f\r]*[Hh]mac[ \t\n\x0B\f\r]*username="(.+)","#,
        r#"[ \t\n\x0B\f\r]*algorithm="(.+)",[ \t\n\x0B\f\r]*headers="(.+)","#,
        r#"[ \t\n\x0B\f\r]*signature="(.+)""#,
    ))
    .ok()
});

fn parse_params(header: &str) -> Option<Params> {
    let m = HMAC.as_ref()?.captures(header)?;
    let group = |i: usize| m.get(i).map(|g| g.as_str().to_string());
    Some(Params {
        username: group(1)?,
        algorithm: group(2)?,
        // Kong's `splitn(headers, " ")`: every space separates, so two in a row make an
        // empty name.
        headers: group(3)?.split(' ').map(str::to_string).collect(),
        signature: group(4)?,
    })
}

fn algorithm(name: &str) -> Option<hmac::Algorithm> {
    Some(match name {
        "hmac-sha1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "hmac-sha256" => hmac::HMAC_SHA256,
        "hmac-sha384" => hmac::HMAC_SHA384,
        "hmac-sha512" => hmac::HMAC_SHA512,
        _ => return None,
    })
}

/// What the client signed: for each listed header, `name: value` (or `name:` when absent),
/// with `@request-target` and `request-line` standing for the request when no such header
/// was sent; lines joined with `\n`. The target is the request's path and query as the
/// chain sees it (plugins that run earlier and rewrite it change what is verified).
fn signing_string(ctx: &Ctx, headers: &[String]) -> String {
    let req = &ctx.request;
    let target = req.target().as_str();
    let lines: Vec<String> = headers
        .iter()
        .map(|name| match req.header(&crate::pdk::header_key(name)) {
            Some(value) => format!("{name}: {value}"),
            None if name == "@request-target" => format!(
                "{name}: {} {target}",
                req.method.as_str().to_ascii_lowercase()
            ),
            None if name == "request-line" => {
                let version = match req.version {
                    Version::HTTP_09 => "0.9",
                    Version::HTTP_10 => "1.0",
                    Version::HTTP_2 => "2.0",
                    Version::HTTP_3 => "3.0",
                    _ => "1.1",
                };
                format!("{} {target} HTTP/{version}", req.method)
            }
            None => format!("{name}:"),
        })
        .collect();
    lines.join("\n")
}

/// Whether `X-Date` or `Date` (in any HTTP date format) is within `clock_skew` of now.
fn date_ok(ctx: &Ctx, name: &str, skew: f64) -> bool {
    let Some(sent) = ctx
        .request
        .header(name)
        .and_then(|d| httpdate::parse_http_date(d).ok())
    else {
        return false;
    };
    let sent = sent
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (crate::runtime::now_secs() - sent).unsigned_abs() as f64 <= skew
}

/// The `Digest` check: `SHA-256=<base64 of the body's SHA-256>`, or no digest and no body.
/// A body too large to hold in memory cannot be checked and fails.
fn body_ok(ctx: &Ctx) -> bool {
    let body: &[u8] = match ctx.request.body() {
        Body::Read(b) => b,
        Body::Unread => &[],
        Body::TooLarge => return false,
    };
    let Some(received) = ctx.request.header("digest") else {
        return body.is_empty();
    };
    let sum = digest::digest(&digest::SHA256, body);
    let created = format!(
        "SHA-256={}",
        base64::engine::general_purpose::STANDARD.encode(sum.as_ref())
    );
    created == received
}

impl HmacAuth {
    fn unauthorized(&self, message: &str) -> Exit {
        Exit::error(StatusCode::UNAUTHORIZED, message)
            .with_header(WWW_AUTHENTICATE, self.challenge.clone())
    }

    /// Kong's `validate_params`: the enforced headers are signed, and the algorithm allowed.
    fn params_ok(&self, p: &Params) -> bool {
        self.conf
            .enforce_headers
            .iter()
            .all(|h| p.headers.contains(h))
            && self.conf.algorithms.contains(&p.algorithm)
    }

    fn authenticate(&self, ctx: &mut Ctx) -> Result<(), Exit> {
        let authorization = ctx.request.header("authorization").map(str::to_string);
        let proxy = ctx
            .request
            .header("proxy-authorization")
            .map(str::to_string);
        if authorization.is_none() && proxy.is_none() {
            return Err(self.unauthorized("Unauthorized"));
        }
        let skew = self.conf.clock_skew;
        if !(date_ok(ctx, "x-date", skew) || date_ok(ctx, "date", skew)) {
            return Err(self.unauthorized(NO_DATE));
        }
        // Proxy-Authorization first; the header the parameters came from is hidden.
        let params = match proxy.as_deref().and_then(parse_params) {
            Some(p) => {
                if self.conf.hide_credentials {
                    ctx.request.clear_header("proxy-authorization");
                }
                Some(p)
            }
            None => {
                if self.conf.hide_credentials {
                    ctx.request.clear_header("authorization");
                }
                authorization.as_deref().and_then(parse_params)
            }
        };
        let params = params
            .filter(|p| self.params_ok(p))
            .ok_or_else(|| self.unauthorized(NOT_VALID))?;
        let directory = ctx.directory.clone();
        let cred = directory
            .index::<Credentials>(NAME)
            .and_then(|c| c.0.get(&params.username))
            .ok_or_else(|| self.unauthorized(NOT_VALID))?;

        let alg = algorithm(&params.algorithm).ok_or_else(|| self.unauthorized(NOT_VALID))?;
        let signed = signing_string(ctx, &params.headers);
        let given = auth::decode_base64(params.signature.as_bytes()).unwrap_or_default();
        // `hmac::verify` compares in constant time.
        if hmac::verify(
            &hmac::Key::new(alg, cred.secret.as_bytes()),
            signed.as_bytes(),
            &given,
        )
        .is_err()
        {
            return Err(self.unauthorized(NOT_SAME));
        }
        if self.conf.validate_request_body && !body_ok(ctx) {
            return Err(self.unauthorized(NOT_SAME));
        }
        let credential = CredentialRef {
            id: cred.id,
            consumer_id: Some(cred.consumer),
            identifier: cred.identifier.clone(),
        };
        if ctx.authenticate_credential(credential) {
            Ok(())
        } else {
            Err(self.unauthorized(NOT_VALID))
        }
    }
}

impl Handler for HmacAuth {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        auth::run(ctx, self.conf.anonymous.as_deref(), |ctx| {
            self.authenticate(ctx)
        })
    }

    fn reads_body(&self) -> bool {
        self.conf.validate_request_body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_fields_like_kongs_pattern() {
        let p = parse_params(
            r#"hmac username="alice", algorithm="hmac-sha256", headers="date request-line", signature="c2ln""#,
        )
        .unwrap();
        assert_eq!(p.username, "alice");
        assert_eq!(p.algorithm, "hmac-sha256");
        assert_eq!(p.headers, ["date", "request-line"]);
        assert_eq!(p.signature, "c2ln");
        let p = parse_params(r#"Hmac username="a",algorithm="b",headers="x  y",signature="s""#)
            .unwrap();
        assert_eq!(p.headers, ["x", "", "y"]);
        assert!(parse_params(r#"hmac username="a", algorithm="b", signature="s""#).is_none());
        assert!(
            parse_params(r#"hmac username="",algorithm="b",headers="h",signature="s""#).is_none()
        );
        assert!(parse_params("Basic YWxpY2U6cHc=").is_none());
    }
}
