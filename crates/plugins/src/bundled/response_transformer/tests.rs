//! The plugin over a response: header steps, Content-Length, and the body held to its end.

use super::*;
use crate::directory::Directory;
use serde_json::json;
use silverback_model::schema::{FieldErrors, Validator};

fn plugin(config: Value) -> Arc<dyn Handler> {
    let mut map = config.as_object().cloned().unwrap_or_default();
    let mut errors = FieldErrors::default();
    Validator::new(0).process(&schema::config(), &mut map, &mut errors);
    assert!(errors.is_empty(), "{}", errors.to_json());
    build(&Value::Object(map)).unwrap()
}

fn ctx(headers: &[(&'static str, &'static str)]) -> Ctx {
    let mut ctx = Ctx::for_tests(Arc::new(Directory::default()));
    for (k, v) in headers {
        ctx.response
            .headers
            .append(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    ctx
}

fn values(ctx: &Ctx, name: &str) -> Vec<String> {
    ctx.response
        .headers
        .get_all(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// Runs the body through body_filter in these chunks; returns what the client gets.
fn body(p: &Arc<dyn Handler>, ctx: &mut Ctx, chunks: &[&str]) -> String {
    let mut out = String::new();
    for c in chunks {
        let mut b = Bytes::from(c.to_string());
        p.body_filter(ctx, &mut b, false).unwrap();
        out.push_str(std::str::from_utf8(&b).unwrap());
    }
    let mut last = Bytes::new();
    p.body_filter(ctx, &mut last, true).unwrap();
    out.push_str(std::str::from_utf8(&last).unwrap());
    out
}

#[test]
fn header_steps_like_kong() {
    let p = plugin(json!({
        "remove": {"headers": ["X-Remove", "x-readd"]},
        "rename": {"headers": ["x-old:x-new"]},
        "replace": {"headers": ["x-rep:new", "x-absent:no"]},
        "add": {"headers": ["x-add:a", "x-rep:no", "x-readd:no"]},
        "append": {"headers": ["x-add:b", "x-list:2"]},
    }));
    let mut c = ctx(&[
        ("x-remove", "1"),
        ("x-readd", "1"),
        ("x-old", "o"),
        ("x-rep", "old"),
        ("x-list", "1"),
        ("content-length", "10"),
    ]);
    p.header_filter(&mut c).unwrap();
    assert!(values(&c, "x-remove").is_empty());
    assert!(values(&c, "x-old").is_empty());
    assert_eq!(values(&c, "x-new"), ["o"]);
    assert_eq!(values(&c, "x-rep"), ["new"]);
    assert!(values(&c, "x-absent").is_empty());
    assert_eq!(values(&c, "x-add"), ["a", "b"]);
    // add looks at the headers as they came: removed, then not added back.
    assert!(values(&c, "x-readd").is_empty());
    assert_eq!(values(&c, "x-list"), ["1", "2"]);
    // No body change: the length stays and the body streams.
    assert_eq!(values(&c, "content-length"), ["10"]);
    assert_eq!(body(&p, &mut c, &["a", "b"]), "ab");
}

#[test]
fn json_bodies_are_held_and_replaced() {
    let p = plugin(json!({
        "remove": {"json": ["url"]},
        "add": {"json": ["p1:v1", "n:-1"], "json_types": ["string", "number"]},
    }));
    let mut c = ctx(&[
        ("content-type", "application/json; charset=utf-8"),
        ("content-length", "28"),
    ]);
    p.header_filter(&mut c).unwrap();
    assert!(values(&c, "content-length").is_empty());
    let out = body(&p, &mut c, &[r#"{"url":"http://x","#, r#""keep":true}"#]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"keep": true, "p1": "v1", "n": -1})
    );

    // Not JSON: untouched, streamed, length kept.
    let mut c = ctx(&[("content-type", "text/plain"), ("content-length", "4")]);
    p.header_filter(&mut c).unwrap();
    assert_eq!(values(&c, "content-length"), ["4"]);
    assert_eq!(body(&p, &mut c, &["{}", "{}"]), "{}{}");

    // Says JSON but is not: passes as it came, whole.
    let mut c = ctx(&[("content-type", "application/problem+json")]);
    p.header_filter(&mut c).unwrap();
    assert_eq!(body(&p, &mut c, &["not", " json"]), "not json");
}

#[test]
fn json_is_told_like_kong() {
    assert!(is_json(Some(b"application/json")));
    assert!(is_json(Some(b"Application/JSON; charset=utf-8")));
    assert!(is_json(Some(b"text/html, application/vnd.api+json")));
    assert!(!is_json(Some(b"text/json")));
    assert!(!is_json(Some(b"application/jsonp")));
    assert!(!is_json(None));
}
