//! Every way an Admin API request can fail, and the body Kong answers for each.
//!
//! Kong's DAO errors have the shape `{"code": N, "name": "...", "message": "...", "fields": {...}}`
//! (`kong/db/errors.lua`); errors raised by the HTTP layer itself are a bare `{"message": ...}`.
//! Clients such as decK and go-kong switch on `code` and print `message`, so both are reproduced
//! exactly, including Kong's Lua-table rendering of keys inside messages.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Map, Value, json};
use silverback_model::schema::FieldErrors;
use silverback_store::StoreError;

/// Kong's error codes (`kong/db/errors.lua`).
pub mod code {
    pub const INVALID_PRIMARY_KEY: u32 = 1;
    pub const SCHEMA_VIOLATION: u32 = 2;
    pub const PRIMARY_KEY_VIOLATION: u32 = 3;
    pub const FOREIGN_KEY_VIOLATION: u32 = 4;
    pub const UNIQUE_VIOLATION: u32 = 5;
    pub const NOT_FOUND: u32 = 6;
    pub const INVALID_OFFSET: u32 = 7;
    pub const INVALID_SIZE: u32 = 9;
    pub const INVALID_OPTIONS: u32 = 11;
    pub const OPERATION_UNSUPPORTED: u32 = 12;
    pub const FOREIGN_KEYS_UNRESOLVED: u32 = 13;
}

