//! oauth2's entities: `oauth2_credentials` (the client applications of a consumer), and the
//! runtime state the oauth2 plugin writes, `oauth2_authorization_codes` and `oauth2_tokens`.
//! Codes and tokens are never exported nor read from declarative files (Kong's
//! `db_export = false` for codes; tokens are runtime state too, kept out of exports here).

use super::{consumer_field, hash_field, is_argon2_hash, ttl_field};
use crate::entities::{EntitySchema, ForeignKey};
use crate::schema::{Field, FieldErrors, Map, Record};
use crate::typedefs;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct OAuth2Credential {
    pub id: Uuid,
    pub created_at: Option<i64>,
    pub consumer: ForeignKey,
    pub name: String,
    pub client_id: String,
    /// Plain, or an argon2 PHC string when `hash_secret`; see [`super::verify_client_secret`].
    pub client_secret: Option<String>,
    pub hash_secret: bool,
    pub redirect_uris: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub client_type: String,
}

impl OAuth2Credential {
    /// Whether `candidate` is this client's secret.
    pub fn verify_secret(&self, candidate: &str) -> bool {
        self.client_secret
            .as_deref()
            .is_some_and(|s| super::verify_client_secret(s, self.hash_secret, candidate))
    }
}

/// Kong's `validate_uri` (LuaSocket's `url.parse`): a scheme and a host are required, a
/// fragment is refused.
pub fn check_redirect_uri(v: &Value) -> Result<(), String> {
    let uri = v.as_str().unwrap_or_default();
    let (rest, fragment) = match uri.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (uri, None),
    };
    let scheme_ok = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    };
    let after_scheme = rest
        .split_once(':')
        .filter(|(s, _)| scheme_ok(s))
        .map(|(_, r)| r);
    let host = after_scheme
        .and_then(|r| r.strip_prefix("//"))
        .and_then(|r| {
            let authority = r.split('/').next().unwrap_or_default();
            let authority = authority.split_once('@').map_or(authority, |(_, h)| h);
            // A trailing `:port` (no `:` or `]` in it) is not part of the host.
            let host = match authority.rfind(':') {
                Some(i) if !authority[i + 1..].contains(']') => &authority[..i],
                _ => authority,
            };
            (!host.is_empty()).then_some(host)
        });
    if host.is_none() {
        return Err(format!("cannot parse '{uri}'"));
    }
    if fragment.is_some() {
        return Err(format!("fragment not allowed in '{uri}'"));
    }
    Ok(())
}

pub(crate) fn credentials_schema() -> EntitySchema {
    EntitySchema {
        name: "oauth2_credentials",
        endpoint_key: Some("client_id"),
        cache_key: &["client_id"],
        record: Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_s()),
            ("consumer", consumer_field()),
            ("name", Field::string().required()),
            ("client_id", Field::string().unique().auto()),
            ("client_secret", Field::string().auto().encrypted()),
            ("hash_secret", Field::boolean().required().default(false)),
            (
                "redirect_uris",
                Field::array(Field::string().custom(check_redirect_uri)),
            ),
            ("tags", typedefs::tags()),
            (
                "client_type",
                Field::string()
                    .required()
                    .default("confidential")
                    .one_of(["confidential", "public"]),
            ),
        ]),
        before: None,
        after: None,
        db_export: true,
        transform: Some(hash_client_secret),
    }
}

/// With `hash_secret`, the client secret is stored as an argon2 hash. A write that changes one
/// of `client_secret` and `hash_secret` must carry both (Kong's transformation rule). A secret
/// that already is an argon2 hash (a dump written back) is kept.
fn hash_client_secret(map: &mut Map, given: &dyn Fn(&str) -> bool, errors: &mut FieldErrors) {
    let (secret, hash) = (given("client_secret"), given("hash_secret"));
    if secret != hash {
        errors.entity("all or none of these fields must be set: 'hash_secret', 'client_secret'");
        return;
    }
    let already = map
        .get("client_secret")
        .and_then(Value::as_str)
        .is_some_and(is_argon2_hash);
    if hash && map.get("hash_secret") == Some(&Value::Bool(true)) && !already {
        hash_field(map, "client_secret", errors);
    }
}

pub(crate) fn authorization_codes_schema() -> EntitySchema {
    EntitySchema {
        name: "oauth2_authorization_codes",
        endpoint_key: None,
        cache_key: &[],
        record: Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_s()),
            ("service", Field::foreign_cascade("services").default_null()),
            (
                "credential",
                Field::foreign_cascade("oauth2_credentials").required(),
            ),
            ("code", Field::string().unique().auto().sensitive()),
            ("authenticated_userid", Field::string()),
            ("scope", Field::string()),
            ("challenge", Field::string()),
            ("challenge_method", Field::string().one_of(["S256"])),
            ("plugin", Field::foreign_cascade("plugins").default_null()),
            ("ttl", ttl_field()),
        ]),
        before: None,
        after: None,
        db_export: false,
        transform: None,
    }
}

pub(crate) fn tokens_schema() -> EntitySchema {
    EntitySchema {
        name: "oauth2_tokens",
        endpoint_key: Some("access_token"),
        cache_key: &["access_token"],
        record: Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_s()),
            ("service", Field::foreign_cascade("services").default_null()),
            (
                "credential",
                Field::foreign_cascade("oauth2_credentials").required(),
            ),
            (
                "token_type",
                Field::string()
                    .required()
                    .default("bearer")
                    .one_of(["bearer"]),
            ),
            ("expires_in", Field::integer().required()),
            ("access_token", Field::string().unique().auto().sensitive()),
            ("refresh_token", Field::string().unique().sensitive()),
            ("authenticated_userid", Field::string()),
            ("scope", Field::string()),
            ("ttl", ttl_field()),
        ]),
        before: None,
        after: None,
        db_export: false,
        transform: None,
    }
}
