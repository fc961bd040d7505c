//! basic-auth against the real binary: Kong's answers and challenge, Proxy-Authorization,
//! hide_credentials, anonymous, the logical OR with key-auth, and passwords changed through
//! the Admin API (the verification cache never serves an old password). Credentials are
//! encoded by Python.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod python;

use common::*;
use python::basic;
use serde_json::{Value, json};
use std::time::Duration;

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  custom_id: a-1
  basicauth_credentials:
  - username: alice-user
    password: "s3cret:with colon"
  keyauth_credentials:
  - key: alice-key
- username: bob
  basicauth_credentials:
  - username: bob-user
    password: hunter2
- username: anon
services:
- name: s
  url: http://{}
  routes:
  - name: locked
    paths: [/locked]
    plugins:
    - name: basic-auth
  - name: hidden
    paths: [/hidden]
    plugins:
    - name: basic-auth
      config: {{hide_credentials: true, realm: kong}}
  - name: anon
    paths: [/anon]
    plugins:
    - name: basic-auth
      config: {{anonymous: anon}}
  - name: either
    paths: [/either]
    plugins:
    - name: basic-auth
      config: {{anonymous: anon}}
    - name: key-auth
      config: {{anonymous: anon}}
"#,
        up.addr
    )
}

fn assert_401(r: &Reply, challenge: &str) {
    assert_eq!(r.status, 401, "{}", r.text());
    let body = r.json();
    assert_eq!(body["message"], "Unauthorized");
    assert_eq!(body["request_id"].as_str(), r.header("x-kong-request-id"));
    assert_eq!(r.header("www-authenticate"), Some(challenge));
}

