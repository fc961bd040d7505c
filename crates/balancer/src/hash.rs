//! What a consistent-hashing upstream hashes on: Kong's `hash_on` and `hash_fallback` sources
//! (consumer, client ip, a header, a cookie, the path, a query argument, a regex capture),
//! compiled once per balancer. The proxy lends the request's parts; only hashing upstreams
//! look at them.

use crate::consistent_hashing::hash;
use silverback_http::Fields;
use silverback_model::entities::Upstream;
use silverback_router::Captures;
use std::borrow::Cow;
use std::net::IpAddr;
use uuid::Uuid;

/// One source of the value to hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    None,
    /// The authenticated consumer's id, else the credential's.
    Consumer,
    /// The client address (after `trusted_ips` / `real_ip_header`).
    Ip,
    /// Lower-case name; several fields of that name are joined with ", " as nginx does.
    Header(String),
    Cookie(String),
    /// The normalized request path.
    Path,
    QueryArg(String),
    /// A named group of the route's regex path.
    UriCapture(String),
}

/// The parts of a request a hashing source may read.
#[derive(Debug)]
pub struct HashRequest<'a> {
    pub consumer: Option<Uuid>,
    pub credential: Option<Uuid>,
    pub client_ip: IpAddr,
    pub headers: &'a Fields,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub captures: Option<&'a Captures>,
}

/// The request's hash, and the cookie to set when the hashing cookie was missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashValue {
    pub hash: u32,
    /// A `Set-Cookie` value for the response.
    pub set_cookie: Option<String>,
}

/// `hash_on` with its fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashRule {
    primary: Source,
    fallback: Source,
    cookie_path: String,
}

impl HashRule {
    /// The upstream's rule; `None` when it does not hash (`hash_on: none`).
    pub fn of(u: &Upstream) -> Option<HashRule> {
        let source = |on: Option<&str>, header: &Option<String>, arg: &Option<String>, cap| {
            let named = |v: &Option<String>| v.clone().unwrap_or_default();
            match on.unwrap_or("none") {
                "consumer" => Source::Consumer,
                "ip" => Source::Ip,
                "header" => Source::Header(named(header).to_ascii_lowercase()),
                "cookie" => Source::Cookie(named(&u.hash_on_cookie)),
                "path" => Source::Path,
                "query_arg" => Source::QueryArg(named(arg)),
                "uri_capture" => Source::UriCapture(named(cap)),
                _ => Source::None,
            }
        };
        let primary = source(
            u.hash_on.as_deref(),
            &u.hash_on_header,
            &u.hash_on_query_arg,
            &u.hash_on_uri_capture,
        );
        if primary == Source::None {
            return None;
        }
        let fallback = source(
            u.hash_fallback.as_deref(),
            &u.hash_fallback_header,
            &u.hash_fallback_query_arg,
            &u.hash_fallback_uri_capture,
        );
        Some(HashRule {
            primary,
            fallback,
            cookie_path: u.hash_on_cookie_path.clone().unwrap_or_else(|| "/".into()),
        })
    }

    /// Kong's `get_value_to_hash`: the primary source, else the fallback, else the empty
    /// string. A missing hashing cookie is made up (a new UUID) and returned for the response.
    pub fn value(&self, req: &HashRequest<'_>) -> HashValue {
        for source in [&self.primary, &self.fallback] {
            if let Some(v) = identifier(source, req) {
                return HashValue {
                    hash: hash(v.as_bytes()),
                    set_cookie: None,
                };
            }
            if let Source::Cookie(name) = source {
                let id = Uuid::new_v4().to_string();
                return HashValue {
                    hash: hash(id.as_bytes()),
                    set_cookie: Some(format!(
                        "{name}={id}; Path={}; Same-Site=Lax; HttpOnly",
                        self.cookie_path
                    )),
                };
            }
        }
        HashValue {
            hash: hash(b""),
            set_cookie: None,
        }
    }
}

