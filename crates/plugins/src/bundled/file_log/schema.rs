//! file-log's config (Kong 3.x `kong/plugins/file-log/schema.lua`), plus two Silverback
//! extensions for size-based rotation: `rotate_size` and `max_total_size`, both in bytes.

use super::super::log_schema;
use serde_json::Value;
use silverback_model::schema::{Field, Record};

pub fn config() -> Record {
    Record::new(vec![
        ("path", Field::string().required().custom(valid_filename)),
        ("reopen", Field::boolean().required().default(false)),
        ("custom_fields_by_lua", log_schema::custom_fields_by_lua()),
        // Extension: once the file would grow past this, it is renamed `<path>.1` (older
        // ones shift to `.2`, `.3` ...) and a new file is started.
        ("rotate_size", Field::integer().between(1, i64::MAX)),
        // Extension: the file and its rotated copies never take more than this; the oldest
        // copies are deleted first, and a line that still does not fit is dropped (counted).
        ("max_total_size", Field::integer().between(1, i64::MAX)),
    ])
}

/// Kong's pattern `^[^%s*&%%\`][^*&%%\`]*[^%s*&%%\`]$`: at least two characters, none of
/// `*&%` and backquote, no white space at either end.
fn valid_filename(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    let banned = |c: char| matches!(c, '*' | '&' | '%' | '`');
    let edge = |c: Option<char>| c.is_some_and(|c| !c.is_whitespace() && !banned(c));
    let ok = s.chars().count() >= 2
        && edge(s.chars().next())
        && edge(s.chars().last())
        && !s.chars().any(banned);
    if ok {
        Ok(())
    } else {
        Err("not a valid filename".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filenames_as_kong() {
        assert!(valid_filename(&json!("/tmp/file.log")).is_ok());
        assert!(valid_filename(&json!("/tmp/my file.log")).is_ok());
        for bad in [
            "/tmp/f*.log",
            " /tmp/x",
            "/tmp/x ",
            "/tmp/100%",
            "x",
            "/a`b",
        ] {
            assert_eq!(
                valid_filename(&json!(bad)),
                Err("not a valid filename".into()),
                "{bad}"
            );
        }
    }
}
