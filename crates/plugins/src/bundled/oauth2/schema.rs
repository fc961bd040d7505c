//! oauth2's config (Kong 3.x `kong/plugins/oauth2/schema.lua`).

use serde::Deserialize;
use serde_json::Value;
use silverback_model::schema::{EntityCheck, Field, Map, Matcher, Record};

#[derive(Debug, Clone, Deserialize)]
pub struct OAuth2Config {
    pub scopes: Option<Vec<String>>,
    pub mandatory_scope: bool,
    pub provision_key: String,
    /// Seconds; 0: tokens never expire (and get no refresh token).
    pub token_expiration: f64,
    pub enable_authorization_code: bool,
    pub enable_implicit_grant: bool,
    pub enable_client_credentials: bool,
    pub enable_password_grant: bool,
    pub hide_credentials: bool,
    pub accept_http_if_already_terminated: bool,
    pub anonymous: Option<String>,
    pub global_credentials: bool,
    pub auth_header_name: Option<String>,
    pub refresh_token_ttl: i64,
    pub reuse_refresh_token: bool,
    pub pkce: Option<String>,
    pub realm: Option<String>,
}

/// Kong's `validate_flows`: a plugin that allows no grant is refused.
fn at_least_one_flow(config: &Map) -> Result<(), String> {
    let on = |f: &str| config.get(f) == Some(&Value::Bool(true));
    if on("enable_authorization_code")
        || on("enable_implicit_grant")
        || on("enable_client_credentials")
        || on("enable_password_grant")
    {
        Ok(())
    } else {
        Err(
            "at least one of these fields must be true: enable_authorization_code, \
             enable_implicit_grant, enable_client_credentials, enable_password_grant"
                .into(),
        )
    }
}

fn ttl(v: &Value) -> Result<(), String> {
    match v.as_i64() {
        Some(n) if (0..=100_000_000).contains(&n) => Ok(()),
        _ => Err("value should be between 0 and 100000000".into()),
    }
}

pub fn config() -> Record {
    Record::new(vec![
        ("scopes", Field::array(Field::string())),
        (
            "mandatory_scope",
            Field::boolean().required().default(false),
        ),
        (
            "provision_key",
            Field::string().required().auto().encrypted(),
        ),
        ("token_expiration", Field::number().required().default(7200)),
        (
            "enable_authorization_code",
            Field::boolean().required().default(false),
        ),
        (
            "enable_implicit_grant",
            Field::boolean().required().default(false),
        ),
        (
            "enable_client_credentials",
            Field::boolean().required().default(false),
        ),
        (
            "enable_password_grant",
            Field::boolean().required().default(false),
        ),
        (
            "hide_credentials",
            Field::boolean().required().default(false),
        ),
        (
            "accept_http_if_already_terminated",
            Field::boolean().required().default(false),
        ),
        ("anonymous", Field::string()),
        (
            "global_credentials",
            Field::boolean().required().default(false),
        ),
        ("auth_header_name", Field::string().default("authorization")),
        (
            "refresh_token_ttl",
            Field::integer().required().default(1_209_600).custom(ttl),
        ),
        (
            "reuse_refresh_token",
            Field::boolean().required().default(false),
        ),
        (
            "pkce",
            Field::string()
                .default("lax")
                .one_of(["none", "lax", "strict"]),
        ),
        ("realm", Field::string()),
    ])
    .with_checks(vec![
        EntityCheck::Conditional {
            if_field: "mandatory_scope",
            if_match: Matcher::Eq(Value::Bool(true)),
            then_field: "scopes",
            then_match: Matcher::Required,
            then_err: None,
        },
        EntityCheck::Custom {
            fields: vec![
                "enable_authorization_code",
                "enable_implicit_grant",
                "enable_client_credentials",
                "enable_password_grant",
            ],
            check: at_least_one_flow,
        },
    ])
}
