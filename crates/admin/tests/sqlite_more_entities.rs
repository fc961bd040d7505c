//! Plugins, upstreams and targets, certificates and SNIs, CA certificates and consumers
//! against a real SQLite store: typed form configs, recursive PATCH of nested records, targets
//! under their upstream, the certificates' SNI list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{Api, CERT, KEY, id};

#[tokio::test]
async fn plugins_typed_config_and_recursive_patch() {
    let api = Api::sqlite().await;
    api.ok(
        "POST",
        "/services",
        json!({"name": "svc", "host": "svc.test"}),
        201,
    )
    .await;
    let r = api
        .form(
            "POST",
            "/services/svc/plugins",
            "name=rate-limiting&config.minute=5&config.redis.host=redis.test&config.key_names=k&instance_name=rl",
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let p = r.body;
    assert_eq!(p["config"]["minute"], 5);
    assert_eq!(p["config"]["policy"], "local");
    assert_eq!(
        p["config"]["redis"],
        json!({"host": "redis.test", "port": 6379})
    );
    assert_eq!(p["config"]["key_names"], json!(["k"]));
    assert_eq!(p["enabled"], true);
    assert_eq!(p["protocols"], json!(["grpc", "grpcs", "http", "https"]));
    // PATCH of the nested config merges; form values typed by the stored plugin's schema.
    let r = api
        .form(
            "PATCH",
            "/plugins/rl",
            "config.hour=100&config.redis.port=7000",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["config"]["minute"], 5);
    assert_eq!(r.body["config"]["hour"], 100);
    assert_eq!(
        r.body["config"]["redis"],
        json!({"host": "redis.test", "port": 7000})
    );
    // Arrays replace.
    let r = api
        .ok(
            "PATCH",
            &format!("/plugins/{}", id(&p)),
            json!({"config": {"key_names": ["x", "y"]}}),
            200,
        )
        .await;
    assert_eq!(r["config"]["key_names"], json!(["x", "y"]));
    assert_eq!(r["config"]["minute"], 5);
    // Nested item endpoints by instance name.
    assert_eq!(api.get("/services/svc/plugins/rl").await.status, 200);
    assert_eq!(api.get("/plugins/rl/service").await.body["name"], "svc");
    // Global plugin, then a conflicting one.
    api.ok("POST", "/plugins", json!({"name": "key-auth"}), 201)
        .await;
    let r = api
        .json("POST", "/plugins", json!({"name": "key-auth"}))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], 5);
    // Scope rules come from the plugin.
    api.ok("POST", "/consumers", json!({"username": "c"}), 201)
        .await;
    let r = api
        .json("POST", "/consumers/c/plugins", json!({"name": "key-auth"}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["fields"]["consumer"], "value must be null");
    let r = api
        .ok(
            "POST",
            "/consumers/c/plugins",
            json!({"name": "rate-limiting", "config": {"minute": 1}}),
            201,
        )
        .await;
    assert_eq!(
        r["consumer"]["id"],
        api.get("/consumers/c").await.body["id"]
    );
    assert_eq!(
        api.get("/consumers/c/plugins").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Unknown plugins are rejected.
    let r = api.json("POST", "/plugins", json!({"name": "nope"})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["fields"]["name"]
            .as_str()
            .unwrap()
            .contains("'nope'")
    );
    // GET / lists the plugins in use.
    let root = api.get("/").await.body;
    let mut used: Vec<&str> = root["plugins"]["enabled_in_cluster"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    used.sort();
    assert_eq!(used, ["key-auth", "rate-limiting"]);
    // Deleting the service cascades to its plugins.
    assert_eq!(api.delete("/services/svc").await.status, 204);
    assert_eq!(api.get("/plugins/rl").await.status, 404);
}

#[tokio::test]
async fn upstreams_and_targets() {
    let api = Api::sqlite().await;
    let u = api
        .ok("POST", "/upstreams", json!({"name": "up"}), 201)
        .await;
    assert_eq!(u["healthchecks"]["active"]["timeout"].as_f64(), Some(1.0));
    let r = api
        .ok(
            "PATCH",
            "/upstreams/up",
            json!({"healthchecks": {"active": {"timeout": 5, "healthy": {"interval": 3}}}}),
            200,
        )
        .await;
    assert_eq!(r["healthchecks"]["active"]["timeout"].as_f64(), Some(5.0));
    assert_eq!(r["healthchecks"]["active"]["healthy"]["interval"], 3);
    assert_eq!(
        r["healthchecks"]["active"]["healthy"]["http_statuses"],
        u["healthchecks"]["active"]["healthy"]["http_statuses"],
        "untouched parts of the record are kept"
    );
    assert_eq!(r["healthchecks"]["active"]["concurrency"], 10);
    let r = api
        .form(
            "PATCH",
            "/upstreams/up",
            "healthchecks.active.concurrency=20&slots=100",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["healthchecks"]["active"]["concurrency"], 20);
    assert_eq!(
        r.body["healthchecks"]["active"]["timeout"].as_f64(),
        Some(5.0)
    );
    assert_eq!(r.body["slots"], 100);

    let t = api
        .ok(
            "POST",
            "/upstreams/up/targets",
            json!({"target": "10.0.0.1"}),
            201,
        )
        .await;
    assert_eq!(t["target"], "10.0.0.1:8000");
    assert_eq!(t["weight"], 100);
    let r = api
        .form(
            "POST",
            &format!("/upstreams/{}/targets", id(&u)),
            "target=10.0.0.2:81&weight=5",
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["weight"], 5);
    let list = api.get("/upstreams/up/targets").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        api.get("/upstreams/up/targets/all").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // By target string under the upstream, or by id.
    let r = api.get("/upstreams/up/targets/10.0.0.1:8000").await;
    assert_eq!(r.body["id"], t["id"]);
    assert_eq!(
        api.get(&format!("/upstreams/up/targets/{}", id(&t)))
            .await
            .status,
        200
    );
    // PUT updates an existing target (Kong's upstreams routes), 404 otherwise.
    let r = api
        .ok(
            "PUT",
            "/upstreams/up/targets/10.0.0.1:8000",
            json!({"weight": 7}),
            200,
        )
        .await;
    assert_eq!(r["weight"], 7);
    assert_eq!(r["id"], t["id"]);
    assert_eq!(
        api.json(
            "PUT",
            "/upstreams/up/targets/10.9.9.9:1",
            json!({"weight": 7})
        )
        .await
        .status,
        404
    );
    // Targets are only reachable under their upstream.
    assert_eq!(api.get("/targets").await.status, 404);
    assert_eq!(api.get(&format!("/targets/{}", id(&t))).await.status, 404);
    assert_eq!(
        api.get(&format!("/targets/{}/upstream", id(&t)))
            .await
            .status,
        404
    );
    assert_eq!(
        api.delete("/upstreams/up/targets/10.0.0.1:8000")
            .await
            .status,
        204
    );
    assert_eq!(
        api.get("/upstreams/up/targets").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn certificates_with_snis() {
    let api = Api::sqlite().await;
    let c = api
        .ok(
            "POST",
            "/certificates",
            json!({"cert": CERT, "key": KEY, "snis": ["b.test", "a.test"]}),
            201,
        )
        .await;
    assert_eq!(c["snis"], json!(["a.test", "b.test"]));
    let cid = id(&c);
    assert_eq!(
        api.get("/snis").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = api.get("/snis/a.test").await;
    assert_eq!(r.body["certificate"]["id"], cid.as_str());
    // By SNI name.
    let r = api.get("/certificates/b.test").await;
    assert_eq!(r.body["id"], cid.as_str());
    assert_eq!(r.body["snis"], json!(["a.test", "b.test"]));
    let r = api.get("/certificates/nope.test").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"message": "SNI not found"}));
    assert_eq!(
        api.get("/certificates").await.body["data"][0]["snis"],
        json!(["a.test", "b.test"])
    );
    assert_eq!(
        api.get(&format!("/certificates/{cid}/snis")).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Kong disables /snis/{s}/certificate.
    assert_eq!(api.get("/snis/a.test/certificate").await.status, 404);
    // PATCH with a list replaces the names.
    let r = api
        .ok(
            "PATCH",
            &format!("/certificates/{cid}"),
            json!({"snis": ["b.test", "c.test"]}),
            200,
        )
        .await;
    assert_eq!(r["snis"], json!(["b.test", "c.test"]));
    assert_eq!(api.get("/snis/a.test").await.status, 404);
    // Duplicates and names owned by another certificate are schema violations.
    let r = api
        .json(
            "PATCH",
            &format!("/certificates/{cid}"),
            json!({"snis": ["x.test", "x.test"]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["message"],
        "schema violation (snis: x.test is duplicated)"
    );
    let r = api
        .json(
            "POST",
            "/certificates",
            json!({"cert": CERT, "key": KEY, "snis": ["c.test"]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["fields"]["snis"],
        format!("c.test already associated with existing certificate '{cid}'")
    );
    // PUT by a new SNI name creates a certificate carrying that name.
    let r = api
        .ok(
            "PUT",
            "/certificates/new.test",
            json!({"cert": CERT, "key": KEY}),
            200,
        )
        .await;
    assert_eq!(r["snis"], json!(["new.test"]));
    // Deleting a certificate deletes its SNIs.
    assert_eq!(
        api.delete(&format!("/certificates/{cid}")).await.status,
        204
    );
    assert_eq!(api.get("/snis/b.test").await.status, 404);
    assert_eq!(
        api.get("/snis").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The key is a secret, but the API returns it, as Kong does.
    assert_eq!(r["key"], KEY);
}

#[tokio::test]
async fn ca_certificates_and_consumers() {
    let api = Api::sqlite().await;
    let ca = api
        .ok("POST", "/ca_certificates", json!({"cert": CERT}), 201)
        .await;
    assert_eq!(ca["cert_digest"].as_str().unwrap().len(), 64);
    assert_eq!(
        api.get(&format!("/ca_certificates/{}", id(&ca)))
            .await
            .status,
        200
    );
    let r = api.get("/ca_certificates/not-a-uuid").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({
            "code": 1,
            "name": "invalid primary key",
            "message": "invalid primary key: '{id=\"expected a valid UUID\"}'",
            "fields": {"id": "expected a valid UUID"},
        })
    );
    assert_eq!(
        api.delete(&format!("/ca_certificates/{}", id(&ca)))
            .await
            .status,
        204
    );

    let c = api
        .ok(
            "POST",
            "/consumers",
            json!({"username": "ann", "custom_id": "A"}),
            201,
        )
        .await;
    let r = api.get("/consumers?custom_id=A").await;
    assert_eq!(r.body["data"][0]["id"], c["id"]);
    assert_eq!(
        api.get("/consumers?custom_id=B").await.body,
        json!({"data": [], "next": null})
    );
    let r = api.get("/consumers?custom_id=").await;
    assert_eq!(r.status, 400);
    let r = api.form("PATCH", "/consumers/ann", "custom_id=").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["custom_id"],
        Value::Null,
        "an empty form value is null"
    );
}
