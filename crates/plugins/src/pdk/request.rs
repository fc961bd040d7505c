//! The request as plugins see and change it (Kong's `kong.request` and
//! `kong.service.request`): changes made here are what the upstream receives.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::uri::PathAndQuery;
use http::{HeaderName, HeaderValue, Method, Version};
use serde_json::{Map, Value};
use silverback_http::{Fields, int_value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The request body as far as plugins can see it.
#[derive(Debug, Clone, Default)]
pub enum Body {
    /// No plugin of the chain asked for it; it streams to the upstream untouched.
    #[default]
    Unread,
    /// Read into memory.
    Read(Bytes),
    /// Larger than `client_body_buffer_size`: not held in memory (Kong's body on a temp file,
    /// which `kong.request.get_body` does not read either).
    TooLarge,
}

/// A query argument's value, Kong's way: absent, one string, a bare flag (`?a`), or repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryValue {
    Missing,
    One(String),
    Flag,
    Many,
}

#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub scheme: Scheme,
    pub version: Version,
    /// `:authority`, or the Host field.
    pub authority: Option<HeaderValue>,
    /// Fields as they will go upstream.
    pub headers: Fields,
    /// What the hop-by-hop fields the proxy keeps out of `headers` said: the body came with
    /// `Transfer-Encoding: chunked`, and the client sent `Expect: 100-continue`.
    pub chunked: bool,
    pub expects_continue: bool,
    target: PathAndQuery,
    target_changed: bool,
    /// The path a plugin sent upstream instead of the routed one (Kong's `set_path`).
    upstream_path: Option<String>,
    /// The Host a plugin set (Kong's `set_header("host")`): it goes upstream whatever
    /// `preserve_host` says.
    upstream_host: Option<HeaderValue>,
    body: Body,
    body_changed: bool,
    body_limit: Option<BodyLimit>,
}

/// A limit on the size of a request body that streams in after `access` (one without a
/// Content-Length): the proxy counts the bytes as they arrive, stops reading once there are
/// more than `max`, and answers `exit` instead of proxying.
#[derive(Debug, Clone)]
pub struct BodyLimit {
    pub max: u64,
    pub exit: super::Exit,
}

impl Request {
    pub fn new(
        method: Method,
        scheme: Scheme,
        version: Version,
        authority: Option<HeaderValue>,
        headers: Fields,
        target: PathAndQuery,
    ) -> Self {
        Request {
            method,
            scheme,
            version,
            authority,
            headers,
            chunked: false,
            expects_continue: false,
            target,
            target_changed: false,
            upstream_path: None,
            upstream_host: None,
            body: Body::Unread,
            body_changed: false,
            body_limit: None,
        }
    }

    /// The client's path and query, with changes plugins made.
    pub fn target(&self) -> &PathAndQuery {
        &self.target
    }

    /// The target, when a plugin changed it.
    pub fn changed_target(&self) -> Option<&PathAndQuery> {
        self.target_changed.then_some(&self.target)
    }

    pub fn path(&self) -> &str {
        self.target.path()
    }

    pub fn query(&self) -> Option<&str> {
        self.target.query()
    }

