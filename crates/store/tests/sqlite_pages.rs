//! SQLite store reads: keyset pages by id, with tag and foreign filters, bad offsets, `/tags`,
//! and `load`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use silverback_model::schema::Map;
use silverback_store::{ListQuery, Store, StoreError, TagFilter};
use support::*;
use uuid::Uuid;

/// Follows offsets to the end; returns every row's id and the size of each page.
async fn all_pages(
    db: &impl Store,
    entity: &str,
    mut query: ListQuery,
) -> (Vec<String>, Vec<usize>) {
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = db.list(schema(entity), &query).await.unwrap();
        sizes.push(page.rows.len());
        ids.extend(
            page.rows
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        match page.offset {
            Some(o) => query.offset = Some(o),
            None => return (ids, sizes),
        }
    }
}

fn sorted_ids<'a>(rows: impl IntoIterator<Item = &'a Map>) -> Vec<String> {
    let mut ids: Vec<String> = rows
        .into_iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn tagged_service(i: usize) -> Map {
    let mut tags = Vec::new();
    if i.is_multiple_of(2) {
        tags.push("even");
    }
    if i.is_multiple_of(3) {
        tags.push("three");
    }
    row(
        "services",
        json!({ "name": format!("s{i}"), "host": "example.com", "tags": tags }),
    )
}

#[tokio::test]
async fn pages_follow_ids_with_and_without_tags() {
    let (_dir, db) = fresh("pages").await;
    let services: Vec<Map> = (0..25).map(tagged_service).collect();
    for s in &services {
        db.insert(schema("services"), s.clone()).await.unwrap();
    }
    let q = |size, tags| ListQuery {
        size,
        tags,
        ..Default::default()
    };
    let (ids, sizes) = all_pages(&db, "services", q(10, None)).await;
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(ids, sorted_ids(&services), "every row once, by id");
    // An exact multiple ends without an empty page.
    let (_, sizes) = all_pages(&db, "services", q(5, None)).await;
    assert_eq!(sizes, vec![5; 5]);

    let has = |s: &Map, t: &str| s["tags"].as_array().unwrap().contains(&json!(t));
    let (ids, sizes) = all_pages(
        &db,
        "services",
        q(3, Some(TagFilter::All(vec!["even".into(), "three".into()]))),
    )
    .await;
    let want = sorted_ids(
        services
            .iter()
            .filter(|s| has(s, "even") && has(s, "three")),
    );
    assert_eq!(ids, want);
    assert_eq!(want.len(), 5);
    assert_eq!(sizes, vec![3, 2]);
    let (ids, _) = all_pages(
        &db,
        "services",
        q(4, Some(TagFilter::Any(vec!["even".into(), "three".into()]))),
    )
    .await;
    let want = sorted_ids(
        services
            .iter()
            .filter(|s| has(s, "even") || has(s, "three")),
    );
    assert_eq!(ids, want);
    assert_eq!(want.len(), 17);
    let (ids, _) = all_pages(
        &db,
        "services",
        q(4, Some(TagFilter::All(vec!["nope".into()]))),
    )
    .await;
    assert!(ids.is_empty());
}

#[tokio::test]
async fn foreign_filter_pages_children_of_one_parent() {
    let (_dir, db) = fresh("foreign").await;
    let a = service("a");
    let b = service("b");
    db.insert(schema("services"), a.clone()).await.unwrap();
    db.insert(schema("services"), b.clone()).await.unwrap();
    let mut of_a = Vec::new();
    for i in 0..7_usize {
        let parent = if i.is_multiple_of(3) { &b } else { &a };
        let mut r = route(&format!("r{i}"), Some(parent));
        r.insert(
            "tags".into(),
            json!([if i.is_multiple_of(2) { "x" } else { "y" }]),
        );
        db.insert(schema("routes"), r.clone()).await.unwrap();
        if i % 3 != 0 {
            of_a.push(r);
        }
    }
    let query = ListQuery {
        size: 2,
        foreign: Some(("service", id_of(&a))),
        ..Default::default()
    };
    let (ids, sizes) = all_pages(&db, "routes", query.clone()).await;
    assert_eq!(ids, sorted_ids(&of_a));
    assert_eq!(sizes, vec![2, 2]);
    let tagged = ListQuery {
        tags: Some(TagFilter::All(vec!["x".into()])),
        ..query
    };
    let (ids, _) = all_pages(&db, "routes", tagged).await;
    let want = sorted_ids(of_a.iter().filter(|r| r["tags"] == json!(["x"])));
    assert_eq!(ids, want);
    // A parent with no children: one empty page.
    let none = ListQuery {
        foreign: Some(("service", Uuid::new_v4())),
        ..Default::default()
    };
    let page = db.list(schema("routes"), &none).await.unwrap();
    assert!(page.rows.is_empty() && page.offset.is_none());
}

#[tokio::test]
async fn bad_offsets_are_refused() {
    let (_dir, db) = fresh("offset").await;
    for bad in ["not base64!", "bm90IGpzb24", "WzEsMl0"] {
        let query = ListQuery {
            offset: Some(bad.into()),
            ..Default::default()
        };
        let err = db.list(schema("services"), &query).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidOffset(o) if o == bad),
            "{err:?}"
        );
        let err = db.list_tags(None, &query).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidOffset(_)), "{err:?}");
    }
    // An offset whose row was deleted still resumes in order.
    let services: Vec<Map> = (0..4).map(|i| service(&format!("s{i}"))).collect();
    for s in &services {
        db.insert(schema("services"), s.clone()).await.unwrap();
    }
    let first = db
        .list(
            schema("services"),
            &ListQuery {
                size: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let last_id = Uuid::parse_str(first.rows[1]["id"].as_str().unwrap()).unwrap();
    db.delete(schema("services"), last_id).await.unwrap();
    let rest = db
        .list(
            schema("services"),
            &ListQuery {
                size: 2,
                offset: first.offset,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(sorted_ids(&rest.rows), sorted_ids(&services)[2..].to_vec());
}

#[tokio::test]
async fn tags_endpoint_rows_and_pages() {
    let (_dir, db) = fresh("tags").await;
    let services: Vec<Map> = (0..7).map(tagged_service).collect();
    for s in &services {
        db.insert(schema("services"), s.clone()).await.unwrap();
    }
    let mut all = Vec::new();
    let mut query = ListQuery {
        size: 2,
        ..Default::default()
    };
    loop {
        let page = db.list_tags(None, &query).await.unwrap();
        all.extend(page.rows);
        match page.offset {
            Some(o) => query.offset = Some(o),
            None => break,
        }
    }
    let mut want: Vec<(String, String)> = Vec::new();
    for s in &services {
        for t in s["tags"].as_array().unwrap() {
            want.push((s["id"].as_str().unwrap().into(), t.as_str().unwrap().into()));
        }
    }
    want.sort();
    let got: Vec<(String, String)> = all
        .iter()
        .map(|r| {
            assert_eq!(r["entity_name"], json!("services"));
            (
                r["entity_id"].as_str().unwrap().into(),
                r["tag"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got, want, "every tag once, by entity id");
    let three = db
        .list_tags(
            Some("three"),
            &ListQuery {
                size: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(three.rows.len(), 1);
    let rest = db
        .list_tags(
            Some("three"),
            &ListQuery {
                size: 10,
                offset: three.offset,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.rows.len(), 2, "{:?}", rest.rows);
    assert!(rest.rows.iter().all(|r| r["tag"] == json!("three")));
    assert!(rest.offset.is_none());
}

#[tokio::test]
async fn load_is_the_whole_config_by_id_and_hash_follows_content() {
    let (_dir, db) = fresh("load").await;
    assert!(db.load().await.unwrap().is_empty());
    let s = service("s");
    let routes: Vec<Map> = (0..5).map(|i| route(&format!("r{i}"), Some(&s))).collect();
    db.insert(schema("services"), s.clone()).await.unwrap();
    // Written in reverse id order; loaded by id.
    let mut by_id = routes.clone();
    by_id.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    for r in by_id.iter().rev() {
        db.insert(schema("routes"), r.clone()).await.unwrap();
    }
    let config = db.load().await.unwrap();
    let maps = |entity| -> Vec<&Map> { config.rows(entity).iter().map(|r| r.map()).collect() };
    assert_eq!(maps("services"), vec![&s]);
    assert_eq!(maps("routes"), by_id.iter().collect::<Vec<_>>());
    let mut rows = std::collections::BTreeMap::new();
    rows.insert("services", vec![s]);
    rows.insert("routes", by_id);
    assert_eq!(
        config.hash(),
        silverback_model::Config::from_rows(rows).hash()
    );
    assert_ne!(config.hash(), silverback_model::EMPTY_CONFIG_HASH);
}
