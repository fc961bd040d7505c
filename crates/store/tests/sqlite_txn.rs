//! SQLite store transactions: `replace_all` is all or nothing, `import` merges, concurrent
//! writers lose nothing, an acknowledged write survives SIGKILL, and `load` of 10,000 routes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use silverback_model::Config;
use silverback_model::schema::Map;
use silverback_store::sqlite::Sqlite;
use silverback_store::{Store, StoreError};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// A config from rows, each entity's rows in id order (the order `load` returns).
fn config(entities: &[(&'static str, Vec<Map>)]) -> Config {
    let mut rows = BTreeMap::new();
    for (e, list) in entities {
        let mut list = list.clone();
        list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        rows.insert(*e, list);
    }
    Config::from_rows(rows)
}

#[tokio::test]
async fn replace_all_is_all_or_nothing() {
    let (_dir, db) = fresh("replace").await;
    let s = service("s");
    let a = config(&[
        ("services", vec![s.clone()]),
        ("routes", vec![route("r", Some(&s))]),
    ]);
    db.replace_all(Arc::new(a.clone())).await.unwrap();
    assert_eq!(db.load().await.unwrap().hash(), a.hash());

    // A dangling reference, late in the config: nothing of it is kept.
    let t = service("t");
    let ghost = service("ghost");
    let bad = config(&[
        ("services", vec![t.clone()]),
        (
            "routes",
            vec![route("r1", Some(&t)), route("r2", Some(&ghost))],
        ),
    ]);
    let err = db.replace_all(Arc::new(bad)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::ForeignKey {
                parent: "services",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(db.load().await.unwrap().hash(), a.hash());
    // Duplicate names likewise.
    let dup = config(&[("services", vec![service("x"), service("x")])]);
    assert!(matches!(
        db.replace_all(Arc::new(dup)).await,
        Err(StoreError::Unique { .. })
    ));
    assert_eq!(db.load().await.unwrap().hash(), a.hash());
    assert!(
        db.get_by(schema("services"), "name", "t")
            .await
            .unwrap()
            .is_none(),
        "no partial write visible"
    );

    let b = config(&[
        ("services", vec![t.clone()]),
        ("routes", vec![route("r1", Some(&t))]),
    ]);
    db.replace_all(Arc::new(b.clone())).await.unwrap();
    let loaded = db.load().await.unwrap();
    assert_eq!(loaded.hash(), b.hash());
    assert!(
        db.get(schema("services"), id_of(&s))
            .await
            .unwrap()
            .is_none()
    );
    db.replace_all(Arc::new(Config::empty())).await.unwrap();
    assert!(db.load().await.unwrap().is_empty());
}

#[tokio::test]
async fn import_merges_and_rolls_back_whole() {
    let (_dir, db) = fresh("import").await;
    let kept = service("kept");
    db.insert(schema("services"), kept.clone()).await.unwrap();
    let mut changed = service("changed");
    db.insert(schema("services"), changed.clone())
        .await
        .unwrap();
    changed.insert("retries".into(), json!(1));
    let new = service("new");
    let changes = db
        .import(&config(&[("services", vec![changed.clone(), new.clone()])]))
        .await
        .unwrap();
    assert_eq!(changes.len(), 2);
    let loaded = db.load().await.unwrap();
    assert_eq!(loaded.rows("services").len(), 3);
    assert_eq!(
        db.get(schema("services"), id_of(&changed)).await.unwrap(),
        Some(changed)
    );
    // A failure anywhere keeps everything as it was.
    let before = db.load().await.unwrap().hash().to_string();
    let clash = service("kept");
    let err = db
        .import(&config(&[("services", vec![service("other"), clash])]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unique { .. }), "{err:?}");
    assert_eq!(db.load().await.unwrap().hash(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_lose_nothing() {
    let (_dir, db) = fresh("concurrent").await;
    let db = Arc::new(db);
    const TASKS: usize = 16;
    const EACH: usize = 20;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let db = db.clone();
        set.spawn(async move {
            let mut won = 0;
            for i in 0..EACH {
                db.insert(schema("services"), service(&format!("t{t}-{i}")))
                    .await
                    .unwrap();
                // Every task races for the same names: exactly one may win each.
                match db
                    .insert(schema("services"), service(&format!("shared-{i}")))
                    .await
                {
                    Ok(_) => won += 1,
                    Err(StoreError::Unique { .. }) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
                // Readers run beside the writers.
                db.list(schema("services"), &Default::default())
                    .await
                    .unwrap();
            }
            won
        });
    }
    let mut won = 0;
    while let Some(r) = set.join_next().await {
        won += r.unwrap();
    }
    assert_eq!(won, EACH);
    let loaded = db.load().await.unwrap();
    assert_eq!(loaded.rows("services").len(), TASKS * EACH + EACH);
}

/// When `SILVERBACK_DURABILITY_DB` is set, this test is the child of
/// `acknowledged_writes_survive_sigkill`: it writes services until killed, printing each id
/// once its insert has returned.
#[tokio::test]
async fn durability_child() {
    let Ok(path) = std::env::var("SILVERBACK_DURABILITY_DB") else {
        return;
    };
    let db = Sqlite::open(&path).await.unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        let s = service(&format!("s{i}"));
        db.insert(schema("services"), s.clone()).await.unwrap();
        writeln!(out, "ACK {}", s["id"].as_str().unwrap()).unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let (dir, db) = fresh("durable").await;
    let path = db.path().to_path_buf();
    db.close().await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "durability_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SILVERBACK_DURABILITY_DB", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    let started = Instant::now();
    while acked.len() < 300 && started.elapsed() < Duration::from_secs(60) {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(id) = line.strip_prefix("ACK ") {
                    acked.push(id.to_string());
                }
            }
            _ => break,
        }
    }
    // SIGKILL mid-stream: the child is likely inside its next write.
    child.kill().unwrap();
    // Acknowledgements already in the pipe count as well.
    for line in lines.map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.to_string());
        }
    }
    child.wait().unwrap();
    assert!(
        acked.len() >= 50,
        "the child wrote only {} rows",
        acked.len()
    );
    let db = Sqlite::open(&path).await.unwrap();
    for id in &acked {
        let id = uuid::Uuid::parse_str(id).unwrap();
        assert!(
            db.get(schema("services"), id).await.unwrap().is_some(),
            "acknowledged row {id} lost"
        );
    }
    let stored = db.load().await.unwrap().rows("services").len();
    assert!(stored >= acked.len());
    assert!(
        stored <= acked.len() + 1,
        "at most the write in flight is extra"
    );
    drop(dir);
}

#[tokio::test]
async fn load_10k_routes() {
    let (_dir, db) = fresh("load10k").await;
    let s = service("s");
    let routes: Vec<Map> = (0..10_000)
        .map(|i| {
            row(
                "routes",
                json!({
                    "name": format!("route-{i}"),
                    "paths": [format!("/r/{i}")],
                    "hosts": ["example.com"],
                    "service": fk(&s),
                    "tags": ["bulk"],
                }),
            )
        })
        .collect();
    let c = config(&[("services", vec![s]), ("routes", routes)]);
    let t = Instant::now();
    db.replace_all(Arc::new(c.clone())).await.unwrap();
    let write = t.elapsed();
    let t = Instant::now();
    let loaded = db.load().await.unwrap();
    let load = t.elapsed();
    eprintln!("10,000 routes: replace_all {write:?}, load {load:?}");
    assert_eq!(loaded.hash(), c.hash());
    assert!(load < Duration::from_secs(20), "load took {load:?}");
}