fn identifier<'a>(source: &Source, req: &HashRequest<'a>) -> Option<Cow<'a, str>> {
    match source {
        Source::None => None,
        Source::Consumer => req
            .consumer
            .or(req.credential)
            .map(|id| Cow::Owned(id.to_string())),
        Source::Ip => Some(Cow::Owned(req.client_ip.to_canonical().to_string())),
        Source::Header(name) => {
            let mut values = req.headers.get_all(name);
            let first = values.next()?;
            let mut joined = String::from_utf8_lossy(first).into_owned();
            for v in values {
                joined.push_str(", ");
                joined.push_str(&String::from_utf8_lossy(v));
            }
            Some(Cow::Owned(joined))
        }
        Source::Cookie(name) => cookie(req.headers, name).map(Cow::Owned),
        Source::Path => Some(Cow::Borrowed(req.path)),
        Source::QueryArg(name) => query_arg(req.query?, name).map(Cow::Owned),
        Source::UriCapture(name) => req
            .captures
            .and_then(|c| c.name(name))
            .map(|v| Cow::Owned(v.to_string())),
    }
}

/// The first cookie of that name in the request's `Cookie` fields.
fn cookie(headers: &Fields, name: &str) -> Option<String> {
    headers.get_all("cookie").find_map(|line| {
        String::from_utf8_lossy(line).split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    })
}

/// A query argument as Kong reads it: decoded; a bare name is `true`; several values sorted
/// and joined with ",".
fn query_arg(query: &str, name: &str) -> Option<String> {
    let mut values: Vec<String> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (part, None),
        };
        let key: String = form_urlencoded::parse(k.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default();
        if key != name {
            continue;
        }
        values.push(match v {
            None => "true".to_string(),
            Some(v) => form_urlencoded::parse(format!("x={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default(),
        });
    }
    match values.len() {
        0 => None,
        1 => values.pop(),
        _ => {
            values.sort();
            Some(values.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        let mut map = http::HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        Fields::from_map(map)
    }

    fn req<'a>(headers: &'a Fields, query: Option<&'a str>) -> HashRequest<'a> {
        HashRequest {
            consumer: None,
            credential: None,
            client_ip: "10.1.2.3".parse().unwrap(),
            headers,
            path: "/a/b",
            query,
            captures: None,
        }
    }

    fn rule(primary: Source, fallback: Source) -> HashRule {
        HashRule {
            primary,
            fallback,
            cookie_path: "/".into(),
        }
    }

    #[test]
    fn sources_fall_back_in_order() {
        let h = fields(&[("x-user", "alice"), ("x-user", "bob")]);
        let r = req(&h, Some("a=2&b&a=1&c=%20x"));
        assert_eq!(
            identifier(&Source::Header("x-user".into()), &r).as_deref(),
            Some("alice, bob")
        );
        assert_eq!(
            identifier(&Source::QueryArg("a".into()), &r).as_deref(),
            Some("1,2")
        );
        assert_eq!(
            identifier(&Source::QueryArg("b".into()), &r).as_deref(),
            Some("true")
        );
        assert_eq!(
            identifier(&Source::QueryArg("c".into()), &r).as_deref(),
            Some(" x")
        );
        assert_eq!(identifier(&Source::Ip, &r).as_deref(), Some("10.1.2.3"));
        let missing = rule(Source::Header("x-none".into()), Source::Path);
        assert_eq!(missing.value(&r).hash, hash(b"/a/b"));
        let nothing = rule(Source::Header("x-none".into()), Source::None);
        assert_eq!(nothing.value(&r).hash, hash(b""));
    }

    #[test]
    fn a_missing_cookie_is_made_up_and_set() {
        let empty = fields(&[("cookie", "other=1")]);
        let r = rule(Source::Cookie("sticky".into()), Source::None);
        let v = r.value(&req(&empty, None));
        let set = v.set_cookie.unwrap();
        assert!(set.starts_with("sticky="), "{set}");
        assert!(set.ends_with("; Path=/; Same-Site=Lax; HttpOnly"), "{set}");
        let id = set.trim_start_matches("sticky=").split(';').next().unwrap();
        assert_eq!(v.hash, hash(id.as_bytes()));
        let with = fields(&[("cookie", &format!("a=b; sticky={id}"))]);
        let again = r.value(&req(&with, None));
        assert_eq!(again.hash, v.hash);
        assert!(again.set_cookie.is_none());
    }
}
