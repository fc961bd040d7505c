//! Schema endpoints (`kong/api/routes/kong.lua`): `GET /schemas/{entity}`,
//! `POST /schemas/{entity}/validate`, `GET /schemas/plugins/{name}`,
//! `POST /schemas/plugins/validate`, and the deprecated `GET /plugins/schema/{name}`.
//!
//! Descriptions come from the same schemas that validate, so they cannot disagree.

use crate::body::Body;
use crate::coerce;
use crate::errors::{AdminError, schema_violation_body};
use crate::response;
use crate::state::AdminState;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};
use silverback_model::entities::{self, Context};
use silverback_model::schema::{Field, Record, Validator};

/// Kong always sends `entity_checks`, empty or not.
fn with_checks(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.entry("entity_checks").or_insert_with(|| json!([]));
    }
    v
}

/// `GET /schemas/{entity}`.
pub fn entity(name: &str) -> Result<Response, AdminError> {
    let schema = entities::schema(name)
        .ok_or_else(|| AdminError::NotFoundMessage(format!("No entity named '{name}'")))?;
    Ok(response::ok(&with_checks(schema.record.describe())))
}

/// The plugins entity record with one plugin's `config` and protocols filled in: Kong's plugin
/// subschema.
fn plugin_record<S>(st: &AdminState<S>, name: &str) -> Option<Record> {
    let plugin = st.plugins.schema(name)?;
    let base = entities::schema("plugins")?;
    let mut rec = base.record.clone();
    for (field_name, field) in rec.fields.iter_mut() {
        match *field_name {
            "config" => {
                *field = Field::record(plugin.config.clone()).required();
            }
            "protocols" => {
                let protocols: Vec<Value> =
                    plugin.protocols.iter().map(|p| Value::from(*p)).collect();
                *field = Field::set(Field::string().one_of(protocols.clone()))
                    .required()
                    .default(Value::Array(protocols));
            }
            _ => {}
        }
    }
    rec.checks
        .extend(plugin.config.plugin_checks.iter().cloned());
    Some(rec)
}

/// `GET /schemas/plugins/{name}`.
pub fn plugin<S>(st: &AdminState<S>, name: &str) -> Result<Response, AdminError> {
    let rec = plugin_record(st, name)
        .ok_or_else(|| AdminError::NotFoundMessage(format!("No plugin named '{name}'")))?;
    Ok(response::ok(&with_checks(rec.describe())))
}

/// `GET /plugins/schema/{name}` (deprecated in Kong): only the config record.
pub fn plugin_config<S>(st: &AdminState<S>, name: &str) -> Result<Response, AdminError> {
    let plugin = st
        .plugins
        .schema(name)
        .ok_or_else(|| AdminError::NotFoundMessage(format!("No plugin named '{name}'")))?;
    Ok(response::ok(&with_checks(plugin.config.describe())))
}

/// `POST /schemas/{entity}/validate` (also for `plugins`): validates as an insert would,
/// without touching the store.
pub fn validate<S>(st: &AdminState<S>, name: &str, body: Body) -> Result<Response, AdminError> {
    let schema = entities::schema(name)
        .ok_or_else(|| AdminError::NotFoundMessage(format!("No entity named '{name}'")))?;
    let (mut map, is_form) = body.into_object()?;
    if is_form {
        coerce::entity(schema, &mut map, st.plugins, None);
    }
    let ctx = Context {
        plugins: st.plugins,
    };
    let v = Validator::new(silverback_model::now_secs());
    match schema.validate(&v, &ctx, &mut map) {
        Ok(()) => Ok(response::ok(
            &json!({ "message": "schema validation successful" }),
        )),
        Err(errors) => Ok(response::json(
            StatusCode::BAD_REQUEST,
            &schema_violation_body(&errors),
        )),
    }
}
