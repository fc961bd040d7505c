//! decK (the Debian package `deck`, decK 1.4), a real Kong client, against the binary's Admin API:
//! ping, sync, diff without changes, dump, reset, with and without an admin token.
//!
//! decK must be installed (`scripts/test` installs it); these tests fail, not skip, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const CERT: &str = include_str!("../../crates/store/tests/data/cert.pem");
const KEY: &str = include_str!("../../crates/store/tests/data/key.pem");

/// Runs `deck ARGS --kong-addr ADMIN [--headers …]`; returns (success, stdout + stderr).
fn deck(gw: &Gateway, token: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("deck");
    cmd.args(args)
        .arg("--kong-addr")
        .arg(gw.admin_url(""))
        .current_dir(gw.dir.path());
    if let Some(t) = token {
        cmd.arg("--headers").arg(format!("Kong-Admin-Token:{t}"));
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run deck ({e}); scripts/test installs it with apt"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// decK's closing summary counts.
fn summary(out: &str) -> (u32, u32, u32) {
    let count = |label: &str| -> u32 {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no '{label}' in deck output:\n{out}"))
    };
    (count("Created:"), count("Updated:"), count("Deleted:"))
}

fn indent(text: &str, by: &str) -> String {
    text.trim()
        .lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A decK 1.4 file (`_format_version: "1.1"`). decK 1.4 fills only the defaults Kong 1.x had,
/// so fields Kong added later are written out, as its users do to get an empty diff from any
/// Kong 3.
fn kong_yml(upstream: &str) -> String {
    format!(
        r#"_format_version: "1.1"
services:
- name: billing
  url: http://{upstream}/bill
  retries: 5
  tags: [team-a]
  routes:
  - name: billing-route
    paths: [/billing]
    methods: [GET, POST]
    strip_path: true
    path_handling: v0
    https_redirect_status_code: 426
    request_buffering: true
    response_buffering: true
    plugins:
    - name: key-auth
      enabled: true
      protocols: [grpc, grpcs, http, https]
      config:
        key_names: [apikey]
        hide_credentials: false
        key_in_header: true
        key_in_query: true
        key_in_body: false
        run_on_preflight: true
        anonymous: null
        realm: null
- name: users
  host: users.internal
  port: 80
  protocol: http
  retries: 5
  routes:
  - name: users-route
    hosts: [users.example.test]
    path_handling: v0
    https_redirect_status_code: 426
    request_buffering: true
    response_buffering: true
consumers:
- username: alice
  custom_id: a-1
  tags: [vip]
- username: bob
upstreams:
- name: users.internal
  algorithm: round-robin
  healthchecks:
    threshold: 0
    active:
      https_verify_certificate: true
    passive:
      type: http
  targets:
  - target: {upstream}
    weight: 100
  - target: 127.0.0.2:9
    weight: 0
certificates:
- id: 6f5d4b1c-2a3e-4f70-9c1d-7e8a9b0c1d2e
  cert: |
{cert}
  key: |
{key}
  snis:
  - name: example.test
"#,
        cert = indent(CERT, "    "),
        key = indent(KEY, "    "),
    )
}

async fn names(gw: &Gateway, token: &str, entity: &str, field: &str) -> Vec<String> {
    let r = get(
        &client(),
        &gw.admin_url(&format!("/{entity}")),
        &[("kong-admin-token", token)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut v: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[field].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn deck_sync_diff_dump_reset_round_trip() {
    let up = Upstream::start("deck");
    let gw = Gateway::with_database()
        .setting("admin_token", "deck-t0ken")
        .start();
    let token = Some("deck-t0ken");

    let (ok, out) = deck(&gw, None, &["ping"]);
    assert!(!ok, "ping without the token must fail:\n{out}");
    assert!(out.contains("401"), "{out}");
    let (ok, out) = deck(&gw, token, &["ping"]);
    assert!(ok, "{out}");
    assert!(out.contains("Successfully connected"), "{out}");

    std::fs::write(
        gw.dir.path().join("kong.yml"),
        kong_yml(&up.addr.to_string()),
    )
    .unwrap();
    let (ok, out) = deck(&gw, token, &["sync", "-s", "kong.yml"]);
    assert!(ok, "{out}");
    // 2 services, 2 routes, 1 plugin, 2 consumers, 1 upstream, 2 targets, 1 certificate,
    // 1 SNI.
    assert_eq!(summary(&out), (12, 0, 0), "{out}");
    let (ok, out) = deck(&gw, token, &["diff", "-s", "kong.yml"]);
    assert!(ok, "{out}");
    assert_eq!(summary(&out), (0, 0, 0), "diff after sync:\n{out}");

    // What decK wrote is live on the proxy, the route's key-auth included.
    let c = client();
    let url = gw.url("/billing/invoice");
    eventually(Duration::from_secs(5), "synced route live", || async {
        get(&c, &url, &[]).await.status == 401
    })
    .await;
    assert_eq!(
        get(&c, &url, &[]).await.json()["message"],
        "No API key found in request"
    );
    assert_eq!(
        names(&gw, "deck-t0ken", "snis", "name").await,
        ["example.test"]
    );

    // The dump holds the same entities, and syncing it back changes nothing.
    let (ok, out) = deck(&gw, token, &["dump", "-o", "dump1.yaml"]);
    assert!(ok, "{out}");
    let dump1 = std::fs::read_to_string(gw.dir.path().join("dump1.yaml")).unwrap();
    let doc = silverback_model::declarative::parse_text(&dump1).unwrap();
    let listed = |key: &str, field: &str| -> Vec<String> {
        let mut v: Vec<String> = doc[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key} in dump:\n{dump1}"))
            .iter()
            .map(|e| e[field].as_str().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(listed("services", "name"), ["billing", "users"]);
    assert_eq!(listed("consumers", "username"), ["alice", "bob"]);
    assert_eq!(listed("upstreams", "name"), ["users.internal"]);
    let routes: Vec<&Value> = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["routes"].as_array().unwrap().iter())
        .collect();
    assert_eq!(routes.len(), 2);
    assert_eq!(doc["upstreams"][0]["targets"].as_array().unwrap().len(), 2);
    assert_eq!(doc["certificates"][0]["snis"][0]["name"], "example.test");
    let (ok, out) = deck(&gw, token, &["diff", "-s", "dump1.yaml"]);
    assert!(ok, "{out}");
    assert_eq!(summary(&out), (0, 0, 0), "diff against the dump:\n{out}");

    // Reset empties everything, on the Admin API and on the proxy.
    let (ok, out) = deck(&gw, token, &["reset", "--force"]);
    assert!(ok, "{out}");
    for (entity, field) in [
        ("services", "name"),
        ("routes", "name"),
        ("consumers", "username"),
        ("upstreams", "name"),
        ("certificates", "id"),
        ("snis", "name"),
    ] {
        assert!(
            names(&gw, "deck-t0ken", entity, field).await.is_empty(),
            "{entity} left after reset"
        );
    }
    eventually(Duration::from_secs(5), "route gone after reset", || async {
        get(&c, &url, &[]).await.status == 404
    })
    .await;

    // Restoring the dump gives back the same dump.
    let (ok, out) = deck(&gw, token, &["sync", "-s", "dump1.yaml"]);
    assert!(ok, "{out}");
    assert_eq!(summary(&out), (12, 0, 0), "{out}");
    let (ok, out) = deck(&gw, token, &["dump", "-o", "dump2.yaml"]);
    assert!(ok, "{out}");
    let dump2 = std::fs::read_to_string(gw.dir.path().join("dump2.yaml")).unwrap();
    assert_eq!(dump1, dump2);
    assert!(!gw.log_text().contains("deck-t0ken"));
}

/// decK 1.4 syncs, diffs and dumps consumer credentials through their Admin API endpoints
/// (`/key-auths`, `/consumers/{c}/key-auth/{id}`, ...).
#[tokio::test(flavor = "multi_thread")]
async fn deck_syncs_consumer_credentials() {
    let gw = Gateway::with_database().start();
    let file = r#"_format_version: "1.1"
consumers:
- username: alice
  keyauth_credentials:
  - key: alice-key
  basicauth_credentials:
  - username: alice-basic
    password: pw
  hmacauth_credentials:
  - username: alice-hmac
    secret: hmac-secret
  jwt_secrets:
  - key: alice-iss
    secret: jwt-secret
    algorithm: HS256
  acls:
  - group: admins
  oauth2_credentials:
  - name: app
    client_id: app-id
    client_secret: app-secret
    redirect_uris: [https://app.test/cb]
- username: bob
  acls:
  - group: admins
"#;
    std::fs::write(gw.dir.path().join("creds.yml"), file).unwrap();
    let (ok, out) = deck(&gw, None, &["sync", "-s", "creds.yml"]);
    assert!(ok, "{out}");
    // 2 consumers, 1 key, 1 basic-auth, 1 hmac, 1 jwt, 2 acls, 1 oauth2 app.
    assert_eq!(summary(&out), (9, 0, 0), "{out}");
    let (ok, out) = deck(&gw, None, &["diff", "-s", "creds.yml"]);
    assert!(ok, "{out}");
    assert_eq!(summary(&out), (0, 0, 0), "diff after sync:\n{out}");
    let (ok, out) = deck(&gw, None, &["dump", "-o", "dump.yaml"]);
    assert!(ok, "{out}");
    let dump = std::fs::read_to_string(gw.dir.path().join("dump.yaml")).unwrap();
    assert!(
        dump.contains("$argon2id$"),
        "passwords dump hashed:\n{dump}"
    );
    for want in [
        "alice-key",
        "alice-basic",
        "alice-hmac",
        "alice-iss",
        "admins",
        "app-id",
    ] {
        assert!(dump.contains(want), "{want} missing from the dump:\n{dump}");
    }
    let (ok, out) = deck(&gw, None, &["diff", "-s", "dump.yaml"]);
    assert!(ok, "{out}");
    assert_eq!(summary(&out), (0, 0, 0), "diff against the dump:\n{out}");
    let (ok, out) = deck(&gw, None, &["reset", "--force"]);
    assert!(ok, "{out}");
    assert!(names(&gw, "", "key-auths", "key").await.is_empty());
}
