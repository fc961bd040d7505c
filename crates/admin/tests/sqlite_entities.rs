//! Entity endpoints against a real SQLite store: every entity type created, read, updated and
//! deleted through JSON, form and multipart bodies; PUT by id and key; PATCH merges; nested and
//! foreign endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{Api, id};

#[tokio::test]
async fn services_crud_in_every_body_form() {
    let api = Api::sqlite().await;
    // JSON, with the url shorthand.
    let s = api
        .ok(
            "POST",
            "/services",
            json!({"name": "json-svc", "url": "https://backend.test:8443/v1", "tags": ["t1"]}),
            201,
        )
        .await;
    assert_eq!(s["protocol"], "https");
    assert_eq!(s["host"], "backend.test");
    assert_eq!(s["port"], 8443);
    assert_eq!(s["path"], "/v1");
    assert_eq!(s["retries"], 5);
    assert_eq!(s["created_at"], s["updated_at"]);
    assert!(api.sink.count() >= 1, "the gateway is told about the write");

    // Form, values typed by the schema.
    let r = api
        .form(
            "POST",
            "/services",
            "name=form-svc&url=http://f.test/x&retries=3&tags[]=a&tags[]=b&enabled=false",
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["retries"], 3);
    assert_eq!(r.body["port"], 80);
    assert_eq!(r.body["path"], "/x");
    assert_eq!(r.body["enabled"], false);
    assert_eq!(r.body["tags"], json!(["a", "b"]));

    // Multipart.
    let r = api
        .multipart(
            "POST",
            "/services",
            &[
                ("name", "mp-svc"),
                ("host", "mp.test"),
                ("port", "9000"),
                ("tags", "solo"),
            ],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["port"], 9000);
    assert_eq!(r.body["tags"], json!(["solo"]));

    // Read by id and by name.
    let by_id = api.get(&format!("/services/{}", id(&s))).await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.body, s);
    assert_eq!(api.get("/services/json-svc").await.body, s);
    assert_eq!(
        api.get("/services/json-svc/").await.status,
        200,
        "trailing slash"
    );

    // PATCH merges, refreshes nothing it was not asked to.
    let p = api
        .ok(
            "PATCH",
            "/services/json-svc",
            json!({"retries": 9, "path": null}),
            200,
        )
        .await;
    assert_eq!(p["retries"], 9);
    assert_eq!(p["path"], Value::Null);
    assert_eq!(p["host"], "backend.test");
    assert_eq!(p["created_at"], s["created_at"]);
    let r = api
        .form("PATCH", "/services/form-svc", "url=http://g.test:81")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["host"], "g.test");
    assert_eq!(r.body["port"], 81);
    assert_eq!(r.body["path"], Value::Null);

    // DELETE: 204, also when absent.
    assert_eq!(api.delete("/services/mp-svc").await.status, 204);
    assert_eq!(api.delete("/services/mp-svc").await.status, 204);
    let r = api.get("/services/mp-svc").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"message": "Not found"}));
}

#[tokio::test]
async fn put_by_id_and_by_key() {
    let api = Api::sqlite().await;
    let uid = "0b6f4a51-3c7a-4c52-9d8e-2f4f6a1c9e01";
    let created = api
        .ok(
            "PUT",
            &format!("/services/{uid}"),
            json!({"name": "p", "host": "a.test", "created_at": 1000, "updated_at": 1000}),
            200,
        )
        .await;
    assert_eq!(created["id"], uid);
    assert_eq!(
        created["created_at"], 1000,
        "a new row may carry its own created_at"
    );
    assert!(
        created["updated_at"].as_i64().unwrap() > 1000,
        "updated_at is refreshed"
    );
    let replaced = api
        .ok(
            "PUT",
            &format!("/services/{uid}"),
            json!({"name": "p", "host": "b.test", "id": uid, "created_at": 2000}),
            200,
        )
        .await;
    assert_eq!(replaced["host"], "b.test");
    assert_eq!(
        replaced["created_at"], 1000,
        "PUT keeps the replaced row's created_at"
    );
    let patched = api
        .ok("PATCH", "/services/p", json!({"created_at": 3000}), 200)
        .await;
    assert_eq!(patched["created_at"], 1000, "PATCH keeps created_at");
    // A replace is whole: fields not sent fall back to defaults.
    api.ok("PATCH", "/services/p", json!({"retries": 1}), 200)
        .await;
    let again = api
        .ok("PUT", "/services/p", json!({"host": "c.test"}), 200)
        .await;
    assert_eq!(again["id"], uid, "PUT by name keeps the row's id");
    assert_eq!(again["retries"], 5);
    assert_eq!(again["name"], "p");
    // By key, new: the name comes from the URL.
    let fresh = api
        .ok("PUT", "/consumers/zoe", json!({"custom_id": "Z"}), 200)
        .await;
    assert_eq!(fresh["username"], "zoe");
    assert_eq!(api.get("/consumers/zoe").await.body["id"], fresh["id"]);
    // The URL key wins over the body.
    let r = api
        .ok(
            "PUT",
            "/consumers/zoe",
            json!({"username": "other", "custom_id": "Z2"}),
            200,
        )
        .await;
    assert_eq!(r["username"], "zoe");
    assert_eq!(r["id"], fresh["id"]);
    // Form body on PUT.
    let r = api
        .form("PUT", "/routes/form-route", "paths[]=/f&strip_path=false")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "form-route");
    assert_eq!(r.body["strip_path"], false);
}