    /// The first value of a header as text; `None` when absent or not text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get_str(name)
    }

    /// How many times a header was sent (Kong's `get_headers` gives a list for more than one).
    pub fn header_count(&self, name: &str) -> usize {
        self.headers.get_all(name).count()
    }

    /// Every value a header was sent with, in order. `name` must be lower case.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.get_all(name)
    }

    /// Sets a header for the upstream; `Host` also becomes the Host the upstream gets (Kong's
    /// `kong.service.request.set_header`).
    pub fn set_header(&mut self, name: HeaderName, value: HeaderValue) {
        if name == http::header::HOST {
            self.upstream_host = Some(value.clone());
        }
        self.headers.set(name, value);
    }

    /// The Host a plugin set for the upstream.
    pub fn upstream_host(&self) -> Option<&HeaderValue> {
        self.upstream_host.as_ref()
    }

    /// Replaces the path sent upstream, whatever `strip_path` and the service path would make
    /// of the request's (Kong's `kong.service.request.set_path`). The proxy escapes it as Kong
    /// does; the query stays.
    pub fn set_upstream_path(&mut self, path: impl Into<String>) {
        self.upstream_path = Some(path.into());
    }

    /// The path a plugin set for the upstream, not yet escaped.
    pub fn upstream_path(&self) -> Option<&str> {
        self.upstream_path.as_deref()
    }

    /// Replaces the query sent upstream (without `?`; empty drops it), as Kong's
    /// `kong.service.request.set_raw_query`.
    pub fn set_raw_query(&mut self, query: &str) -> Result<(), http::uri::InvalidUri> {
        let unchanged = match self.query() {
            Some(q) => q == query,
            None => query.is_empty(),
        };
        if unchanged {
            return Ok(());
        }
        let path = self.path();
        let text = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        self.target = PathAndQuery::from_maybe_shared(Bytes::from(text))?;
        self.target_changed = true;
        Ok(())
    }

    pub fn clear_header(&mut self, name: &str) {
        self.headers.remove(name);
    }

    /// Decoded query arguments in order; a bare key has no value.
    pub fn query_args(&self) -> Vec<(String, Option<String>)> {
        let Some(q) = self.query() else {
            return Vec::new();
        };
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), Some(decode(v))),
                None => (decode(p), None),
            })
            .collect()
    }

    /// One query argument, as Kong's `kong.request.get_query()[name]` sees it.
    pub fn query_arg(&self, name: &str) -> QueryValue {
        let mut found = QueryValue::Missing;
        for (k, v) in self.query_args() {
            if k != name {
                continue;
            }
            found = match (found, v) {
                (QueryValue::Missing, Some(v)) => QueryValue::One(v),
                (QueryValue::Missing, None) => QueryValue::Flag,
                _ => QueryValue::Many,
            };
        }
        found
    }

    /// Removes every occurrence of a query argument; the others keep their encoding and order.
    pub fn clear_query_arg(&mut self, name: &str) {
        let Some(q) = self.query() else { return };
        let kept: Vec<&str> = q
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| decode(p.split_once('=').map_or(p, |(k, _)| k)) != name)
            .collect();
        let rest = kept.join("&");
        if rest.len() == q.len() {
            return;
        }
        let path = self.path();
        let text = if rest.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{rest}")
        };
        if let Ok(t) = PathAndQuery::from_maybe_shared(Bytes::from(text)) {
            self.target = t;
            self.target_changed = true;
        }
    }

    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The body bytes when they were read into memory.
    pub fn raw_body(&self) -> Option<&Bytes> {
        match &self.body {
            Body::Read(b) => Some(b),
            _ => None,
        }
    }

    /// Set by the proxy once it read the body for the chain.
    pub fn set_read_body(&mut self, body: Body) {
        self.body = body;
    }

    /// Replaces the body sent upstream (Content-Length follows).
    pub fn set_body(&mut self, body: Bytes) {
        self.headers
            .set(CONTENT_LENGTH, int_value(body.len() as u64));
        self.body = Body::Read(body);
        self.body_changed = true;
    }

    /// The new body, when a plugin replaced it.
    pub fn changed_body(&self) -> Option<&Bytes> {
        if self.body_changed {
            self.raw_body()
        } else {
            None
        }
    }

    /// Limits the body that is still to be read (the smallest limit of several wins).
    pub fn limit_body(&mut self, max: u64, exit: super::Exit) {
        if self.body_limit.as_ref().is_none_or(|l| max < l.max) {
            self.body_limit = Some(BodyLimit { max, exit });
        }
    }

    /// The limit plugins set, for the proxy to enforce.
    pub fn take_body_limit(&mut self) -> Option<BodyLimit> {
        self.body_limit.take()
    }

    /// The body's arguments by its content type (form, JSON object or multipart form), Kong's
    /// `kong.request.get_body()`. `Err` says why there are none.
    pub fn body_args(&self) -> Result<BodyArgs, &'static str> {
        let Body::Read(bytes) = &self.body else {
            return Err("request body not read into memory");
        };
        let content_type = self.header("content-type").unwrap_or_default();
        BodyArgs::parse(content_type, bytes)
    }

    /// Writes arguments back as the body, in the same content type.
    pub fn set_body_args(&mut self, args: &BodyArgs) {
        let (body, content_type) = args.serialize();
        if let Some(ct) = content_type.and_then(|ct| HeaderValue::from_str(&ct).ok()) {
            self.headers.set(CONTENT_TYPE, ct);
        }
        self.set_body(body);
    }
}

