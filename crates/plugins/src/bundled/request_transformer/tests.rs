//! The plugin over a request context: each step and Kong's order between them.

use super::*;
use crate::directory::Directory;
use crate::pdk::{Body, UriCaptures};
use http::uri::PathAndQuery;
use http::{HeaderName, HeaderValue};
use serde_json::json;
use silverback_model::schema::{FieldErrors, Validator};

fn plugin(config: Value) -> Arc<dyn Handler> {
    let mut map = config.as_object().cloned().unwrap_or_default();
    let mut errors = FieldErrors::default();
    Validator::new(0).process(&schema::config(), &mut map, &mut errors);
    assert!(errors.is_empty(), "{}", errors.to_json());
    build(&Value::Object(map)).unwrap()
}

fn ctx(target: &'static str, headers: &[(&'static str, &'static str)], body: &str) -> Ctx {
    let mut ctx = Ctx::for_tests(Arc::new(Directory::default()));
    let mut req = crate::pdk::Request::new(
        Method::POST,
        crate::pdk::Scheme::Http,
        http::Version::HTTP_11,
        None,
        Default::default(),
        PathAndQuery::from_static(target),
    );
    for (k, v) in headers {
        req.headers
            .append(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    req.set_read_body(Body::Read(Bytes::from(body.to_string())));
    ctx.request = req;
    ctx
}

fn run(p: &Arc<dyn Handler>, ctx: &mut Ctx) -> Result<(), PluginError> {
    match p.access(ctx) {
        Phase::Ready(r) => r.map(|_| ()),
        Phase::Pending(_) => panic!("request-transformer never waits"),
    }
}

fn header(ctx: &Ctx, name: &str) -> Vec<String> {
    ctx.request
        .headers
        .get_all(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
fn headers_in_kongs_order() {
    let p = plugin(json!({
        "remove": {"headers": ["x-remove", "authorization"]},
        "rename": {"headers": ["x-old:x-new"]},
        "replace": {"headers": ["x-replace:new", "x-absent:no"]},
        "add": {"headers": ["x-add:a1", "x-keep:no", "authorization:Basic test"]},
        "append": {"headers": ["x-add:a2", "x-list:l2"]},
    }));
    let mut c = ctx(
        "/",
        &[
            ("host", "client.test"),
            ("x-remove", "1"),
            ("authorization", "Bearer x"),
            ("x-old", "moved"),
            ("x-new", "overwritten"),
            ("x-replace", "old"),
            ("x-keep", "kept"),
            ("x-list", "l1"),
        ],
        "",
    );
    run(&p, &mut c).unwrap();
    assert!(header(&c, "x-remove").is_empty());
    assert!(header(&c, "x-old").is_empty());
    assert_eq!(header(&c, "x-new"), ["moved"]);
    assert_eq!(header(&c, "x-replace"), ["new"]);
    assert!(header(&c, "x-absent").is_empty());
    assert_eq!(header(&c, "x-add"), ["a1", "a2"]);
    assert_eq!(header(&c, "x-keep"), ["kept"]);
    assert_eq!(header(&c, "x-list"), ["l1", "l2"]);
    assert_eq!(header(&c, "authorization"), ["Basic test"]);
    assert_eq!(header(&c, "host"), ["client.test"]);
    assert!(c.request.upstream_host().is_none());
}

#[test]
fn replacing_host_sets_the_upstream_host() {
    let p = plugin(
        json!({"replace": {"headers": ["host:upstream.test"]}, "add": {"headers": ["host:ignored"]}}),
    );
    let mut c = ctx("/", &[("host", "client.test")], "");
    run(&p, &mut c).unwrap();
    assert_eq!(c.request.upstream_host().unwrap(), "upstream.test");
    assert_eq!(header(&c, "host"), ["upstream.test"]);
}

#[test]
fn query_is_rebuilt_sorted() {
    let p = plugin(json!({
        "remove": {"querystring": ["toremove"]},
        "rename": {"querystring": ["old:new"]},
        "replace": {"querystring": ["rep:yes", "absent:no"]},
        "add": {"querystring": ["q1:v1", "exists:no"]},
        "append": {"querystring": ["p1:a2", "p2:b1"]},
    }));
    let mut c = ctx(
        "/p?toremove=1&old=o&rep=no&exists=e&p1=anything%3A1&z=last",
        &[],
        "",
    );
    run(&p, &mut c).unwrap();
    assert_eq!(
        c.request.target().as_str(),
        "/p?exists=e&new=o&p1=anything%3A1&p1=a2&p2=b1&q1=v1&rep=yes&z=last"
    );
}

#[test]
fn templates_see_headers_before_the_headers_step() {
    let p = plugin(json!({
        "remove": {"headers": ["x-remove-header"]},
        "add": {
            "headers": ["x-test-header:$(headers['x-remove-header'])"],
            "querystring": ["q1:$(uri_captures.user1)"],
        },
        "replace": {"querystring": ["q2:$(headers['x-remove-header'])"]},
    }));
    let mut c = ctx("/r?q2=x", &[("x-remove-header", "its a test")], "");
    c.uri_captures = UriCaptures {
        positional: vec![Some("/r".into()), Some("foo".into())],
        named: vec![("user1".into(), "foo".into())],
    };
    run(&p, &mut c).unwrap();
    assert!(header(&c, "x-remove-header").is_empty());
    assert_eq!(header(&c, "x-test-header"), ["its a test"]);
    assert_eq!(c.request.target().as_str(), "/r?q1=foo&q2=its%20a%20test");
}

#[test]
fn json_body_steps() {
    let p = plugin(json!({
        "remove": {"body": ["gone"]},
        "rename": {"body": ["old:new"]},
        "replace": {"body": ["rep:v1", "falsy:no"]},
        "add": {"body": ["p1:v1", "falsy:yes", "kept:no"]},
        "append": {"body": ["list:b", "fresh:f"]},
    }));
    let mut c = ctx(
        "/",
        &[("content-type", "application/json")],
        r#"{"gone":1,"old":"o","rep":"r","falsy":false,"kept":"k","list":"a","emptyarray":[]}"#,
    );
    run(&p, &mut c).unwrap();
    let body: Value = serde_json::from_slice(c.request.changed_body().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"new": "o", "rep": "v1", "falsy": "yes", "kept": "k", "list": ["a", "b"],
               "emptyarray": [], "p1": "v1", "fresh": ["f"]})
    );
    assert_eq!(
        header(&c, "content-length"),
        [c.request.changed_body().unwrap().len().to_string()]
    );
    // A body that is not JSON passes untouched.
    let mut c = ctx(
        "/",
        &[("content-type", "application/json")],
        "malformed json body",
    );
    run(&p, &mut c).unwrap();
    assert!(c.request.changed_body().is_none());
    // An empty one only gets what add and append bring.
    let mut c = ctx("/", &[("content-type", "application/json")], "");
    run(&p, &mut c).unwrap();
    let body: Value = serde_json::from_slice(c.request.changed_body().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"p1": "v1", "falsy": "yes", "kept": "no", "list": ["b"], "fresh": ["f"]})
    );
}

