//! correlation-id against the real binary: generated ids upstream and back to the client, the
//! client's own id kept, each generator's format, and exits echoing an id too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::collections::HashSet;

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: counter
    paths: [/counter]
    plugins:
    - name: correlation-id
      config: {{echo_downstream: true}}
  - name: uuid
    paths: [/uuid]
    plugins:
    - name: correlation-id
      config: {{generator: uuid, header_name: X-Trace}}
  - name: tracker
    paths: [/tracker]
    plugins:
    - name: correlation-id
      config: {{generator: tracker, echo_downstream: true}}
  - name: refused
    paths: [/refused]
    plugins:
    - name: correlation-id
      config: {{echo_downstream: true}}
    - name: request-termination
      config: {{status_code: 403}}
"#,
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_go_upstream_and_back() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up))
        .setting("worker_threads", "1")
        .start();
    let c = client();

    // uuid#counter: one uuid per worker, counting up; echoed to the client.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let r = get(&c, &gw.url("/counter"), &[]).await;
        assert_eq!(r.status, 200);
        let upstream = echo(&r).headers["kong-request-id"].clone();
        assert_eq!(r.header("kong-request-id"), Some(upstream.as_str()));
        seen.push(upstream);
    }
    let (base, first) = seen[0].split_once('#').unwrap();
    assert_eq!(base.len(), 36);
    let first: u64 = first.parse().unwrap();
    for (i, id) in seen.iter().enumerate() {
        assert_eq!(id, &format!("{base}#{}", first + i as u64));
    }

    // The client's own id is kept.
    let r = get(&c, &gw.url("/counter"), &[("kong-request-id", "mine")]).await;
    assert_eq!(echo(&r).headers["kong-request-id"], "mine");
    assert_eq!(r.header("kong-request-id"), Some("mine"));

    // uuid under another header name, not echoed.
    let mut ids = HashSet::new();
    for _ in 0..5 {
        let r = get(&c, &gw.url("/uuid"), &[]).await;
        assert!(r.header("x-trace").is_none());
        let id = echo(&r).headers["x-trace"].clone();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 5);

    // tracker: server address, port, pid, serials and time.
    let r = get(&c, &gw.url("/tracker"), &[]).await;
    let id = echo(&r).headers["kong-request-id"].clone();
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(parts[0], "127.0.0.1", "{id}");
    assert_eq!(parts[1], gw.proxy.port().to_string(), "{id}");
    assert_eq!(parts[2], gw.pid().to_string(), "{id}");
    assert!(parts[5].contains('.'), "{id}");

    // A plugin's exit still gets an id back.
    let r = get(&c, &gw.url("/refused"), &[]).await;
    assert_eq!(r.status, 403);
    assert!(r.header("kong-request-id").unwrap().contains('#'));
}