const CHALLENGE: &str = "Basic realm=\"service\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_checked_with_kongs_answers() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let url = gw.url("/locked");

    assert_401(&get(&c, &url, &[]).await, CHALLENGE);
    let good = basic("alice-user", "s3cret:with colon");
    let r = get(&c, &url, &[("authorization", &good)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = echo(&r);
    assert_eq!(e.headers["x-consumer-username"], "alice");
    assert_eq!(e.headers["x-consumer-custom-id"], "a-1");
    assert_eq!(e.headers["x-credential-identifier"], "alice-user");
    assert!(!e.headers.contains_key("x-anonymous-consumer"));
    // Not hidden by default.
    assert_eq!(e.headers["authorization"], good);
    // Verified passwords are cached: the next requests pass too, a wrong one still fails.
    for _ in 0..3 {
        assert_eq!(get(&c, &url, &[("authorization", &good)]).await.status, 200);
    }
    let wrong = [
        basic("alice-user", "s3cret"),
        basic("alice-user", "s3cret:with colon "),
        basic("alice-user", ""),
        basic("bob-user", "s3cret:with colon"),
        basic("nobody", "hunter2"),
        // Malformed: not base64, no colon, other schemes, nothing after the scheme, huge.
        "Basic !!!notbase64".to_string(),
        format!("Basic {}", python::base64("alice-user")),
        "Bearer abc".to_string(),
        "Basic".to_string(),
        format!("Basic {}", "A".repeat(6000)),
    ];
    for w in &wrong {
        assert_401(&get(&c, &url, &[("authorization", w)]).await, CHALLENGE);
    }
    // The scheme's first letter may be lower case.
    let r = get(
        &c,
        &url,
        &[(
            "authorization",
            &basic("bob-user", "hunter2").replace("Basic", "basic"),
        )],
    )
    .await;
    assert_eq!(echo(&r).headers["x-consumer-username"], "bob");

    // Proxy-Authorization is read first; Authorization is the fallback when it names no
    // credential.
    let r = get(
        &c,
        &url,
        &[
            ("proxy-authorization", &basic("bob-user", "hunter2")),
            ("authorization", &good),
        ],
    )
    .await;
    assert_eq!(echo(&r).headers["x-consumer-username"], "bob");
    let r = get(
        &c,
        &url,
        &[
            ("proxy-authorization", &basic("nobody", "x")),
            ("authorization", &good),
        ],
    )
    .await;
    assert_eq!(echo(&r).headers["x-consumer-username"], "alice");
    // A known username with a wrong password in Proxy-Authorization fails outright.
    let r = get(
        &c,
        &url,
        &[
            ("proxy-authorization", &basic("bob-user", "nope")),
            ("authorization", &good),
        ],
    )
    .await;
    assert_401(&r, CHALLENGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hide_credentials_and_realm() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let url = gw.url("/hidden");
    assert_401(&get(&c, &url, &[]).await, "Basic realm=\"kong\"");
    let r = get(
        &c,
        &url,
        &[
            ("authorization", &basic("bob-user", "hunter2")),
            ("proxy-authorization", &basic("nobody", "x")),
            ("x-other", "1"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = echo(&r);
    assert_eq!(e.headers["x-consumer-username"], "bob");
    assert!(!e.headers.contains_key("authorization"));
    assert!(!e.headers.contains_key("proxy-authorization"));
    assert_eq!(e.headers["x-other"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_and_logical_or_with_key_auth() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();

    let e = echo(&get(&c, &gw.url("/anon"), &[("x-consumer-username", "root")]).await);
    assert_eq!(e.headers["x-consumer-username"], "anon");
    assert_eq!(e.headers["x-anonymous-consumer"], "true");
    assert!(!e.headers.contains_key("x-credential-identifier"));
    let e = echo(
        &get(
            &c,
            &gw.url("/anon"),
            &[("authorization", &basic("bob-user", "wrong"))],
        )
        .await,
    );
    assert_eq!(e.headers["x-consumer-username"], "anon");
    let e = echo(
        &get(
            &c,
            &gw.url("/anon"),
            &[
                ("authorization", &basic("bob-user", "hunter2")),
                ("x-anonymous-consumer", "true"),
            ],
        )
        .await,
    );
    assert_eq!(e.headers["x-consumer-username"], "bob");
    assert!(!e.headers.contains_key("x-anonymous-consumer"));

    // key-auth (priority 1250) runs before basic-auth (1100); either credential will do.
    let either = gw.url("/either");
    let e = echo(&get(&c, &either, &[("apikey", "alice-key")]).await);
    assert_eq!(e.headers["x-consumer-username"], "alice");
    assert_eq!(e.headers["x-credential-identifier"].len(), 36);
    let e = echo(
        &get(
            &c,
            &either,
            &[("authorization", &basic("bob-user", "hunter2"))],
        )
        .await,
    );
    assert_eq!(e.headers["x-consumer-username"], "bob");
    assert_eq!(e.headers["x-credential-identifier"], "bob-user");
    assert!(!e.headers.contains_key("x-anonymous-consumer"));
    // Both: the first plugin's consumer stands.
    let e = echo(
        &get(
            &c,
            &either,
            &[
                ("apikey", "alice-key"),
                ("authorization", &basic("bob-user", "hunter2")),
            ],
        )
        .await,
    );
    assert_eq!(e.headers["x-consumer-username"], "alice");
    let e = echo(&get(&c, &either, &[("apikey", "bad")]).await);
    assert_eq!(e.headers["x-consumer-username"], "anon");
    assert_eq!(e.headers["x-anonymous-consumer"], "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_changed_through_the_admin_api_are_live() {
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
        .admin("POST", "/routes/r/plugins", json!({"name": "basic-auth"}))
        .await;
    assert_eq!(plugin.status, 201, "{}", plugin.text());
    assert_eq!(
        plugin.json()["config"],
        json!({"anonymous": null, "hide_credentials": false, "realm": "service"})
    );
    gw.admin("POST", "/consumers", json!({"username": "carol"}))
        .await;
    let cred = gw
        .admin(
            "POST",
            "/consumers/carol/basic-auth",
            json!({"username": "carol", "password": "first"}),
        )
        .await;
    assert_eq!(cred.status, 201, "{}", cred.text());
    let c = client();
    let first = basic("carol", "first");
    eventually(Duration::from_secs(5), "credential live", || async {
        get(&c, &gw.url("/r"), &[("authorization", &first)])
            .await
            .status
            == 200
    })
    .await;

    let id = cred.json()["id"].as_str().unwrap().to_string();
    let r = gw
        .admin(
            "PATCH",
            &format!("/consumers/carol/basic-auth/{id}"),
            json!({"password": "second"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = basic("carol", "second");
    eventually(Duration::from_secs(5), "new password live", || async {
        get(&c, &gw.url("/r"), &[("authorization", &second)])
            .await
            .status
            == 200
    })
    .await;
    // The old password, verified and cached before, no longer opens the route.
    assert_eq!(
        get(&c, &gw.url("/r"), &[("authorization", &first)])
            .await
            .status,
        401
    );
    assert_eq!(
        gw.admin(
            "DELETE",
            &format!("/consumers/carol/basic-auth/{id}"),
            Value::Null
        )
        .await
        .status,
        204
    );
    eventually(Duration::from_secs(5), "credential gone", || async {
        get(&c, &gw.url("/r"), &[("authorization", &second)])
            .await
            .status
            == 401
    })
    .await;
}
