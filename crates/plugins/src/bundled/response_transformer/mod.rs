//! response-transformer: changes the response's headers (remove, rename, replace, add,
//! append) and, when it is JSON as Kong decides, its body. A body change needs the whole body:
//! it is held back chunk by chunk until the end and replaced then, and Content-Length is
//! dropped in `header_filter` so the client gets the new length's framing. Responses this
//! plugin does not change stream through.

mod json;
mod schema;

use crate::handler::{Handler, Phases, PluginError};
use crate::pdk::Ctx;
use crate::registry::PluginDef;
use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue};
use json::{Entry, JsonSteps, json_value};
use schema::{Lists, ResponseTransformerConfig};
use serde_json::Value;
use silverback_http::Fields;
use std::sync::Arc;

pub(crate) const NAME: &str = "response-transformer";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 800,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases {
            header_filter: true,
            body_filter: true,
            ..Phases::default()
        },
        build,
        index: None,
    }
}

/// A header `name:value`: the name lower case, as fields are looked up.
#[derive(Debug)]
struct HeaderPair {
    name: String,
    value: Option<String>,
}

#[derive(Debug, Default)]
struct HeaderSteps {
    remove: Vec<String>,
    rename: Vec<HeaderPair>,
    replace: Vec<HeaderPair>,
    add: Vec<HeaderPair>,
    append: Vec<HeaderPair>,
}

#[derive(Debug)]
pub(crate) struct ResponseTransformer {
    headers: HeaderSteps,
    json: JsonSteps,
}

/// `name:value` as Kong splits it (`^([^:]+):*(.-)$`); an empty value is none.
fn split(entry: &str) -> Option<(&str, Option<&str>)> {
    let end = entry.find(':').unwrap_or(entry.len());
    if end == 0 {
        return None;
    }
    let value = entry[end..].trim_start_matches(':');
    Some((&entry[..end], (!value.is_empty()).then_some(value)))
}

fn header_pairs(entries: &[String]) -> Vec<HeaderPair> {
    entries
        .iter()
        .filter_map(|e| split(e))
        .map(|(name, value)| HeaderPair {
            name: name.to_ascii_lowercase(),
            value: value.map(str::to_string),
        })
        .collect()
}

fn json_entries(lists: &Lists) -> Vec<Entry> {
    lists
        .json
        .iter()
        .enumerate()
        .filter_map(|(i, e)| split(e).map(|(name, value)| (i, name, value)))
        .map(|(i, name, value)| Entry {
            name: name.to_string(),
            value: value.and_then(|v| json_value(v, lists.json_types.get(i).map(String::as_str))),
        })
        .collect()
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: ResponseTransformerConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let names = |entries: &[String]| {
        entries
            .iter()
            .filter_map(|e| split(e).map(|(n, _)| n.to_string()))
            .collect::<Vec<_>>()
    };
    Ok(Arc::new(ResponseTransformer {
        headers: HeaderSteps {
            remove: names(&conf.remove.headers)
                .into_iter()
                .map(|n| n.to_ascii_lowercase())
                .collect(),
            rename: header_pairs(&conf.rename.headers),
            replace: header_pairs(&conf.replace.headers),
            add: header_pairs(&conf.add.headers),
            append: header_pairs(&conf.append.headers),
        },
        json: JsonSteps {
            remove: names(&conf.remove.json),
            rename: conf
                .rename
                .json
                .iter()
                .filter_map(|e| split(e))
                .filter_map(|(old, new)| new.map(|n| (old.to_string(), n.to_string())))
                .collect(),
            replace: json_entries(&conf.replace),
            add: json_entries(&conf.add),
            append: json_entries(&conf.append),
        },
    }))
}

