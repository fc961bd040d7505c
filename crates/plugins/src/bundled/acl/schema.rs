//! acl's config (Kong 3.x `kong/plugins/acl/schema.lua`).

use serde::Deserialize;
use silverback_model::schema::{EntityCheck, Field, Map, Record, is_nonempty};

#[derive(Debug, Clone, Deserialize)]
pub struct AclConfig {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub hide_groups_header: bool,
    pub always_use_authenticated_groups: bool,
}

const LISTS: &str = "'config.allow', 'config.deny'";

/// Kong's `only_one_of`: runs only when both lists are given, and then exactly one may be
/// non-empty.
fn only_one_of(config: &Map) -> Result<(), String> {
    let (allow, deny) = (config.get("allow"), config.get("deny"));
    let given = |v: Option<&serde_json::Value>| v.is_some_and(|v| !v.is_null());
    if !given(allow) || !given(deny) || is_nonempty(allow) != is_nonempty(deny) {
        return Ok(());
    }
    Err(format!(
        "exactly one of these fields must be non-empty: {LISTS}"
    ))
}

fn at_least_one_of(config: &Map) -> Result<(), String> {
    if is_nonempty(config.get("allow")) || is_nonempty(config.get("deny")) {
        return Ok(());
    }
    Err(format!(
        "at least one of these fields must be non-empty: {LISTS}"
    ))
}

pub fn config() -> Record {
    Record::new(vec![
        ("allow", Field::array(Field::string())),
        ("deny", Field::array(Field::string())),
        (
            "hide_groups_header",
            Field::boolean().required().default(false),
        ),
        (
            "always_use_authenticated_groups",
            Field::boolean().required().default(false),
        ),
    ])
    .with_checks(vec![
        EntityCheck::Custom {
            fields: vec!["allow", "deny"],
            check: only_one_of,
        },
        EntityCheck::Custom {
            fields: vec!["allow", "deny"],
            check: at_least_one_of,
        },
    ])
}
