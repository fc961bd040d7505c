//! Consumer credentials through the Admin API on a real SQLite store: every endpoint shape Kong
//! generates for them (under a consumer, flat, by id or endpoint key), generated keys, hashed
//! passwords and client secrets, acls by group, oauth2 tokens, cascades and conflicts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use silverback_model::entities::credentials::{verify_client_secret, verify_password};
use silverback_store::Change;
use support::{Api, id};
use uuid::Uuid;

const RSA_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC5Lt9Nmx+ciVq1dLGTruGccAqh
aAp5znvAmnb0csCHsDsejJbL6b9GzN/FN6ZrMt83SDd+C1+Au4UyrRCiqvQQv1dO
XbqwG6xanztgiocU2WvSRPH2qMxYbuL/AOherCed8jZvkWvGvFrzkITfjLz2ahda
hIBCBsT5zlOZd7qvoQIDAQAB
-----END PUBLIC KEY-----
";

async fn consumer(api: &Api, name: &str) -> String {
    id(&api
        .ok("POST", "/consumers", json!({"username": name}), 201)
        .await)
}

fn data_len(v: &Value) -> usize {
    v["data"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn key_auth_every_shape() {
    let api = Api::sqlite().await;
    let bob = consumer(&api, "bob").await;
    let alice = consumer(&api, "alice").await;
    // No body: a key is generated; two differ.
    let r = api.form("POST", "/consumers/bob/key-auth", "").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let k1 = r.body["key"].as_str().unwrap().to_string();
    assert!(k1.len() >= 32, "{k1}");
    assert_eq!(r.body["consumer"], json!({"id": bob}));
    assert_eq!(r.body["ttl"], Value::Null);
    let r = api
        .request(
            "POST",
            "/consumers/bob/key-auth",
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(r.body["key"], k1.as_str());
    // Given keys, form and JSON; flat collection with the consumer by id or by username.
    let r = api
        .form("POST", "/consumers/bob/key-auth", "key=bob-key&ttl=3600")
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["ttl"], 3600);
    api.ok(
        "POST",
        "/key-auths",
        json!({"key": "alice-key", "consumer": {"id": alice}}),
        201,
    )
    .await;
    let by_name = api
        .ok(
            "POST",
            "/key-auths",
            json!({"key": "alice-2", "consumer": {"username": "alice"}}),
            201,
        )
        .await;
    assert_eq!(by_name["consumer"], json!({"id": alice}));
    assert_eq!(data_len(&api.get("/key-auths").await.body), 5);
    assert_eq!(data_len(&api.get("/consumers/bob/key-auth").await.body), 3);
    assert_eq!(
        data_len(&api.get("/consumers/alice/key-auth").await.body),
        2
    );
    // By endpoint key or id, flat and nested; nested only under its own consumer.
    let got = api.get("/key-auths/bob-key").await;
    assert_eq!(got.status, 200);
    let kid = id(&got.body);
    assert_eq!(api.get(&format!("/key-auths/{kid}")).await.body, got.body);
    assert_eq!(
        api.get("/consumers/bob/key-auth/bob-key").await.body,
        got.body
    );
    assert_eq!(
        api.get(&format!("/consumers/{bob}/key-auth/{kid}"))
            .await
            .status,
        200
    );
    assert_eq!(
        api.get("/consumers/alice/key-auth/bob-key").await.status,
        404
    );
    assert_eq!(api.get("/key-auths/nope").await.status, 404);
    assert_eq!(
        api.get("/key-auths/bob-key/consumer").await.body["username"],
        "bob"
    );
    // Conflicts.
    let r = api
        .json(
            "POST",
            "/consumers/alice/key-auth",
            json!({"key": "bob-key"}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], 5);
    assert_eq!(
        r.body["message"],
        "UNIQUE violation detected on '{key=\"bob-key\"}'"
    );
    // Unknown consumer.
    assert_eq!(
        api.json("POST", "/consumers/carol/key-auth", json!({}))
            .await
            .status,
        404
    );
    let r = api
        .json(
            "POST",
            "/key-auths",
            json!({"consumer": {"id": Uuid::new_v4().to_string()}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = api.json("POST", "/key-auths", json!({})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["fields"]["consumer"], "required field missing");
    // PATCH and PUT.
    let r = api
        .ok(
            "PATCH",
            "/consumers/bob/key-auth/bob-key",
            json!({"tags": ["t"]}),
            200,
        )
        .await;
    assert_eq!(r["tags"], json!(["t"]));
    assert_eq!(r["key"], "bob-key");
    assert_eq!(
        api.json(
            "PATCH",
            "/consumers/alice/key-auth/bob-key",
            json!({"tags": ["x"]})
        )
        .await
        .status,
        404
    );
    let r = api
        .ok("PUT", "/consumers/bob/key-auth/put-key", json!({}), 200)
        .await;
    assert_eq!(r["key"], "put-key");
    assert_eq!(r["consumer"], json!({"id": bob}));
    let new_id = Uuid::new_v4().to_string();
    let r = api
        .ok(
            "PUT",
            &format!("/consumers/{bob}/key-auth/{new_id}"),
            json!({"key": "decK-key"}),
            200,
        )
        .await;
    assert_eq!(r["id"], new_id.as_str());
    let r = api
        .ok(
            "PUT",
            &format!("/key-auths/{new_id}"),
            json!({"key": "decK-key-2", "consumer": {"id": bob}}),
            200,
        )
        .await;
    assert_eq!(r["key"], "decK-key-2");
    // DELETE: 404 under another consumer, 204 under its own.
    assert_eq!(
        api.delete("/consumers/alice/key-auth/bob-key").await.status,
        404
    );
    assert_eq!(
        api.delete("/consumers/bob/key-auth/bob-key").await.status,
        204
    );
    assert_eq!(api.get("/key-auths/bob-key").await.status, 404);
    assert_eq!(api.delete("/key-auths/put-key").await.status, 204);
    // Deleting the consumer takes its credentials along, and the gateway hears of each.
    let before = api.sink.count();
    assert_eq!(api.delete("/consumers/bob").await.status, 204);
    assert_eq!(data_len(&api.get("/key-auths").await.body), 2);
    let changes = api.sink.changes.lock().unwrap();
    let deleted = changes[before..]
        .iter()
        .filter(|c| matches!(c, Change::Deleted("keyauth_credentials", _)))
        .count();
    assert_eq!(deleted, 3);
}

#[tokio::test]
async fn basic_auth_passwords_are_hashed() {
    let api = Api::sqlite().await;
    let bob = consumer(&api, "bob").await;
    let bob_id = Uuid::parse_str(&bob).unwrap();
    let r = api
        .form(
            "POST",
            "/consumers/bob/basic-auth",
            "username=bob&password=s3cret",
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let stored = r.body["password"].as_str().unwrap().to_string();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!r.text.contains("s3cret"));
    assert!(verify_password(&stored, "s3cret", bob_id));
    assert!(!verify_password(&stored, "wrong", bob_id));
    let got = api.get("/basic-auths/bob").await;
    assert_eq!(got.body["password"], stored.as_str());
    assert_eq!(
        api.get("/consumers/bob/basic-auth/bob").await.body["password"],
        stored.as_str()
    );
    // A PATCH without the password keeps the stored hash; with one, hashes the new one.
    let r = api
        .ok("PATCH", "/basic-auths/bob", json!({"tags": ["a"]}), 200)
        .await;
    assert_eq!(r["password"], stored.as_str());
    let r = api
        .ok(
            "PATCH",
            "/consumers/bob/basic-auth/bob",
            json!({"password": "n3w"}),
            200,
        )
        .await;
    let new_hash = r["password"].as_str().unwrap();
    assert_ne!(new_hash, stored);
    assert!(verify_password(new_hash, "n3w", bob_id));
    // Errors.
    let r = api
        .json(
            "POST",
            "/consumers/bob/basic-auth",
            json!({"username": "x"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["fields"]["password"], "required field missing");
    let r = api
        .json(
            "POST",
            "/basic-auths",
            json!({"username": "bob", "password": "p", "consumer": {"id": bob}}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
}

#[tokio::test]
async fn jwt_hmac_and_acls() {
    let api = Api::sqlite().await;
    let bob = consumer(&api, "bob").await;
    consumer(&api, "alice").await;
    let j = api.ok("POST", "/consumers/bob/jwt", json!({}), 201).await;
    assert_eq!(j["algorithm"], "HS256");
    assert_eq!(j["key"].as_str().unwrap().len(), 32);
    assert_eq!(j["secret"].as_str().unwrap().len(), 32);
    let key = j["key"].as_str().unwrap();
    assert_eq!(api.get(&format!("/jwts/{key}")).await.status, 200);
    let r = api
        .json("POST", "/consumers/bob/jwt", json!({"algorithm": "RS256"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["fields"]["rsa_public_key"], "required field missing");
    let r = api
        .json(
            "POST",
            "/consumers/bob/jwt",
            json!({"algorithm": "RS256", "rsa_public_key": "garbage"}),
        )
        .await;
    assert_eq!(r.body["fields"]["rsa_public_key"], "invalid key");
    api.ok(
        "POST",
        "/consumers/bob/jwt",
        json!({"algorithm": "RS256", "rsa_public_key": RSA_PUBLIC, "key": "iss-1"}),
        201,
    )
    .await;
    assert_eq!(data_len(&api.get("/jwts").await.body), 2);

    let h = api
        .ok(
            "POST",
            "/consumers/bob/hmac-auth",
            json!({"username": "bob-hmac"}),
            201,
        )
        .await;
    assert_eq!(h["secret"].as_str().unwrap().len(), 32);
    assert_eq!(api.get("/hmac-auths/bob-hmac").await.body["id"], h["id"]);
    assert_eq!(
        api.get("/consumers/bob/hmac-auth/bob-hmac").await.status,
        200
    );

    // acls: unique per consumer and group, addressed by group under the consumer.
    let a = api
        .ok(
            "POST",
            "/consumers/bob/acls",
            json!({"group": "admins"}),
            201,
        )
        .await;
    api.ok(
        "POST",
        "/consumers/alice/acls",
        json!({"group": "admins"}),
        201,
    )
    .await;
    let r = api
        .json("POST", "/consumers/bob/acls", json!({"group": "admins"}))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        r.body["message"],
        format!("UNIQUE violation detected on '{{consumer={{id=\"{bob}\"}},group=\"admins\"}}'")
    );
    assert_eq!(
        api.get("/consumers/bob/acls/admins").await.body["id"],
        a["id"]
    );
    assert_eq!(api.get("/consumers/bob/acls/users").await.status, 404);
    let u = api
        .ok("PUT", "/consumers/bob/acls/users", json!({}), 200)
        .await;
    assert_eq!(u["group"], "users");
    let again = api
        .ok(
            "PUT",
            "/consumers/bob/acls/users",
            json!({"tags": ["t"]}),
            200,
        )
        .await;
    assert_eq!(again["id"], u["id"]);
    assert_eq!(again["tags"], json!(["t"]));
    assert_eq!(data_len(&api.get("/acls").await.body), 3);
    assert_eq!(data_len(&api.get("/consumers/bob/acls").await.body), 2);
    assert_eq!(api.get(&format!("/acls/{}", id(&a))).await.status, 200);
    assert_eq!(api.delete("/consumers/alice/acls/users").await.status, 404);
    assert_eq!(api.delete("/consumers/bob/acls/admins").await.status, 204);
    assert_eq!(data_len(&api.get("/consumers/bob/acls").await.body), 1);
}

#[tokio::test]
async fn oauth2_credentials_and_tokens() {
    let api = Api::sqlite().await;
    consumer(&api, "bob").await;
    let app = api
        .ok(
            "POST",
            "/consumers/bob/oauth2",
            json!({"name": "app", "redirect_uris": ["https://app.test/cb"]}),
            201,
        )
        .await;
    assert_eq!(app["client_id"].as_str().unwrap().len(), 32);
    assert_eq!(app["client_secret"].as_str().unwrap().len(), 32);
    assert_eq!(app["hash_secret"], false);
    assert_eq!(app["client_type"], "confidential");
    let client_id = app["client_id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/oauth2/{client_id}")).await.body["id"],
        app["id"]
    );
    let hashed = api
        .ok(
            "POST",
            "/consumers/bob/oauth2",
            json!({"name": "h", "client_secret": "test", "hash_secret": true}),
            201,
        )
        .await;
    let stored = hashed["client_secret"].as_str().unwrap();
    assert!(verify_client_secret(stored, true, "test"));
    assert!(!verify_client_secret(stored, true, "invalid"));
    // Kong's rules for updates and redirect URIs.
    let r = api
        .json(
            "PATCH",
            &format!("/consumers/bob/oauth2/{}", id(&app)),
            json!({"client_secret": "test"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body["fields"],
        json!({"@entity": ["all or none of these fields must be set: 'hash_secret', 'client_secret'"]})
    );
    let r = api
        .json(
            "PATCH",
            &format!("/consumers/bob/oauth2/{}", id(&app)),
            json!({"redirect_uris": ["not-valid"]}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body["fields"],
        json!({"redirect_uris": ["cannot parse 'not-valid'"]})
    );
    let r = api
        .ok(
            "PATCH",
            &format!("/oauth2/{client_id}"),
            json!({"client_secret": "s2", "hash_secret": true}),
            200,
        )
        .await;
    assert!(verify_client_secret(
        r["client_secret"].as_str().unwrap(),
        true,
        "s2"
    ));

    // Tokens: Kong's generated endpoints.
    let t = api
        .ok(
            "POST",
            "/oauth2_tokens",
            json!({"credential": {"id": id(&app)}, "expires_in": 7200, "scope": "email"}),
            201,
        )
        .await;
    assert_eq!(t["token_type"], "bearer");
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(access.len(), 32);
    assert_eq!(
        api.get(&format!("/oauth2_tokens/{access}")).await.body["id"],
        t["id"]
    );
    assert_eq!(
        data_len(
            &api.get(&format!("/oauth2/{client_id}/oauth2_tokens"))
                .await
                .body
        ),
        1
    );
    assert_eq!(
        api.get(&format!("/oauth2_tokens/{access}/credential"))
            .await
            .body["name"],
        "app"
    );
    // Authorization codes have no endpoints in Kong.
    assert_eq!(api.get("/oauth2_authorization_codes").await.status, 404);
    // The consumer's deletion reaches its tokens through the credential.
    assert_eq!(api.delete("/consumers/bob").await.status, 204);
    assert_eq!(data_len(&api.get("/oauth2_tokens").await.body), 0);
    assert_eq!(data_len(&api.get("/oauth2").await.body), 0);
}

#[tokio::test]
async fn schemas_and_endpoints() {
    let api = Api::sqlite().await;
    for entity in [
        "keyauth_credentials",
        "basicauth_credentials",
        "jwt_secrets",
        "hmacauth_credentials",
        "acls",
        "oauth2_credentials",
        "oauth2_tokens",
        "oauth2_authorization_codes",
    ] {
        let r = api.get(&format!("/schemas/{entity}")).await;
        assert_eq!(r.status, 200, "{entity}: {}", r.text);
        assert!(r.body["fields"].is_array());
    }
    let r = api.get("/schemas/jwt_secrets").await;
    assert_eq!(
        r.body["entity_checks"],
        json!([{"conditional": {"if_field": "algorithm", "then_field": "rsa_public_key"}}])
    );
    let r = api
        .json(
            "POST",
            "/schemas/basicauth_credentials/validate",
            json!({"username": "u", "password": "p", "consumer": {"id": Uuid::new_v4().to_string()}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let endpoints = api.get("/endpoints").await.body;
    let list: Vec<&str> = endpoints["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for e in [
        "/key-auths",
        "/key-auths/{keyauth_credentials}",
        "/consumers/{consumers}/key-auth",
        "/consumers/{consumers}/key-auth/{keyauth_credentials}",
        "/consumers/{consumers}/basic-auth",
        "/consumers/{consumers}/jwt",
        "/consumers/{consumers}/hmac-auth",
        "/consumers/{consumers}/acls/{acls}",
        "/consumers/{consumers}/oauth2",
        "/oauth2_tokens/{oauth2_tokens}",
    ] {
        assert!(list.contains(&e), "{e} missing from {list:?}");
    }
}

#[tokio::test]
async fn dbless_serves_declarative_credentials_read_only() {
    let api = Api::dbless(
        r#"
_format_version: "3.0"
consumers:
- username: bob
  keyauth_credentials:
  - key: bob-key
  basicauth_credentials:
  - username: bob
    password: pw
"#,
    );
    let r = api.get("/consumers/bob/key-auth/bob-key").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = api.get("/basic-auths/bob").await.body;
    assert!(b["password"].as_str().unwrap().starts_with("$argon2id$"));
    let r = api.json("POST", "/consumers/bob/key-auth", json!({})).await;
    assert_eq!(r.status, 405, "{}", r.text);
}
