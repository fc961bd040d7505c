//! From an HTTP request to an endpoint: token check, path resolution against the routing table,
//! method checks (405, OPTIONS, HEAD), body parsing, and the headers Kong adds to every answer.
//!
//! Paths are resolved here rather than with axum's router because the entity endpoints are
//! generated from the schema registry at run time, and Kong's own precedence (fixed paths before
//! entity paths, trailing slashes tolerated, `{"message":"Not found"}` for anything unknown) is
//! easier to keep exact in one match.

use crate::body::{self, Body};
use crate::dao::Dao;
use crate::entities::{self, Foreign, Nest};
use crate::errors::AdminError;
use crate::query::Query;
use crate::state::AdminState;
use crate::table::{self, Entity};
use crate::{auth, dbless, node, proxy_cache, response, schemas, tags, upstreams};
use axum::body::Body as AxumBody;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use percent_encoding::percent_decode_str;
use silverback_store::Store;
use std::sync::Arc;

/// Largest request body read (declarative configs can be large).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// What a path names.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Root,
    Status,
    Metrics,
    Endpoints,
    Config,
    Tags,
    Tag(usize),
    PluginsEnabled,
    PluginConfigSchema(&'a str),
    Schema(&'a str),
    SchemaValidate(&'a str),
    PluginSchema(&'a str),
    TargetsAll(Nest<'a>),
    UpstreamHealth(Nest<'a>),
    /// A target (and maybe one of its addresses) set healthy (`true`) or unhealthy.
    SetTargetHealth(Nest<'a>, &'a str, Option<&'a str>, bool),
    Collection(Entity),
    Item(Entity, &'a str),
    Nested(Nest<'a>),
    NestedItem(Nest<'a>, &'a str),
    Foreign(Foreign<'a>),
    ProxyCache,
    ProxyCacheKey(&'a str),
    ProxyCachePluginKey(&'a str, &'a str),
}

impl Target<'_> {
    /// The methods an endpoint answers (besides HEAD and OPTIONS).
    fn methods(&self) -> &'static [Method] {
        const GET: &[Method] = &[Method::GET];
        const POST: &[Method] = &[Method::POST];
        const GET_POST: &[Method] = &[Method::GET, Method::POST];
        const PUT_POST: &[Method] = &[Method::PUT, Method::POST];
        const ITEM: &[Method] = &[Method::GET, Method::PUT, Method::PATCH, Method::DELETE];
        const DELETE: &[Method] = &[Method::DELETE];
        const GET_DELETE: &[Method] = &[Method::GET, Method::DELETE];
        match self {
            Target::ProxyCache => DELETE,
            Target::ProxyCacheKey(_) | Target::ProxyCachePluginKey(..) => GET_DELETE,
            Target::SchemaValidate(_) => POST,
            // Kong answers PUT; POST is what older Kong versions and their clients send.
            Target::SetTargetHealth(..) => PUT_POST,
            Target::Config | Target::Collection(_) | Target::Nested(_) => GET_POST,
            Target::Item(..) | Target::NestedItem(..) | Target::Foreign(_) => ITEM,
            _ => GET,
        }
    }
}

/// Resolves decoded path segments (`raw` are the same segments still percent-encoded).
fn resolve<'a>(seg: &'a [String], raw: &'a [&'a str]) -> Option<Target<'a>> {
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    let top = |name: &str| table::by_url(name).filter(|e| e.ep.top_level);
    let nest = |parent: Entity, i: usize, child: Entity, fk| Nest {
        parent,
        parent_raw: raw[i],
        parent_key: &seg[i],
        child,
        fk,
    };
    Some(match s.as_slice() {
        [] => Target::Root,
        ["status"] => Target::Status,
        ["metrics"] => Target::Metrics,
        ["endpoints"] => Target::Endpoints,
        ["config"] => Target::Config,
        ["tags"] => Target::Tags,
        ["tags", _] => Target::Tag(1),
        ["plugins", "enabled"] => Target::PluginsEnabled,
        ["proxy-cache"] => Target::ProxyCache,
        ["proxy-cache", _] => Target::ProxyCacheKey(&seg[1]),
        ["proxy-cache", _, "caches", _] => Target::ProxyCachePluginKey(&seg[1], &seg[3]),
        ["plugins", "schema", _] => Target::PluginConfigSchema(&seg[2]),
        ["schemas", "plugins", "validate"] => Target::SchemaValidate("plugins"),
        ["schemas", "plugins", _] => Target::PluginSchema(&seg[2]),
        ["schemas", _, "validate"] => Target::SchemaValidate(&seg[1]),
        ["schemas", _] => Target::Schema(&seg[1]),
        ["upstreams", _, "targets", "all"] => {
            let up = top("upstreams")?;
            let (child, fk) = table::child(up, "targets")?;
            Target::TargetsAll(nest(up, 1, child, fk))
        }
        ["upstreams", _, "health"] => {
            let up = top("upstreams")?;
            let (child, fk) = table::child(up, "targets")?;
            Target::UpstreamHealth(nest(up, 1, child, fk))
        }
        [
            "upstreams",
            _,
            "targets",
            _,
            state @ ("healthy" | "unhealthy"),
        ] => {
            let up = top("upstreams")?;
            let (child, fk) = table::child(up, "targets")?;
            Target::SetTargetHealth(nest(up, 1, child, fk), &seg[3], None, *state == "healthy")
        }
        [
            "upstreams",
            _,
            "targets",
            _,
            _,
            state @ ("healthy" | "unhealthy"),
        ] => {
            let up = top("upstreams")?;
            let (child, fk) = table::child(up, "targets")?;
            Target::SetTargetHealth(
                nest(up, 1, child, fk),
                &seg[3],
                Some(&seg[4]),
                *state == "healthy",
            )
        }
        [c] => Target::Collection(top(c)?),
        [c, _] => Target::Item(top(c)?, &seg[1]),
        [c, _, x] => {
            let e = top(c)?;
            if let Some((child, fk)) = table::child(e, x) {
                Target::Nested(nest(e, 1, child, fk))
            } else if e.ep.foreign_items {
                let (fk, target) = table::foreign(e, x)?;
                Target::Foreign(Foreign {
                    entity: e,
                    key: &seg[1],
                    fk,
                    target,
                })
            } else {
                return None;
            }
        }
        [c, _, x, _] => {
            let e = top(c)?;
            let (child, fk) = table::child(e, x)?;
            Target::NestedItem(nest(e, 1, child, fk), &seg[3])
        }
        _ => return None,
    })
}

/// A parsed request.
struct Req {
    method: Method,
    raw: Vec<String>,
    query: Query,
    content_type: Option<String>,
    bytes: bytes::Bytes,
}

impl Req {
    fn body(&self, accepts_yaml: bool) -> Result<Body, AdminError> {
        body::parse(
            &self.method,
            self.content_type.as_deref(),
            &self.bytes,
            accepts_yaml,
        )
    }
}

async fn dispatch<S: Store>(
    st: &AdminState<S>,
    req: &Req,
    t: Target<'_>,
) -> Result<Response, AdminError> {
    let dao = Dao::new(st);
    let m = &req.method;
    let q = &req.query;
    match t {
        Target::Root => node::root(st).await,
        Target::Status => node::status(st).await,
        Target::Metrics => Ok(node::metrics(st).await),
        Target::Endpoints => Ok(node::endpoints()),
        Target::PluginsEnabled => Ok(node::enabled(st)),
        Target::PluginConfigSchema(n) => schemas::plugin_config(st, n),
        Target::Schema(n) => schemas::entity(n),
        Target::PluginSchema(n) => schemas::plugin(st, n),
        Target::SchemaValidate(n) => schemas::validate(st, n, req.body(false)?),
        Target::Config if m == Method::POST => {
            let raw = String::from_utf8_lossy(&req.bytes);
            dbless::post(st, q, req.body(true)?, &raw).await
        }
        Target::Config => dbless::get(st).await,
        Target::ProxyCache => proxy_cache::purge_all(st).await,
        Target::ProxyCacheKey(key) => match *m {
            Method::DELETE => proxy_cache::purge(st, key).await,
            _ => proxy_cache::get(st, key).await,
        },
        Target::ProxyCachePluginKey(plugin, key) => match *m {
            Method::DELETE => proxy_cache::plugin_purge(st, plugin, key).await,
            _ => proxy_cache::plugin_get(st, plugin, key).await,
        },
        Target::Tags => tags::list(st, None, "", q).await,
        Target::Tag(i) => {
            let raw = req.raw.get(i).map_or("", String::as_str);
            let bytes: Vec<u8> = percent_decode_str(raw).collect();
            tags::list(st, Some(&bytes), raw, q).await
        }
        Target::TargetsAll(n) => entities::nested_list(&dao, n, q).await,
        Target::UpstreamHealth(n) => upstreams::health(&dao, n, q).await,
        Target::SetTargetHealth(n, target, address, healthy) => {
            upstreams::set_health(&dao, n, target, address, healthy).await
        }
        Target::Collection(e) => match *m {
            Method::POST => entities::create(&dao, e, req.body(false)?).await,
            _ => entities::list(&dao, e, q).await,
        },
        Target::Item(e, key) => match *m {
            Method::PUT => entities::put(&dao, e, key, req.body(false)?, None).await,
            Method::PATCH => entities::patch(&dao, e, key, req.body(false)?).await,
            Method::DELETE => entities::delete(&dao, e, key).await,
            _ => entities::get(&dao, e, key).await,
        },
        Target::Nested(n) => match *m {
            Method::POST => entities::nested_create(&dao, n, req.body(false)?).await,
            _ => entities::nested_list(&dao, n, q).await,
        },
        Target::NestedItem(n, key) => match *m {
            Method::PUT => entities::nested_put(&dao, n, key, req.body(false)?).await,
            Method::PATCH => entities::nested_patch(&dao, n, key, req.body(false)?).await,
            Method::DELETE => entities::nested_delete(&dao, n, key).await,
            _ => entities::nested_get(&dao, n, key).await,
        },
        Target::Foreign(f) => match *m {
            Method::PUT => entities::foreign_put(&dao, f, req.body(false)?).await,
            Method::PATCH => entities::foreign_patch(&dao, f, req.body(false)?).await,
            Method::DELETE => entities::foreign_delete(&dao, f).await,
            _ => entities::foreign_get(&dao, f).await,
        },
    }
}

/// `GET, HEAD, OPTIONS, POST`, as Kong lists them.
fn allow_list(methods: &[Method]) -> String {
    let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
    if methods.contains(&Method::GET) {
        names.push("HEAD");
    }
    names.push("OPTIONS");
    names.sort_unstable();
    names.join(", ")
}

fn options(methods: &[Method], headers: &HeaderMap) -> Response {
    let mut res = response::no_content();
    let allow = allow_list(methods);
    if let Ok(v) = HeaderValue::from_str(&allow) {
        res.headers_mut().insert(header::ALLOW, v.clone());
        res.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    let allow_headers = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static("Content-Type"));
    res.headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    res
}

/// Kong's CORS headers, on every answer.
fn cors(res: &mut Response, origin: Option<HeaderValue>) {
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        origin.unwrap_or(HeaderValue::from_static("*")),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

fn segments(path: &str) -> Option<(Vec<String>, Vec<String>)> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let path = path.strip_prefix('/')?;
    if path.is_empty() {
        return Some((Vec::new(), Vec::new()));
    }
    let raw: Vec<String> = path.split('/').map(str::to_string).collect();
    if raw.iter().any(String::is_empty) {
        return None;
    }
    let seg = raw
        .iter()
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    Some((seg, raw))
}

/// Serves one request.
pub async fn handle<S: Store>(st: Arc<AdminState<S>>, req: Request) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut res = serve_one(&st, req).await;
    cors(&mut res, origin);
    res
}

async fn serve_one<S: Store>(st: &AdminState<S>, req: Request) -> Response {
    if !auth::allowed(st.admin_token.as_deref(), req.headers()) {
        return AdminError::Unauthorized.into_response();
    }
    let method = req.method().clone();
    let Some((seg, raw)) = segments(req.uri().path()) else {
        return AdminError::NotFound.into_response();
    };
    let raw_refs: Vec<&str> = raw.iter().map(String::as_str).collect();
    let Some(target) = resolve(&seg, &raw_refs) else {
        return AdminError::NotFound.into_response();
    };
    let allowed = target.methods();
    if method == Method::OPTIONS {
        return options(allowed, req.headers());
    }
    let head = method == Method::HEAD;
    let effective = if head { Method::GET } else { method };
    if !allowed.contains(&effective) {
        return AdminError::MethodNotAllowed.into_response();
    }
    let query = Query::parse(req.uri().query());
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return response::json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &serde_json::json!({ "message": "Request size limit exceeded" }),
            );
        }
    };
    let r = Req {
        method: effective,
        raw: raw.clone(),
        query,
        content_type,
        bytes,
    };
    let mut res = dispatch(st, &r, target)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    tracing::debug!(method = %r.method, path = %raw.join("/"), status = res.status().as_u16(), "admin request");
    if head {
        *res.body_mut() = AxumBody::empty();
    }
    res
}
