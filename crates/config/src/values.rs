//! Parsers for Kong's setting value syntax: booleans, lists, sizes, durations.

/// `on|off|true|false|yes|no|1|0`.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("'{v}' is not a boolean (on/off)")),
    }
}

/// Comma separated list; `off` and the empty string give an empty list.
pub fn parse_list(v: &str) -> Vec<String> {
    let v = v.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("off") {
        return Vec::new();
    }
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// nginx size syntax: `512`, `8k`, `1m`, `2g` (bytes).
pub fn parse_size(v: &str) -> Result<u64, String> {
    let t = v.trim().to_ascii_lowercase();
    let (digits, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1024),
        Some('m') => (&t[..t.len() - 1], 1024 * 1024),
        Some('g') => (&t[..t.len() - 1], 1024 * 1024 * 1024),
        _ => (t.as_str(), 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{v}' is not a size (e.g. 512, 8k, 1m)"))
}

/// A non-negative integer.
pub fn parse_uint(v: &str) -> Result<u64, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("'{v}' is not a non-negative integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert!(parse_bool("on").unwrap());
        assert!(!parse_bool("OFF").unwrap());
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_list(" a, b ,,c"), vec!["a", "b", "c"]);
        assert!(parse_list("off").is_empty());
        assert_eq!(parse_size("8k").unwrap(), 8192);
        assert_eq!(parse_size("1m").unwrap(), 1 << 20);
        assert_eq!(parse_size("10").unwrap(), 10);
        assert!(parse_size("k").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_uint("12x").is_err());
    }
}
