//! The SQLite store from the command line: `migrations bootstrap|up|finish|list|status|reset`,
//! `config db_import|db_export`, and `start` with `database = sqlite`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use silverback_store::Store;
use silverback_store::sqlite::Sqlite;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings for a CLI run against the SQLite store under `dir`.
fn sqlite_env(dir: &TempDir) -> Vec<(String, String)> {
    let mut env = base_env(dir);
    env.push(("SILVERBACK_DATABASE".into(), "sqlite".into()));
    env
}

fn cli(env: &[(String, String)], args: &[&str]) -> (i32, String) {
    run_cli(args, env)
}

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("prefix/silverback.db")
}

/// The configuration hash of the store at `path`, read the way the gateway reads it.
async fn stored_hash(path: &Path) -> String {
    let db = Sqlite::open(path).await.unwrap();
    let hash = db.load().await.unwrap().hash().to_string();
    db.close().await;
    hash
}

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const RICH: &str = r#"
_format_version: "3.0"
services:
- name: svc-a
  url: http://a.internal:8080/base
  tags: [team-a, prod]
  routes:
  - name: route-a
    paths: [/a]
    methods: [GET, POST]
  - name: route-a2
    hosts: [a.example.com]
- name: svc-b
  host: b.internal
routes:
- name: route-b
  paths: ["~/b/(?<id>\\d+)$"]
  service: svc-b
  tags: [prod]
upstreams:
- name: b.internal
  targets:
  - target: 10.0.0.1:8080
    weight: 10
  - target: 10.0.0.2
consumers:
- username: alice
  custom_id: alice-1
  tags: [people]
- custom_id: bob-2
"#;

