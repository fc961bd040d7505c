//! DB-less configuration (`kong/api/routes/config.lua`): `POST /config` replaces the whole
//! configuration atomically, `GET /config` returns it as YAML.
//!
//! A bad configuration changes nothing: it is parsed and validated completely before the store
//! is touched, and every error is reported at once (code 14).

use crate::body::Body;
use crate::errors::AdminError;
use crate::query::Query;
use crate::response;
use crate::state::AdminState;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Map, Value, json};
use silverback_model::declarative::{self, DeclarativeError};
use silverback_model::entities::Context;
use silverback_store::Store;
use std::sync::Arc;

const ONLY_DBLESS: &str =
    "this endpoint is only available when Kong is configured to not use a database";

/// Kong's body for an invalid declarative configuration; `flattened_errors` only when asked.
pub fn declarative_error_body(e: &DeclarativeError, flatten: bool) -> Value {
    match e {
        DeclarativeError::Parse(_) => {
            let msg = e.to_string();
            json!({
                "code": 14,
                "name": "invalid declarative configuration",
                "message": format!("declarative config is invalid: {{error={}}}", crate::errors::lua_pretty(&Value::String(msg.clone()))),
                "fields": { "error": msg },
            })
        }
        DeclarativeError::Invalid(_) => {
            let mut body = e.to_kong_json();
            if !flatten && let Value::Object(m) = &mut body {
                m.remove("flattened_errors");
            }
            body
        }
    }
}

/// Kong's `truthy` for `flatten_errors`.
fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(str::to_ascii_lowercase).as_deref(),
        Some("true" | "1" | "on" | "yes")
    )
}

/// An option from the query string or the body (Kong reads both as `self.params`).
fn option(q: &Query, body: &Body, name: &str) -> Option<String> {
    if let Some(v) = q.get(name) {
        return Some(v.to_string());
    }
    let obj = match body {
        Body::Json(Value::Object(m)) | Body::Form(m) => m,
        _ => return None,
    };
    match obj.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The document to load: a JSON body that is itself the config, a `config` field holding YAML or
/// JSON text, or the raw body.
enum Source {
    Doc(Value),
    Text(String),
}

fn source(body: Body, raw: &str) -> Result<Source, AdminError> {
    let obj = match body {
        Body::Json(Value::Object(mut m)) => {
            if m.contains_key("_format_version") {
                m.remove("check_hash");
                m.remove("flatten_errors");
                return Ok(Source::Doc(Value::Object(m)));
            }
            m
        }
        Body::Form(m) => m,
        Body::Raw(text) if !text.trim().is_empty() => return Ok(Source::Text(text)),
        Body::Json(_) | Body::Raw(_) | Body::Empty => Map::new(),
    };
    match obj.get("config") {
        Some(Value::String(text)) => Ok(Source::Text(text.clone())),
        Some(doc @ Value::Object(_)) => Ok(Source::Doc(doc.clone())),
        _ if !raw.trim().is_empty() => Ok(Source::Text(raw.to_string())),
        _ => Err(AdminError::BadRequest(
            "expected a declarative configuration".into(),
        )),
    }
}

/// `POST /config`.
pub async fn post<S: Store>(
    st: &AdminState<S>,
    q: &Query,
    body: Body,
    raw: &str,
) -> Result<Response, AdminError> {
    if st.store.writable() {
        return Err(AdminError::BadRequest(ONLY_DBLESS.into()));
    }
    let flatten = truthy(option(q, &body, "flatten_errors").as_deref());
    let check_hash = option(q, &body, "check_hash").as_deref() == Some("1");
    let ctx = Context {
        plugins: st.plugins,
    };
    let now = silverback_model::now_secs();
    let loaded = match source(body, raw)? {
        Source::Doc(doc) => declarative::load(doc, &ctx, now),
        Source::Text(text) => declarative::load_text(&text, &ctx, now),
    };
    let config = match loaded {
        Ok(c) => Arc::new(c),
        Err(e) => {
            return Ok(response::json(
                StatusCode::BAD_REQUEST,
                &declarative_error_body(&e, flatten),
            ));
        }
    };
    if check_hash && st.store.load().await?.hash() == config.hash() {
        return Ok(response::empty(StatusCode::NOT_MODIFIED));
    }
    {
        let _in_commit_order = st.write_order.lock().await;
        st.store.replace_all(config.clone()).await?;
        st.sink.replaced(config.clone());
    }
    let mut out = Map::new();
    for (entity, rows) in config.iter() {
        if rows.is_empty() {
            continue;
        }
        let by_id: Map<String, Value> = rows
            .iter()
            .map(|r| {
                let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
                (id.to_string(), Value::Object(r.map().clone()))
            })
            .collect();
        out.insert(entity.to_string(), Value::Object(by_id));
    }
    Ok(response::created(&Value::Object(out)))
}

/// `GET /config`: `{"config": "<yaml>"}`.
pub async fn get<S: Store>(st: &AdminState<S>) -> Result<Response, AdminError> {
    if st.store.writable() {
        return Err(AdminError::BadRequest(ONLY_DBLESS.into()));
    }
    let config = st.store.load().await?;
    // Kong answers with the same document `kong config db_export` writes.
    let doc = silverback_store::export::declarative(&config);
    let yaml = silverback_store::export::to_yaml(&doc)
        .map_err(|e| AdminError::Internal(format!("cannot render the config as YAML: {e}")))?;
    Ok(response::ok(&json!({ "config": yaml })))
}