/// An Admin API failure; converted to Kong's status and body by [`AdminError::into_response`].
#[derive(Debug)]
pub enum AdminError {
    /// The store refused or failed.
    Store(StoreError),
    /// The entity does not satisfy its schema (code 2).
    Schema(FieldErrors),
    /// A non-UUID key for an entity that has no endpoint key (code 1).
    InvalidPrimaryKey(String),
    /// `?size=` is not a number or out of range (code 9).
    InvalidSize(String),
    /// A bad `?tags=` filter (code 11); (option, message).
    InvalidOption(&'static str, String),
    /// A reference by endpoint key that matches nothing (code 13): (field, key field, value, parent).
    Unresolved(Vec<(String, String, Value, &'static str)>),
    /// PATCH of an entity that does not exist (code 6): the key it was looked up by.
    EntityNotFound(&'static str, String),
    /// `{"message":"Not found"}`.
    NotFound,
    /// 404 with a specific message (`No entity named 'x'`, `SNI not found`).
    NotFoundMessage(String),
    /// `{"message":"Method not allowed"}`.
    MethodNotAllowed,
    /// 400 with a plain message (`Cannot parse JSON body`).
    BadRequest(String),
    /// A body of a content type the endpoint does not read (empty 415, as Kong).
    UnsupportedMediaType,
    /// Missing or wrong admin token.
    Unauthorized,
    /// An entity write on a read-only (DB-less) store (code 12, 405), with Kong's message.
    Unsupported(String),
    /// Anything else: logged, answered as Kong's generic 500.
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Store(e)
    }
}

/// A Kong DAO error body.
fn kong_error(code: u32, name: &str, message: String, fields: Option<Value>) -> Value {
    let mut body = Map::new();
    body.insert("code".into(), code.into());
    body.insert("name".into(), name.into());
    body.insert("message".into(), message.into());
    if let Some(f) = fields {
        body.insert("fields".into(), f);
    }
    Value::Object(body)
}

fn message(text: &str) -> Value {
    json!({ "message": text })
}

const UNEXPECTED: &str = "An unexpected error occurred";

/// Status and body for every store error: the one place where `StoreError` meets HTTP.
pub fn store_error_response(e: &StoreError) -> (StatusCode, Value) {
    match e {
        StoreError::Read { path, source } => {
            tracing::error!(path = %path.display(), error = %source, "admin: store read failed");
            (StatusCode::INTERNAL_SERVER_ERROR, message(UNEXPECTED))
        }
        StoreError::Declarative(d) => (
            StatusCode::BAD_REQUEST,
            crate::dbless::declarative_error_body(d, false),
        ),
        StoreError::Unique { fields, .. } => {
            let obj: Map<String, Value> = fields.iter().cloned().collect();
            let obj = Value::Object(obj);
            (
                StatusCode::CONFLICT,
                kong_error(
                    code::UNIQUE_VIOLATION,
                    "unique constraint violation",
                    format!("UNIQUE violation detected on '{}'", lua_pretty(&obj)),
                    Some(obj),
                ),
            )
        }
        StoreError::PrimaryKey { id } => {
            let pk = json!({ "id": id.to_string() });
            (
                StatusCode::BAD_REQUEST,
                kong_error(
                    code::PRIMARY_KEY_VIOLATION,
                    "primary key violation",
                    format!("primary key violation on key '{}'", lua_pretty(&pk)),
                    Some(pk),
                ),
            )
        }
        StoreError::ForeignKey { field, key, parent } => (
            StatusCode::BAD_REQUEST,
            kong_error(
                code::FOREIGN_KEY_VIOLATION,
                "foreign key violation",
                format!(
                    "the foreign key '{}' does not reference an existing '{parent}' entity.",
                    lua_pretty(key)
                ),
                Some(json!({ *field: key })),
            ),
        ),
        StoreError::Referenced { parent, child } => (
            StatusCode::BAD_REQUEST,
            kong_error(
                code::FOREIGN_KEY_VIOLATION,
                "foreign key violation",
                format!("an existing '{child}' entity references this '{parent}' entity"),
                Some(json!({ "@referenced_by": child })),
            ),
        ),
        StoreError::InvalidOffset(_) => (
            StatusCode::BAD_REQUEST,
            kong_error(code::INVALID_OFFSET, "invalid offset", e.to_string(), None),
        ),
        StoreError::ReadOnly { .. } => (
            StatusCode::METHOD_NOT_ALLOWED,
            kong_error(
                code::OPERATION_UNSUPPORTED,
                "operation unsupported",
                e.to_string(),
                None,
            ),
        ),
        StoreError::Database(msg) => {
            tracing::error!(error = %msg, "admin: database error");
            (StatusCode::INTERNAL_SERVER_ERROR, message(UNEXPECTED))
        }
    }
}

/// Kong's body for a schema violation (also used by `/schemas/.../validate`).
pub fn schema_violation_body(errors: &FieldErrors) -> Value {
    kong_error(
        code::SCHEMA_VIOLATION,
        "schema violation",
        errors.summary(),
        Some(errors.to_json()),
    )
}

impl AdminError {
    /// The status and JSON body (`None` for bodiless answers).
    pub fn parts(&self) -> (StatusCode, Option<Value>) {
        let (status, body) = match self {
            AdminError::Store(e) => store_error_response(e),
            AdminError::Schema(errors) => (StatusCode::BAD_REQUEST, schema_violation_body(errors)),
            AdminError::InvalidPrimaryKey(key) => {
                let _ = key;
                let fields = json!({ "id": "expected a valid UUID" });
                (
                    StatusCode::BAD_REQUEST,
                    kong_error(
                        code::INVALID_PRIMARY_KEY,
                        "invalid primary key",
                        format!("invalid primary key: '{}'", lua_pretty(&fields)),
                        Some(fields),
                    ),
                )
            }
            AdminError::InvalidSize(msg) => (
                StatusCode::BAD_REQUEST,
                kong_error(code::INVALID_SIZE, "invalid size", msg.clone(), None),
            ),
            AdminError::InvalidOption(option, msg) => {
                let mut body = kong_error(
                    code::INVALID_OPTIONS,
                    "invalid options",
                    format!("invalid option ({option}: {msg})"),
                    None,
                );
                if let Value::Object(m) = &mut body {
                    m.insert("options".into(), json!({ *option: msg }));
                }
                (StatusCode::BAD_REQUEST, body)
            }
            AdminError::Unresolved(items) => (StatusCode::BAD_REQUEST, unresolved_body(items)),
            AdminError::EntityNotFound(field, key) => {
                let pk = json!({ *field: key });
                let message = if *field == "id" {
                    format!(
                        "could not find the entity with primary key '{}'",
                        lua_pretty(&pk)
                    )
                } else {
                    format!("could not find the entity with '{}'", lua_pretty(&pk))
                };
                (
                    StatusCode::NOT_FOUND,
                    kong_error(code::NOT_FOUND, "not found", message, Some(pk)),
                )
            }
            AdminError::NotFound => (StatusCode::NOT_FOUND, message("Not found")),
            AdminError::NotFoundMessage(m) => (StatusCode::NOT_FOUND, message(m)),
            AdminError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                message("Method not allowed"),
            ),
            AdminError::BadRequest(m) => (StatusCode::BAD_REQUEST, message(m)),
            AdminError::UnsupportedMediaType => return (StatusCode::UNSUPPORTED_MEDIA_TYPE, None),
            AdminError::Unauthorized => (StatusCode::UNAUTHORIZED, message("Unauthorized")),
            AdminError::Unsupported(m) => (
                StatusCode::METHOD_NOT_ALLOWED,
                kong_error(
                    code::OPERATION_UNSUPPORTED,
                    "operation unsupported",
                    m.clone(),
                    None,
                ),
            ),
            AdminError::Internal(m) => {
                tracing::error!(error = %m, "admin: internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, message(UNEXPECTED))
            }
        };
        (status, Some(body))
    }
}

fn unresolved_body(items: &[(String, String, Value, &'static str)]) -> Value {
    let mut fields: Map<String, Value> = Map::new();
    let mut lines = Vec::new();
    let mut sorted: Vec<_> = items.iter().collect();
    sorted.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (field, key, value, parent) in sorted {
        let msg = format!(
            "the foreign key cannot be resolved with '{}' for an existing '{parent}' entity",
            lua_pretty(&json!({ key.as_str(): value }))
        );
        lines.push(format!("{field}.{key}: {msg}"));
        if let Value::Object(m) = fields
            .entry(field.clone())
            .or_insert_with(|| Value::Object(Map::new()))
        {
            m.insert(key.clone(), msg.into());
        }
    }
    let message = if lines.len() == 1 {
        format!("foreign key unresolved ({})", lines[0])
    } else {
        format!(
            "{} foreign keys unresolved ({})",
            lines.len(),
            lines.join("; ")
        )
    };
    kong_error(
        code::FOREIGN_KEYS_UNRESOLVED,
        "foreign keys unresolved",
        message,
        Some(Value::Object(fields)),
    )
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, body) = self.parts();
        match body {
            Some(b) => crate::response::json(status, &b),
            None => crate::response::empty(status),
        }
    }
}

/// A value as Kong's `pl.pretty.write(v, "")` renders it inside messages: `{id="…"}`, keys
/// sorted, `null` for JSON null.
pub fn lua_pretty(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(lua_pretty).collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}={}", lua_key(k), lua_pretty(&m[k])))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
    }
}

/// Identifiers stay bare (`name=`); anything else is bracketed (`["x-y"]=`), as Lua prints it.
fn lua_key(k: &str) -> String {
    let ident = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident {
        k.to_string()
    } else {
        format!("[\"{k}\"]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn body(e: AdminError) -> (u16, Value) {
        let (s, b) = e.parts();
        (s.as_u16(), b.unwrap_or(Value::Null))
    }

    #[test]
    fn unique_violation_like_kong() {
        let e = StoreError::Unique {
            entity: "plugins",
            fields: vec![
                ("name".into(), json!("basic-auth")),
                ("route".into(), json!({"id": "r1"})),
                ("service".into(), Value::Null),
                ("consumer".into(), Value::Null),
            ],
        };
        let (s, b) = body(e.into());
        assert_eq!(s, 409);
        assert_eq!(
            b["message"],
            "UNIQUE violation detected on '{consumer=null,name=\"basic-auth\",route={id=\"r1\"},service=null}'"
        );
        assert_eq!(b["code"], 5);
        assert_eq!(b["name"], "unique constraint violation");
        assert_eq!(b["fields"]["name"], "basic-auth");
    }

    #[test]
    fn every_store_error_has_kong_status() {
        let id = Uuid::nil();
        let cases: Vec<(StoreError, u16, Option<u32>)> = vec![
            (StoreError::PrimaryKey { id }, 400, Some(3)),
            (
                StoreError::ForeignKey {
                    field: "service",
                    key: json!({"id": id.to_string()}),
                    parent: "services",
                },
                400,
                Some(4),
            ),
            (
                StoreError::Referenced {
                    parent: "services",
                    child: "routes",
                },
                400,
                Some(4),
            ),
            (StoreError::InvalidOffset("x".into()), 400, Some(7)),
            (
                StoreError::ReadOnly {
                    operation: "create",
                    entity: "services",
                },
                405,
                Some(12),
            ),
            (StoreError::Database("boom".into()), 500, None),
        ];
        for (e, status, code) in cases {
            let (s, b) = body(e.into());
            assert_eq!(s, status, "{b}");
            assert_eq!(b.get("code").and_then(Value::as_u64), code.map(u64::from));
        }
    }

    #[test]
    fn foreign_key_and_referenced_bodies() {
        let id = "6e8a1d4c-1b36-4e35-9f3c-3f3e1f7d6a10";
        let (_, b) = body(
            StoreError::ForeignKey {
                field: "service",
                key: json!({ "id": id }),
                parent: "services",
            }
            .into(),
        );
        assert_eq!(
            b,
            json!({
                "code": 4,
                "name": "foreign key violation",
                "message": format!("the foreign key '{{id=\"{id}\"}}' does not reference an existing 'services' entity."),
                "fields": {"service": {"id": id}},
            })
        );
        let (_, b) = body(
            StoreError::Referenced {
                parent: "services",
                child: "routes",
            }
            .into(),
        );
        assert_eq!(
            b["message"],
            "an existing 'routes' entity references this 'services' entity"
        );
        assert_eq!(b["fields"], json!({"@referenced_by": "routes"}));
    }

    #[test]
    fn read_only_matches_kong_dbless() {
        let (s, b) = body(
            StoreError::ReadOnly {
                operation: "create",
                entity: "routes",
            }
            .into(),
        );
        assert_eq!(s, 405);
        assert_eq!(
            b,
            json!({
                "code": 12,
                "name": "operation unsupported",
                "message": "cannot create 'routes' entities when not using a database",
            })
        );
    }

    #[test]
    fn unresolved_and_options() {
        let (s, b) = body(AdminError::Unresolved(vec![(
            "service".into(),
            "name".into(),
            json!("nope"),
            "services",
        )]));
        assert_eq!(s, 400);
        assert_eq!(b["code"], 13);
        assert_eq!(
            b["message"],
            "foreign key unresolved (service.name: the foreign key cannot be resolved with '{name=\"nope\"}' for an existing 'services' entity)"
        );
        let (_, b) = body(AdminError::InvalidOption(
            "tags",
            "invalid filter syntax".into(),
        ));
        assert_eq!(
            b,
            json!({
                "code": 11,
                "name": "invalid options",
                "message": "invalid option (tags: invalid filter syntax)",
                "options": {"tags": "invalid filter syntax"},
            })
        );
    }

    #[test]
    fn lua_rendering() {
        assert_eq!(
            lua_pretty(&json!({"x-y": [1, "a"]})),
            "{[\"x-y\"]={1,\"a\"}}"
        );
    }
}