#[test]
fn form_and_multipart_bodies() {
    let p = plugin(json!({
        "remove": {"body": ["toremove"]},
        "rename": {"body": ["old:new"]},
        "replace": {"body": ["rep:v1"]},
        "add": {"body": ["p1:v1", "kept:no"]},
        "append": {"body": ["p2:x y"]},
    }));
    let mut c = ctx(
        "/",
        &[("content-type", "application/x-www-form-urlencoded")],
        "toremove=1&old=o&rep=r&kept=k&p2=a",
    );
    run(&p, &mut c).unwrap();
    assert_eq!(
        c.request.changed_body().unwrap(),
        "new=o&rep=v1&kept=k&p2=a&p2=x%20y&p1=v1"
    );
    let body = "--B\r\nContent-Disposition: form-data; name=\"old\"\r\n\r\no\r\n--B\r\nContent-Disposition: form-data; name=\"toremove\"\r\n\r\n1\r\n--B--\r\n";
    let mut c = ctx(
        "/",
        &[("content-type", "multipart/form-data; boundary=B")],
        body,
    );
    run(&p, &mut c).unwrap();
    let out = String::from_utf8(c.request.changed_body().unwrap().to_vec()).unwrap();
    assert!(out.contains("name=\"new\"\r\n\r\no\r\n"), "{out}");
    assert!(out.contains("name=\"p1\"\r\n\r\nv1\r\n"), "{out}");
    assert!(!out.contains("toremove"), "{out}");
    // Multipart has no append.
    assert!(!out.contains("p2"), "{out}");
}

#[test]
fn method_change_moves_a_form_into_the_query() {
    let p = plugin(json!({"http_method": "GET"}));
    let mut c = ctx(
        "/r?hello=world",
        &[("content-type", "application/x-www-form-urlencoded")],
        "name=marco&hello=again",
    );
    run(&p, &mut c).unwrap();
    assert_eq!(c.request.method, Method::GET);
    assert_eq!(
        c.request.target().as_str(),
        "/r?hello=world&hello=again&name=marco"
    );
}

#[test]
fn uri_and_template_failures() {
    let p = plugin(
        json!({"replace": {"uri": "/requests/user2/$(uri_captures.user2)/user1/$(uri_captures.user1)"}}),
    );
    let mut c = ctx("/x?keep=1", &[], "");
    c.uri_captures = UriCaptures {
        positional: vec![],
        named: vec![
            ("user1".into(), "foo".into()),
            ("user2".into(), "bar".into()),
        ],
    };
    run(&p, &mut c).unwrap();
    assert_eq!(
        c.request.upstream_path(),
        Some("/requests/user2/bar/user1/foo")
    );
    assert_eq!(c.request.target().as_str(), "/x?keep=1");

    let p = plugin(json!({"replace": {"uri": "/requests/user2/$(10 * uri_captures.user1)"}}));
    assert!(run(&p, &mut c).is_err());
    // Header templates are not checked by the schema: a bad one fails the request.
    let p = plugin(json!({"add": {"headers": ["x-write:$(shared.written = true)"]}}));
    assert!(run(&p, &mut c).is_err());
    let p = plugin(json!({"add": {"headers": ["x-call:$(foo(headers.host))"]}}));
    assert!(run(&p, &mut c).is_err());
}

#[test]
fn reads_only_bodies_it_transforms() {
    let fields = |ct: &'static str| {
        let mut f = Fields::default();
        f.append(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
        f
    };
    let p = plugin(json!({"add": {"headers": ["x:1"]}}));
    assert!(!p.reads_body());
    let p = plugin(json!({"add": {"body": ["x:1"]}}));
    assert!(p.reads_body());
    assert!(p.reads_body_of(&fields("application/json")));
    assert!(!p.reads_body_of(&fields("application/octet-stream")));
    let p = plugin(json!({"http_method": "GET"}));
    assert!(p.reads_body_of(&fields("application/x-www-form-urlencoded")));
    assert!(!p.reads_body_of(&fields("application/json")));
    let p = plugin(json!({"add": {"body": ["x:1"], "headers": ["Content-Type:application/json"]}}));
    assert!(p.reads_body_of(&Fields::default()));
}
