//! hmac-auth's config (Kong 3.x `kong/plugins/hmac-auth/schema.lua`).

use serde::Deserialize;
use silverback_model::schema::{Check, Field, Record};

pub const ALGORITHMS: [&str; 4] = ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"];

#[derive(Debug, Clone, Deserialize)]
pub struct HmacAuthConfig {
    pub hide_credentials: bool,
    pub clock_skew: f64,
    pub anonymous: Option<String>,
    pub validate_request_body: bool,
    pub enforce_headers: Vec<String>,
    pub algorithms: Vec<String>,
    pub realm: Option<String>,
}

pub fn config() -> Record {
    Record::new(vec![
        (
            "hide_credentials",
            Field::boolean().required().default(false),
        ),
        (
            "clock_skew",
            Field::number().default(300).check(Check::Gt(0.0)),
        ),
        ("anonymous", Field::string()),
        (
            "validate_request_body",
            Field::boolean().required().default(false),
        ),
        (
            "enforce_headers",
            Field::array(Field::string()).default(Vec::<String>::new()),
        ),
        (
            "algorithms",
            Field::array(Field::string().one_of(ALGORITHMS)).default(ALGORITHMS.to_vec()),
        ),
        ("realm", Field::string()),
    ])
}