/// A header name as nginx looks it up (`ngx.var.http_*`, `kong.request.get_header`): case
/// does not matter and `_` stands for `-`.
pub fn header_key(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

fn decode(s: &str) -> String {
    form_urlencoded::parse(format!("{s}=").as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

/// One body argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgValue<'a> {
    Missing,
    Text(&'a str),
    /// Repeated, or a JSON array or object.
    Table,
    /// A JSON number or boolean.
    Scalar,
}

/// A body's arguments in the form they came in.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyArgs {
    Form(Vec<(String, String)>),
    Json(Map<String, Value>),
    Multipart {
        boundary: String,
        parts: Vec<(String, String)>,
    },
}

impl BodyArgs {
    pub fn parse(content_type: &str, body: &[u8]) -> Result<BodyArgs, &'static str> {
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-www-form-urlencoded" => Ok(BodyArgs::Form(
                form_urlencoded::parse(body)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            )),
            m if m == "application/json" || m.ends_with("+json") => {
                match serde_json::from_slice(body) {
                    Ok(Value::Object(o)) => Ok(BodyArgs::Json(o)),
                    Ok(_) => Err("request body is not a JSON object"),
                    Err(_) => Err("request body is not valid JSON"),
                }
            }
            "multipart/form-data" => {
                let boundary = content_type
                    .split(';')
                    .filter_map(|p| p.trim().strip_prefix("boundary="))
                    .map(|b| b.trim_matches('"').to_string())
                    .next()
                    .ok_or("multipart body without a boundary")?;
                let parts = parse_multipart(body, &boundary)?;
                Ok(BodyArgs::Multipart { boundary, parts })
            }
            _ => Err("unsupported content type"),
        }
    }

    /// An argument's value, told apart the way Kong's Lua sees it (a string, a table for
    /// repeated form fields and JSON arrays or objects, or another scalar).
    pub fn get(&self, name: &str) -> ArgValue<'_> {
        match self {
            BodyArgs::Form(p) | BodyArgs::Multipart { parts: p, .. } => {
                let mut values = p.iter().filter(|(k, _)| k == name);
                match (values.next(), values.next()) {
                    (None, _) => ArgValue::Missing,
                    (Some((_, v)), None) => ArgValue::Text(v),
                    (Some(_), Some(_)) => ArgValue::Table,
                }
            }
            BodyArgs::Json(o) => match o.get(name) {
                None | Some(Value::Null) => ArgValue::Missing,
                Some(Value::String(s)) => ArgValue::Text(s),
                Some(Value::Array(_) | Value::Object(_)) => ArgValue::Table,
                Some(_) => ArgValue::Scalar,
            },
        }
    }

    pub fn remove(&mut self, name: &str) {
        match self {
            BodyArgs::Form(p) | BodyArgs::Multipart { parts: p, .. } => {
                p.retain(|(k, _)| k != name)
            }
            BodyArgs::Json(o) => {
                o.remove(name);
            }
        }
    }

    /// The body and its content type.
    pub fn serialize(&self) -> (Bytes, Option<String>) {
        match self {
            BodyArgs::Form(p) => {
                let mut s = form_urlencoded::Serializer::new(String::new());
                for (k, v) in p {
                    s.append_pair(k, v);
                }
                (Bytes::from(s.finish()), None)
            }
            BodyArgs::Json(o) => (Bytes::from(Value::Object(o.clone()).to_string()), None),
            BodyArgs::Multipart { boundary, parts } => {
                let mut out = String::new();
                for (k, v) in parts {
                    out.push_str(&format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                    ));
                }
                out.push_str(&format!("--{boundary}--\r\n"));
                (
                    Bytes::from(out),
                    Some(format!("multipart/form-data; boundary={boundary}")),
                )
            }
        }
    }
}

/// The text fields of a multipart form (file parts are skipped).
fn parse_multipart(body: &[u8], boundary: &str) -> Result<Vec<(String, String)>, &'static str> {
    let text = std::str::from_utf8(body).map_err(|_| "multipart body is not text")?;
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    for chunk in text.split(delimiter.as_str()).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let chunk = chunk.strip_prefix("\r\n").unwrap_or(chunk);
        let Some((head, value)) = chunk.split_once("\r\n\r\n") else {
            return Err("malformed multipart body");
        };
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .ok_or("multipart part without Content-Disposition")?;
        if disposition.contains("filename=") {
            continue;
        }
        let name = disposition
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_string())
            .next()
            .ok_or("multipart part without a name")?;
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        parts.push((name, value.to_string()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &'static str) -> Request {
        Request::new(
            Method::GET,
            Scheme::Http,
            Version::HTTP_11,
            None,
            Fields::default(),
            PathAndQuery::from_static(target),
        )
    }

    #[test]
    fn query_values_like_kong() {
        let r = req("/p?apikey=a%20b&x&d=1&d=2");
        assert_eq!(r.query_arg("apikey"), QueryValue::One("a b".into()));
        assert_eq!(r.query_arg("x"), QueryValue::Flag);
        assert_eq!(r.query_arg("d"), QueryValue::Many);
        assert_eq!(r.query_arg("none"), QueryValue::Missing);
    }

    #[test]
    fn clearing_a_query_arg_keeps_the_rest_as_sent() {
        let mut r = req("/p?a=%41&apikey=k&b=2&apikey=z");
        r.clear_query_arg("apikey");
        assert_eq!(r.target().as_str(), "/p?a=%41&b=2");
        let mut r = req("/p?apikey=k");
        r.clear_query_arg("apikey");
        assert_eq!(r.target().as_str(), "/p");
        assert!(r.changed_target().is_some());
    }

    #[test]
    fn body_args_by_content_type() {
        let f = BodyArgs::parse("application/x-www-form-urlencoded", b"a=1&k=v+w").unwrap();
        assert_eq!(f.get("k"), ArgValue::Text("v w"));
        let j = BodyArgs::parse("application/json; charset=utf-8", br#"{"k":"v","n":1}"#).unwrap();
        assert_eq!(j.get("k"), ArgValue::Text("v"));
        assert_eq!(j.get("n"), ArgValue::Scalar);
        let body = "--XX\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nval\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nbin\r\n--XX--\r\n";
        let mut m = BodyArgs::parse("multipart/form-data; boundary=XX", body.as_bytes()).unwrap();
        assert_eq!(m.get("k"), ArgValue::Text("val"));
        m.remove("k");
        assert_eq!(m.get("k"), ArgValue::Missing);
        assert!(BodyArgs::parse("application/json", b"[1]").is_err());
    }
}
