//! SQLite store writes: every violation as the Kong error it stands for, restrict and cascade on
//! delete, upserts, and rows read back exactly as written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use silverback_store::{Change, Store, StoreError};
use support::*;

fn deleted(changes: &[Change]) -> Vec<(&'static str, uuid::Uuid)> {
    let mut out: Vec<_> = changes
        .iter()
        .map(|c| match c {
            Change::Deleted(e, id) => (*e, *id),
            other => panic!("unexpected change {other:?}"),
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn rows_come_back_exactly_as_written() {
    let (_dir, db) = fresh("exact").await;
    let s = service("svc");
    let changes = db.insert(schema("services"), s.clone()).await.unwrap();
    assert!(matches!(&changes[..], [Change::Upserted("services", r)] if *r == s));
    let got = db
        .get(schema("services"), id_of(&s))
        .await
        .unwrap()
        .unwrap();
    // Same fields, same values, same order.
    assert_eq!(
        serde_json::to_string(&got).unwrap(),
        serde_json::to_string(&s).unwrap()
    );
    let by_name = db
        .get_by(schema("services"), "name", "svc")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name, s);
    assert!(
        db.get_by(schema("services"), "name", "nope")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.get(schema("services"), uuid::Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );
    // A field without a column is found too (targets' address).
    let u = row("upstreams", json!({ "name": "u" }));
    db.insert(schema("upstreams"), u.clone()).await.unwrap();
    let t = row(
        "targets",
        json!({ "target": "10.0.0.1:80", "upstream": fk(&u) }),
    );
    db.insert(schema("targets"), t.clone()).await.unwrap();
    let got = db
        .get_by(schema("targets"), "target", "10.0.0.1:80")
        .await
        .unwrap();
    assert_eq!(got, Some(t));
}

#[tokio::test]
async fn primary_key_violation() {
    let (_dir, db) = fresh("pk").await;
    let s = service("a");
    db.insert(schema("services"), s.clone()).await.unwrap();
    let mut again = service("b");
    again.insert("id".into(), s["id"].clone());
    let err = db.insert(schema("services"), again).await.unwrap_err();
    assert!(
        matches!(err, StoreError::PrimaryKey { id } if id == id_of(&s)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("primary key violation on key '{{id=\"{}\"}}'", id_of(&s))
    );
}

#[tokio::test]
async fn unique_fields_are_checked_against_other_rows() {
    let (_dir, db) = fresh("unique").await;
    let a = service("a");
    db.insert(schema("services"), a.clone()).await.unwrap();
    let err = db
        .insert(schema("services"), service("a"))
        .await
        .unwrap_err();
    match &err {
        StoreError::Unique { entity, fields } => {
            assert_eq!(*entity, "services");
            assert_eq!(fields, &vec![("name".to_string(), json!("a"))]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "UNIQUE violation detected on '{name=\"a\"}'"
    );
    // Upserting a row over itself keeps its own name.
    let mut a2 = a.clone();
    a2.insert("retries".into(), json!(2));
    db.upsert(schema("services"), a2.clone()).await.unwrap();
    assert_eq!(
        db.get(schema("services"), id_of(&a)).await.unwrap(),
        Some(a2)
    );
    // Another row may not take it.
    let mut b = service("b");
    db.insert(schema("services"), b.clone()).await.unwrap();
    b.insert("name".into(), json!("a"));
    assert!(matches!(
        db.upsert(schema("services"), b).await,
        Err(StoreError::Unique { .. })
    ));
    // Second unique field of consumers; nulls never conflict.
    let c1 = row("consumers", json!({ "username": "u1", "custom_id": "c" }));
    let c2 = row("consumers", json!({ "username": "u2", "custom_id": "c" }));
    let c3 = row("consumers", json!({ "custom_id": "d" }));
    let c4 = row("consumers", json!({ "custom_id": "e" }));
    db.insert(schema("consumers"), c1).await.unwrap();
    let err = db.insert(schema("consumers"), c2).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "UNIQUE violation detected on '{custom_id=\"c\"}'"
    );
    db.insert(schema("consumers"), c3).await.unwrap();
    db.insert(schema("consumers"), c4).await.unwrap();
}

#[tokio::test]
async fn plugin_and_target_cache_keys() {
    let (_dir, db) = fresh("cachekey").await;
    let s = service("s");
    let r = route("r", Some(&s));
    db.insert(schema("services"), s.clone()).await.unwrap();
    db.insert(schema("routes"), r.clone()).await.unwrap();
    let p = |extra: Value| {
        let mut v = json!({ "name": "test-plugin" });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        row("plugins", v)
    };
    db.insert(schema("plugins"), p(json!({ "service": fk(&s) })))
        .await
        .unwrap();
    let err = db
        .insert(schema("plugins"), p(json!({ "service": fk(&s) })))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "UNIQUE violation detected on '{{consumer=null,name=\"test-plugin\",route=null,service={{id=\"{}\"}}}}'",
            id_of(&s)
        )
    );
    // Another scope, or another plugin on the same scope, is fine.
    db.insert(schema("plugins"), p(json!({ "route": fk(&r) })))
        .await
        .unwrap();
    db.insert(
        schema("plugins"),
        p(json!({ "route": fk(&r), "service": fk(&s) })),
    )
    .await
    .unwrap();
    db.insert(
        schema("plugins"),
        row(
            "plugins",
            json!({ "name": "other-plugin", "service": fk(&s) }),
        ),
    )
    .await
    .unwrap();
    // Global plugins: a missing scope counts as one value.
    db.insert(schema("plugins"), p(json!({}))).await.unwrap();
    assert!(matches!(
        db.insert(schema("plugins"), p(json!({}))).await,
        Err(StoreError::Unique {
            entity: "plugins",
            ..
        })
    ));

    let u1 = row("upstreams", json!({ "name": "u1" }));
    let u2 = row("upstreams", json!({ "name": "u2" }));
    db.insert(schema("upstreams"), u1.clone()).await.unwrap();
    db.insert(schema("upstreams"), u2.clone()).await.unwrap();
    let t = |u: &silverback_model::schema::Map| {
        row(
            "targets",
            json!({ "target": "10.0.0.1", "upstream": fk(u) }),
        )
    };
    db.insert(schema("targets"), t(&u1)).await.unwrap();
    db.insert(schema("targets"), t(&u2)).await.unwrap();
    let err = db.insert(schema("targets"), t(&u1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "UNIQUE violation detected on '{{target=\"10.0.0.1:8000\",upstream={{id=\"{}\"}}}}'",
            id_of(&u1)
        )
    );
}

#[tokio::test]
async fn references_must_exist() {
    let (_dir, db) = fresh("fk").await;
    let ghost = service("ghost");
    let r = route("r", Some(&ghost));
    let err = db.insert(schema("routes"), r.clone()).await.unwrap_err();
    match &err {
        StoreError::ForeignKey { field, key, parent } => {
            assert_eq!((*field, *parent), ("service", "services"));
            assert_eq!(key, &fk(&ghost));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "the foreign key '{{id=\"{}\"}}' does not reference an existing 'services' entity.",
            id_of(&ghost)
        )
    );
    assert!(db.get(schema("routes"), id_of(&r)).await.unwrap().is_none());
    // Upserts are checked too; a route without a service is fine.
    assert!(matches!(
        db.upsert(schema("routes"), r).await,
        Err(StoreError::ForeignKey { .. })
    ));
    db.insert(schema("routes"), route("lonely", None))
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_refuses_restricted_references_and_changes_nothing() {
    let (_dir, db) = fresh("restrict").await;
    let s = service("s");
    let r = route("r", Some(&s));
    let p = row(
        "plugins",
        json!({ "name": "test-plugin", "service": fk(&s) }),
    );
    db.insert(schema("services"), s.clone()).await.unwrap();
    db.insert(schema("routes"), r.clone()).await.unwrap();
    db.insert(schema("plugins"), p.clone()).await.unwrap();
    let err = db.delete(schema("services"), id_of(&s)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Referenced {
                parent: "services",
                child: "routes"
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "an existing 'routes' entity references this 'services' entity"
    );
    assert!(
        db.get(schema("services"), id_of(&s))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        db.get(schema("plugins"), id_of(&p))
            .await
            .unwrap()
            .is_some()
    );
    // Certificates referenced by SNIs are restricted as well.
    let cert = row("certificates", support_cert());
    let sni = row(
        "snis",
        json!({ "name": "a.example.com", "certificate": fk(&cert) }),
    );
    db.insert(schema("certificates"), cert.clone())
        .await
        .unwrap();
    db.insert(schema("snis"), sni).await.unwrap();
    assert!(matches!(
        db.delete(schema("certificates"), id_of(&cert)).await,
        Err(StoreError::Referenced {
            parent: "certificates",
            child: "snis"
        })
    ));
}

fn support_cert() -> Value {
    json!({
        "cert": include_str!("data/cert.pem"),
        "key": include_str!("data/key.pem"),
    })
}

#[tokio::test]
async fn delete_cascades_and_reports_every_row() {
    let (_dir, db) = fresh("cascade").await;
    let s = service("s");
    let r = route("r", Some(&s));
    let c = row("consumers", json!({ "username": "alice", "tags": ["t"] }));
    let on_route = row("plugins", json!({ "name": "test-plugin", "route": fk(&r) }));
    let on_both = row(
        "plugins",
        json!({ "name": "other-plugin", "route": fk(&r), "consumer": fk(&c), "tags": ["t"] }),
    );
    let on_consumer = row(
        "plugins",
        json!({ "name": "test-plugin", "consumer": fk(&c) }),
    );
    for (e, v) in [
        ("services", &s),
        ("routes", &r),
        ("consumers", &c),
        ("plugins", &on_route),
        ("plugins", &on_both),
        ("plugins", &on_consumer),
    ] {
        db.insert(schema(e), v.clone()).await.unwrap();
    }
    let changes = db.delete(schema("routes"), id_of(&r)).await.unwrap();
    // The deleted row comes first, then what went with it.
    assert!(matches!(changes[0], Change::Deleted("routes", id) if id == id_of(&r)));
    let mut want = vec![
        ("routes", id_of(&r)),
        ("plugins", id_of(&on_route)),
        ("plugins", id_of(&on_both)),
    ];
    want.sort();
    assert_eq!(deleted(&changes), want);
    for p in [&on_route, &on_both] {
        assert!(db.get(schema("plugins"), id_of(p)).await.unwrap().is_none());
    }
    // The service lost its last route: now it can go.
    assert_eq!(
        deleted(&db.delete(schema("services"), id_of(&s)).await.unwrap()),
        vec![("services", id_of(&s))]
    );
    // Tags of deleted rows are gone with them.
    let tagged = db.list_tags(Some("t"), &Default::default()).await.unwrap();
    assert_eq!(tagged.rows.len(), 1, "{:?}", tagged.rows);
    let mut want = vec![("consumers", id_of(&c)), ("plugins", id_of(&on_consumer))];
    want.sort();
    assert_eq!(
        deleted(&db.delete(schema("consumers"), id_of(&c)).await.unwrap()),
        want
    );
    // Upstreams take their targets along.
    let u = row("upstreams", json!({ "name": "u" }));
    db.insert(schema("upstreams"), u.clone()).await.unwrap();
    let mut want = vec![("upstreams", id_of(&u))];
    for i in 1..=3 {
        let t = row(
            "targets",
            json!({ "target": format!("10.0.0.{i}"), "upstream": fk(&u) }),
        );
        want.push(("targets", id_of(&t)));
        db.insert(schema("targets"), t).await.unwrap();
    }
    want.sort();
    assert_eq!(
        deleted(&db.delete(schema("upstreams"), id_of(&u)).await.unwrap()),
        want
    );
    assert!(db.load().await.unwrap().is_empty());
    // Deleting what is not there is no error and no change.
    assert!(
        db.delete(schema("upstreams"), id_of(&u))
            .await
            .unwrap()
            .is_empty()
    );
}
