//! The body step, as Kong's `transform_body`: JSON objects, url-encoded forms and multipart
//! forms, told apart by the Content-Type the request has at that point (the headers step may
//! have set it). remove, rename and replace only touch a body that is not empty; add and
//! append also build one from nothing. A body that does not parse passes untouched.

use super::args::{Arg, Args, Item};
use super::multipart::{self, Multipart};
use super::template::{Env, Sources};
use super::{Pair, RequestTransformer, render};
use crate::handler::PluginError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Json,
    Multipart,
    Form,
}

/// Kong's `get_content_type`: a case-insensitive search, JSON first.
pub fn kind(content_type: Option<&str>) -> Option<Kind> {
    let ct = content_type?.to_ascii_lowercase();
    if ct.contains("application/json") {
        Some(Kind::Json)
    } else if ct.contains("multipart/form-data") {
        Some(Kind::Multipart)
    } else if ct.contains("application/x-www-form-urlencoded") {
        Some(Kind::Form)
    } else {
        None
    }
}

/// The new body, or `None` when it stays as it is.
pub(super) fn transform(
    conf: &RequestTransformer,
    sources: &Sources<'_>,
    env: &mut Env,
) -> Result<Option<Vec<u8>>, PluginError> {
    let content_type = sources.request.header("content-type");
    let Some(kind) = kind(content_type) else {
        return Ok(None);
    };
    if conf.body_lists_empty() {
        return Ok(None);
    }
    let Some(body) = sources.request.raw_body() else {
        // Larger than client_body_buffer_size: not in memory, so not transformed (Kong reads
        // it from its temp file).
        tracing::warn!(
            plugin = super::NAME,
            "request body not in memory (larger than client_body_buffer_size): not transformed"
        );
        return Ok(None);
    };
    match kind {
        Kind::Json => json(conf, body, sources, env),
        Kind::Form => form(conf, body, sources, env),
        Kind::Multipart => {
            let Some(boundary) = content_type.and_then(multipart::boundary) else {
                return Ok(None);
            };
            multipart_form(conf, body, &boundary, sources, env)
        }
    }
}

/// Renders each pair of a list and hands it to `f`; true when there was any.
fn each(
    pairs: &[Pair],
    env: &mut Env,
    sources: &Sources<'_>,
    mut f: impl FnMut(&str, Option<String>),
) -> Result<bool, PluginError> {
    for p in pairs {
        let value = render(p, env, sources)?;
        f(&p.name, value);
    }
    Ok(!pairs.is_empty())
}

/// Lua truthiness of a JSON member (`null` decodes to a truthy value in Kong).
fn truthy(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Bool(false)))
}

fn append_json(current: Option<Value>, value: String) -> Value {
    match current {
        Some(Value::String(s)) => Value::Array(vec![Value::String(s), Value::String(value)]),
        Some(Value::Array(mut a)) => {
            a.push(Value::String(value));
            Value::Array(a)
        }
        // Lua's table.insert on an object table adds the key 1.
        Some(Value::Object(mut o)) => {
            o.insert("1".into(), Value::String(value));
            Value::Object(o)
        }
        _ => Value::Array(vec![Value::String(value)]),
    }
}

fn json(
    conf: &RequestTransformer,
    body: &[u8],
    sources: &Sources<'_>,
    env: &mut Env,
) -> Result<Option<Vec<u8>>, PluginError> {
    let filled = !body.is_empty();
    let mut params: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(o)) => o,
        Err(_) if !filled => Map::new(),
        _ => return Ok(None),
    };
    let mut changed = false;
    if filled {
        changed |= each(&conf.remove.body, env, sources, |name, _| {
            params.shift_remove(name);
        })?;
        each(&conf.rename.body, env, sources, |old, new| {
            let Some(new) = new else { return };
            if old != new
                && truthy(params.get(old))
                && let Some(v) = params.shift_remove(old)
            {
                params.insert(new, v);
                changed = true;
            }
        })?;
        each(&conf.replace.body, env, sources, |name, value| {
            if let Some(value) = value
                && truthy(params.get(name))
            {
                params.insert(name.to_string(), Value::String(value));
                changed = true;
            }
        })?;
    }
    each(&conf.add.body, env, sources, |name, value| {
        if let Some(value) = value
            && !truthy(params.get(name))
        {
            params.insert(name.to_string(), Value::String(value));
            changed = true;
        }
    })?;
    changed |= each(&conf.append.body, env, sources, |name, value| {
        if let Some(value) = value {
            let current = params.shift_remove(name);
            params.insert(name.to_string(), append_json(current, value));
        }
    })?;
    if !changed {
        return Ok(None);
    }
    serde_json::to_vec(&Value::Object(params))
        .map(Some)
        .map_err(|e| PluginError::internal(e.to_string()))
}

fn form(
    conf: &RequestTransformer,
    body: &[u8],
    sources: &Sources<'_>,
    env: &mut Env,
) -> Result<Option<Vec<u8>>, PluginError> {
    let filled = !body.is_empty();
    let mut params = Args::decode(&String::from_utf8_lossy(body));
    let mut changed = false;
    if filled {
        changed |= each(&conf.remove.body, env, sources, |name, _| {
            params.remove(name);
        })?;
        each(&conf.rename.body, env, sources, |old, new| {
            if let Some(new) = new {
                changed |= params.rename(old, &new);
            }
        })?;
        each(&conf.replace.body, env, sources, |name, value| {
            if let Some(value) = value
                && params.get(name).is_some()
            {
                params.set(name, Arg::One(Item::Text(value)));
                changed = true;
            }
        })?;
    }
    each(&conf.add.body, env, sources, |name, value| {
        if let Some(value) = value
            && params.get(name).is_none()
        {
            params.set(name, Arg::One(Item::Text(value)));
            changed = true;
        }
    })?;
    changed |= each(&conf.append.body, env, sources, |name, value| {
        if let Some(value) = value {
            params.append(name, value);
        }
    })?;
    Ok(changed.then(|| params.encode().into_bytes()))
}

/// Kong's order for multipart differs: rename first, and there is no append.
fn multipart_form(
    conf: &RequestTransformer,
    body: &[u8],
    boundary: &str,
    sources: &Sources<'_>,
    env: &mut Env,
) -> Result<Option<Vec<u8>>, PluginError> {
    let filled = !body.is_empty();
    let Some(mut form) = Multipart::parse(body, boundary) else {
        return Ok(None);
    };
    let mut changed = false;
    if filled {
        each(&conf.rename.body, env, sources, |old, new| {
            let Some(new) = new else { return };
            if old != new
                && let Some(value) = form.get(old).map(<[u8]>::to_vec)
            {
                form.set_simple(&new, value);
                form.delete(old);
                changed = true;
            }
        })?;
        changed |= each(&conf.remove.body, env, sources, |name, _| form.delete(name))?;
        each(&conf.replace.body, env, sources, |name, value| {
            if let Some(value) = value
                && form.get(name).is_some()
            {
                form.delete(name);
                form.set_simple(name, value.into_bytes());
                changed = true;
            }
        })?;
    }
    each(&conf.add.body, env, sources, |name, value| {
        if let Some(value) = value
            && form.get(name).is_none()
        {
            form.set_simple(name, value.into_bytes());
            changed = true;
        }
    })?;
    Ok(changed.then(|| form.to_bytes()))
}
