//! The Admin API served by the real binary: writes to the embedded store go live on the proxy,
//! survive kill -9 and restarts, concurrent writers are safe, the admin token is enforced, and
//! DB-less mode is read-only with `POST /config`. (Each endpoint shape and error body is tested
//! in `crates/admin/tests` against the same stores.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const LIVE: Duration = Duration::from_secs(5);

/// Polls the proxy until `path` answers `status`.
async fn until_status(gw: &Gateway, path: &str, status: u16) {
    let c = client();
    let url = gw.url(path);
    eventually(LIVE, &format!("GET {path} -> {status}"), || {
        let c = c.clone();
        let url = url.clone();
        async move { get(&c, &url, &[]).await.status == status }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_writes_go_live_on_the_proxy() {
    let up = Upstream::start("live");
    let gw = Gateway::with_database().start();

    let r = gw
        .admin(
            "POST",
            "/services",
            json!({"name": "svc", "url": format!("http://{}", up.addr)}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = gw
        .admin(
            "POST",
            "/services/svc/routes",
            json!({"name": "r1", "paths": ["/one"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    until_status(&gw, "/one/x", 200).await;
    let reply = get(&client(), &gw.url("/one/x"), &[]).await;
    assert_eq!(echo(&reply).uri, "/x");

    // PATCH moves the route: the old path stops matching, the new one starts.
    let r = gw
        .admin("PATCH", "/routes/r1", json!({"paths": ["/two"]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    until_status(&gw, "/two", 200).await;
    assert_eq!(get(&client(), &gw.url("/one"), &[]).await.status, 404);

    // A service that routes use cannot be deleted; nothing changes.
    let r = gw.admin("DELETE", "/services/svc", Value::Null).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(get(&client(), &gw.url("/two"), &[]).await.status, 200);

    // Disabling the service takes its routes off the proxy.
    let r = gw
        .admin("PATCH", "/services/svc", json!({"enabled": false}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    until_status(&gw, "/two", 404).await;
    gw.admin("PATCH", "/services/svc", json!({"enabled": true}))
        .await;
    until_status(&gw, "/two", 200).await;

    let r = gw.admin("DELETE", "/routes/r1", Value::Null).await;
    assert_eq!(r.status, 204);
    until_status(&gw, "/two", 404).await;
    let r = gw.admin("DELETE", "/services/svc", Value::Null).await;
    assert_eq!(r.status, 204, "{}", r.text());

    // Bad input is refused in Kong's shape and changes nothing.
    let r = gw
        .admin("POST", "/routes", json!({"paths": ["no-slash"]}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["name"], "schema violation");
    let r = gw.admin("GET", "/routes", Value::Null).await;
    assert_eq!(r.json()["data"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn node_info_names_the_store_and_hides_secrets() {
    let gw = Gateway::with_database()
        .setting("admin_token", "s3cret-t0ken")
        .start();
    let auth = [("kong-admin-token", "s3cret-t0ken")];
    let r = get(&client(), &gw.admin_url("/"), &auth).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let info = r.json();
    assert_eq!(info["configuration"]["database"], "sqlite");
    assert_eq!(info["configuration"]["admin_token"], "******");
    assert!(info["version"].as_str().unwrap().starts_with("3."));
    assert!(!r.text().contains("s3cret-t0ken"));
    let r = get(&client(), &gw.admin_url("/status"), &auth).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["server"]["total_requests"].is_u64());
    assert!(!gw.log_text().contains("s3cret-t0ken"));
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_token_is_required_when_set() {
    let gw = Gateway::with_database()
        .setting("admin_token", "t0k3n")
        .start();
    let c = client();
    let url = gw.admin_url("/services");
    assert_eq!(get(&c, &url, &[]).await.status, 401);
    assert_eq!(
        get(&c, &url, &[("kong-admin-token", "wrong")]).await.status,
        401
    );
    assert_eq!(
        get(&c, &url, &[("kong-admin-token", "t0k3n")]).await.status,
        200
    );
    assert_eq!(
        get(&c, &url, &[("authorization", "Bearer t0k3n")])
            .await
            .status,
        200
    );
    // A refused write changes nothing.
    let r = gw
        .admin("POST", "/services", json!({"name": "x", "url": "http://a"}))
        .await;
    assert_eq!(r.status, 401);
    let r = get(&c, &url, &[("kong-admin-token", "t0k3n")]).await;
    assert_eq!(r.json()["data"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_write_survives_kill_9() {
    let up = Upstream::start("durable");
    let mut gw = Gateway::with_database().start();
    let r = gw
        .admin(
            "POST",
            "/services",
            json!({"name": "svc", "url": format!("http://{}", up.addr)}),
        )
        .await;
    assert_eq!(r.status, 201);
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        let r = gw
            .admin(
                "POST",
                "/services/svc/routes",
                json!({"name": format!("r{i}"), "paths": [format!("/r{i}")]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        acknowledged.push(r.json()["id"].as_str().unwrap().to_string());
    }
    // Killed right after the last 201: no shutdown code runs.
    gw.kill9();
    gw.restart();
    for (i, id) in acknowledged.iter().enumerate() {
        let r = gw.admin("GET", &format!("/routes/{id}"), Value::Null).await;
        assert_eq!(r.status, 200, "route {i} lost after kill -9");
    }
    // The restarted node serves them without any Admin call.
    assert_eq!(get(&client(), &gw.url("/r39"), &[]).await.status, 200);
    assert_eq!(get(&client(), &gw.url("/r0"), &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_serves_exactly_the_same_config() {
    let up = Upstream::start("restart");
    let mut gw = Gateway::with_database().start();
    gw.admin(
        "POST",
        "/services",
        json!({"name": "svc", "url": format!("http://{}/base", up.addr), "tags": ["t1"]}),
    )
    .await;
    gw.admin(
        "POST",
        "/upstreams",
        json!({"name": "pool", "algorithm": "round-robin"}),
    )
    .await;
    gw.admin(
        "POST",
        "/upstreams/pool/targets",
        json!({"target": up.addr.to_string(), "weight": 50}),
    )
    .await;
    // The route last: changes go live in order, so once it answers, all of them are live.
    gw.admin(
        "POST",
        "/services/svc/routes",
        json!({"name": "r", "paths": ["/p"], "strip_path": false, "hosts": ["a.test"]}),
    )
    .await;
    until_status(&gw, "/p", 404).await;
    let c = client();
    let host = [("host", "a.test")];
    eventually(LIVE, "route live", || async {
        get(&c, &gw.url("/p"), &host).await.status == 200
    })
    .await;
    let hash = gw.status_json().await["configuration_hash"].clone();
    let dump = |gw: &Gateway| {
        let gw_admin = gw.admin_url("");
        async move {
            let mut all = serde_json::Map::new();
            for e in ["services", "routes", "upstreams"] {
                let r = get(&client(), &format!("{gw_admin}/{e}"), &[]).await;
                all.insert(e.into(), r.json()["data"].clone());
            }
            Value::Object(all)
        }
    };
    let before = dump(&gw).await;

    gw.stop();
    gw.restart();
    assert_eq!(gw.status_json().await["configuration_hash"], hash);
    assert_eq!(dump(&gw).await, before);
    let r = get(&c, &gw.url("/p"), &host).await;
    assert_eq!(r.status, 200);
    assert_eq!(echo(&r).uri, "/base/p");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_are_safe() {
    let up = Upstream::start("concurrent");
    let gw = Gateway::with_database().start();
    gw.admin(
        "POST",
        "/services",
        json!({"name": "svc", "url": format!("http://{}", up.addr)}),
    )
    .await;
    // 60 writers; every name is sent by three of them.
    let mut tasks = Vec::new();
    for i in 0..60 {
        let url = gw.admin_url("/services/svc/routes");
        tasks.push(tokio::spawn(async move {
            let body = json!({"name": format!("n{}", i % 20), "paths": [format!("/c{}", i % 20)]});
            send(
                &client(),
                "POST",
                &url,
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await
            .status
        }));
    }
    let mut created = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            201 => created += 1,
            409 => conflicts += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, conflicts), (20, 40));
    let r = gw.admin("GET", "/routes?size=100", Value::Null).await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 20);
    for i in 0..20 {
        until_status(&gw, &format!("/c{i}"), 200).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dbless_admin_is_read_only_and_post_config_goes_live() {
    let up = Upstream::start("dbless");
    let first = format!(
        "_format_version: \"3.0\"\nservices:\n- name: a\n  url: http://{}\n  routes:\n  - name: ra\n    paths: [/a]\n",
        up.addr
    );
    let gw = Gateway::with_config(&first).start();
    let r = gw.admin("GET", "/routes/ra", Value::Null).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let r = gw
        .admin("POST", "/services", json!({"name": "x", "url": "http://b"}))
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(
        r.json()["message"],
        "cannot create 'services' entities when not using a database"
    );

    let second = format!(
        "_format_version: \"3.0\"\nservices:\n- name: b\n  url: http://{}\n  routes:\n  - name: rb\n    paths: [/b]\n",
        up.addr
    );
    let r = send(
        &client(),
        "POST",
        &gw.admin_url("/config"),
        &[("content-type", "text/yaml")],
        second.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    until_status(&gw, "/b", 200).await;
    assert_eq!(get(&client(), &gw.url("/a"), &[]).await.status, 404);
    assert_eq!(gw.admin("GET", "/routes/rb", Value::Null).await.status, 200);
    assert_eq!(gw.admin("GET", "/routes/ra", Value::Null).await.status, 404);

    // The same config again with check_hash: 304, nothing to do.
    let r = send(
        &client(),
        "POST",
        &gw.admin_url("/config?check_hash=1"),
        &[("content-type", "text/yaml")],
        second,
    )
    .await;
    assert_eq!(r.status, 304);

    // GET /config is the running config as `db_export` writes it: posted back, it is the same
    // config (same hash: 304).
    let r = gw.admin("GET", "/config", Value::Null).await;
    assert_eq!(r.status, 200);
    let exported = r.json()["config"].as_str().unwrap_or_default().to_string();
    assert!(exported.contains("_transform: false"), "{exported}");
    assert!(exported.contains("\"rb\""), "{exported}");
    let r = send(
        &client(),
        "POST",
        &gw.admin_url("/config?check_hash=1"),
        &[("content-type", "text/yaml")],
        exported,
    )
    .await;
    assert_eq!(r.status, 304, "{}", r.text());

    // A bad body reports every error and changes nothing.
    let r = send(
        &client(),
        "POST",
        &gw.admin_url("/config"),
        &[("content-type", "text/yaml")],
        "_format_version: \"3.0\"\nservices:\n- name: c\n  port: 99999\n  routes:\n  - paths: [nope]\n",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], 14);
    assert_eq!(get(&client(), &gw.url("/b"), &[]).await.status, 200);

    // Reloading the file brings the file's config back, on the proxy and in the Admin API.
    let (code, out) = gw.cli(&["reload"]);
    assert_eq!(code, 0, "{out}");
    until_status(&gw, "/a", 200).await;
    assert_eq!(gw.admin("GET", "/routes/ra", Value::Null).await.status, 200);
    assert_eq!(gw.admin("GET", "/routes/rb", Value::Null).await.status, 404);
}
