//! Error bodies, pagination and tag filters, exactly as Kong answers them, against SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{Api, id};

#[tokio::test]
async fn schema_violations() {
    let api = Api::sqlite().await;
    let r = api.json("POST", "/services", json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({
            "code": 2,
            "name": "schema violation",
            "message": "schema violation (host: required field missing)",
            "fields": {"host": "required field missing"},
        })
    );
    // The url shorthand is expanded in every body form; later fields still apply.
    for (ct, body) in [
        (
            "application/json",
            json!({"url": "http://", "retries": -1}).to_string(),
        ),
        (
            "application/x-www-form-urlencoded",
            "url=http://&retries=-1".to_string(),
        ),
    ] {
        let r = api
            .request("POST", "/services", &[("content-type", ct)], body)
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            json!({
                "code": 2,
                "name": "schema violation",
                "message": "2 schema violations (host: required field missing; retries: value should be between 0 and 32767)",
                "fields": {"host": "required field missing", "retries": "value should be between 0 and 32767"},
            }),
            "{ct}"
        );
    }
    let r = api.form("POST", "/services", "host=a.test&port=abc").await;
    assert_eq!(r.body["fields"], json!({"port": "expected an integer"}));
    let r = api
        .json("POST", "/routes", json!({"paths": ["/a"], "bogus": 1}))
        .await;
    assert_eq!(r.body["fields"], json!({"bogus": "unknown field"}));
    assert_eq!(api.sink.count(), 0, "failed writes report nothing");
}

