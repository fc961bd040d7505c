//! Request bodies as Kong reads them: JSON, `application/x-www-form-urlencoded` and
//! `multipart/form-data`, with the key conventions of Kong's `arguments_decoder.lua`
//! (`hosts[]=a`, `hosts[1]=a`, `hosts=a&hosts=b`, `config.minute=5`, `headers.x-foo=bar`,
//! `config.map[key]=v`).
//!
//! Form values arrive as strings; [`crate::coerce`] turns them into the types the target schema
//! wants. JSON bodies are taken as they are, as Kong does.

use crate::errors::AdminError;
use serde_json::{Map, Value};

/// What a request body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No body, or a method that carries none.
    Empty,
    Json(Value),
    /// Form or multipart fields, decoded into a tree of strings (still to be coerced).
    Form(Map<String, Value>),
    /// Any other body the endpoint accepts as is (YAML for `POST /config`).
    Raw(String),
}

impl Body {
    /// The body as an entity: an object (an empty one when there was no body).
    pub fn into_object(self) -> Result<(Map<String, Value>, bool), AdminError> {
        match self {
            Body::Empty | Body::Raw(_) => Ok((Map::new(), false)),
            Body::Json(Value::Object(m)) => Ok((m, false)),
            // Kong would fail inside the DAO on a non-object; a clear 400 is kinder.
            Body::Json(_) => Err(AdminError::BadRequest("Cannot parse JSON body".into())),
            Body::Form(m) => Ok((m, true)),
        }
    }
}

/// Parses a body by its content type. Only PUT, POST and PATCH carry one (Kong ignores bodies
/// of other methods, even malformed ones). `accepts_yaml`: the endpoint reads YAML and raw text
/// (`/config`); elsewhere an unknown content type is 415, as in Kong's `before_filter`.
pub fn parse(
    method: &http::Method,
    content_type: Option<&str>,
    bytes: &[u8],
    accepts_yaml: bool,
) -> Result<Body, AdminError> {
    if !matches!(
        *method,
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    ) {
        return Ok(Body::Empty);
    }
    let Some(ct) = content_type else {
        if bytes.is_empty() {
            return Ok(Body::Empty);
        }
        return Ok(if accepts_yaml {
            Body::Raw(String::from_utf8_lossy(bytes).into_owned())
        } else {
            Body::Empty
        });
    };
    let lower = ct.to_ascii_lowercase();
    if lower.starts_with("application/json") {
        return serde_json::from_slice(bytes)
            .map(Body::Json)
            .map_err(|_| AdminError::BadRequest("Cannot parse JSON body".into()));
    }
    if lower.starts_with("application/x-www-form-urlencoded") {
        let pairs = form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), v.into_owned()));
        return Ok(Body::Form(decode_pairs(pairs)));
    }
    if lower.starts_with("multipart/form-data") {
        let boundary = boundary(ct)
            .ok_or_else(|| AdminError::BadRequest("multipart body without a boundary".into()))?;
        return Ok(Body::Form(decode_pairs(multipart_fields(bytes, &boundary))));
    }
    if accepts_yaml {
        return Ok(Body::Raw(String::from_utf8_lossy(bytes).into_owned()));
    }
    Err(AdminError::UnsupportedMediaType)
}

/// One step of a decoded argument name.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `.name` or `[name]`.
    Key(String),
    /// `[3]`: Kong's arrays are 1-based.
    Index(usize),
    /// `[]`: append.
    Push,
}

/// Splits `a.b[c][1][].d` into steps. Dots inside brackets do not split (`test[foo.bar]`);
/// names starting or ending with a dot are taken whole, as Kong does.
fn steps(name: &str) -> Vec<Step> {
    if name.starts_with('.') || name.ends_with('.') || name.len() < 2 {
        return vec![Step::Key(name.to_string())];
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = name.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '.' if i > 0 => {
                if !cur.is_empty() {
                    out.push(Step::Key(std::mem::take(&mut cur)));
                }
            }
            '[' if i > 0 => {
                let mut inner = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    inner.push(c);
                }
                if !closed {
                    // Not bracket syntax after all: keep the text.
                    cur.push('[');
                    cur.push_str(&inner);
                    continue;
                }
                if !cur.is_empty() {
                    out.push(Step::Key(std::mem::take(&mut cur)));
                }
                out.push(if inner.is_empty() {
                    Step::Push
                } else if let Ok(n) = inner.parse::<usize>() {
                    Step::Index(n.max(1))
                } else {
                    Step::Key(inner)
                });
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(Step::Key(cur));
    }
    if out.is_empty() {
        out.push(Step::Key(name.to_string()));
    }
    out
}

