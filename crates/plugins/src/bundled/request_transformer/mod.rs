//! request-transformer: changes the request before it goes upstream, as Kong's does, in Kong's
//! order: the path (`replace.uri`), the method (`http_method`), headers, body, query string;
//! within each, remove, rename, replace, add, append. Values are templates over the request
//! (`$(headers.x)`, `$(query_params.q)`, `$(uri_captures.name)`), see [`template`].

mod args;
mod body;
mod headers;
mod lua;
mod multipart;
mod schema;
mod template;

use crate::handler::{Handler, Phase, Phases, PluginError};
use crate::pdk::Ctx;
use crate::registry::PluginDef;
use args::{Arg, Args, Item};
use bytes::Bytes;
use http::Method;
use schema::{Lists, RequestTransformerConfig, split_pair};
use serde_json::Value;
use silverback_http::Fields;
use std::sync::Arc;
use template::{Env, Sources, Template};

pub(crate) use lua::parse_number;

pub(crate) const NAME: &str = "request-transformer";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 801,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases::ACCESS,
        build,
        index: None,
    }
}

/// One configured `name:value` (the value a template), or a bare name.
#[derive(Debug)]
struct Pair {
    name: String,
    value: Option<Template>,
}

#[derive(Debug, Default)]
struct Compiled {
    body: Vec<Pair>,
    headers: Vec<Pair>,
    querystring: Vec<Pair>,
}

fn compile(lists: &Lists) -> Compiled {
    let pairs = |entries: &[String]| {
        entries
            .iter()
            .filter_map(|e| split_pair(e))
            .map(|(name, value)| Pair {
                name: name.to_string(),
                value: (!value.is_empty()).then(|| Template::compile(value)),
            })
            .collect()
    };
    Compiled {
        body: pairs(&lists.body),
        headers: pairs(&lists.headers),
        querystring: pairs(&lists.querystring),
    }
}

#[derive(Debug)]
pub(crate) struct RequestTransformer {
    method: Option<Method>,
    uri: Option<Template>,
    remove: Compiled,
    rename: Compiled,
    replace: Compiled,
    add: Compiled,
    append: Compiled,
}

/// The methods Kong's `kong.service.request.set_method` accepts.
const METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "PUT",
    "POST",
    "DELETE",
    "OPTIONS",
    "MKCOL",
    "COPY",
    "MOVE",
    "PROPFIND",
    "PROPPATCH",
    "LOCK",
    "UNLOCK",
    "PATCH",
    "TRACE",
];

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: RequestTransformerConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let method = conf
        .http_method
        .as_deref()
        .map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()))
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(RequestTransformer {
        method,
        uri: conf.replace.uri.as_deref().map(Template::compile),
        remove: compile(&conf.remove),
        rename: compile(&conf.rename),
        replace: compile(&conf.replace),
        add: compile(&conf.add),
        append: compile(&conf.append),
    }))
}

/// A pair's value, rendered (a failing template fails the request, as in Kong).
fn render(
    pair: &Pair,
    env: &mut Env,
    sources: &Sources<'_>,
) -> Result<Option<String>, PluginError> {
    pair.value
        .as_ref()
        .map(|t| render_template(t, env, sources))
        .transpose()
}

fn render_template(
    t: &Template,
    env: &mut Env,
    sources: &Sources<'_>,
) -> Result<String, PluginError> {
    t.render(env, sources).map_err(|e| {
        PluginError::internal(format!(
            "[request-transformer] failed to render the template {}, error:{e}",
            t.source()
        ))
    })
}

/// The method changes to one without a body: a url-encoded body moves into the query.
fn moves_form_to_query(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::TRACE)
}

impl RequestTransformer {
    fn lists(&self) -> [&Compiled; 5] {
        [
            &self.remove,
            &self.rename,
            &self.replace,
            &self.add,
            &self.append,
        ]
    }

    fn header_lists_empty(&self) -> bool {
        self.lists().iter().all(|l| l.headers.is_empty())
    }

    fn body_lists_empty(&self) -> bool {
        self.lists().iter().all(|l| l.body.is_empty())
    }

    fn query_lists_empty(&self) -> bool {
        self.lists().iter().all(|l| l.querystring.is_empty())
    }

    /// Whether the headers step may set Content-Type (the body step then reads it).
    fn sets_content_type(&self) -> bool {
        [&self.replace, &self.add, &self.append].iter().any(|l| {
            l.headers
                .iter()
                .any(|p| p.name.eq_ignore_ascii_case("content-type"))
        })
    }

