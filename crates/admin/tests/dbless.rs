//! DB-less mode against the real in-memory store: reads work, entity writes are 405 with Kong's
//! body, and `/config` replaces the configuration whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use support::Api;

const KONG_YML: &str = r#"
_format_version: "3.0"
services:
- name: svc
  url: http://upstream.test:8080/api
  tags: [team-a]
  routes:
  - name: r1
    paths: [/one]
    tags: [team-a, public]
  - name: r2
    paths: [/two]
consumers:
- username: alice
  custom_id: A-1
  tags: [public]
"#;

#[tokio::test]
async fn reads_work_and_writes_are_405() {
    let api = Api::dbless(KONG_YML);
    let r = api.get("/services/svc").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["host"], "upstream.test");
    assert_eq!(r.body["port"], 8080);
    let svc_id = r.body["id"].as_str().unwrap().to_string();

    let r = api.get("/services/svc/routes").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["next"], Value::Null);
    let r = api.get(&format!("/services/{svc_id}/routes/r1")).await;
    assert_eq!(r.status, 200);
    let r = api.get("/routes/r1/service").await;
    assert_eq!(r.body["id"], svc_id.as_str());

    let r = api.get("/consumers?custom_id=A-1").await;
    assert_eq!(r.body["data"][0]["username"], "alice");
    assert_eq!(r.body["next"], Value::Null);

    let r = api.json("POST", "/routes", json!({"paths": ["/"]})).await;
    assert_eq!(r.status, 405);
    assert_eq!(
        r.body,
        json!({
            "code": 12,
            "name": "operation unsupported",
            "message": "cannot create 'routes' entities when not using a database",
        })
    );
    let r = api
        .json("PUT", &format!("/services/{svc_id}"), json!({"host": "x"}))
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(
        r.body["message"],
        "cannot create or update 'services' entities when not using a database"
    );
    let r = api
        .json("PATCH", "/services/svc", json!({"host": "x"}))
        .await;
    assert_eq!(
        r.body["message"],
        "cannot update 'services' entities by 'name' when not using a database"
    );
    let r = api.delete("/services/svc").await;
    assert_eq!(r.status, 405);
    assert_eq!(
        r.body["message"],
        "cannot remove 'services' entities by 'name' when not using a database"
    );
    // Methods no endpoint has are Kong's plain 405.
    let r = api.delete("/routes").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body, json!({"message": "Method not allowed"}));
    assert_eq!(api.sink.count(), 0);
    // Nothing changed.
    assert_eq!(api.get("/services/svc").await.body["host"], "upstream.test");
}

#[tokio::test]
async fn tag_filters_and_tags_endpoint() {
    let api = Api::dbless(KONG_YML);
    let r = api.get("/routes?tags=team-a,public").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    let r = api.get("/routes?tags=team-a/nothing").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    let r = api.get("/routes?tags=nothing").await;
    assert_eq!(r.body, json!({"data": [], "next": null}));
    let r = api.get("/tags/public").await;
    assert_eq!(r.status, 200);
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert!(data.iter().all(|d| d["tag"] == "public"));
    let r = api.get("/tags?size=2").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    let next = r.body["next"].as_str().unwrap().to_string();
    assert!(next.starts_with("/tags?offset="), "{next}");
    let r2 = api.get(&next).await;
    assert_eq!(r2.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(r2.body["next"], Value::Null);
    let r = api.get("/tags/%FF").await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("invalid utf-8")
    );
}

#[tokio::test]
async fn post_config_replaces_everything() {
    let api = Api::dbless(KONG_YML);
    let before = api.get("/status").await.body["configuration_hash"].clone();
    assert_eq!(before.as_str().unwrap().len(), 32);

    // YAML body.
    let yaml = "_format_version: \"3.0\"\nservices:\n- name: other\n  host: other.test\n";
    let r = api
        .request(
            "POST",
            "/config",
            &[("content-type", "application/yaml")],
            yaml,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let services = r.body["services"].as_object().unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services.values().next().unwrap()["name"], "other");
    assert_eq!(api.sink.replaced.load(Ordering::SeqCst), 1);
    assert_eq!(api.get("/services/svc").await.status, 404);
    assert_eq!(api.get("/services/other").await.status, 200);
    let after = api.get("/status").await.body["configuration_hash"].clone();
    assert_ne!(before, after);

    // Same config again with check_hash: 304, nothing replaced.
    let r = api
        .json("POST", "/config?check_hash=1", json!({ "config": yaml }))
        .await;
    assert_eq!(r.status, 304, "{}", r.text);
    assert_eq!(api.sink.replaced.load(Ordering::SeqCst), 1);

    // A JSON document as the body itself.
    let r = api
        .json(
            "POST",
            "/config",
            json!({"_format_version": "3.0", "consumers": [{"username": "bob"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(api.get("/consumers/bob").await.status, 200);

    // Kong's form field.
    let body = format!(
        "config={}",
        form_escape("_format_version: \"3.0\"\nconsumers:\n- username: carol\n")
    );
    let r = api.form("POST", "/config", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(api.get("/consumers/carol").await.status, 200);
    let r = api
        .multipart(
            "POST",
            "/config",
            &[(
                "config",
                "_format_version: \"3.0\"\nconsumers:\n- username: dave\n",
            )],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(api.get("/consumers/dave").await.status, 200);

    // GET /config round-trips.
    let r = api.get("/config").await;
    let yaml = r.body["config"].as_str().unwrap().to_string();
    assert!(yaml.contains("dave"), "{yaml}");
    let r = api
        .request(
            "POST",
            "/config?check_hash=1",
            &[("content-type", "text/yaml")],
            yaml,
        )
        .await;
    assert_eq!(r.status, 304, "{}", r.text);
}

fn form_escape(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn bad_config_changes_nothing() {
    let api = Api::dbless(KONG_YML);
    let r = api
        .json(
            "POST",
            "/config",
            json!({"config": "_format_version: \"3.0\"\nservices:\n- port: -12\n"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["code"], 14);
    assert_eq!(r.body["name"], "invalid declarative configuration");
    assert_eq!(
        r.body["fields"],
        json!({"services": [{"host": "required field missing", "port": "value should be between 0 and 65535"}]})
    );
    assert!(r.body.get("flattened_errors").is_none());

    let r = api
        .json(
            "POST",
            "/config?flatten_errors=1",
            json!({"config": "_format_version: \"3.0\"\nservices:\n- port: -12\n"}),
        )
        .await;
    assert_eq!(r.status, 400);
    let flat = r.body["flattened_errors"].as_array().unwrap();
    assert_eq!(flat.len(), 1);
    assert_eq!(flat[0]["entity_type"], "service");

    let r = api
        .json("POST", "/config", json!({"config": "bobby tables"}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["code"], 14);
    assert!(
        r.body["fields"]["error"]
            .as_str()
            .unwrap()
            .starts_with("failed parsing declarative configuration")
    );

    let r = api.request("POST", "/config", &[], "").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"message": "expected a declarative configuration"})
    );
    assert_eq!(api.sink.replaced.load(Ordering::SeqCst), 0);
    assert_eq!(api.get("/services/svc").await.status, 200);
}

#[tokio::test]
async fn status_and_root_in_dbless() {
    let api = Api::dbless(KONG_YML);
    let r = api.get("/status").await;
    assert_eq!(r.body["server"]["total_requests"], 7);
    assert!(r.body.get("database").is_none());
    let r = api.get("/").await;
    assert_eq!(r.body["configuration"]["database"], "off");
}
