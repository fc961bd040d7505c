//! Kong's tracing settings: which instrumentations produce spans (`tracing_instrumentations`)
//! and the share of traces sampled (`tracing_sampling_rate`). Spans are exported by the
//! opentelemetry plugin; with `off` (Kong's default) it only propagates trace headers.

/// The instrumentation names Kong accepts besides `all` and `off`.
const TYPES: &[&str] = &[
    "request",
    "db_query",
    "dns_query",
    "router",
    "http_client",
    "balancer",
    "plugin_rewrite",
    "plugin_access",
    "plugin_header_filter",
];

/// `tracing_instrumentations`, checked as Kong does: known names, and `off` alone.
pub fn parse_instrumentations(v: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = v
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = list
        .iter()
        .find(|t| !TYPES.contains(&t.as_str()) && *t != "all" && *t != "off")
    {
        return Err(format!("invalid tracing type: {bad}"));
    }
    if list.len() > 1 && list.iter().any(|t| t == "off") {
        return Err("invalid tracing types: off, other types are mutually exclusive".into());
    }
    if list.is_empty() {
        return Ok(vec!["off".into()]);
    }
    Ok(list)
}

/// `tracing_sampling_rate`: a fraction between 0 and 1.
pub fn parse_sampling_rate(v: &str) -> Result<f64, String> {
    let rate: f64 = v
        .trim()
        .parse()
        .map_err(|_| format!("'{v}' is not a number"))?;
    if !(0.0..=1.0).contains(&rate) {
        return Err("tracing_sampling_rate must be between 0 and 1".into());
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kongs_checks() {
        assert_eq!(parse_instrumentations("off").unwrap(), ["off"]);
        assert_eq!(
            parse_instrumentations("request, balancer").unwrap(),
            ["request", "balancer"]
        );
        assert_eq!(
            parse_instrumentations("all,foo").unwrap_err(),
            "invalid tracing type: foo"
        );
        assert_eq!(
            parse_instrumentations("off,request").unwrap_err(),
            "invalid tracing types: off, other types are mutually exclusive"
        );
        assert_eq!(parse_sampling_rate("0.25").unwrap(), 0.25);
        assert_eq!(
            parse_sampling_rate("1.5").unwrap_err(),
            "tracing_sampling_rate must be between 0 and 1"
        );
        assert!(parse_sampling_rate("x").is_err());
    }
}
