//! key-auth against the real binary: where keys are found, Kong's messages and headers, the
//! consumer headers the upstream sees, hide_credentials, anonymous, and live credentials.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  custom_id: a-1
  keyauth_credentials:
  - key: alice-key
- username: anon
services:
- name: s
  url: http://{}
  routes:
  - name: open
    paths: [/open]
  - name: locked
    paths: [/locked]
    plugins:
    - name: key-auth
  - name: hidden
    paths: [/hidden]
    plugins:
    - name: key-auth
      config: {{hide_credentials: true, key_in_body: true, key_names: [apikey, x_token], realm: kong}}
  - name: anon
    paths: [/anon]
    plugins:
    - name: key-auth
      config: {{anonymous: anon}}
  - name: ghost
    paths: [/ghost]
    plugins:
    - name: key-auth
      config: {{anonymous: nobody}}
  - name: preflight
    paths: [/preflight]
    plugins:
    - name: key-auth
      config: {{run_on_preflight: false, key_in_query: false}}
"#,
        up.addr
    )
}

fn assert_401(r: &Reply, message: &str, challenge: &str) {
    assert_eq!(r.status, 401, "{}", r.text());
    let body = r.json();
    assert_eq!(body["message"], message);
    assert_eq!(
        body["request_id"].as_str(),
        r.header("x-kong-request-id"),
        "the error carries the request id"
    );
    assert_eq!(r.header("www-authenticate"), Some(challenge));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_header_query_and_body_with_kongs_answers() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();

    assert_eq!(get(&c, &gw.url("/open"), &[]).await.status, 200);
    let r = get(&c, &gw.url("/locked"), &[]).await;
    assert_401(&r, "No API key found in request", "Key");
    assert!(r.header("server").is_some() && r.header("x-kong-response-latency").is_some());
    assert_401(
        &get(&c, &gw.url("/locked?apikey=wrong"), &[]).await,
        "Unauthorized",
        "Key",
    );
    assert_401(
        &get(&c, &gw.url("/locked?apikey="), &[]).await,
        "No API key found in request",
        "Key",
    );
    assert_401(
        &get(&c, &gw.url("/locked?apikey=a&apikey=b"), &[]).await,
        "Duplicate API key found",
        "Key",
    );
    assert_401(
        &get(&c, &gw.url("/locked"), &[("apikey", "a"), ("apikey", "b")]).await,
        "Duplicate API key found",
        "Key",
    );
    // The error speaks the client's format.
    let r = get(&c, &gw.url("/locked"), &[("accept", "text/plain")]).await;
    assert_eq!(r.status, 401);
    assert!(
        r.text().starts_with("No API key found in request\n"),
        "{}",
        r.text()
    );

    // A good key in the header: the upstream learns who it is; the key is passed on.
    let r = get(&c, &gw.url("/locked"), &[("apikey", "alice-key")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = echo(&r);
    assert_eq!(e.headers["x-consumer-username"], "alice");
    assert_eq!(e.headers["x-consumer-custom-id"], "a-1");
    assert_eq!(e.headers["x-consumer-id"].len(), 36);
    assert_eq!(e.headers["x-credential-identifier"].len(), 36);
    assert_ne!(
        e.headers["x-credential-identifier"],
        e.headers["x-consumer-id"]
    );
    assert!(!e.headers.contains_key("x-anonymous-consumer"));
    assert_eq!(e.headers["apikey"], "alice-key");
    // In the query string.
    let r = get(&c, &gw.url("/locked?apikey=alice-key&x=1"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(echo(&r).uri, "/?apikey=alice-key&x=1");
    // The body is not searched unless key_in_body.
    let r = send(
        &c,
        "POST",
        &gw.url("/locked"),
        &[("content-type", "application/x-www-form-urlencoded")],
        "apikey=alice-key",
    )
    .await;
    assert_401(&r, "No API key found in request", "Key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hide_credentials_strips_the_key_wherever_it_was() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let challenge = "Key realm=\"kong\"";
    assert_401(
        &get(&c, &gw.url("/hidden"), &[]).await,
        "No API key found in request",
        challenge,
    );

    // `x_token` is read from the header `x-token`, as nginx names it.
    let r = get(
        &c,
        &gw.url("/hidden"),
        &[("x-token", "alice-key"), ("x-other", "1")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = echo(&r);
    assert!(!e.headers.contains_key("x-token"));
    assert_eq!(e.headers["x-other"], "1");
    assert_eq!(e.headers["x-consumer-username"], "alice");

    let r = get(&c, &gw.url("/hidden?a=%41&apikey=alice-key&b=2"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(echo(&r).uri, "/?a=%41&b=2");

    let r = send(
        &c,
        "POST",
        &gw.url("/hidden"),
        &[("content-type", "application/x-www-form-urlencoded")],
        "x=1&apikey=alice-key",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = echo(&r);
    assert_eq!(e.body, "x=1");
    assert_eq!(e.headers["content-length"], "3");

    let r = send(
        &c,
        "POST",
        &gw.url("/hidden"),
        &[("content-type", "application/json")],
        r#"{"apikey":"alice-key","a":1}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        serde_json::from_str::<Value>(&echo(&r).body).unwrap(),
        json!({"a": 1})
    );

    // A JSON array under the key name is a duplicate, as a Lua table is for Kong.
    let r = send(
        &c,
        "POST",
        &gw.url("/hidden"),
        &[("content-type", "application/json")],
        r#"{"apikey":["a","b"]}"#,
    )
    .await;
    assert_401(&r, "Duplicate API key found", challenge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_fallback_and_spoofed_headers() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();

    // Headers a client sends to pass as someone are replaced.
    let spoof = [
        ("x-consumer-username", "root"),
        ("x-consumer-custom-id", "root"),
        ("x-credential-identifier", "root"),
    ];
    let r = get(&c, &gw.url("/anon"), &spoof).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = echo(&r);
    assert_eq!(e.headers["x-consumer-username"], "anon");
    assert_eq!(e.headers["x-anonymous-consumer"], "true");
    assert!(!e.headers.contains_key("x-consumer-custom-id"));
    assert!(!e.headers.contains_key("x-credential-identifier"));

    let mut with_key = spoof.to_vec();
    with_key.push(("apikey", "alice-key"));
    with_key.push(("x-anonymous-consumer", "true"));
    let e = echo(&get(&c, &gw.url("/anon"), &with_key).await);
    assert_eq!(e.headers["x-consumer-username"], "alice");
    assert_eq!(e.headers["x-consumer-custom-id"], "a-1");
    assert!(!e.headers.contains_key("x-anonymous-consumer"));

    // A wrong key also falls back.
    let e = echo(&get(&c, &gw.url("/anon?apikey=nope"), &[]).await);
    assert_eq!(e.headers["x-consumer-username"], "anon");

    let r = get(&c, &gw.url("/ghost"), &[]).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json()["message"],
        "anonymous consumer nobody is configured but doesn't exist"
    );

    // run_on_preflight = false lets OPTIONS through unauthenticated.
    let r = send(&c, "OPTIONS", &gw.url("/preflight"), &[], "").await;
    assert_eq!(r.status, 200);
    let r = get(&c, &gw.url("/preflight"), &[]).await;
    assert_eq!(r.status, 401);
    // key_in_query = false: the query is not searched.
    assert_eq!(
        get(&c, &gw.url("/preflight?apikey=alice-key"), &[])
            .await
            .status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_plugins_written_through_the_admin_api_are_live() {
    let up = Upstream::start("u");
    let gw = Gateway::with_database().start();
    gw.admin(
        "POST",
        "/services",
        json!({"name": "s", "url": format!("http://{}", up.addr)}),
    )
    .await;
    gw.admin(
        "POST",
        "/services/s/routes",
        json!({"name": "r", "paths": ["/r"]}),
    )
    .await;
    let plugin = gw
        .admin("POST", "/routes/r/plugins", json!({"name": "key-auth"}))
        .await;
    assert_eq!(plugin.status, 201, "{}", plugin.text());
    // Kong's defaults come back filled in.
    assert_eq!(
        plugin.json()["config"],
        json!({"key_names": ["apikey"], "hide_credentials": false, "anonymous": null,
               "key_in_header": true, "key_in_query": true, "key_in_body": false,
               "run_on_preflight": true, "realm": null})
    );
    let c = client();
    eventually(Duration::from_secs(5), "key-auth live", || async {
        get(&c, &gw.url("/r"), &[]).await.status == 401
    })
    .await;

    gw.admin("POST", "/consumers", json!({"username": "bob"}))
        .await;
    let cred = gw.admin("POST", "/consumers/bob/key-auth", json!({})).await;
    assert_eq!(cred.status, 201, "{}", cred.text());
    let key = cred.json()["key"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(5), "new key live", || async {
        get(&c, &gw.url("/r"), &[("apikey", &key)]).await.status == 200
    })
    .await;
    let e = echo(&get(&c, &gw.url("/r"), &[("apikey", &key)]).await);
    assert_eq!(e.headers["x-consumer-username"], "bob");
    assert_eq!(e.headers["x-credential-identifier"], cred.json()["id"]);

    // A key with a ttl stops working when it runs out.
    let short = gw
        .admin(
            "POST",
            "/consumers/bob/key-auth",
            json!({"key": "short-lived", "ttl": 2}),
        )
        .await;
    assert_eq!(short.status, 201, "{}", short.text());
    eventually(Duration::from_secs(5), "ttl key live", || async {
        get(&c, &gw.url("/r"), &[("apikey", "short-lived")])
            .await
            .status
            == 200
    })
    .await;
    eventually(Duration::from_secs(6), "ttl key expired", || async {
        get(&c, &gw.url("/r"), &[("apikey", "short-lived")])
            .await
            .status
            == 401
    })
    .await;

    // Deleting the consumer takes its key with it.
    assert_eq!(
        gw.admin("DELETE", "/consumers/bob", Value::Null)
            .await
            .status,
        204
    );
    eventually(Duration::from_secs(5), "key gone", || async {
        get(&c, &gw.url("/r"), &[("apikey", &key)]).await.status == 401
    })
    .await;
    // Disabling the plugin opens the route again.
    let id = plugin.json()["id"].as_str().unwrap().to_string();
    gw.admin(
        "PATCH",
        &format!("/plugins/{id}"),
        json!({"enabled": false}),
    )
    .await;
    eventually(Duration::from_secs(5), "plugin disabled", || async {
        get(&c, &gw.url("/r"), &[]).await.status == 200
    })
    .await;
}
