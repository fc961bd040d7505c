//! The log record every log plugin sends (Kong 3.x's `kong.log.serialize`, HTTP subsystem):
//! request, upstream_uri, response, latencies, tries, authenticated_entity, route, service,
//! consumer, client_ip, started_at, source and workspace, built once per request from what
//! [`Ctx`] and [`super::Served`] hold.
//!
//! Secrets never reach a log: `Authorization` and `Proxy-Authorization` become `REDACTED` as
//! in Kong, and so do `Cookie`, `Set-Cookie` and any header or query argument an
//! authentication plugin read a credential from ([`Ctx::add_secret_name`]).

use super::Ctx;
use super::log::millis;
use serde_json::{Map, Value, json};
use silverback_http::Fields;
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a redacted value reads in the record.
pub const REDACTED: &str = "REDACTED";

/// Kong 3.x has workspaces; this gateway serves the default one.
const WORKSPACE_NAME: &str = "default";

/// Request headers whose values are always redacted.
const SECRET_REQUEST_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];
/// Response headers whose values are always redacted.
const SECRET_RESPONSE_HEADERS: &[&str] = &["set-cookie"];

/// The record for `ctx`, as a JSON object.
pub fn serialize(ctx: &Ctx) -> Value {
    let req = &ctx.request;
    let served = &ctx.served;
    let secret = |name: &str| {
        ctx.secret_names()
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name))
    };
    let fields = served.request_headers.as_ref().unwrap_or(&req.headers);
    let request_headers =
        headers_json(fields, |n| SECRET_REQUEST_HEADERS.contains(&n) || secret(n));
    let response_headers = headers_json(&ctx.response.headers, |n| {
        SECRET_RESPONSE_HEADERS.contains(&n)
    });
    let request_uri = &*redact_query(req.target().as_str(), secret);
    let host = host_of(ctx);
    let url = match ctx.server_addr {
        Some(a) => format!("{}://{host}:{}{request_uri}", req.scheme.as_str(), a.port()),
        None => format!("{}://{host}{request_uri}", req.scheme.as_str()),
    };
    let upstream_uri = served.upstream_uri.as_ref().map_or(String::new(), |u| {
        redact_query(u.as_str(), secret).into_owned()
    });
    let upstream_status = served
        .upstream_status
        .map_or(Value::String(String::new()), |s| {
            Value::String(s.to_string())
        });
    let started_at = started_at_ms(ctx);
    let mut root = json!({
        "request": {
            "id": ctx.request_id(),
            "uri": request_uri,
            "url": url,
            "querystring": query_json(req.query_args(), secret),
            "method": req.method.as_str(),
            "headers": request_headers,
            "size": served.request_size,
        },
        "upstream_uri": upstream_uri,
        "upstream_status": upstream_status,
        "response": {
            "status": ctx.response.status.as_u16(),
            "headers": response_headers,
            "size": served.response_size,
        },
        "latencies": {
            "kong": served.kong_latency.map_or(0, millis),
            "proxy": served.upstream_latency.map_or(-1, |d| i64::try_from(millis(d)).unwrap_or(i64::MAX)),
            "request": millis(served.request_latency),
            "receive": 0,
        },
        "client_ip": ctx.client_ip.to_canonical().to_string(),
        "started_at": started_at,
        "source": ctx.response.source.as_str(),
        "workspace_name": WORKSPACE_NAME,
    });
    let Value::Object(obj) = &mut root else {
        return root;
    };
    if !served.tries.is_empty() {
        let tries: Vec<Value> = served
            .tries
            .iter()
            .map(|t| {
                let mut v = json!({
                    "ip": t.addr.ip().to_canonical().to_string(),
                    "port": t.addr.port(),
                    "balancer_start": started_at + millis(t.started),
                    "balancer_latency": 0,
                });
                if let Some(code) = t.failed_status {
                    v["state"] = json!("failed");
                    v["code"] = json!(code);
                }
                v
            })
            .collect();
        obj.insert("tries".into(), Value::Array(tries));
    }
    if let Some(c) = &ctx.credential {
        let consumer_id = c
            .consumer_id
            .or_else(|| ctx.consumer.as_ref().map(|c| c.id));
        obj.insert(
            "authenticated_entity".into(),
            json!({ "id": c.id, "consumer_id": consumer_id }),
        );
    }
    if let Some(r) = &ctx.route {
        obj.insert("route".into(), Value::Object(r.row.map().clone()));
        if let Some(ws) = r.row.map().get("ws_id") {
            obj.insert("workspace".into(), ws.clone());
        }
    }
    if let Some(s) = &ctx.service {
        obj.insert("service".into(), Value::Object(s.row.map().clone()));
    }
    if let Some(c) = &ctx.consumer {
        obj.insert("consumer".into(), Value::Object(c.row.map().clone()));
    }
    root
}

/// nginx's `$host`: the Host (or HTTP/2 authority) without port, lower case; the server
/// address when there is none.
pub(crate) fn host_of(ctx: &Ctx) -> String {
    let authority = ctx
        .request
        .authority
        .as_ref()
        .and_then(|a| a.to_str().ok())
        .or_else(|| ctx.request.header("host"));
    match authority {
        Some(a) => {
            let host = if let Some(rest) = a.strip_prefix('[') {
                rest.split(']').next().unwrap_or(rest)
            } else {
                a.rsplit_once(':').map_or(a, |(h, _)| h)
            };
            host.to_ascii_lowercase()
        }
        None => ctx
            .server_addr
            .map(|a| a.ip().to_string())
            .unwrap_or_default(),
    }
}

