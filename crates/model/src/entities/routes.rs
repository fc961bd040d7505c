//! `routes`: which requests go to which service.

use super::{Context, EntitySchema, ForeignKey};
use crate::schema::{Check, EntityCheck, Field, FieldErrors, Map, Matcher, Record, Validator};
use crate::typedefs;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathHandling {
    V0,
    V1,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NetEndpoint {
    pub ip: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Route {
    pub id: Uuid,
    pub name: Option<String>,
    pub created_at: i64,
    pub protocols: Vec<String>,
    pub methods: Option<Vec<String>>,
    pub hosts: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    pub headers: Option<BTreeMap<String, Vec<String>>>,
    pub snis: Option<Vec<String>>,
    pub sources: Option<Vec<NetEndpoint>>,
    pub destinations: Option<Vec<NetEndpoint>>,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub regex_priority: i64,
    pub path_handling: PathHandling,
    pub https_redirect_status_code: u16,
    pub request_buffering: bool,
    pub response_buffering: bool,
    pub service: Option<ForeignKey>,
    pub tags: Option<Vec<String>>,
}

impl Route {
    pub fn has_protocol(&self, p: &str) -> bool {
        self.protocols.iter().any(|x| x == p)
    }

    /// Stream routes (tcp, tls, udp, tls_passthrough) belong to the stream listener.
    pub fn is_stream(&self) -> bool {
        self.protocols
            .first()
            .is_some_and(|p| matches!(p.as_str(), "tcp" | "tls" | "udp" | "tls_passthrough"))
    }
}

fn validate_header_key(v: &Value) -> Result<(), String> {
    typedefs::validate_header_name(v)?;
    if v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("host")) {
        return Err(
            "cannot contain 'host' header, which must be specified in the 'hosts' attribute".into(),
        );
    }
    Ok(())
}

pub(super) fn schema() -> EntitySchema {
    let record = Record::new(vec![
        ("id", Field::id()),
        ("created_at", Field::timestamp_s()),
        ("updated_at", Field::timestamp_s()),
        ("name", typedefs::utf8_name()),
        (
            "protocols",
            Field::set(typedefs::protocol())
                .required()
                .default(Value::from(vec!["http", "https"]))
                .check(Check::LenMin(1))
                .check(Check::MutuallyExclusiveSubsets(vec![
                    vec!["http", "https"],
                    vec!["tcp", "tls", "udp"],
                    vec!["tls_passthrough"],
                    vec!["grpc", "grpcs"],
                ])),
        ),
        (
            "https_redirect_status_code",
            Field::integer()
                .required()
                .default(426)
                .one_of([426, 301, 302, 307, 308]),
        ),
        ("strip_path", Field::boolean().required().default(true)),
        ("preserve_host", Field::boolean().required().default(false)),
        ("request_buffering", Field::boolean().required().default(true)),
        ("response_buffering", Field::boolean().required().default(true)),
        ("tags", typedefs::tags()),
        ("service", Field::foreign("services")),
        ("snis", Field::set(typedefs::wildcard_host())),
        ("sources", typedefs::net_endpoints()),
        ("destinations", typedefs::net_endpoints()),
        (
            "methods",
            Field::set(Field::string().custom(typedefs::validate_http_method)),
        ),
        (
            "hosts",
            Field::array(Field::string().custom(typedefs::validate_route_host)),
        ),
        (
            "paths",
            Field::array(Field::string().custom(typedefs::validate_router_path)),
        ),
        (
            "headers",
            Field::map(
                Field::string().custom(validate_header_key),
                Field::array(Field::string()),
            ),
        ),
        ("regex_priority", Field::integer().default(0)),
        ("path_handling", Field::string().default("v0").one_of(["v0", "v1"])),
    ])
    .with_checks(vec![EntityCheck::Conditional {
        if_field: "protocols",
        if_match: Matcher::ElementsNotOneOf(vec!["grpcs", "https", "tls", "tls_passthrough"]),
        then_field: "snis",
        then_match: Matcher::LenEq(0),
        then_err: Some(
            "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'",
        ),
    }]);
    EntitySchema {
        name: "routes",
        endpoint_key: Some("name"),
        cache_key: &[],
        record,
        before: Some(grpc_defaults),
        after: Some(protocol_rules),
        db_export: true,
        transform: None,
    }
}

/// Which of Kong's route subschemas applies: chosen by the first protocol.
#[derive(PartialEq)]
enum Family {
    Http,
    Stream,
    Grpc,
}

fn family(map: &Map) -> Option<Family> {
    let first = map.get("protocols")?.as_array()?.first()?.as_str()?;
    Some(match first {
        "http" | "https" => Family::Http,
        "grpc" | "grpcs" => Family::Grpc,
        _ => Family::Stream,
    })
}

/// gRPC routes default to `strip_path = false` (Kong's grpc subschema).
fn grpc_defaults(_: &Validator, _: &Context<'_>, map: &mut Map, _: &mut FieldErrors) {
    if family(map) == Some(Family::Grpc) && map.get("strip_path").is_none_or(Value::is_null) {
        map.insert("strip_path".into(), false.into());
    }
}

fn contains(map: &Map, p: &str) -> bool {
    map.get("protocols")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x == p))
}

