//! request-transformer against the real binary: each step on headers, query and bodies as the
//! upstream sees them, the method change, `replace.uri` from a regex route's captures, Kong's
//! templates, the order of the steps, the Host, failures and config errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: headers
    paths: [/headers]
    plugins:
    - name: request-transformer
      config:
        remove: {{headers: [x-remove, authorization]}}
        rename: {{headers: ["x-old:x-new"]}}
        replace: {{headers: ["x-replace:new", "x-absent:no"]}}
        add: {{headers: ["x-add:a1", "x-keep:no", "h2:value:2", "authorization:Basic test"]}}
        append: {{headers: ["x-add:a2", "x-list:l2"]}}
  - name: query
    paths: [/query]
    plugins:
    - name: request-transformer
      config:
        remove: {{querystring: [toremove]}}
        rename: {{querystring: ["old:new"]}}
        replace: {{querystring: ["rep:yes", "absent:no"]}}
        add: {{querystring: ["q1:v1", "exists:no"]}}
        append: {{querystring: ["p1:a2", "p2:b1"]}}
  - name: body
    paths: [/body]
    plugins:
    - name: request-transformer
      config:
        remove: {{body: [gone]}}
        rename: {{body: ["old:new"]}}
        replace: {{body: ["rep:v1"]}}
        add: {{body: ["p1:v1", "kept:no"]}}
        append: {{body: ["list:b"]}}
  - name: to-get
    paths: [/to-get]
    plugins:
    - name: request-transformer
      config: {{http_method: GET}}
  - name: to-post
    paths: [/to-post]
    plugins:
    - name: request-transformer
      config:
        http_method: POST
        add: {{headers: ["Content-Type:application/json"], body: ["body:somecontent"]}}
  - name: uri
    paths: ["~/requests/user1/(?<user1>\\w+)/user2/(?<user2>\\S+)"]
    plugins:
    - name: request-transformer
      config:
        replace: {{uri: "/requests/user2/$(uri_captures.user2)/user1/$(uri_captures.user1)"}}
  - name: uri-positional
    paths: ["~/(gw/)?api/(?<subpath>htest)$"]
    plugins:
    - name: request-transformer
      config:
        replace: {{uri: "/api/v2/$(uri_captures[\"subpath\"])$(uri_captures[0])"}}
  - name: templates
    paths: [/templates]
    plugins:
    - name: request-transformer
      config:
        remove: {{headers: [x-source], querystring: [q]}}
        add:
          headers: ["x-from-query:$(query_params.q)", "x-from-removed:$(headers['x-source'])"]
          querystring: ["from_header:$(headers.x_source)", "missing:$(query_params.none or 'default')", "escaped:$('$(headers.x)')"]
  - name: host
    paths: [/host]
    plugins:
    - name: request-transformer
      config:
        replace: {{headers: ["host:rewritten.test"]}}
  - name: failing
    paths: ["~/failing/(?<user>\\w+)"]
    plugins:
    - name: request-transformer
      config:
        replace: {{uri: "/x/$(10 * uri_captures.user)"}}