    fn execute(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
        let mut env = Env::default();
        self.transform_uri(ctx, &mut env)?;
        self.transform_method(ctx)?;
        headers::transform(self, &mut ctx.request, &ctx.uri_captures, &mut env)?;
        let new_body = {
            let sources = Sources {
                request: &ctx.request,
                captures: &ctx.uri_captures,
            };
            body::transform(self, &sources, &mut env)?
        };
        if let Some(b) = new_body {
            ctx.request.set_body(Bytes::from(b));
        }
        self.transform_query(ctx, &mut env)
    }

    /// `replace.uri`: the upstream path, whatever routing made of the request's.
    fn transform_uri(&self, ctx: &mut Ctx, env: &mut Env) -> Result<(), PluginError> {
        let Some(t) = &self.uri else { return Ok(()) };
        let path = {
            let sources = Sources {
                request: &ctx.request,
                captures: &ctx.uri_captures,
            };
            render_template(t, env, &sources)?
        };
        if !path.starts_with('/') {
            return Err(PluginError::internal(format!(
                "[request-transformer] replace.uri rendered to '{path}': path must start with /"
            )));
        }
        ctx.request.set_upstream_path(path);
        Ok(())
    }

    fn transform_method(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
        let Some(method) = &self.method else {
            return Ok(());
        };
        if !METHODS.contains(&method.as_str()) {
            return Err(PluginError::internal(format!("invalid method: {method}")));
        }
        ctx.request.method = method.clone();
        if !moves_form_to_query(method)
            || body::kind(ctx.request.header("content-type")) != Some(body::Kind::Form)
        {
            return Ok(());
        }
        let form = Args::decode(&String::from_utf8_lossy(
            ctx.request.raw_body().map_or(&[][..], |b| &b[..]),
        ));
        if form.0.is_empty() {
            return Ok(());
        }
        let mut query = Args::decode(ctx.request.query().unwrap_or_default());
        for (name, arg) in form.0 {
            let items = match arg {
                Arg::One(i) => vec![i],
                Arg::Many(all) => all,
            };
            for item in items {
                query.push(name.clone(), item);
            }
        }
        set_query(ctx, &query)
    }

    fn transform_query(&self, ctx: &mut Ctx, env: &mut Env) -> Result<(), PluginError> {
        if self.query_lists_empty() {
            return Ok(());
        }
        let query = {
            let sources = Sources {
                request: &ctx.request,
                captures: &ctx.uri_captures,
            };
            let mut q = env.query_params(&sources).clone();
            for p in &self.remove.querystring {
                render(p, env, &sources)?;
                q.remove(&p.name);
            }
            for p in &self.rename.querystring {
                if let Some(new) = render(p, env, &sources)? {
                    q.rename(&p.name, &new);
                }
            }
            for p in &self.replace.querystring {
                if let Some(v) = render(p, env, &sources)?
                    && q.get(&p.name).is_some()
                {
                    q.set(&p.name, Arg::One(Item::Text(v)));
                }
            }
            for p in &self.add.querystring {
                if let Some(v) = render(p, env, &sources)?
                    && q.get(&p.name).is_none()
                {
                    q.set(&p.name, Arg::One(Item::Text(v)));
                }
            }
            for p in &self.append.querystring {
                if let Some(v) = render(p, env, &sources)? {
                    q.append(&p.name, v);
                }
            }
            q
        };
        set_query(ctx, &query)
    }
}

/// Kong's `kong.service.request.set_query`: the arguments encoded, sorted by name.
fn set_query(ctx: &mut Ctx, query: &Args) -> Result<(), PluginError> {
    ctx.request
        .set_raw_query(&query.encode_sorted())
        .map_err(|e| PluginError::internal(format!("query string: {e}")))
}

impl Handler for RequestTransformer {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        Phase::Ready(self.execute(ctx).map(|()| crate::handler::Flow::Continue))
    }

    fn reads_body(&self) -> bool {
        !self.body_lists_empty() || self.method.as_ref().is_some_and(moves_form_to_query)
    }

    /// Only bodies this instance transforms are read; others keep streaming.
    fn reads_body_of(&self, headers: &Fields) -> bool {
        let kind = body::kind(headers.get_str("content-type"));
        let for_method =
            self.method.as_ref().is_some_and(moves_form_to_query) && kind == Some(body::Kind::Form);
        let for_body = !self.body_lists_empty() && (kind.is_some() || self.sets_content_type());
        for_method || for_body
    }
}

#[cfg(test)]
mod tests;