/// When the request started, in milliseconds since the epoch (Kong's `started_at`).
fn started_at_ms(ctx: &Ctx) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    millis(now.saturating_sub(ctx.started.elapsed()))
}

/// Headers as Kong's `get_headers()` gives them: lower-case names, one value as a string,
/// repeated ones as an array; `secret` names get [`REDACTED`].
fn headers_json(fields: &Fields, secret: impl Fn(&str) -> bool) -> Map<String, Value> {
    let mut out = Map::new();
    fields.for_each(|name, value| {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let value = if secret(&name) {
            Value::String(REDACTED.into())
        } else {
            Value::String(String::from_utf8_lossy(value).into_owned())
        };
        push_value(&mut out, name, value);
    });
    out
}

/// A path and query with the values of `secret` arguments replaced by [`REDACTED`] (borrowed
/// as is when there is none).
pub fn redact_query(target: &str, secret: impl Fn(&str) -> bool) -> Cow<'_, str> {
    let Some((path, query)) = target.split_once('?') else {
        return Cow::Borrowed(target);
    };
    let is_secret = |pair: &str| {
        form_urlencoded::parse(pair.as_bytes())
            .next()
            .is_some_and(|(name, _)| secret(&name))
    };
    if !query.split('&').any(is_secret) {
        return Cow::Borrowed(target);
    }
    let pairs: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(pair) => Cow::Owned(format!("{name}={REDACTED}")),
            _ => Cow::Borrowed(pair),
        })
        .collect();
    Cow::Owned(format!("{path}?{}", pairs.join("&")))
}

/// Query arguments as Kong's `get_query()`: a flag is `true`, repeats are an array.
fn query_json(
    args: Vec<(String, Option<String>)>,
    secret: impl Fn(&str) -> bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in args {
        let v = match v {
            _ if secret(&k) => Value::String(REDACTED.into()),
            Some(v) => Value::String(v),
            None => Value::Bool(true),
        };
        push_value(&mut out, k, v);
    }
    out
}

fn push_value(out: &mut Map<String, Value>, name: String, value: Value) {
    match out.get_mut(&name) {
        None => {
            out.insert(name, value);
        }
        Some(Value::Array(a)) => a.push(value),
        Some(first) => *first = Value::Array(vec![first.take(), value]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;
    use http::HeaderValue;
    use http::header::HeaderName;
    use std::sync::Arc;

    fn ctx() -> Ctx {
        let mut ctx = Ctx::for_tests(Arc::new(Directory::default()));
        ctx.request = crate::pdk::Request::new(
            http::Method::GET,
            crate::pdk::Scheme::Http,
            http::Version::HTTP_11,
            None,
            Default::default(),
            http::uri::PathAndQuery::from_static("/p?a=1&a=2&flag&apikey=k2"),
        );
        let h = |n: &'static str, v: &'static str| {
            (HeaderName::from_static(n), HeaderValue::from_static(v))
        };
        for (n, v) in [
            h("host", "Example.COM:8000"),
            h("authorization", "Basic c2VjcmV0"),
            h("proxy-authorization", "Bearer x"),
            h("cookie", "session=abc"),
            h("apikey", "k1"),
            h("x-multi", "a"),
            h("x-multi", "b"),
        ] {
            ctx.request.headers.append(n, v);
        }
        ctx.response.headers.append(
            HeaderName::from_static("set-cookie"),
            HeaderValue::from_static("s=1"),
        );
        ctx
    }

    #[test]
    fn redacts_secrets_and_keeps_the_rest() {
        let mut ctx = ctx();
        ctx.add_secret_name("apikey".into());
        let r = serialize(&ctx);
        assert_eq!(r["request"]["uri"], "/p?a=1&a=2&flag&apikey=REDACTED");
        let h = &r["request"]["headers"];
        assert_eq!(h["authorization"], REDACTED);
        assert_eq!(h["proxy-authorization"], REDACTED);
        assert_eq!(h["cookie"], REDACTED);
        assert_eq!(h["apikey"], REDACTED);
        assert_eq!(h["x-multi"], json!(["a", "b"]));
        assert_eq!(r["response"]["headers"]["set-cookie"], REDACTED);
        let q = &r["request"]["querystring"];
        assert_eq!(q["a"], json!(["1", "2"]));
        assert_eq!(q["flag"], json!(true));
        assert_eq!(q["apikey"], REDACTED);
        let text = r.to_string();
        for secret in ["c2VjcmV0", "abc", "k1", "k2", "s=1"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn kong_shape() {
        let r = serialize(&ctx());
        assert_eq!(r["request"]["uri"], "/p?a=1&a=2&flag&apikey=k2");
        assert_eq!(r["request"]["method"], "GET");
        assert_eq!(
            r["request"]["url"],
            "http://example.com/p?a=1&a=2&flag&apikey=k2"
        );
        assert_eq!(r["upstream_uri"], "");
        assert_eq!(r["latencies"]["proxy"], -1);
        assert_eq!(r["client_ip"], "127.0.0.1");
        assert_eq!(r["source"], "service");
        assert!(
            r["started_at"]
                .as_u64()
                .is_some_and(|t| t > 1_600_000_000_000)
        );
        assert!(r.get("route").is_none());
        assert!(r.get("authenticated_entity").is_none());
    }
}
