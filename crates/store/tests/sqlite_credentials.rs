//! Consumer credentials in the SQLite store: an import and export round trip keeps them (hashes
//! included), oauth2 tokens stay out of exports, acls are unique per consumer and group, and
//! deleting a consumer takes its credentials along.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use silverback_model::declarative;
use silverback_store::{Change, Store, StoreError, export};
use support::*;

const DOC: &str = r#"
_format_version: "3.0"
services:
- name: svc
  host: svc.test
consumers:
- username: alice
  keyauth_credentials:
  - key: alice-key
  basicauth_credentials:
  - username: alice
    password: s3cret
  jwt_secrets:
  - key: alice-iss
  hmacauth_credentials:
  - username: alice-hmac
  acls:
  - group: admins
  oauth2_credentials:
  - name: app
    client_id: app-id
"#;

#[tokio::test]
async fn import_export_round_trip_keeps_credentials_not_tokens() {
    let (_dir, db) = fresh("creds-round-trip").await;
    let config = declarative::load_text(DOC, &ctx(), 1_700_000_000).unwrap();
    db.import(&config).await.unwrap();
    let app = &config.oauth2_credentials().unwrap()[0];
    let token = row(
        "oauth2_tokens",
        json!({"credential": {"id": app.id.to_string()}, "expires_in": 7200,
               "service": {"id": config.rows("services")[0]["id"]}}),
    );
    db.insert(schema("oauth2_tokens"), token.clone())
        .await
        .unwrap();
    let loaded = db.load().await.unwrap();
    // Tokens are runtime state: stored and found, but not part of the config.
    assert!(loaded.rows("oauth2_tokens").is_empty());
    let access = token["access_token"].as_str().unwrap();
    assert!(
        db.get_by(schema("oauth2_tokens"), "access_token", access)
            .await
            .unwrap()
            .is_some()
    );
    for entity in [
        "keyauth_credentials",
        "basicauth_credentials",
        "jwt_secrets",
        "hmacauth_credentials",
        "acls",
        "oauth2_credentials",
    ] {
        assert_eq!(loaded.rows(entity), config.rows(entity), "{entity}");
    }
    // The export is a declarative file without tokens that loads back to the same rows.
    let doc = export::declarative(&loaded);
    assert!(doc.get("oauth2_tokens").is_none());
    let yaml = export::to_yaml(&doc).unwrap();
    assert!(yaml.contains("basicauth_credentials:"), "{yaml}");
    assert!(!yaml.contains("s3cret"), "passwords leave only hashed");
    let back = declarative::load_text(&yaml, &ctx(), 1_700_000_001).unwrap();
    assert!(back.basicauth_credentials().unwrap()[0].verify("s3cret"));
    let (_dir2, db2) = fresh("creds-round-trip-2").await;
    db2.import(&back).await.unwrap();
    let again = db2.load().await.unwrap();
    for (entity, rows) in loaded.iter() {
        assert_eq!(again.rows(entity), rows, "{entity}");
    }
}

#[tokio::test]
async fn acl_groups_are_unique_per_consumer_and_cascade() {
    let (_dir, db) = fresh("creds-acls").await;
    let alice = row("consumers", json!({"username": "alice"}));
    let bob = row("consumers", json!({"username": "bob"}));
    db.insert(schema("consumers"), alice.clone()).await.unwrap();
    db.insert(schema("consumers"), bob.clone()).await.unwrap();
    let acl = |c| row("acls", json!({"consumer": fk(c), "group": "admins"}));
    db.insert(schema("acls"), acl(&alice)).await.unwrap();
    db.insert(schema("acls"), acl(&bob)).await.unwrap();
    let e = db.insert(schema("acls"), acl(&alice)).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Unique { entity: "acls", .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "UNIQUE violation detected on '{{consumer={{id=\"{}\"}},group=\"admins\"}}'",
            id_of(&alice)
        )
    );
    let key = row(
        "keyauth_credentials",
        json!({"consumer": fk(&alice), "key": "k1"}),
    );
    db.insert(schema("keyauth_credentials"), key.clone())
        .await
        .unwrap();
    let e = db
        .insert(
            schema("keyauth_credentials"),
            row(
                "keyauth_credentials",
                json!({"consumer": fk(&bob), "key": "k1"}),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "UNIQUE violation detected on '{key=\"k1\"}'");
    let found = db
        .get_by(schema("keyauth_credentials"), "key", "k1")
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(&key));
    let changes = db.delete(schema("consumers"), id_of(&alice)).await.unwrap();
    let mut gone: Vec<&str> = changes
        .iter()
        .map(|c| match c {
            Change::Deleted(e, _) => *e,
            Change::Upserted(e, _) => panic!("unexpected upsert of {e}"),
        })
        .collect();
    gone.sort();
    assert_eq!(gone, ["acls", "consumers", "keyauth_credentials"]);
}
