//! cors: answers preflight requests and adds the `Access-Control-*` headers to responses, for
//! the origins the config allows (`*`, exact origins, or regexes).

mod schema;

use crate::handler::{Handler, Phase, Phases, PluginError};
use crate::pdk::{Ctx, Exit};
use crate::registry::PluginDef;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, VARY,
};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use regex::Regex;
use schema::CorsConfig;
use serde_json::Value;
use silverback_http::Fields;
use std::sync::Arc;

pub(crate) const NAME: &str = "cors";

const ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 2000,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: true,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases {
            access: true,
            header_filter: true,
            ..Phases::default()
        },
        build,
        index: None,
    }
}

/// One configured origin.
#[derive(Debug)]
enum Origin {
    /// Compared with the request's normalized origin.
    Exact(String),
    /// Anchored at both ends; matched against the request origin's host when the pattern has
    /// no `:` (no scheme or port), else against the whole normalized origin.
    Pattern { re: Regex, by_host: bool },
}

#[derive(Debug)]
enum Origins {
    /// No origins, or just `*`.
    Any,
    /// One origin that is not a pattern: always sent as it is.
    Fixed(HeaderValue),
    /// Several, or a pattern: the request's origin is echoed when one matches. With `star`
    /// (a `*` in the list), any request with an Origin is allowed.
    List { star: bool, entries: Vec<Origin> },
}

/// Only these characters: an origin, not a pattern.
fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'-'))
}

/// An origin as browsers compare them: `scheme://host[:port]`, the default port dropped.
/// Text that has no `scheme://host` part stays as it is. Returns (origin, host).
fn normalize_origin(origin: &str) -> (String, String) {
    let scheme_end = origin.find(':').filter(|&i| {
        i > 0
            && origin.as_bytes()[0].is_ascii_alphanumeric()
            && origin[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    });
    let (scheme, rest) = match scheme_end {
        Some(i) => (Some(&origin[..i]), &origin[i + 1..]),
        None => (None, origin),
    };
    let Some(authority) = rest.strip_prefix("//") else {
        return (origin.to_string(), origin.to_string());
    };
    let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (authority, None),
    };
    if host.is_empty() {
        return (origin.to_string(), origin.to_string());
    }
    let port = port.filter(|p| {
        !(matches!((scheme, *p), (Some("http"), "80") | (Some("https"), "443")) || p.is_empty())
    });
    let mut domain = String::with_capacity(origin.len());
    if let Some(s) = scheme {
        domain.push_str(s);
        domain.push_str("://");
    }
    domain.push_str(host);
    if let Some(p) = port {
        domain.push(':');
        domain.push_str(p);
    }
    (domain, host.to_string())
}

fn header(value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value).map_err(|e| format!("{value:?}: {e}"))
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: CorsConfig = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let list = conf.origins.clone().unwrap_or_default();
    let origins = if list.is_empty() || (list.len() == 1 && list[0] == "*") {
        Origins::Any
    } else if list.len() == 1 && is_plain(&list[0]) {
        Origins::Fixed(header(&list[0])?)
    } else {
        let mut entries = Vec::new();
        for entry in &list {
            if entry == "*" {
                continue;
            }
            if is_plain(entry) {
                entries.push(Origin::Exact(normalize_origin(entry).0));
                continue;
            }
            // Patterns match whole origins: anchored at the start, and at the end unless
            // they already are.
            let body = entry.strip_prefix('^').unwrap_or(entry);
            let body = if body.ends_with('$') {
                body.to_string()
            } else {
                format!("{body}$")
            };
            let re = Regex::new(&format!("^(?:{body})")).map_err(|e| e.to_string())?;
            entries.push(Origin::Pattern {
                re,
                by_host: !entry.contains(':'),
            });
        }
        Origins::List {
            star: list.iter().any(|o| o == "*"),
            entries,
        }
    };
    let join = |v: &Option<Vec<String>>| -> Result<Option<HeaderValue>, String> {
        match v {
            Some(v) if !v.is_empty() => header(&v.join(",")).map(Some),
            _ => Ok(None),
        }
    };
    let methods = match &conf.methods {
        Some(m) => header(&m.join(","))?,
        None => header(&schema::METHODS.join(","))?,
    };
    let max_age = conf
        .max_age
        .map(|n| {
            if n.fract() == 0.0 && n.abs() < 1e15 {
                (n as i64).to_string()
            } else {
                n.to_string()
            }
        })
        .map(|s| header(&s))
        .transpose()?;
    Ok(Arc::new(Cors {
        allow_headers: join(&conf.headers)?,
        expose_headers: join(&conf.exposed_headers)?,
        methods,
        max_age,
        origins,
        conf,
    }))
}

struct Cors {
    conf: CorsConfig,
    origins: Origins,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    methods: HeaderValue,
    max_age: Option<HeaderValue>,
}

/// Set by `access` on preflights: the response phase adds nothing (the preflight answer has
/// its headers already, or the upstream answers it).
struct SkipResponseHeaders;

/// Response headers being built: the preflight's own answer, or the response on its way out.
trait Out {
    fn put(&mut self, name: HeaderName, value: HeaderValue);
    fn unset(&mut self, name: &HeaderName);
    /// `Vary: Origin`: replaces Vary on a preflight, is added to the upstream's otherwise.
    fn vary_origin(&mut self);
}

impl Out for Vec<(HeaderName, HeaderValue)> {
    fn put(&mut self, name: HeaderName, value: HeaderValue) {
        self.unset(&name);
        self.push((name, value));
    }
    fn unset(&mut self, name: &HeaderName) {
        self.retain(|(n, _)| n != name);
    }
    fn vary_origin(&mut self) {
        self.put(VARY, HeaderValue::from_static("Origin"));
    }
}

