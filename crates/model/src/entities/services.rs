//! `services`: where requests are proxied to.

use super::{Context, EntitySchema, ForeignKey};
use crate::schema::{EntityCheck, Field, FieldErrors, Map, Matcher, Record, Validator};
use crate::typedefs;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    pub id: Uuid,
    pub name: Option<String>,
    pub protocol: String,
    pub host: String,
    pub port: u16,
    pub path: Option<String>,
    pub retries: u32,
    pub connect_timeout: u64,
    pub write_timeout: u64,
    pub read_timeout: u64,
    pub tls_verify: Option<bool>,
    pub tls_verify_depth: Option<u32>,
    pub ca_certificates: Option<Vec<Uuid>>,
    pub client_certificate: Option<ForeignKey>,
    pub enabled: bool,
    pub tags: Option<Vec<String>>,
}

fn null_unless_tls(field: &'static str) -> EntityCheck {
    EntityCheck::Conditional {
        if_field: "protocol",
        if_match: Matcher::NotOneOf(vec!["https".into(), "tls".into()]),
        then_field: field,
        then_match: Matcher::Eq(Value::Null),
        then_err: None,
    }
}

pub(super) fn schema() -> EntitySchema {
    let record = Record::new(vec![
        ("id", Field::id()),
        ("created_at", Field::timestamp_s()),
        ("updated_at", Field::timestamp_s()),
        ("name", typedefs::utf8_name()),
        ("retries", Field::integer().default(5).between(0, 32767)),
        ("protocol", typedefs::protocol().required().default("http")),
        ("host", typedefs::host().required()),
        ("port", typedefs::port().required().default(80)),
        ("path", typedefs::path()),
        ("connect_timeout", typedefs::nonzero_timeout(60000)),
        ("write_timeout", typedefs::nonzero_timeout(60000)),
        ("read_timeout", typedefs::nonzero_timeout(60000)),
        ("tags", typedefs::tags()),
        ("client_certificate", Field::foreign("certificates")),
        ("tls_verify", Field::boolean()),
        (
            "tls_verify_depth",
            Field::integer().default_null().between(0, 64),
        ),
        ("ca_certificates", Field::array(Field::uuid_string())),
        ("enabled", Field::boolean().required().default(true)),
    ])
    .with_checks(vec![
        EntityCheck::Conditional {
            if_field: "protocol",
            if_match: Matcher::OneOf(
                ["tcp", "tls", "udp", "grpc", "grpcs"]
                    .into_iter()
                    .map(Value::from)
                    .collect(),
            ),
            then_field: "path",
            then_match: Matcher::Eq(Value::Null),
            then_err: None,
        },
        null_unless_tls("client_certificate"),
        null_unless_tls("tls_verify"),
        null_unless_tls("tls_verify_depth"),
        null_unless_tls("ca_certificates"),
    ]);
    EntitySchema {
        name: "services",
        endpoint_key: Some("name"),
        cache_key: &[],
        record,
        before: Some(expand_url),
        after: None,
        db_export: true,
        transform: None,
    }
}

/// The `url` shorthand: sets protocol, host, port and path at once.
fn expand_url(_: &Validator, _: &Context<'_>, map: &mut Map, errors: &mut FieldErrors) {
    let Some(url) = map.remove("url") else { return };
    let Some(url) = url.as_str() else {
        errors.field("url", "expected a string");
        return;
    };
    let parts = parse_url(url);
    let protocol = parts
        .scheme
        .clone()
        .or(match parts.port {
            Some(80) => Some("http".into()),
            Some(443) => Some("https".into()),
            _ => None,
        })
        .unwrap_or_else(|| "http".into());
    let port = parts.port.unwrap_or(match protocol.as_str() {
        "https" => 443,
        _ => 80,
    });
    map.insert("protocol".into(), protocol.into());
    map.insert("host".into(), parts.host.map_or(Value::Null, Value::from));
    map.insert("port".into(), port.into());
    map.insert("path".into(), parts.path.map_or(Value::Null, Value::from));
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct UrlParts {
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u32>,
    pub path: Option<String>,
}

/// A lenient `scheme://host:port/path?query` split, as Kong's `socket.url.parse`.
pub(crate) fn parse_url(url: &str) -> UrlParts {
    let mut out = UrlParts::default();
    let rest = match url.split_once("://") {
        Some((scheme, rest)) => {
            out.scheme = Some(scheme.to_ascii_lowercase());
            rest
        }
        None => url,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h.to_string(), p.strip_prefix(':')),
            None => (authority.to_string(), None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if !host.is_empty() {
        out.host = Some(host);
    }
    out.port = port.and_then(|p| p.parse().ok());
    out.path = path.filter(|p| !p.is_empty()).map(str::to_string);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts() {
        assert_eq!(
            parse_url("https://example.com:8443/api/v1?x=1"),
            UrlParts {
                scheme: Some("https".into()),
                host: Some("example.com".into()),
                port: Some(8443),
                path: Some("/api/v1".into())
            }
        );
        let p = parse_url("http://[::1]:9000");
        assert_eq!(p.host.as_deref(), Some("::1"));
        assert_eq!(p.port, Some(9000));
        assert_eq!(p.path, None);
    }
}