fn nonempty(map: &Map, f: &str) -> bool {
    crate::schema::is_nonempty(map.get(f))
}

/// Kong's route subschemas: which fields each protocol family allows and needs.
fn protocol_rules(_: &Validator, _: &Context<'_>, map: &mut Map, errors: &mut FieldErrors) {
    if errors.has("protocols") {
        return;
    }
    let Some(fam) = family(map) else { return };
    let forbid = |errors: &mut FieldErrors, f: &str, msg: &str| {
        if !map.get(f).is_none_or(Value::is_null) {
            errors.field(f, msg);
        }
    };
    let at_least = |errors: &mut FieldErrors, fields: &[&str], msg: &str| {
        if !fields.iter().any(|f| nonempty(map, f)) {
            let list = crate::schema::quoted_list(fields);
            errors.entity(msg.replace("%s", &list));
        }
    };
    match fam {
        Family::Http => {
            forbid(
                errors,
                "sources",
                "cannot set 'sources' when 'protocols' is 'http' or 'https'",
            );
            forbid(
                errors,
                "destinations",
                "cannot set 'destinations' when 'protocols' is 'http' or 'https'",
            );
            if contains(map, "https") {
                at_least(
                    errors,
                    &["methods", "hosts", "headers", "paths", "snis"],
                    "must set one of %s when 'protocols' is 'https'",
                );
            } else if contains(map, "http") {
                at_least(
                    errors,
                    &["methods", "hosts", "headers", "paths"],
                    "must set one of %s when 'protocols' is 'http'",
                );
            }
        }
        Family::Stream => {
            const MSG: &str = "when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'";
            for f in ["methods", "hosts", "paths", "headers"] {
                forbid(errors, f, &format!("cannot set '{f}' {MSG}"));
            }
            if contains(map, "tls_passthrough") {
                at_least(
                    errors,
                    &["snis"],
                    "must set snis when 'protocols' is 'tls_passthrough'",
                );
            } else {
                at_least(
                    errors,
                    &["sources", "destinations", "snis"],
                    "must set one of %s when 'protocols' is 'tcp', 'tls' or 'udp'",
                );
            }
        }
        Family::Grpc => {
            if map.get("strip_path") == Some(&Value::Bool(true)) {
                errors.field(
                    "strip_path",
                    "cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'",
                );
            }
            for f in ["methods", "sources", "destinations"] {
                forbid(
                    errors,
                    f,
                    &format!("cannot set '{f}' when 'protocols' is 'grpc' or 'grpcs'"),
                );
            }
            if contains(map, "grpcs") {
                at_least(
                    errors,
                    &["hosts", "headers", "paths", "snis"],
                    "must set one of %s when 'protocols' is 'grpcs'",
                );
            } else {
                at_least(
                    errors,
                    &["hosts", "headers", "paths"],
                    "must set one of %s when 'protocols' is 'grpc'",
                );
            }
        }
    }
}
