//! acl against the real binary, behind key-auth: allow and deny lists, X-Consumer-Groups,
//! hide_groups_header, anonymous consumers, requests nobody authenticated, groups added
//! through the Admin API, and the config checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials: [{{key: alice-key}}]
  acls: [{{group: admins}}, {{group: staff}}]
- username: bob
  keyauth_credentials: [{{key: bob-key}}]
  acls: [{{group: banned}}]
- username: carol
  keyauth_credentials: [{{key: carol-key}}]
- username: anon
  acls: [{{group: guests}}]
- username: nobody
services:
- name: s
  url: http://{}
  routes:
  - name: allow
    paths: [/allow]
    plugins:
    - name: key-auth
    - name: acl
      config: {{allow: [admins]}}
  - name: deny
    paths: [/deny]
    plugins:
    - name: key-auth
    - name: acl
      config: {{deny: [banned]}}
  - name: hidden
    paths: [/hidden]
    plugins:
    - name: key-auth
    - name: acl
      config: {{allow: [staff], hide_groups_header: true}}
  - name: unauthenticated
    paths: [/unauthenticated]
    plugins:
    - name: acl
      config: {{allow: [admins]}}
  - name: guests
    paths: [/guests]
    plugins:
    - name: key-auth
      config: {{anonymous: anon}}
    - name: acl
      config: {{allow: [guests, admins]}}
  - name: members
    paths: [/members]
    plugins:
    - name: key-auth
      config: {{anonymous: anon}}
    - name: acl
      config: {{allow: [admins]}}
  - name: groupless
    paths: [/groupless]
    plugins:
    - name: key-auth
      config: {{anonymous: nobody}}
    - name: acl
      config: {{allow: [admins]}}
"#,
        up.addr
    )
}

fn assert_error(r: &Reply, status: u16, message: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["message"], message);
}

const FORBIDDEN: &str = "You cannot consume this service";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_and_deny_lists() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let key = |k: &'static str| [("apikey", k), ("x-consumer-groups", "admins")];

    // allow: only admins; the upstream learns the consumer's groups (a client's own
    // X-Consumer-Groups is replaced).
    let r = get(&c, &gw.url("/allow"), &key("alice-key")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(echo(&r).headers["x-consumer-groups"], "admins, staff");
    assert_error(
        &get(&c, &gw.url("/allow"), &key("bob-key")).await,
        403,
        FORBIDDEN,
    );
    // A consumer without any group is not in the list either.
    assert_error(
        &get(&c, &gw.url("/allow"), &key("carol-key")).await,
        403,
        FORBIDDEN,
    );

    // deny: everyone but the banned; a consumer without groups passes with an empty list.
    let r = get(&c, &gw.url("/deny"), &key("alice-key")).await;
    assert_eq!(echo(&r).headers["x-consumer-groups"], "admins, staff");
    assert_error(
        &get(&c, &gw.url("/deny"), &key("bob-key")).await,
        403,
        FORBIDDEN,
    );
    let r = get(&c, &gw.url("/deny"), &[("apikey", "carol-key")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(echo(&r).headers["x-consumer-groups"], "");

    // hide_groups_header.
    let r = get(&c, &gw.url("/hidden"), &[("apikey", "alice-key")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!echo(&r).headers.contains_key("x-consumer-groups"));

    // Nobody authenticated: 401 from the acl itself.
    let r = get(&c, &gw.url("/unauthenticated"), &[]).await;
    assert_error(&r, 401, "Unauthorized");
    assert!(r.json()["request_id"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_consumers_have_their_own_groups() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();

    let r = get(&c, &gw.url("/guests"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = echo(&r);
    assert_eq!(e.headers["x-consumer-username"], "anon");
    assert_eq!(e.headers["x-consumer-groups"], "guests");
    let r = get(&c, &gw.url("/guests"), &[("apikey", "alice-key")]).await;
    assert_eq!(echo(&r).headers["x-consumer-groups"], "admins, staff");

    // The anonymous consumer is not an admin; members get in.
    assert_error(&get(&c, &gw.url("/members"), &[]).await, 403, FORBIDDEN);
    assert_eq!(
        get(&c, &gw.url("/members"), &[("apikey", "alice-key")])
            .await
            .status,
        200
    );
    // An anonymous consumer without groups, no credential: 401.
    assert_error(
        &get(&c, &gw.url("/groupless"), &[]).await,
        401,
        "Unauthorized",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_through_the_admin_api_and_config_checks() {
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
    gw.admin("POST", "/routes/r/plugins", json!({"name": "key-auth"}))
        .await;
    let acl = gw
        .admin(
            "POST",
            "/routes/r/plugins",
            json!({"name": "acl", "config": {"allow": ["vip"]}}),
        )
        .await;
    assert_eq!(acl.status, 201, "{}", acl.text());
    assert_eq!(
        acl.json()["config"],
        json!({"allow": ["vip"], "deny": null, "hide_groups_header": false,
               "always_use_authenticated_groups": false})
    );
    gw.admin("POST", "/consumers", json!({"username": "dave"}))
        .await;
    gw.admin(
        "POST",
        "/consumers/dave/key-auth",
        json!({"key": "dave-key"}),
    )
    .await;
    let c = client();
    eventually(Duration::from_secs(5), "dave known, not a vip", || async {
        get(&c, &gw.url("/r"), &[("apikey", "dave-key")])
            .await
            .status
            == 403
    })
    .await;
    let g = gw
        .admin("POST", "/consumers/dave/acls", json!({"group": "vip"}))
        .await;
    assert_eq!(g.status, 201, "{}", g.text());
    eventually(Duration::from_secs(5), "dave a vip", || async {
        get(&c, &gw.url("/r"), &[("apikey", "dave-key")])
            .await
            .status
            == 200
    })
    .await;

    let exactly = "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'";
    let at_least = "at least one of these fields must be non-empty: 'config.allow', 'config.deny'";
    for (config, ok, message) in [
        (json!({"allow": ["a"], "deny": ["b"]}), false, exactly),
        (json!({}), false, at_least),
        (json!({"allow": [], "deny": []}), false, at_least),
        (json!({"deny": ["b"]}), true, ""),
        (json!({"allow": [], "deny": ["b"]}), true, ""),
    ] {
        let r = gw
            .admin(
                "POST",
                "/schemas/plugins/validate",
                json!({"name": "acl", "config": config}),
            )
            .await;
        assert_eq!(r.status == 200, ok, "{config}: {}", r.text());
        assert!(r.text().contains(message), "{config}: {}", r.text());
    }
}