#[tokio::test]
async fn routes_with_references_forms_and_nesting() {
    let api = Api::sqlite().await;
    let svc = api
        .ok(
            "POST",
            "/services",
            json!({"name": "svc", "host": "svc.test"}),
            201,
        )
        .await;
    let other = api
        .ok(
            "POST",
            "/services",
            json!({"name": "other", "host": "o.test"}),
            201,
        )
        .await;
    // By endpoint key, as Kong allows.
    let r1 = api
        .ok(
            "POST",
            "/routes",
            json!({"name": "r1", "paths": ["/a"], "service": {"name": "svc"}}),
            201,
        )
        .await;
    assert_eq!(r1["service"], json!({"id": id(&svc)}));
    // Form: dotted foreign id, repeated keys, map values, typed scalars.
    let body = format!(
        "name=r2&service.id={}&methods=GET&methods=POST&hosts[]=a.test&headers.x-foo=bar&regex_priority=5&strip_path=false&paths=/b",
        id(&svc)
    );
    let r = api.form("POST", "/routes", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["methods"], json!(["GET", "POST"]));
    assert_eq!(r.body["hosts"], json!(["a.test"]));
    assert_eq!(r.body["headers"], json!({"x-foo": ["bar"]}));
    assert_eq!(r.body["regex_priority"], 5);
    assert_eq!(r.body["strip_path"], false);
    assert_eq!(r.body["paths"], json!(["/b"]));
    // Nested collection: the parent comes from the URL.
    let r3 = api
        .ok(
            "POST",
            "/services/other/routes",
            json!({"name": "r3", "paths": ["/c"], "service": {"id": id(&svc)}}),
            201,
        )
        .await;
    assert_eq!(r3["service"]["id"], id(&other).as_str());
    let list = api.get("/services/svc/routes").await;
    let names: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"r1") && names.contains(&"r2"));
    // Items under a parent must belong to it.
    assert_eq!(api.get("/services/svc/routes/r1").await.status, 200);
    let r = api.get("/services/other/routes/r1").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"message": "Not found"}));
    assert_eq!(api.get("/services/nope/routes").await.status, 404);
    let r = api
        .json(
            "PATCH",
            "/services/other/routes/r1",
            json!({"paths": ["/x"]}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(api.delete("/services/other/routes/r1").await.status, 404);
    let r = api
        .ok(
            "PATCH",
            "/services/svc/routes/r1",
            json!({"paths": ["/x"]}),
            200,
        )
        .await;
    assert_eq!(r["paths"], json!(["/x"]));
    // Foreign item: the route's service.
    let r = api.get("/routes/r1/service").await;
    assert_eq!(r.body["id"], id(&svc).as_str());
    let r = api
        .ok("PATCH", "/routes/r1/service", json!({"retries": 2}), 200)
        .await;
    assert_eq!(r["retries"], 2);
    assert_eq!(api.get("/services/svc").await.body["retries"], 2);
    let r = api.delete("/routes/r1/service").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body, json!({"message": "Method not allowed"}));
    // A route without a service: 404, and PUT creates and attaches one.
    api.ok(
        "POST",
        "/routes",
        json!({"name": "lonely", "paths": ["/l"]}),
        201,
    )
    .await;
    assert_eq!(api.get("/routes/lonely/service").await.status, 404);
    assert_eq!(api.delete("/routes/lonely/service").await.status, 404);
    let s = api
        .ok(
            "PUT",
            "/routes/lonely/service",
            json!({"host": "attached.test"}),
            200,
        )
        .await;
    assert_eq!(
        api.get("/routes/lonely").await.body["service"]["id"],
        s["id"]
    );
    // Nested delete.
    assert_eq!(api.delete("/services/svc/routes/r2").await.status, 204);
    assert_eq!(api.get("/routes/r2").await.status, 404);
    // PATCH removes a service association with null.
    let r = api
        .ok("PATCH", "/routes/r3", json!({"service": null}), 200)
        .await;
    assert_eq!(r["service"], Value::Null);
}

#[tokio::test]
async fn every_committed_write_reaches_the_sink() {
    use silverback_store::Change;
    let api = Api::sqlite().await;
    let s = api
        .ok(
            "POST",
            "/services",
            json!({"name": "s", "host": "a.test"}),
            201,
        )
        .await;
    api.ok(
        "POST",
        "/services/s/routes",
        json!({"name": "r", "paths": ["/"]}),
        201,
    )
    .await;
    api.ok("PATCH", "/routes/r", json!({"paths": ["/x"]}), 200)
        .await;
    assert_eq!(api.delete("/routes/r").await.status, 204);
    let changes = api.sink.changes.lock().unwrap();
    let summary: Vec<String> = changes
        .iter()
        .map(|c| match c {
            Change::Upserted(e, row) => format!("upsert {e} {}", row["name"].as_str().unwrap()),
            Change::Deleted(e, _) => format!("delete {e}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "upsert services s",
            "upsert routes r",
            "upsert routes r",
            "delete routes"
        ]
    );
    match &changes[0] {
        Change::Upserted(_, row) => assert_eq!(row["id"], s["id"]),
        other => panic!("{other:?}"),
    }
}