/// Builds the argument tree from `name=value` pairs, in order. Repeating a plain name collects
/// its values into an array (`hosts=a&hosts=b`), as Kong's `combine` does.
pub fn decode_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Map<String, Value> {
    let mut root = Value::Object(Map::new());
    for (name, value) in pairs {
        let path = steps(&name);
        insert(&mut root, &path, Value::String(value));
    }
    match root {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn insert(node: &mut Value, path: &[Step], value: Value) {
    let Some((step, rest)) = path.split_first() else {
        return;
    };
    let last = rest.is_empty();
    match step {
        Step::Key(k) => {
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            let Value::Object(m) = node else { return };
            if last {
                match m.get_mut(k) {
                    None => {
                        m.insert(k.clone(), value);
                    }
                    Some(Value::Array(a)) => a.push(value),
                    Some(existing) => {
                        let prev = existing.take();
                        *existing = Value::Array(vec![prev, value]);
                    }
                }
            } else {
                let child = m.entry(k.clone()).or_insert(Value::Null);
                insert(child, rest, value);
            }
        }
        Step::Index(_) | Step::Push => {
            if !node.is_array() {
                *node = Value::Array(Vec::new());
            }
            let Value::Array(a) = node else { return };
            let pos = match step {
                Step::Index(n) => n - 1,
                // Kong puts nested `a[].b` into the first element.
                _ if !last => 0,
                _ => a.len(),
            };
            if a.len() <= pos {
                a.resize(pos + 1, Value::Null);
            }
            if last {
                a[pos] = value;
            } else {
                insert(&mut a[pos], rest, value);
            }
        }
    }
}

/// The `boundary` parameter of a multipart content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"').trim_matches('\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// The named fields of a multipart body (files included, as their text), in order.
fn multipart_fields(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let delim = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for part in text.split(delim.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, content)) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
        else {
            continue;
        };
        let content = content
            .strip_suffix("\r\n")
            .or_else(|| content.strip_suffix('\n'))
            .unwrap_or(content);
        if let Some(name) = disposition_name(head) {
            out.push((name, content.to_string()));
        }
    }
    out
}

fn disposition_name(head: &str) -> Option<String> {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    line.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case("name")).then(|| v.trim().trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(s: &str) -> Value {
        let pairs =
            form_urlencoded::parse(s.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()));
        Value::Object(decode_pairs(pairs))
    }

    #[test]
    fn kong_form_conventions() {
        assert_eq!(form("hosts[]=a&hosts[]=b"), json!({"hosts": ["a", "b"]}));
        assert_eq!(form("hosts=a&hosts=b"), json!({"hosts": ["a", "b"]}));
        assert_eq!(form("hosts[1]=a&hosts[2]=b"), json!({"hosts": ["a", "b"]}));
        assert_eq!(form("hosts%5B%5D=a"), json!({"hosts": ["a"]}));
        assert_eq!(
            form("config.minute=5&config.policy=local"),
            json!({"config": {"minute": "5", "policy": "local"}})
        );
        assert_eq!(
            form("headers.x-foo=bar&headers.x-foo=baz"),
            json!({"headers": {"x-foo": ["bar", "baz"]}})
        );
        assert_eq!(form("service.id=123"), json!({"service": {"id": "123"}}));
        assert_eq!(
            form("config.limits[sms].minute=10"),
            json!({"config": {"limits": {"sms": {"minute": "10"}}}})
        );
        assert_eq!(form("test[foo.bar]=1"), json!({"test": {"foo.bar": "1"}}));
        assert_eq!(form("a.=1"), json!({"a.": "1"}));
        assert_eq!(form("name=x&path="), json!({"name": "x", "path": ""}));
    }

    #[test]
    fn multipart_fields_like_form() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nsvc\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"hosts[]\"\r\n\r\na.test\r\n\
                    --XyZ\r\ncontent-disposition: form-data; name=\"config.minute\"\r\nContent-Type: text/plain\r\n\r\n5\r\n\
                    --XyZ--\r\n";
        let parsed = parse(
            &http::Method::POST,
            Some("multipart/form-data; boundary=XyZ"),
            body.as_bytes(),
            false,
        )
        .ok();
        assert_eq!(
            parsed,
            Some(Body::Form(
                json!({"name": "svc", "hosts": ["a.test"], "config": {"minute": "5"}})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            ))
        );
    }

    #[test]
    fn content_types() {
        let post = http::Method::POST;
        assert!(matches!(
            parse(&post, Some("application/json"), b"{\"a\":1", false),
            Err(AdminError::BadRequest(m)) if m == "Cannot parse JSON body"
        ));
        assert!(matches!(
            parse(&post, Some("text/plain"), b"x", false),
            Err(AdminError::UnsupportedMediaType)
        ));
        assert_eq!(
            parse(&post, Some("application/yaml"), b"a: 1", true).ok(),
            Some(Body::Raw("a: 1".into()))
        );
        // Bodies of GET are ignored, even malformed ones.
        assert_eq!(
            parse(&http::Method::GET, Some("application/json"), b"nope", false).ok(),
            Some(Body::Empty)
        );
        assert_eq!(parse(&post, None, b"", false).ok(), Some(Body::Empty));
    }
}