/// Kong's `is_json_body`: one of the listed media types is `application/json` or
/// `application/*+json`.
fn is_json(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type.and_then(|c| std::str::from_utf8(c).ok()) else {
        return false;
    };
    ct.split(',').any(|media| {
        let essence = media.split(';').next().unwrap_or_default().trim();
        let Some((ty, sub)) = essence.split_once('/') else {
            return false;
        };
        let (ty, sub) = (
            ty.trim().to_ascii_lowercase(),
            sub.trim().to_ascii_lowercase(),
        );
        ty == "application" && (sub == "json" || sub.ends_with("+json"))
    })
}

fn header_name(name: &str) -> Result<HeaderName, PluginError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| PluginError::internal(format!("invalid header name '{name}'")))
}

fn header_value(value: &[u8]) -> Result<HeaderValue, PluginError> {
    HeaderValue::from_bytes(value)
        .map_err(|_| PluginError::internal(format!("invalid header value {value:?}")))
}

/// Sets every value of `values` as the field's values.
fn set_all(fields: &mut Fields, name: &str, values: &[&[u8]]) -> Result<(), PluginError> {
    let header = header_name(name)?;
    let values = values
        .iter()
        .map(|v| header_value(v))
        .collect::<Result<Vec<_>, _>>()?;
    fields.remove(name);
    for v in values {
        fields.append(header.clone(), v);
    }
    Ok(())
}

/// The body held back until its end, when the JSON steps apply.
#[derive(Debug, Default)]
struct Held(BytesMut);

impl ResponseTransformer {
    fn transform_headers(&self, fields: &mut Fields) -> Result<(), PluginError> {
        let steps = &self.headers;
        // rename, replace and add look at the headers as they came, as Kong's do.
        let before =
            (!steps.rename.is_empty() || !steps.replace.is_empty() || !steps.add.is_empty())
                .then(|| fields.clone());
        let had = |name: &str| before.as_ref().is_some_and(|b| b.contains(name));
        for name in &steps.remove {
            fields.remove(name);
        }
        for p in &steps.rename {
            let (Some(new), Some(b)) = (&p.value, &before) else {
                continue;
            };
            let values: Vec<&[u8]> = b.get_all(&p.name).collect();
            if values.is_empty() {
                continue;
            }
            // Kong sets the new name, then clears the old one (so a rename that only changes
            // the case removes the header).
            set_all(fields, &new.to_ascii_lowercase(), &values)?;
            fields.remove(&p.name);
        }
        for p in &steps.replace {
            if let Some(v) = &p.value
                && had(&p.name)
            {
                set_all(fields, &p.name, &[v.as_bytes()])?;
            }
        }
        for p in &steps.add {
            if let Some(v) = &p.value
                && !had(&p.name)
            {
                set_all(fields, &p.name, &[v.as_bytes()])?;
            }
        }
        for p in &steps.append {
            if let Some(v) = &p.value {
                fields.append(header_name(&p.name)?, header_value(v.as_bytes())?);
            }
        }
        Ok(())
    }
}

impl Handler for ResponseTransformer {
    fn header_filter(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
        let json_before =
            !self.json.is_empty() && is_json(ctx.response.headers.get("content-type"));
        self.transform_headers(&mut ctx.response.headers)?;
        let json_now = !self.json.is_empty() && is_json(ctx.response.headers.get("content-type"));
        // The body is going to change: its length is not known yet.
        if json_before || json_now {
            ctx.response.headers.remove("content-length");
        }
        if json_now {
            ctx.set_data(Held::default());
        }
        Ok(())
    }

    fn body_filter(&self, ctx: &mut Ctx, chunk: &mut Bytes, eof: bool) -> Result<(), PluginError> {
        let Some(held) = ctx.data_mut::<Held>() else {
            return Ok(());
        };
        held.0.extend_from_slice(chunk);
        if !eof {
            *chunk = Bytes::new();
            return Ok(());
        }
        let whole = std::mem::take(&mut held.0).freeze();
        *chunk = match self.json.apply(&whole) {
            Some(body) => Bytes::from(body),
            None => {
                tracing::warn!(
                    plugin = NAME,
                    request_id = ctx.request_id(),
                    "body transform failed: failed parsing json body"
                );
                whole
            }
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests;