#[test]
fn migrations_bootstrap_status_up_reset() {
    let dir = TempDir::new("mig");
    let env = sqlite_env(&dir);
    let (code, out) = cli(&env, &["migrations", "status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("needs bootstrapping"), "{out}");
    let (code, out) = cli(&env, &["migrations", "up"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Cannot run migrations"), "{out}");
    let (code, out) = cli(&env, &["migrations", "bootstrap"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("001_core") && out.contains("Database is up-to-date"),
        "{out}"
    );
    assert!(db_path(&dir).exists());
    for (args, expect) in [
        (&["migrations", "status"][..], "Database is up-to-date"),
        (&["migrations", "list"][..], "core: 001_core"),
        (
            &["migrations", "bootstrap"][..],
            "Database already bootstrapped",
        ),
        (&["migrations", "up"][..], "Database is already up-to-date"),
        (
            &["migrations", "finish"][..],
            "No pending migrations to finish",
        ),
    ] {
        let (code, out) = cli(&env, args);
        assert_eq!(code, 0, "{args:?}: {out}");
        assert!(out.contains(expect), "{args:?}: {out}");
    }
    // Without a terminal, reset wants --yes; nothing is dropped.
    let (code, out) = cli(&env, &["migrations", "reset"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--yes"), "{out}");
    assert_eq!(cli(&env, &["migrations", "status"]).0, 0);
    let (code, out) = cli(&env, &["migrations", "reset", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Database successfully reset"), "{out}");
    assert_eq!(cli(&env, &["migrations", "status"]).0, 3);
    let (code, out) = cli(&env, &["migrations", "reset", "-y"]);
    assert_eq!((code, out.contains("nothing to reset")), (0, true), "{out}");
    // `bootstrap --force` starts over on a bootstrapped database.
    assert_eq!(cli(&env, &["migrations", "bootstrap", "-q"]).0, 0);
    let (code, out) = cli(&env, &["migrations", "bootstrap", "--force"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Resetting database") && out.contains("001_core"),
        "{out}"
    );

    // sqlite_path moves the file; a conf file works as with Kong (`-c`).
    let conf = write(
        &dir,
        "custom.conf",
        "database = sqlite\nsqlite_path = data/custom.db\n",
    );
    let mut env_off = base_env(&dir);
    env_off.retain(|(k, _)| k != "SILVERBACK_DATABASE");
    let (code, out) = cli(&env_off, &["migrations", "bootstrap", "-c", &conf]);
    assert_eq!(code, 0, "{out}");
    assert!(dir.path().join("prefix/data/custom.db").exists(), "{out}");
    // DB-less has no schema to manage.
    let (code, out) = cli(&base_env(&dir), &["migrations", "status"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("only works with a database"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_import_of_a_bad_file_changes_nothing() {
    let dir = TempDir::new("import");
    let env = sqlite_env(&dir);
    let good = write(&dir, "good.yml", RICH);
    // Not bootstrapped: refused before anything is written.
    let (code, out) = cli(&env, &["config", "db_import", &good]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("migrations bootstrap"), "{out}");
    assert_eq!(cli(&env, &["migrations", "bootstrap"]).0, 0);
    let (code, out) = cli(&env, &["config", "db_import", &good]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("import successful (10 entities)"), "{out}");
    let before = stored_hash(&db_path(&dir)).await;
    assert_ne!(before, silverback_model::EMPTY_CONFIG_HASH);

    // Invalid: every error is reported, each at its place; nothing is imported.
    let bad = write(
        &dir,
        "bad.yml",
        "_format_version: \"3.0\"\nservices:\n- name: new-svc\n  host: new.internal\n  routes:\n  - name: r-bad\n    paths: [nope]\n- name: svc-c\n  port: 99999\n  host: c.internal\n",
    );
    let (code, out) = cli(&env, &["config", "db_import", &bad]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is not a valid declarative config"), "{out}");
    assert!(
        out.contains("services[0].routes[0]") && out.contains("paths"),
        "{out}"
    );
    assert!(out.contains("services[1]") && out.contains("port"), "{out}");
    assert_eq!(stored_hash(&db_path(&dir)).await, before);

    // Valid on its own but clashing with the database: rolled back whole.
    let clash = write(
        &dir,
        "clash.yml",
        "_format_version: \"3.0\"\nservices:\n- name: first-new\n  host: x.internal\n- id: 8f1b3c8e-0d5b-4a43-9d0b-0d8c0a1b2c3d\n  name: svc-a\n  host: y.internal\n",
    );
    let (code, out) = cli(&env, &["config", "db_import", &clash]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("UNIQUE violation detected on '{name=\"svc-a\"}'"),
        "{out}"
    );
    assert_eq!(stored_hash(&db_path(&dir)).await, before);

    // DB-less has no database to import into.
    let (code, out) = cli(&base_env(&dir), &["config", "db_import", &good]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("only works with a database"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_export_then_import_keeps_the_hash() {
    let first = TempDir::new("export-a");
    let env = sqlite_env(&first);
    assert_eq!(cli(&env, &["migrations", "bootstrap"]).0, 0);
    let file = write(&first, "rich.yml", RICH);
    assert_eq!(cli(&env, &["config", "db_import", &file]).0, 0);
    let exported = first.path().join("exported.yml");
    let (code, out) = cli(
        &env,
        &["config", "db_export", &exported.display().to_string()],
    );
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(
        text.starts_with("_format_version: \"3.0\"\n_transform: false\n"),
        "{text}"
    );
    // Kong's layout: flat lists, references by id.
    assert!(
        text.contains("\nroutes:\n") && text.contains("\ntargets:\n"),
        "{text}"
    );
    assert!(text.contains("  service: \""), "{text}");
    // Never overwrites.
    let (code, out) = cli(
        &env,
        &["config", "db_export", &exported.display().to_string()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("already exists"), "{out}");
    // `-` is stdout; no file argument is ./kong.yml, as with Kong.
    let (code, stdout) = cli(&env, &["config", "db_export", "-"]);
    assert_eq!(code, 0);
    assert_eq!(stdout, text);
    let (code, out, _) = run_cli_timeout(
        &["config", "db_export"],
        &env,
        Some(first.path()),
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        std::fs::read_to_string(first.path().join("kong.yml")).unwrap(),
        text
    );

    let second = TempDir::new("export-b");
    let env2 = sqlite_env(&second);
    assert_eq!(cli(&env2, &["migrations", "bootstrap"]).0, 0);
    let (code, out) = cli(
        &env2,
        &["config", "db_import", &exported.display().to_string()],
    );
    assert_eq!(code, 0, "{out}");
    let hash = stored_hash(&db_path(&first)).await;
    assert_eq!(stored_hash(&db_path(&second)).await, hash);
    let (_, again) = cli(&env2, &["config", "db_export", "-"]);
    assert_eq!(again, text, "ids, timestamps and every field survive");

    // Import adds and updates; what the file does not name stays.
    let more = write(
        &second,
        "more.yml",
        "_format_version: \"3.0\"\nservices:\n- name: svc-new\n  host: n.internal\n",
    );
    assert_eq!(cli(&env2, &["config", "db_import", &more]).0, 0);
    let (_, after) = cli(&env2, &["config", "db_export", "-"]);
    assert!(after.contains("svc-new") && after.contains("svc-a") && after.contains("route-b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_with_sqlite_migrates_loads_and_reloads() {
    let dir = TempDir::new("start");
    // Outside the gateway's prefix, in a directory that does not exist yet, so a second
    // gateway (another prefix) finds it.
    let db_file = dir.path().join("data/config.db");
    let db_setting = db_file.display().to_string();
    let up = Upstream::start("sqlite-up");
    let mut gw = Gateway::without_config()
        .setting("database", "sqlite")
        .setting("sqlite_path", &db_setting)
        .start();
    // The first start created and migrated the database.
    assert!(db_file.exists(), "{}", gw.log_text());
    let (code, out) = gw.cli(&["migrations", "status"]);
    assert_eq!(code, 0, "{out}");
    let empty = gw.config_hash().await;
    assert_eq!(empty, silverback_model::EMPTY_CONFIG_HASH);
    let r = get(&client(), &gw.url("/db"), &[]).await;
    assert_eq!(r.status, 404);

    // Imported while running, served after `reload`.
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n{}  routes:\n  - paths: [/db]\n",
        service_yaml("db-svc", &up)
    );
    let file = write(&dir, "db.yml", &yaml);
    let (code, out) = gw.cli(&["config", "db_import", &file]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = gw.cli(&["reload"]);
    assert_eq!(code, 0, "{out}");
    let hash = gw.wait_hash_change(&empty, Duration::from_secs(10)).await;
    assert_eq!(hash, stored_hash(&db_file).await);
    let r = get(&client(), &gw.url("/db"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        gw.log_text().contains("database config reloaded"),
        "{}",
        gw.log_text()
    );
    gw.stop();

    // A restart loads the stored config.
    let gw = Gateway::without_config()
        .setting("database", "sqlite")
        .setting("sqlite_path", &db_setting)
        .start();
    assert_eq!(gw.config_hash().await, hash);
    let r = get(&client(), &gw.url("/db"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        gw.log_text().contains("database config loaded"),
        "{}",
        gw.log_text()
    );
}

const CREDENTIALS: &str = r#"
_format_version: "3.0"
_transform: false
consumers:
- username: alice
  keyauth_credentials:
  - key: alice-key
  basicauth_credentials:
  - username: alice
    password: 6d1e8f3f1c3a7d0c4f2e9b8a7c6d5e4f3a2b1c0d
  acls:
  - group: admins
  oauth2_credentials:
  - name: app
    client_id: app-id
    client_secret: app-secret
"#;

/// Credentials go into the database and come back out in an export (a Kong sha1 password kept
/// as it was, with `_transform: false`); oauth2 tokens, runtime state, never do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_export_keeps_credentials_but_not_oauth2_tokens() {
    let dir = TempDir::new("export-creds");
    let env = sqlite_env(&dir);
    assert_eq!(cli(&env, &["migrations", "bootstrap"]).0, 0);
    let file = write(&dir, "creds.yml", CREDENTIALS);
    let (code, out) = cli(&env, &["config", "db_import", &file]);
    assert_eq!(code, 0, "{out}");
    // The oauth2 plugin would store tokens like this one.
    let db = Sqlite::open(db_path(&dir)).await.unwrap();
    let config = db.load().await.unwrap();
    let app = config.oauth2_credentials().unwrap()[0].id;
    let schema = silverback_model::entities::schema("oauth2_tokens").unwrap();
    let mut token = serde_json::json!({"credential": {"id": app.to_string()}, "expires_in": 60})
        .as_object()
        .unwrap()
        .clone();
    let ctx = silverback_model::Context {
        plugins: &silverback_model::entities::NoPlugins,
    };
    schema
        .validate(
            &silverback_model::schema::Validator::new(1),
            &ctx,
            &mut token,
        )
        .unwrap();
    let access = token["access_token"].as_str().unwrap().to_string();
    db.insert(schema, token).await.unwrap();
    db.close().await;

    let (code, text) = cli(&env, &["config", "db_export", "-"]);
    assert_eq!(code, 0, "{text}");
    for want in [
        "keyauth_credentials:",
        "basicauth_credentials:",
        "\"6d1e8f3f1c3a7d0c4f2e9b8a7c6d5e4f3a2b1c0d\"",
        "acls:",
        "oauth2_credentials:",
        "\"app-secret\"",
    ] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
    assert!(
        !text.contains("oauth2_tokens") && !text.contains(&access),
        "{text}"
    );

    let second = TempDir::new("export-creds-b");
    let env2 = sqlite_env(&second);
    assert_eq!(cli(&env2, &["migrations", "bootstrap"]).0, 0);
    let exported = write(&second, "exported.yml", &text);
    let (code, out) = cli(&env2, &["config", "db_import", &exported]);
    assert_eq!(code, 0, "{out}");
    let (_, again) = cli(&env2, &["config", "db_export", "-"]);
    assert_eq!(again, text, "credentials survive the round trip unchanged");
}
