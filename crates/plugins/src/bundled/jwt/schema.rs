//! jwt's config (Kong 3.x `kong/plugins/jwt/schema.lua`).

use serde::Deserialize;
use serde_json::Value;
use silverback_model::schema::{EntityCheck, Field, Matcher, Record};

#[derive(Debug, Clone, Deserialize)]
pub struct JwtConfig {
    pub uri_param_names: Vec<String>,
    pub cookie_names: Vec<String>,
    pub key_claim_name: String,
    pub secret_is_base64: bool,
    pub claims_to_verify: Option<Vec<String>>,
    pub anonymous: Option<String>,
    pub run_on_preflight: bool,
    pub maximum_expiration: f64,
    pub header_names: Vec<String>,
    pub realm: Option<String>,
}

pub fn config() -> Record {
    Record::new(vec![
        (
            "uri_param_names",
            Field::set(Field::string()).default(vec!["jwt"]),
        ),
        (
            "cookie_names",
            Field::set(Field::string()).default(Vec::<String>::new()),
        ),
        ("key_claim_name", Field::string().default("iss")),
        (
            "secret_is_base64",
            Field::boolean().required().default(false),
        ),
        (
            "claims_to_verify",
            Field::set(Field::string().one_of(["exp", "nbf"])),
        ),
        ("anonymous", Field::string()),
        (
            "run_on_preflight",
            Field::boolean().required().default(true),
        ),
        (
            "maximum_expiration",
            Field::number().default(0).between(0, 31_536_000),
        ),
        (
            "header_names",
            Field::set(Field::string()).default(vec!["authorization"]),
        ),
        ("realm", Field::string()),
    ])
    // Kong: `maximum_expiration > 0` needs `claims_to_verify` to contain `exp` (the field is
    // between 0 and a year, so "not 0" is "greater than 0").
    .with_checks(vec![EntityCheck::Conditional {
        if_field: "maximum_expiration",
        if_match: Matcher::NotOneOf(vec![Value::from(0)]),
        then_field: "claims_to_verify",
        then_match: Matcher::Contains("exp"),
        then_err: None,
    }])
}
