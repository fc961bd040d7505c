//! basic-auth: a consumer is whoever sends a credential's username and password in
//! `Proxy-Authorization` or `Authorization` (`Basic base64(username:password)`).

mod schema;

use super::auth;
use crate::handler::{Handler, Phase, Phases};
use crate::pdk::{CredentialRef, Ctx, Exit};
use crate::registry::{IndexDef, PluginDef};
use hashbrown::HashMap;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, StatusCode};
use regex::Regex;
use ring::hmac;
use schema::BasicAuthConfig;
use serde_json::Value;
use silverback_model::Row;
use silverback_model::entities::credentials::verify_password;
use std::any::Any;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, RwLock};
use uuid::Uuid;

pub(crate) const NAME: &str = "basic-auth";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 1100,
        protocols: &["grpc", "grpcs", "http", "https", "ws", "wss"],
        no_consumer: true,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases::ACCESS,
        build,
        index: Some(IndexDef {
            entity: "basicauth_credentials",
            build: build_index,
        }),
    }
}

/// A credential's `secret` is the stored hash (argon2 PHC or Kong's sha1 hex).
type Credential = auth::UserCredential;

/// Successful verifications kept before the oldest are dropped all at once.
const VERIFIED_CAP: usize = 4096;

/// Credentials by username, plus a cache of verified passwords.
///
/// argon2 is slow on purpose (milliseconds a check); paying it on every request would cap
/// throughput at a few hundred requests per second and core. So a successful check is
/// remembered as (credential id, HMAC-SHA256 of the password under a random key made for this
/// index): the password itself is never kept, and the digest is useless outside this process.
/// The cache lives in the index, which is rebuilt whenever a basic-auth credential changes, so
/// a changed or deleted password is never served from it. Failed checks are not cached: a
/// wrong password always pays the full argon2 cost.
struct Credentials {
    by_username: HashMap<String, Credential>,
    digest_key: Option<hmac::Key>,
    verified: RwLock<HashSet<(Uuid, [u8; 32])>>,
}

impl Credentials {
    fn verify(&self, cred: &Credential, password: &str) -> bool {
        let digest = self
            .digest_key
            .as_ref()
            .and_then(|k| <[u8; 32]>::try_from(hmac::sign(k, password.as_bytes()).as_ref()).ok());
        if let Some(d) = digest
            && self
                .verified
                .read()
                .is_ok_and(|v| v.contains(&(cred.id, d)))
        {
            return true;
        }
        if !verify_password(&cred.secret, password, cred.consumer) {
            return false;
        }
        if let (Some(d), Ok(mut v)) = (digest, self.verified.write()) {
            if v.len() >= VERIFIED_CAP {
                v.clear();
            }
            v.insert((cred.id, d));
        }
        true
    }
}

fn build_index(rows: &[Arc<Row>]) -> Arc<dyn Any + Send + Sync> {
    let by_username = auth::by_username(rows, "password");
    let rng = ring::rand::SystemRandom::new();
    let digest_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).ok();
    Arc::new(Credentials {
        by_username,
        digest_key,
        verified: RwLock::new(HashSet::new()),
    })
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: BasicAuthConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let challenge = HeaderValue::from_str(&format!("Basic realm=\"{}\"", conf.realm))
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(BasicAuth { conf, challenge }))
}

struct BasicAuth {
    conf: BasicAuthConfig,
    challenge: HeaderValue,
}

/// Kong's `\s*[Bb]asic\s*(.+)`, searched anywhere in the header (PCRE's ASCII `\s`).
static BASIC: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[ \t\n\x0B\f\r]*[Bb]asic[ \t\n\x0B\f\r]*(.+)").ok());

/// The username and password in a `Basic` header value, read as Kong reads them: the base64
/// text after `Basic`, then `([^:]+):(.*)` on what it decodes to (the password stops at a
/// newline, as PCRE's `.` does).
fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = BASIC.as_ref()?.captures(header)?.get(1)?.as_str();
    let decoded = auth::decode_base64(encoded.as_bytes())?;
    let start = decoded.iter().position(|&b| b != b':')?;
    let colon = start + decoded[start..].iter().position(|&b| b == b':')?;
    let rest = &decoded[colon + 1..];
    let password = &rest[..rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())];
    Some((
        String::from_utf8(decoded[start..colon].to_vec()).ok()?,
        String::from_utf8(password.to_vec()).ok()?,
    ))
}

impl BasicAuth {
    fn unauthorized(&self) -> Exit {
        Exit::error(StatusCode::UNAUTHORIZED, "Unauthorized")
            .with_header(WWW_AUTHENTICATE, self.challenge.clone())
    }

    /// The credentials in one header; the header is hidden from the upstream when asked,
    /// whether it held valid credentials or not.
    fn retrieve(&self, ctx: &mut Ctx, name: &str) -> Option<(String, String)> {
        let found = ctx.request.header(name).and_then(parse_basic);
        if self.conf.hide_credentials {
            ctx.request.clear_header(name);
        }
        found
    }

    fn authenticate(&self, ctx: &mut Ctx) -> Result<(), Exit> {
        if ctx.request.header("authorization").is_none()
            && ctx.request.header("proxy-authorization").is_none()
        {
            return Err(self.unauthorized());
        }
        let directory = ctx.directory.clone();
        let creds = directory.index::<Credentials>(NAME);
        let lookup = |u: &str| creds.and_then(|c| c.by_username.get(u));
        // Proxy-Authorization first; Authorization only when it named no known credential.
        let mut given = self.retrieve(ctx, "proxy-authorization");
        let mut cred = given.as_ref().and_then(|(u, _)| lookup(u));
        if cred.is_none() {
            given = self.retrieve(ctx, "authorization");
            cred = given.as_ref().and_then(|(u, _)| lookup(u));
        }
        let (Some(creds), Some(cred), Some((_, password))) = (creds, cred, given) else {
            return Err(self.unauthorized());
        };
        if !creds.verify(cred, &password) {
            return Err(self.unauthorized());
        }
        let credential = CredentialRef {
            id: cred.id,
            consumer_id: Some(cred.consumer),
            identifier: cred.identifier.clone(),
        };
        if ctx.authenticate_credential(credential) {
            Ok(())
        } else {
            Err(self.unauthorized())
        }
    }
}

impl Handler for BasicAuth {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        auth::run(ctx, self.conf.anonymous.as_deref(), |ctx| {
            self.authenticate(ctx)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_basic;

    fn p(s: &str) -> Option<(String, String)> {
        parse_basic(s)
    }

    #[test]
    fn basic_headers_read_like_kong() {
        let pair = |u: &str, pw: &str| Some((u.to_string(), pw.to_string()));
        assert_eq!(p("Basic YWxpY2U6cHc="), pair("alice", "pw"));
        assert_eq!(p("basic YWxpY2U6cHc"), pair("alice", "pw"));
        // `user:` has an empty password; colons in the password stay.
        assert_eq!(p("Basic dXNlcjo="), pair("user", ""));
        assert_eq!(p("Basic dTphOmI="), pair("u", "a:b"));
        // Leading colons are skipped by the unanchored match.
        assert_eq!(p("Basic OnU6cA=="), pair("u", "p"));
        assert_eq!(p("Basic dXNlcg=="), None); // no colon
        assert_eq!(p("Basic !!!"), None);
        assert_eq!(p("Bearer YWxpY2U6cHc="), None);
        assert_eq!(p("BASIC YWxpY2U6cHc="), None);
    }
}
