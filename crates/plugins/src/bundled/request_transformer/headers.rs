//! The headers step, as Kong's `transform_headers`: the request's headers (without Host) are
//! taken as a table, changed by remove, rename, replace, add and append in that order, and
//! what changed is written back. A Host set by replace (or append) becomes the upstream's Host.

use super::template::{Env, Sources};
use super::{Pair, RequestTransformer, render};
use crate::handler::PluginError;
use crate::pdk::Request;
use http::{HeaderName, HeaderValue};

/// Header values by lower-case name, in the order first seen.
type Table = Vec<(String, Vec<String>)>;

fn get<'t>(t: &'t Table, name: &str) -> Option<&'t Vec<String>> {
    t.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn set(t: &mut Table, name: &str, values: Vec<String>) {
    match t.iter_mut().find(|(k, _)| k == name) {
        Some((_, v)) => *v = values,
        None => t.push((name.to_string(), values)),
    }
}

fn take(t: &mut Table, name: &str) -> Option<Vec<String>> {
    let i = t.iter().position(|(k, _)| k == name)?;
    Some(t.remove(i).1)
}

fn table_of(request: &Request) -> Table {
    let mut t: Table = Vec::new();
    request.headers.for_each(|name, value| {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let value = String::from_utf8_lossy(value).into_owned();
        match t.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => v.push(value),
            None => t.push((name, vec![value])),
        }
    });
    t
}

/// Runs the step; nothing to do when no header list is configured.
pub(super) fn transform(
    conf: &RequestTransformer,
    request: &mut Request,
    sources_captures: &crate::pdk::UriCaptures,
    env: &mut Env,
) -> Result<(), PluginError> {
    if conf.header_lists_empty() {
        return Ok(());
    }
    let (original, table, removed) = {
        let sources = Sources {
            request,
            captures: sources_captures,
        };
        plan(conf, &sources, env)?
    };
    apply(request, &original, &table, &removed)
}

type Plan = (Table, Table, Vec<String>);

/// One step's change to the table (and the list of removed names) for one pair.
type Step<'a> = dyn FnMut(&mut Table, &mut Vec<String>, &Pair, Option<String>) + 'a;

fn plan(
    conf: &RequestTransformer,
    sources: &Sources<'_>,
    env: &mut Env,
) -> Result<Plan, PluginError> {
    let mut original = table_of(sources.request);
    take(&mut original, "host");
    let mut t = original.clone();
    let mut removed: Vec<String> = Vec::new();
    let mut each = |pairs: &[Pair], f: &mut Step<'_>| -> Result<(), PluginError> {
        for p in pairs {
            let value = render(p, env, sources)?;
            f(&mut t, &mut removed, p, value);
        }
        Ok(())
    };
    each(&conf.remove.headers, &mut |t, removed, p, _| {
        let name = p.name.to_ascii_lowercase();
        if take(t, &name).is_some() {
            removed.push(name);
        }
    })?;
    each(&conf.rename.headers, &mut |t, removed, p, new| {
        let Some(new) = new else { return };
        let (old, new) = (p.name.to_ascii_lowercase(), new.to_ascii_lowercase());
        // Only the case differs: the same header to the upstream.
        if old == new {
            return;
        }
        if let Some(v) = take(t, &old) {
            set(t, &new, v);
            removed.push(old);
        }
    })?;
    each(&conf.replace.headers, &mut |t, _, p, value| {
        let Some(value) = value else { return };
        let name = p.name.to_ascii_lowercase();
        if get(t, &name).is_some() || name == "host" {
            set(t, &name, vec![value]);
        }
    })?;
    each(&conf.add.headers, &mut |t, _, p, value| {
        let Some(value) = value else { return };
        let name = p.name.to_ascii_lowercase();
        if get(t, &name).is_none() && name != "host" {
            set(t, &name, vec![value]);
        }
    })?;
    each(&conf.append.headers, &mut |t, _, p, value| {
        let Some(value) = value else { return };
        let name = p.name.to_ascii_lowercase();
        let mut values = take(t, &name).unwrap_or_default();
        values.push(value);
        set(t, &name, values);
    })?;
    Ok((original, t, removed))
}

fn header_name(name: &str) -> Result<HeaderName, PluginError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| PluginError::internal(format!("invalid header name '{name}'")))
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, PluginError> {
    HeaderValue::from_str(value)
        .map_err(|_| PluginError::internal(format!("invalid value for header '{name}': {value:?}")))
}

/// Writes back what differs from the request's headers.
fn apply(
    request: &mut Request,
    original: &Table,
    table: &Table,
    removed: &[String],
) -> Result<(), PluginError> {
    for name in removed {
        if get(table, name).is_none() {
            request.clear_header(name);
        }
    }
    for (name, values) in table {
        if get(original, name) == Some(values) {
            continue;
        }
        let header = header_name(name)?;
        if header == http::header::HOST {
            if let Some(v) = values.first() {
                request.set_header(header, header_value(name, v)?);
            }
            continue;
        }
        request.clear_header(name);
        for v in values {
            request
                .headers
                .append(header.clone(), header_value(name, v)?);
        }
    }
    Ok(())
}