#[tokio::test]
async fn malformed_and_unsupported_bodies() {
    let api = Api::sqlite().await;
    let r = api
        .request(
            "POST",
            "/services",
            &[("content-type", "application/json")],
            "{\"hello\": \"world\"",
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text, "{\"message\":\"Cannot parse JSON body\"}");
    let r = api
        .request(
            "POST",
            "/services",
            &[("content-type", "text/plain")],
            "host=x",
        )
        .await;
    assert_eq!(r.status, 415);
    // GET ignores bodies.
    let r = api
        .request(
            "GET",
            "/services",
            &[("content-type", "application/json")],
            "nope",
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn store_errors_in_kong_shape() {
    let api = Api::sqlite().await;
    let svc = api
        .ok(
            "POST",
            "/services",
            json!({"name": "svc", "host": "a.test"}),
            201,
        )
        .await;
    // Unique.
    let r = api
        .json(
            "POST",
            "/services",
            json!({"name": "svc", "host": "b.test"}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.body,
        json!({
            "code": 5,
            "name": "unique constraint violation",
            "message": "UNIQUE violation detected on '{name=\"svc\"}'",
            "fields": {"name": "svc"},
        })
    );
    // Primary key.
    let r = api
        .json(
            "POST",
            "/services",
            json!({"id": id(&svc), "host": "b.test"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({
            "code": 3,
            "name": "primary key violation",
            "message": format!("primary key violation on key '{{id=\"{}\"}}'", id(&svc)),
            "fields": {"id": id(&svc)},
        })
    );
    // Foreign key.
    let missing = "5d1a9f3e-2b8c-4f6e-9a7d-1c3b5e7f9a0b";
    let r = api
        .json(
            "POST",
            "/routes",
            json!({"paths": ["/"], "service": {"id": missing}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({
            "code": 4,
            "name": "foreign key violation",
            "message": format!("the foreign key '{{id=\"{missing}\"}}' does not reference an existing 'services' entity."),
            "fields": {"service": {"id": missing}},
        })
    );
    // Unresolved reference by endpoint key.
    let r = api
        .json(
            "POST",
            "/routes",
            json!({"paths": ["/"], "service": {"name": "ghost"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({
            "code": 13,
            "name": "foreign keys unresolved",
            "message": "foreign key unresolved (service.name: the foreign key cannot be resolved with '{name=\"ghost\"}' for an existing 'services' entity)",
            "fields": {"service": {"name": "the foreign key cannot be resolved with '{name=\"ghost\"}' for an existing 'services' entity"}},
        })
    );
    // Referenced by others.
    api.ok("POST", "/services/svc/routes", json!({"paths": ["/"]}), 201)
        .await;
    let r = api.delete("/services/svc").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({
            "code": 4,
            "name": "foreign key violation",
            "message": "an existing 'routes' entity references this 'services' entity",
            "fields": {"@referenced_by": "routes"},
        })
    );
    assert_eq!(api.get("/services/svc").await.status, 200);
    // PATCH of nothing.
    let r = api
        .json("PATCH", "/services/ghost", json!({"retries": 1}))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({
            "code": 6,
            "name": "not found",
            "message": "could not find the entity with '{name=\"ghost\"}'",
            "fields": {"name": "ghost"},
        })
    );
    let r = api
        .json(
            "PATCH",
            &format!("/services/{missing}"),
            json!({"retries": 1}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["code"], 6);
}

#[tokio::test]
async fn pagination_across_three_pages() {
    let api = Api::sqlite().await;
    for i in 0..5 {
        api.ok(
            "POST",
            "/services",
            json!({"name": format!("s{i}"), "host": "a.test", "tags": ["paged", format!("n{}", i % 2)]}),
            201,
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut path = "/services?size=2".to_string();
    let mut pages = 0;
    loop {
        let r = api.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        pages += 1;
        for row in r.body["data"].as_array().unwrap() {
            seen.push(row["name"].as_str().unwrap().to_string());
        }
        match &r.body["next"] {
            Value::String(next) => {
                let offset = r.body["offset"].as_str().unwrap();
                assert!(next.starts_with("/services?offset="), "{next}");
                assert!(next.ends_with("&size=2"), "{next}");
                assert!(!offset.is_empty());
                path = next.clone();
            }
            Value::Null => {
                assert!(r.body.get("offset").is_none(), "no offset on the last page");
                break;
            }
            other => panic!("next: {other}"),
        }
    }
    assert_eq!(pages, 3);
    seen.sort();
    assert_eq!(seen, ["s0", "s1", "s2", "s3", "s4"]);

    // Tags carried in the link.
    let r = api.get("/services?tags=paged&size=1").await;
    assert_eq!(
        r.body["next"],
        format!(
            "/services?offset={}&tags=paged&size=1",
            percent(r.body["offset"].as_str().unwrap())
        )
    );
    // Nested pages link to the nested collection.
    for i in 0..3 {
        api.ok(
            "POST",
            "/services/s0/routes",
            json!({"paths": [format!("/{i}")]}),
            201,
        )
        .await;
    }
    let r = api.get("/services/s0/routes?size=2").await;
    let next = r.body["next"].as_str().unwrap();
    assert!(next.starts_with("/services/s0/routes?offset="), "{next}");
    let r2 = api.get(next).await;
    assert_eq!(r2.body["data"].as_array().unwrap().len(), 1);

    // Bad sizes and offsets.
    let r = api.get("/services?size=x").await;
    assert_eq!(
        r.body,
        json!({"code": 9, "name": "invalid size", "message": "size must be a number"})
    );
    let r = api.get("/services?size=1001").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["message"],
        "size must be an integer between 1 and 1000"
    );
    let r = api.get("/services?offset=x").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"code": 7, "name": "invalid offset", "message": "'x' is not a valid offset: bad base64 encoding"})
    );
    let r = api.get("/services").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 5);
    assert_eq!(r.body["next"], Value::Null);
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn tag_filters() {
    let api = Api::sqlite().await;
    for (name, tags) in [
        ("a", json!(["x", "y"])),
        ("b", json!(["y"])),
        ("c", json!(["z"])),
    ] {
        api.ok(
            "POST",
            "/consumers",
            json!({"username": name, "tags": tags}),
            201,
        )
        .await;
    }
    let names = |v: &Value| {
        let mut n: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["username"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&api.get("/consumers?tags=x,y").await.body), ["a"]);
    assert_eq!(names(&api.get("/consumers?tags=y").await.body), ["a", "b"]);
    assert_eq!(
        names(&api.get("/consumers?tags=x/z").await.body),
        ["a", "c"]
    );
    let r = api.get("/consumers?tags=x,y/z").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({
            "code": 11,
            "name": "invalid options",
            "message": "invalid option (tags: invalid filter syntax)",
            "options": {"tags": "invalid filter syntax"},
        })
    );
    let r = api.get("/consumers?tags=").await;
    assert_eq!(r.body["message"], "invalid option (tags: cannot be null)");
    let r = api.get("/consumers?tags=a,b,c,d,e,f").await;
    assert_eq!(
        r.body["message"],
        "invalid option (tags: cannot query more than 5 tags)"
    );
    // Across entities.
    api.ok(
        "POST",
        "/services",
        json!({"host": "s.test", "tags": ["y"]}),
        201,
    )
    .await;
    let r = api.get("/tags/y").await;
    let mut entities: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["entity_name"].as_str().unwrap())
        .collect();
    entities.sort();
    assert_eq!(entities, ["consumers", "consumers", "services"]);
    assert_eq!(
        api.get("/tags").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}