impl Out for Fields {
    fn put(&mut self, name: HeaderName, value: HeaderValue) {
        Fields::set(self, name, value);
    }
    fn unset(&mut self, name: &HeaderName) {
        self.remove(name.as_str());
    }
    fn vary_origin(&mut self) {
        self.append(VARY, HeaderValue::from_static("Origin"));
    }
}

impl Cors {
    /// Access-Control-Allow-Origin for the request's origin; true when every origin is allowed.
    fn allow_origin(&self, out: &mut dyn Out, origin: Option<&str>) -> bool {
        let star = HeaderValue::from_static("*");
        let entries = match &self.origins {
            Origins::Any => {
                out.put(ACCESS_CONTROL_ALLOW_ORIGIN, star);
                return true;
            }
            Origins::Fixed(v) => {
                out.vary_origin();
                out.put(ACCESS_CONTROL_ALLOW_ORIGIN, v.clone());
                return false;
            }
            Origins::List {
                star: has_star,
                entries,
            } => {
                // The allowed origin depends on the request's: caches must know.
                out.vary_origin();
                if *has_star && origin.is_some() {
                    out.put(ACCESS_CONTROL_ALLOW_ORIGIN, star);
                    return true;
                }
                entries
            }
        };
        if let Some(origin) = origin {
            let (domain, host) = normalize_origin(origin);
            let found = entries.iter().any(|e| match e {
                Origin::Exact(d) => *d == domain,
                Origin::Pattern { re, by_host } => {
                    re.is_match(if *by_host { &host } else { &domain })
                }
            });
            if found && let Ok(v) = HeaderValue::from_str(&domain) {
                out.put(ACCESS_CONTROL_ALLOW_ORIGIN, v);
                return false;
            }
        }
        out.unset(&ACCESS_CONTROL_ALLOW_ORIGIN);
        false
    }

    /// Access-Control-Allow-Credentials; with every origin allowed, the origin is echoed
    /// instead of `*` (browsers refuse credentials with `*`).
    fn allow_credentials(&self, out: &mut dyn Out, allow_all: bool, origin: Option<&str>) {
        if !self.conf.credentials {
            return;
        }
        let yes = HeaderValue::from_static("true");
        if !allow_all {
            out.put(ACCESS_CONTROL_ALLOW_CREDENTIALS, yes);
            return;
        }
        if let Some(v) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
            out.vary_origin();
            out.put(ACCESS_CONTROL_ALLOW_ORIGIN, v);
            out.put(ACCESS_CONTROL_ALLOW_CREDENTIALS, yes);
        }
    }

    fn preflight(&self, ctx: &Ctx, origin: &str) -> Exit {
        let mut out: Vec<(HeaderName, HeaderValue)> = Vec::new();
        let allow_all = self.allow_origin(&mut out, Some(origin));
        self.allow_credentials(&mut out, allow_all, Some(origin));
        let requested = ctx
            .request
            .headers
            .get_value("access-control-request-headers");
        match (&self.allow_headers, requested) {
            (Some(h), _) => out.put(ACCESS_CONTROL_ALLOW_HEADERS, h.clone()),
            (None, Some(h)) => out.put(ACCESS_CONTROL_ALLOW_HEADERS, h),
            (None, None) => out.unset(&ACCESS_CONTROL_ALLOW_HEADERS),
        }
        out.put(ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone());
        if let Some(age) = &self.max_age {
            out.put(ACCESS_CONTROL_MAX_AGE, age.clone());
        }
        if self.conf.private_network
            && ctx.request.header("access-control-request-private-network") == Some("true")
        {
            out.put(ALLOW_PRIVATE_NETWORK, HeaderValue::from_static("true"));
        }
        let mut exit = Exit::empty(StatusCode::OK);
        exit.headers = out;
        exit
    }
}

/// The request's Origin, when it has a non-empty one.
fn request_origin(ctx: &Ctx) -> Option<&str> {
    ctx.request.header("origin").filter(|o| !o.is_empty())
}

impl Handler for Cors {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        if ctx.request.method != Method::OPTIONS
            || ctx.request.header_count("access-control-request-method") == 0
        {
            return Phase::CONTINUE;
        }
        let Some(origin) = request_origin(ctx).map(str::to_string) else {
            return Phase::CONTINUE;
        };
        ctx.set_data(SkipResponseHeaders);
        if self.conf.preflight_continue {
            return Phase::CONTINUE;
        }
        self.preflight(ctx, &origin).into()
    }

    fn header_filter(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
        if ctx.data::<SkipResponseHeaders>().is_some() {
            return Ok(());
        }
        let origin = request_origin(ctx).map(str::to_string);
        if origin.is_none() && !self.conf.allow_origin_absent {
            return Ok(());
        }
        let out = &mut ctx.response.headers;
        let allow_all = self.allow_origin(out, origin.as_deref());
        self.allow_credentials(out, allow_all, origin.as_deref());
        if let Some(h) = &self.expose_headers {
            out.put(ACCESS_CONTROL_EXPOSE_HEADERS, h.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_normalize_like_kong() {
        assert_eq!(
            normalize_origin("http://example.com:80"),
            ("http://example.com".into(), "example.com".into())
        );
        assert_eq!(
            normalize_origin("https://a.example.com:8443/x"),
            ("https://a.example.com:8443".into(), "a.example.com".into())
        );
        assert_eq!(normalize_origin("null"), ("null".into(), "null".into()));
        assert!(is_plain("http://example.com"));
        assert!(!is_plain("(.*)\\.example\\.com"));
    }
}
