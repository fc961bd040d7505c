//! Node, schema and protocol-level behaviour: `GET /`, `/status`, `/endpoints`, schemas,
//! `/plugins/enabled`, unknown paths, methods, OPTIONS/HEAD, and the admin token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::Api;

#[tokio::test]
async fn root_reports_kong_version_and_no_secrets() {
    let api = Api::sqlite().await;
    let r = api.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json; charset=utf-8");
    let b = r.body;
    assert_eq!(b["version"], silverback_model::KONG_VERSION);
    assert!(b["silverback_version"].is_string());
    assert_eq!(b["edition"], "community");
    assert_eq!(b["tagline"], "Welcome to kong");
    assert!(uuid::Uuid::parse_str(b["node_id"].as_str().unwrap()).is_ok());
    assert!(!b["hostname"].as_str().unwrap().is_empty());
    assert_eq!(
        b["plugins"]["available_on_server"],
        json!({"key-auth": {"version": "3.10.0", "priority": 1250}})
    );
    assert_eq!(b["plugins"]["enabled_in_cluster"], json!([]));
    assert_eq!(b["configuration"]["database"], "sqlite");
    assert_eq!(b["configuration"]["admin_token"], "******");
    assert!(b["pids"]["master"].is_number());
    assert!(b["timers"].is_object());
}

#[tokio::test]
async fn status_endpoints_and_enabled_plugins() {
    let api = Api::sqlite().await;
    let r = api.get("/status").await;
    assert_eq!(r.body["database"], json!({"reachable": true}));
    assert_eq!(r.body["server"]["connections_active"], 1);
    assert!(r.body.get("configuration_hash").is_none());

    let r = api.get("/endpoints").await;
    let data: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for want in [
        "/",
        "/services/{services}/routes/{routes}",
        "/routes/{routes}/service",
        "/consumers/{consumers}/plugins",
        "/certificates/{certificates}/snis",
        "/schemas/{name}",
        "/config",
    ] {
        assert!(data.contains(&want), "{want}");
    }
    let mut sorted = data.clone();
    sorted.sort_by_key(|s| s.replace('/', "\0"));
    assert_eq!(data, sorted);

    let r = api.get("/plugins/enabled").await;
    assert_eq!(r.body, json!({"enabled_plugins": ["key-auth"]}));
}

#[tokio::test]
async fn schema_endpoints() {
    let api = Api::sqlite().await;
    let r = api.get("/schemas/services").await;
    assert_eq!(r.status, 200);
    let fields = r.body["fields"].as_array().unwrap();
    assert!(fields.iter().any(|f| f.get("host").is_some()));
    assert!(r.body["entity_checks"].is_array());
    let r = api.get("/schemas/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"message": "No entity named 'nope'"}));

    let r = api
        .json(
            "POST",
            "/schemas/services/validate",
            json!({"host": "a.test"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"message": "schema validation successful"}));
    let r = api
        .form(
            "POST",
            "/schemas/services/validate",
            "host=a.test&port=nope",
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["code"], 2);
    assert_eq!(r.body["fields"], json!({"port": "expected an integer"}));

    let r = api.get("/schemas/plugins/rate-limiting").await;
    assert_eq!(r.status, 200);
    let config = r.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|f| f.get("config"))
        .unwrap()
        .clone();
    assert_eq!(config["type"], "record");
    assert!(
        config["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.get("minute").is_some())
    );
    let r = api.get("/schemas/plugins/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"message": "No plugin named 'nope'"}));
    let r = api
        .json(
            "POST",
            "/schemas/plugins/validate",
            json!({"name": "rate-limiting", "config": {"minute": "x"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["fields"]["config"]["minute"], "expected an integer");
    let r = api
        .json(
            "POST",
            "/schemas/plugins/validate",
            json!({"name": "rate-limiting", "config": {"minute": 3}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(api.sink.count(), 0, "validation writes nothing");
    let r = api.get("/plugins/schema/rate-limiting").await;
    assert!(
        r.body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.get("minute").is_some())
    );
}

#[tokio::test]
async fn unknown_paths_methods_options_head() {
    let api = Api::sqlite().await;
    // decK probes this Enterprise collection.
    let r = api.get("/mtls-auths").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"message": "Not found"}));
    assert_eq!(api.get("/services/x/nothing").await.status, 404);
    assert_eq!(api.get("/a/b/c/d/e").await.status, 404);

    let r = api.json("PATCH", "/services", json!({})).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body, json!({"message": "Method not allowed"}));
    let r = api.get("/schemas/services/validate").await;
    assert_eq!(r.status, 405);

    let r = api
        .request("OPTIONS", "/services", &[("origin", "http://gui.test")], "")
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.headers["allow"], "GET, HEAD, OPTIONS, POST");
    assert_eq!(r.headers["access-control-allow-origin"], "http://gui.test");
    assert_eq!(r.headers["access-control-allow-credentials"], "true");
    let r = api.request("OPTIONS", "/services/x", &[], "").await;
    assert_eq!(r.headers["allow"], "DELETE, GET, HEAD, OPTIONS, PATCH, PUT");

    let r = api.request("HEAD", "/services", &[], "").await;
    assert_eq!(r.status, 200);
    assert!(r.text.is_empty());
    assert_eq!(
        api.get("/services").await.headers["access-control-allow-origin"],
        "*"
    );
}

#[tokio::test]
async fn admin_token() {
    let api = Api::sqlite_with_token(Some("s3cret-token")).await;
    let r = api.get("/").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"message": "Unauthorized"}));
    let r = api
        .request("GET", "/", &[("kong-admin-token", "s3cret-tokem")], "")
        .await;
    assert_eq!(r.status, 401, "wrong token");
    let r = api
        .request("GET", "/", &[("kong-admin-token", "s3cret-token")], "")
        .await;
    assert_eq!(r.status, 200);
    let r = api
        .request(
            "GET",
            "/services",
            &[("authorization", "Bearer s3cret-token")],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api
        .request(
            "GET",
            "/services",
            &[("authorization", "Basic s3cret-token")],
            "",
        )
        .await;
    assert_eq!(r.status, 401);
    // Writes too, and before anything else is looked at.
    let r = api
        .request(
            "POST",
            "/services",
            &[("content-type", "application/json")],
            "{\"host\":\"a.test\"}",
        )
        .await;
    assert_eq!(r.status, 401);
    let r = api.get("/nope").await;
    assert_eq!(r.status, 401);
    let r = api
        .request(
            "POST",
            "/services",
            &[
                ("content-type", "application/json"),
                ("kong-admin-token", "s3cret-token"),
            ],
            "{\"host\":\"a.test\"}",
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body["id"].is_string());
    assert_ne!(r.body, Value::Null);
}

#[tokio::test]
async fn serves_over_tcp() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = Api::dbless("_format_version: \"3.0\"\n");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(silverback_admin::serve(listener, api.router.clone()));
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /status HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.read_to_string(&mut out),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("\"configuration_hash\":\"00000000000000000000000000000000\""),
        "{out}"
    );
    server.abort();
}