"#,
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_in_kongs_order() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let r = get(
        &c,
        &gw.url("/headers"),
        &[
            ("x-remove", "1"),
            ("authorization", "Bearer secret"),
            ("x-old", "moved"),
            ("x-new", "overwritten"),
            ("x-replace", "old"),
            ("x-keep", "kept"),
            ("x-list", "l1"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = echo(&r);
    assert_eq!(e.header("x-remove"), None);
    assert_eq!(e.header("x-old"), None);
    assert_eq!(e.header("x-new"), Some("moved"));
    assert_eq!(e.header("x-replace"), Some("new"));
    assert_eq!(e.header("x-absent"), None);
    assert_eq!(e.header("x-add"), Some("a1, a2"));
    assert_eq!(e.header("x-keep"), Some("kept"));
    assert_eq!(e.header("h2"), Some("value:2"));
    assert_eq!(e.header("x-list"), Some("l1, l2"));
    // Removed, then added back by the add step.
    assert_eq!(e.header("authorization"), Some("Basic test"));
    // The Host stays the service's.
    assert_eq!(e.header("host"), Some(up.addr.to_string().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_steps_and_kongs_sorted_query() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let r = get(
        &c,
        &gw.url("/query?toremove=1&old=o&rep=no&exists=e&p1=anything%3A1&z=last"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        echo(&r).uri,
        "/?exists=e&new=o&p1=anything%3A1&p1=a2&p2=b1&q1=v1&rep=yes&z=last"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_form_and_multipart_bodies() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let r = send(
        &c,
        "POST",
        &gw.url("/body"),
        &[("content-type", "application/json")],
        r#"{"gone":1,"old":"o","rep":"r","kept":"k","list":"a","emptyarray":[]}"#,
    )
    .await;
    let e = echo(&r);
    let body: Value = serde_json::from_str(&e.body).unwrap();
    assert_eq!(
        body,
        json!({"new": "o", "rep": "v1", "kept": "k", "list": ["a", "b"], "emptyarray": [], "p1": "v1"})
    );
    assert_eq!(
        e.header("content-length"),
        Some(e.body_len.to_string().as_str())
    );

    // A body that is not JSON passes untouched.
    let r = send(
        &c,
        "POST",
        &gw.url("/body"),
        &[("content-type", "application/json")],
        "malformed json body",
    )
    .await;
    assert_eq!(echo(&r).body, "malformed json body");

    let r = send(
        &c,
        "POST",
        &gw.url("/body"),
        &[("content-type", "application/x-www-form-urlencoded")],
        "gone=1&old=o&rep=r&kept=k&list=a",
    )
    .await;
    let e = echo(&r);
    assert_eq!(e.body, "new=o&rep=v1&kept=k&list=a&list=b&p1=v1");
    assert_eq!(
        e.header("content-length"),
        Some(e.body_len.to_string().as_str())
    );

    let multipart = "--XX\r\nContent-Disposition: form-data; name=\"old\"\r\n\r\no\r\n--XX\r\nContent-Disposition: form-data; name=\"gone\"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile content\r\n--XX--\r\n";
    let r = send(
        &c,
        "POST",
        &gw.url("/body"),
        &[("content-type", "multipart/form-data; boundary=XX")],
        multipart,
    )
    .await;
    let e = echo(&r);
    assert!(e.body.contains("name=\"new\"\r\n\r\no\r\n"), "{}", e.body);
    assert!(e.body.contains("name=\"p1\"\r\n\r\nv1\r\n"), "{}", e.body);
    assert!(
        e.body
            .contains("filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile content"),
        "{}",
        e.body
    );
    assert!(!e.body.contains("gone"), "{}", e.body);

    // Other content types are not read nor changed.
    let r = send(
        &c,
        "POST",
        &gw.url("/body"),
        &[("content-type", "text/plain")],
        "gone=1",
    )
    .await;
    assert_eq!(echo(&r).body, "gone=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_method_changes() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    // POST to GET: the form moves into the query.
    let r = send(
        &c,
        "POST",
        &gw.url("/to-get?hello=world"),
        &[("content-type", "application/x-www-form-urlencoded")],
        "name=marco",
    )
    .await;
    let e = echo(&r);
    assert_eq!(e.method, "GET");
    assert_eq!(e.uri, "/?hello=world&name=marco");

    // GET to POST, with a JSON body built from nothing.
    let r = get(&c, &gw.url("/to-post"), &[]).await;
    let e = echo(&r);
    assert_eq!(e.method, "POST");
    assert_eq!(e.header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_str::<Value>(&e.body).unwrap(),
        json!({"body": "somecontent"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_uri_from_captures_keeps_the_query() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let r = get(&c, &gw.url("/requests/user1/foo/user2/bar?q=1"), &[]).await;
    assert_eq!(echo(&r).uri, "/requests/user2/bar/user1/foo?q=1");
    let r = get(&c, &gw.url("/gw/api/htest"), &[]).await;
    assert_eq!(echo(&r).uri, "/api/v2/htest/gw/api/htest");
    // A template that fails at request time: Kong's 500.
    let r = get(&c, &gw.url("/failing/abc"), &[]).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["message"], "An unexpected error occurred");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_read_the_request_before_it_changes() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let r = get(
        &c,
        &gw.url("/templates?q=20"),
        &[("x-source", "its a test")],
    )
    .await;
    let e = echo(&r);
    assert_eq!(e.header("x-source"), None);
    assert_eq!(e.header("x-from-query"), Some("20"));
    assert_eq!(e.header("x-from-removed"), Some("its a test"));
    assert_eq!(
        e.uri,
        "/?escaped=%24%28headers.x%29&from_header=its%20a%20test&missing=default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_host_changes_the_upstream_host() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let r = get(&client(), &gw.url("/host"), &[]).await;
    assert_eq!(echo(&r).header("host"), Some("rewritten.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_errors_through_the_admin_api() {
    let gw = Gateway::with_database().start();
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "request-transformer", "config": {"add": {"headers": ["just_a_key"]}}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["fields"],
        json!({"config": {"add": {"headers": ["invalid value: just_a_key"]}}})
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "request-transformer", "config": {"http_method": "HELLO!"}}),
        )
        .await;
    assert_eq!(
        r.json()["fields"],
        json!({"config": {"http_method": "invalid value: HELLO!"}})
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "request-transformer", "config": {"remove": {"headers": ["just_a_key"]}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let config = &r.json()["config"];
    assert_eq!(config["remove"]["headers"], json!(["just_a_key"]));
    assert_eq!(
        config["append"],
        json!({"body": [], "headers": [], "querystring": []})
    );
    assert_eq!(config["replace"]["uri"], Value::Null);
}
