//! Cache keys (Kong's `cache_key.lua`): a SHA-256 over who asks (consumer and route), the
//! method, the path, the query arguments and the headers the config varies on, plus the
//! version of the config the response was produced under.
//!
//! Why a config version: Kong's key has only the route and consumer ids, so after a change to
//! the route, its service or the plugin, entries cached under the old config keep being
//! served until they expire. Here the key also covers the plugin instance (its id and config)
//! and the content digests of the route, the service and the consumer, so any change to one
//! of them makes new keys: the next request is a Miss and the old entries age out of the LRU.
//! An unchanged config (a reload of the same file, a change to an unrelated entity) keeps its
//! keys and its entries. The key shown in `X-Cache-Key` is the one the entry is stored under,
//! so the purge endpoints take it as is.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Kong's `prefix_uuid`: `consumer:route`, `route`, or `default`.
pub fn prefix(consumer: Option<&str>, route: Option<&str>) -> String {
    match (consumer, route) {
        (Some(c), Some(r)) => format!("{c}:{r}"),
        (None, Some(r)) => r.to_string(),
        _ => "default".to_string(),
    }
}

/// One argument's values: a bare flag (`?a`) has none.
type Values<'a> = Vec<Option<&'a str>>;

/// `name=value` for one value, `name` for a flag, `name=v1,v2` (sorted) for several.
fn component(name: &str, values: &mut Values<'_>) -> String {
    match values.as_mut_slice() {
        [None] => name.to_string(),
        [Some(v)] => format!("{name}={v}"),
        many => {
            many.sort_unstable();
            let joined: Vec<&str> = many.iter().map(|v| v.unwrap_or_default()).collect();
            format!("{name}={}", joined.join(","))
        }
    }
}

/// Kong's `params_key`: every query argument sorted by name, or only those in
/// `vary_query_params` (in the configured order), joined by `:`.
pub fn params_key(args: &[(String, Option<String>)], vary: Option<&[String]>) -> String {
    let mut by_name: BTreeMap<&str, Values<'_>> = BTreeMap::new();
    for (k, v) in args {
        by_name.entry(k).or_default().push(v.as_deref());
    }
    let parts: Vec<String> = match vary.filter(|v| !v.is_empty()) {
        None => by_name
            .iter_mut()
            .map(|(name, values)| component(name, values))
            .collect(),
        Some(vary) => vary
            .iter()
            .filter_map(|name| {
                by_name
                    .get_mut(name.as_str())
                    .map(|values| component(name, values))
            })
            .collect(),
    };
    parts.join(":")
}

/// Kong's `headers_key`: the values of the `vary_headers` the request has, in the configured
/// order; empty without `vary_headers`. `lookup` gives every value of a header.
pub fn headers_key(vary: Option<&[String]>, lookup: impl Fn(&str) -> Vec<String>) -> String {
    let Some(vary) = vary else {
        return String::new();
    };
    vary.iter()
        .filter_map(|name| {
            let found = lookup(name);
            let mut values: Values<'_> = found.iter().map(|v| Some(v.as_str())).collect();
            (!values.is_empty()).then(|| component(name, &mut values))
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// The key's parts, hashed in this order.
#[derive(Debug)]
pub struct KeyParts<'a> {
    pub prefix: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub params: &'a str,
    pub headers: &'a str,
    /// What identifies the config: digests of the plugin instance, route, service, consumer.
    pub version: &'a [&'a [u8]],
}

/// The key: 64 lower-case hex digits.
pub fn build(parts: &KeyParts<'_>) -> String {
    let mut h = Sha256::new();
    for (i, part) in [
        parts.prefix,
        parts.method,
        parts.uri,
        parts.params,
        parts.headers,
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            h.update(b"|");
        }
        h.update(part.as_bytes());
    }
    for v in parts.version {
        h.update(b"|");
        h.update(v);
    }
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    fn vary(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefixes_as_kong() {
        assert_eq!(prefix(Some("c"), Some("r")), "c:r");
        assert_eq!(prefix(None, Some("r")), "r");
        assert_eq!(prefix(Some("c"), None), "default");
        assert_eq!(prefix(None, None), "default");
    }

    #[test]
    fn params_default_to_all_sorted() {
        let a = args(&[("b", Some("2")), ("a", Some("1"))]);
        assert_eq!(params_key(&a, None), "a=1:b=2");
        assert_eq!(params_key(&a, Some(&[])), "a=1:b=2");
        assert_eq!(params_key(&[], None), "");
        assert_eq!(params_key(&[], Some(&vary(&["a"]))), "");
        assert_eq!(params_key(&args(&[("a", None), ("b", None)]), None), "a:b");
    }

    #[test]
    fn params_vary_on_the_configured_ones() {
        let a = args(&[("a", Some("2")), ("b", Some("2")), ("a", Some("1"))]);
        assert_eq!(params_key(&a, Some(&vary(&["a"]))), "a=1,2");
        assert_eq!(params_key(&a, Some(&vary(&["a", "b", "c"]))), "a=1,2:b=2");
        assert_eq!(params_key(&a, Some(&vary(&["b", "a"]))), "b=2:a=1,2");
    }

    #[test]
    fn headers_only_when_configured() {
        let lookup = |name: &str| match name {
            "a" => vec!["2".to_string(), "1".to_string()],
            "b" => vec!["2".to_string()],
            _ => vec![],
        };
        assert_eq!(headers_key(None, lookup), "");
        assert_eq!(headers_key(Some(&vary(&["a"])), lookup), "a=1,2");
        assert_eq!(
            headers_key(Some(&vary(&["a", "b", "c"])), lookup),
            "a=1,2:b=2"
        );
    }

    #[test]
    fn keys_are_sha256_hex_and_change_with_the_config_version() {
        let parts = |version: &'static [&'static [u8]]| KeyParts {
            prefix: "r",
            method: "GET",
            uri: "/x",
            params: "",
            headers: "",
            version,
        };
        let a = build(&parts(&[b"v1"]));
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(a, build(&parts(&[b"v1"])));
        assert_ne!(a, build(&parts(&[b"v2"])));
        // Without a version, Kong's own key.
        assert_eq!(build(&parts(&[])), hex(&Sha256::digest(b"r|GET|/x||")));
    }
}
