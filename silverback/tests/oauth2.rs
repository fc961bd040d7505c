//! oauth2 against the real binary on the embedded SQLite store: every grant end to end, PKCE,
//! Kong's error bodies and statuses, expiry, tokens that survive a restart, and tokens
//! deleted through the Admin API.
//!
//! The proxy listens on plain HTTP here, and the OAuth endpoints require HTTPS (Kong's rule).
//! As in Kong's own tests, the gateway trusts 127.0.0.1 (`trusted_ips`), the plugin has
//! `accept_http_if_already_terminated`, and requests to the endpoints carry
//! `X-Forwarded-Proto: https`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const PROVISION: &str = "provision-key-0123456789abcdef";
const HTTPS: (&str, &str) = ("x-forwarded-proto", "https");
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

fn gateway() -> Gateway {
    Gateway::with_database()
        .setting("trusted_ips", "127.0.0.1")
        .start()
}

async fn created(gw: &Gateway, path: &str, body: Value) -> Value {
    let r = gw.admin("POST", path, body).await;
    assert_eq!(r.status, 201, "POST {path}: {}", r.text());
    r.json()
}

/// A service on `up` with route `/{name}` and an oauth2 plugin with `config` (plus the
/// provision key and HTTP acceptance); waits until the route is live.
async fn oauth_route(gw: &Gateway, up: &Upstream, name: &str, mut config: Value) {
    created(
        gw,
        "/services",
        json!({"name": name, "url": format!("http://{}", up.addr)}),
    )
    .await;
    created(
        gw,
        &format!("/services/{name}/routes"),
        json!({"name": name, "paths": [format!("/{name}")]}),
    )
    .await;
    config["provision_key"] = json!(PROVISION);
    config["accept_http_if_already_terminated"] = json!(true);
    created(
        gw,
        &format!("/routes/{name}/plugins"),
        json!({"name": "oauth2", "config": config}),
    )
    .await;
    // Live once the plugin answers its token endpoint (plain HTTP: refused).
    let c = client();
    let url = gw.url(&format!("/{name}/oauth2/token"));
    eventually(Duration::from_secs(5), "plugin live", || {
        let (c, url) = (c.clone(), url.clone());
        async move { send(&c, "POST", &url, &[], "").await.status == 400 }
    })
    .await;
}

/// Consumer `alice` with a confidential app and `bob` with a public one.
async fn apps(gw: &Gateway) {
    created(
        gw,
        "/consumers",
        json!({"username": "alice", "custom_id": "a-1"}),
    )
    .await;
    created(
        gw,
        "/consumers/alice/oauth2",
        json!({"name": "app", "client_id": "app-id", "client_secret": "app-secret",
               "redirect_uris": ["https://app.test/cb", "https://app.test/other?keep=1"]}),
    )
    .await;
    created(gw, "/consumers", json!({"username": "bob"})).await;
    created(
        gw,
        "/consumers/bob/oauth2",
        json!({"name": "spa", "client_id": "spa-id", "client_type": "public",
               "redirect_uris": ["https://spa.test/cb"]}),
    )
    .await;
}

/// A form-urlencoded body.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn post(gw: &Gateway, path: &str, pairs: &[(&str, &str)], extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![FORM];
    headers.extend_from_slice(extra);
    send(&client(), "POST", &gw.url(path), &headers, form(pairs)).await
}

/// Query (or fragment) arguments of a redirect URI.
fn uri_args(uri: &str, fragment: bool) -> std::collections::HashMap<String, String> {
    let part = if fragment {
        uri.split_once('#').map(|x| x.1)
    } else {
        uri.split_once('?').map(|x| x.1.split('#').next().unwrap())
    };
    part.unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), pct_decode(v)))
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn assert_oauth_error(r: &Reply, status: u16, error: &str, description: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
}

async fn bearer(gw: &Gateway, path: &str, token: &str) -> Reply {
    get(
        &client(),
        &gw.url(path),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
}

fn assert_invalid_token(r: &Reply) {
    assert_oauth_error(
        r,
        401,
        "invalid_token",
        "The access token is invalid or has expired",
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer error=\"invalid_token\", error_description=\"The access token is invalid or has expired\""
        )
    );
}

/// authorize → code → token → upstream → refresh, then restart and Admin API deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_flow_refresh_restart_and_admin_delete() {
    let up = Upstream::start("u");
    let mut gw = gateway();
    apps(&gw).await;
    oauth_route(
        &gw,
        &up,
        "api",
        json!({"enable_authorization_code": true, "scopes": ["email", "profile"]}),
    )
    .await;

    // No token: Kong's 401 with a bare Bearer challenge.
    let r = get(&client(), &gw.url("/api/x"), &[]).await;
    assert_oauth_error(&r, 401, "invalid_request", "The access token is missing");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_invalid_token(&bearer(&gw, "/api/x", "nope").await);

    // The endpoints take POST only.
    let r = get(&client(), &gw.url("/api/oauth2/token"), &[HTTPS]).await;
    assert_oauth_error(
        &r,
        405,
        "invalid_method",
        "The HTTP method GET is invalid for the token endpoint",
    );
    // Plain HTTP without the forwarded proto.
    let r = post(&gw, "/api/oauth2/authorize", &[], &[]).await;
    assert_oauth_error(&r, 400, "access_denied", "You must use HTTPS");

    let authorize = |extra: Vec<(&'static str, &'static str)>| {
        let mut pairs = vec![
            ("provision_key", PROVISION),
            ("authenticated_userid", "user-42"),
            ("response_type", "code"),
            ("client_id", "app-id"),
            ("scope", "email profile"),
            ("state", "xyz"),
        ];
        for (k, v) in extra {
            pairs.retain(|(pk, _)| *pk != k);
            pairs.push((k, v));
        }
        pairs
    };
    let r = post(&gw, "/api/oauth2/authorize", &authorize(vec![]), &[HTTPS]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let uri = r.json()["redirect_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("https://app.test/cb?"), "{uri}");
    let args = uri_args(&uri, false);
    assert_eq!(args["state"], "xyz");
    let code = args["code"].clone();
    assert_eq!(code.len(), 32);

    // Errors of the authorize endpoint.
    let r = post(
        &gw,
        "/api/oauth2/authorize",
        &authorize(vec![("provision_key", "wrong")]),
        &[HTTPS],
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"error": "invalid_provision_key", "error_description": "Invalid provision_key", "state": "xyz"})
    );
    assert_eq!(r.status, 400);
    let r = post(
        &gw,
        "/api/oauth2/authorize",
        &authorize(vec![("scope", "email admin")]),
        &[HTTPS],
    )
    .await;
    assert_eq!(r.status, 400);
    let args = uri_args(r.json()["redirect_uri"].as_str().unwrap(), false);
    assert_eq!(args["error"], "invalid_scope");
    assert_eq!(args["error_description"], "\"admin\" is an invalid scope");
    let r = post(
        &gw,
        "/api/oauth2/authorize",
        &authorize(vec![("redirect_uri", "https://evil.test/")]),
        &[HTTPS],
    )
    .await;
    let uri = r.json()["redirect_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("https://app.test/cb?"), "{uri}");
    assert_eq!(uri_args(&uri, false)["error"], "invalid_request");
    let r = post(
        &gw,
        "/api/oauth2/authorize",
        &authorize(vec![("client_id", "nobody")]),
        &[HTTPS],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_client", "Invalid client authentication");
    let r = post(
        &gw,
        "/api/oauth2/authorize",
        &authorize(vec![("response_type", "token")]),
        &[HTTPS],
    )
    .await;
    assert_eq!(
        uri_args(r.json()["redirect_uri"].as_str().unwrap(), false)["error"],
        "unsupported_response_type"
    );
    // A second redirect URI keeps its own query.
    let r = post(
        &gw,
        "/api/oauth2/authorize",
        &authorize(vec![("redirect_uri", "https://app.test/other?keep=1")]),
        &[HTTPS],
    )
    .await;
    let args = uri_args(r.json()["redirect_uri"].as_str().unwrap(), false);
    assert_eq!(args["keep"], "1");
    assert!(args.contains_key("code"));

    // Token endpoint errors.
    let r = post(
        &gw,
        "/api/oauth2/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app-id"),
            ("client_secret", "wrong"),
            ("code", &code),
        ],
        &[HTTPS],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_client", "Invalid client authentication");
    let r = post(
        &gw,
        "/api/oauth2/token",
        &[("grant_type", "authorization_code"), ("code", &code)],
        &[HTTPS, ("authorization", "Basic YXBwLWlkOndyb25n")],
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client", "Invalid client authentication");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"OAuth2.0\"")
    );
    let r = post(
        &gw,
        "/api/oauth2/token",
        &[
            ("grant_type", "password"),
            ("client_id", "app-id"),
            ("client_secret", "app-secret"),
        ],
        &[HTTPS],
    )
    .await;
    assert_oauth_error(&r, 400, "unsupported_grant_type", "Invalid grant_type");
    let r = post(
        &gw,
        "/api/oauth2/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app-id"),
            ("client_secret", "app-secret"),
            ("code", "not-a-code"),
        ],
        &[HTTPS],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request", "Invalid code");

    // The code for a token, client authenticated by a Basic header.
    let r = post(
        &gw,
        "/api/oauth2/token",
        &[("grant_type", "authorization_code"), ("code", &code)],
        &[HTTPS, ("authorization", "Basic YXBwLWlkOmFwcC1zZWNyZXQ=")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json();
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["expires_in"], 7200);
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    // A code is used once.
    let r = post(
        &gw,
        "/api/oauth2/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app-id"),
            ("client_secret", "app-secret"),
            ("code", &code),
        ],
        &[HTTPS],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request", "Invalid code");

    // The upstream learns who called.
    let r = bearer(&gw, "/api/x", &access).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = echo(&r);
    assert_eq!(e.header("x-authenticated-userid"), Some("user-42"));
    assert_eq!(e.header("x-authenticated-scope"), Some("email profile"));
    assert_eq!(e.header("x-consumer-username"), Some("alice"));
    assert_eq!(e.header("x-consumer-custom-id"), Some("a-1"));
    assert_eq!(e.header("x-credential-identifier"), Some("app-id"));
    assert!(e.header("x-consumer-id").is_some());
    assert_eq!(
        e.header("authorization"),
        Some(&*format!("Bearer {access}"))
    );
    // Also as a query argument.
    let r = get(
        &client(),
        &gw.url(&format!("/api/q?access_token={access}")),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Refresh (reuse_refresh_token false): a new pair, the old ones are gone.
    let r = post(
        &gw,
        "/api/oauth2/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app-id"),
            ("client_secret", "app-secret"),
            ("refresh_token", &refresh),
        ],
        &[HTTPS],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t2 = r.json();
    let access2 = t2["access_token"].as_str().unwrap().to_string();
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(access2, access);
    assert_ne!(refresh2, refresh);
    assert_invalid_token(&bearer(&gw, "/api/x", &access).await);
    let r = post(
        &gw,
        "/api/oauth2/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app-id"),
            ("client_secret", "app-secret"),
            ("refresh_token", &refresh),
        ],
        &[HTTPS],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request", "Invalid refresh_token");
    let r = bearer(&gw, "/api/x", &access2).await;
    assert_eq!(echo(&r).header("x-authenticated-userid"), Some("user-42"));

    // Tokens live in the database, not in the config: issuing one changed no config hash,
    // and they outlive the process.
    let hash = gw.config_hash().await;
    post(
        &gw,
        "/api/oauth2/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app-id"),
            ("client_secret", "app-secret"),
            ("refresh_token", &refresh2),
        ],
        &[HTTPS],
    )
    .await;
    assert_eq!(gw.config_hash().await, hash);
    let tokens = gw.admin("GET", "/oauth2_tokens", Value::Null).await.json();
    let rows = tokens["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{tokens}");
    let access3 = rows[0]["access_token"].as_str().unwrap().to_string();
    let id3 = rows[0]["id"].as_str().unwrap().to_string();

    gw.restart();
    let r = bearer(&gw, "/api/x", &access3).await;
    assert_eq!(r.status, 200, "token valid after a restart: {}", r.text());
    assert_eq!(
        echo(&r).header("x-authenticated-scope"),
        Some("email profile")
    );

    // Deleted through the Admin API: refused at once.
    let r = gw
        .admin("DELETE", &format!("/oauth2_tokens/{id3}"), Value::Null)
        .await;
    assert_eq!(r.status, 204);
    assert_invalid_token(&bearer(&gw, "/api/x", &access3).await);
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// PKCE, implicit, client_credentials and password grants, scopes and provision keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_implicit_client_credentials_and_password_grants() {
    let up = Upstream::start("u");
    let gw = gateway();
    apps(&gw).await;
    oauth_route(
        &gw,
        &up,
        "all",
        json!({"enable_authorization_code": true, "enable_implicit_grant": true,
               "enable_client_credentials": true, "enable_password_grant": true,
               "scopes": ["read", "write"], "mandatory_scope": true, "hide_credentials": true}),
    )
    .await;

    // PKCE with a public client: a challenge is required, the verifier must match.
    let authorize = |challenge: Option<&'static str>| {
        let mut p = vec![
            ("provision_key", PROVISION),
            ("authenticated_userid", "u-7"),
            ("response_type", "code"),
            ("client_id", "spa-id"),
            ("scope", "read"),
        ];
        if let Some(c) = challenge {
            p.push(("code_challenge", c));
            p.push(("code_challenge_method", "S256"));
        }
        p
    };
    let r = post(&gw, "/all/oauth2/authorize", &authorize(None), &[HTTPS]).await;
    let args = uri_args(r.json()["redirect_uri"].as_str().unwrap(), false);
    assert_eq!(args["error"], "invalid_request");
    assert_eq!(
        args["error_description"],
        "code_challenge is required for public clients"
    );
    let mut plain = authorize(Some(CHALLENGE));
    plain.retain(|(k, _)| *k != "code_challenge_method");
    plain.push(("code_challenge_method", "plain"));
    let r = post(&gw, "/all/oauth2/authorize", &plain, &[HTTPS]).await;
    assert_eq!(
        uri_args(r.json()["redirect_uri"].as_str().unwrap(), false)["error_description"],
        "code_challenge_method is not supported, must be S256"
    );
    let code_for =
        |r: Reply| uri_args(r.json()["redirect_uri"].as_str().unwrap(), false)["code"].clone();
    let code = code_for(
        post(
            &gw,
            "/all/oauth2/authorize",
            &authorize(Some(CHALLENGE)),
            &[HTTPS],
        )
        .await,
    );
    let exchange = |code: String, verifier: &'static str| {
        let gw = &gw;
        async move {
            post(
                gw,
                "/all/oauth2/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", "spa-id"),
                    ("code", &code),
                    ("code_verifier", verifier),
                ],
                &[HTTPS],
            )
            .await
        }
    };
    let wrong = "x".repeat(43).leak() as &'static str;
    assert_oauth_error(
        &exchange(code.clone(), wrong).await,
        400,
        "invalid_grant",
        "Invalid code",
    );
    assert_oauth_error(
        &exchange(code.clone(), "short").await,
        400,
        "invalid_request",
        "code_verifier must be between 43 and 128 characters",
    );
    let r = exchange(code.clone(), VERIFIER).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    let r = bearer(&gw, "/all/x", &access).await;
    assert_eq!(r.status, 200);
    let e = echo(&r);
    assert_eq!(e.header("x-consumer-username"), Some("bob"));
    assert_eq!(e.header("x-authenticated-scope"), Some("read"));
    // hide_credentials: the upstream does not see the token.
    assert_eq!(e.header("authorization"), None);
    let r = get(
        &client(),
        &gw.url(&format!("/all/q?access_token={access}&a=1")),
        &[],
    )
    .await;
    assert_eq!(echo(&r).uri, "/q?a=1");

    // Implicit grant: the token in the redirect URI's fragment, without a refresh token.
    let r = post(
        &gw,
        "/all/oauth2/authorize",
        &[
            ("provision_key", PROVISION),
            ("authenticated_userid", "u-8"),
            ("response_type", "token"),
            ("client_id", "app-id"),
            ("scope", "write"),
            ("state", "s1"),
        ],
        &[HTTPS],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let uri = r.json()["redirect_uri"].as_str().unwrap().to_string();
    let frag = uri_args(&uri, true);
    assert_eq!(frag["token_type"], "bearer");
    assert_eq!(frag["expires_in"], "7200");
    assert_eq!(frag["state"], "s1");
    assert!(!frag.contains_key("refresh_token"));
    let r = bearer(&gw, "/all/x", &frag["access_token"]).await;
    assert_eq!(echo(&r).header("x-authenticated-userid"), Some("u-8"));

    // client_credentials: no user, no refresh token.
    let cc = |scope: Option<&'static str>| {
        let mut p = vec![
            ("grant_type", "client_credentials"),
            ("client_id", "app-id"),
            ("client_secret", "app-secret"),
        ];
        if let Some(s) = scope {
            p.push(("scope", s));
        }
        p
    };
    let r = post(&gw, "/all/oauth2/token", &cc(None), &[HTTPS]).await;
    assert_oauth_error(&r, 400, "invalid_scope", "You must specify a scope");
    let r = post(&gw, "/all/oauth2/token", &cc(Some("read delete")), &[HTTPS]).await;
    assert_oauth_error(&r, 400, "invalid_scope", "\"delete\" is an invalid scope");
    let r = post(&gw, "/all/oauth2/token", &cc(Some("read write")), &[HTTPS]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json();
    assert!(t.get("refresh_token").is_none(), "{t}");
    let r = bearer(&gw, "/all/x", t["access_token"].as_str().unwrap()).await;
    let e = echo(&r);
    assert_eq!(e.header("x-consumer-username"), Some("alice"));
    assert_eq!(e.header("x-authenticated-userid"), None);
    assert_eq!(e.header("x-authenticated-scope"), Some("read write"));

    // password: needs the provision key and a user.
    let pw = |key: &'static str, user: &'static str| {
        vec![
            ("grant_type", "password"),
            ("client_id", "app-id"),
            ("client_secret", "app-secret"),
            ("provision_key", key),
            ("authenticated_userid", user),
            ("scope", "read"),
        ]
    };
    let r = post(&gw, "/all/oauth2/token", &pw("wrong", "u-9"), &[HTTPS]).await;
    assert_oauth_error(&r, 400, "invalid_provision_key", "Invalid provision_key");
    let r = post(&gw, "/all/oauth2/token", &pw(PROVISION, " "), &[HTTPS]).await;
    assert_oauth_error(
        &r,
        400,
        "invalid_authenticated_userid",
        "Missing authenticated_userid parameter",
    );
    let r = post(&gw, "/all/oauth2/token", &pw(PROVISION, "u-9"), &[HTTPS]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json();
    assert!(t["refresh_token"].is_string());
    let r = bearer(&gw, "/all/x", t["access_token"].as_str().unwrap()).await;
    assert_eq!(echo(&r).header("x-authenticated-userid"), Some("u-9"));

    // A token is bound to its service.
    oauth_route(
        &gw,
        &up,
        "other",
        json!({"enable_client_credentials": true}),
    )
    .await;
    assert_invalid_token(&bearer(&gw, "/other/x", t["access_token"].as_str().unwrap()).await);
}

/// Short-lived tokens expire; with reuse_refresh_token the refresh token stays the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_reused_refresh_tokens() {
    let up = Upstream::start("u");
    let gw = gateway();
    apps(&gw).await;
    oauth_route(
        &gw,
        &up,
        "short",
        json!({"enable_password_grant": true, "token_expiration": 1, "reuse_refresh_token": true}),
    )
    .await;
    let get_token = || {
        post(
            &gw,
            "/short/oauth2/token",
            &[
                ("grant_type", "password"),
                ("client_id", "app-id"),
                ("client_secret", "app-secret"),
                ("provision_key", PROVISION),
                ("authenticated_userid", "u-1"),
            ],
            &[HTTPS],
        )
    };
    let t = get_token().await.json();
    assert_eq!(t["expires_in"], 1);
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(bearer(&gw, "/short/x", &access).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_invalid_token(&bearer(&gw, "/short/x", &access).await);

    let refresh_with = |r: String| {
        let gw = &gw;
        async move {
            post(
                gw,
                "/short/oauth2/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", "app-id"),
                    ("client_secret", "app-secret"),
                    ("refresh_token", &r),
                ],
                &[HTTPS],
            )
            .await
        }
    };
    let r = refresh_with(refresh.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t2 = r.json();
    assert_eq!(
        t2["refresh_token"],
        refresh.as_str(),
        "the refresh token is reused"
    );
    let access2 = t2["access_token"].as_str().unwrap().to_string();
    assert_ne!(access2, access);
    assert_eq!(bearer(&gw, "/short/x", &access2).await.status, 200);
    // The same refresh token works again; the previous access token does not.
    let r = refresh_with(refresh.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_invalid_token(&bearer(&gw, "/short/x", &access2).await);
    let rows = gw.admin("GET", "/oauth2_tokens", Value::Null).await.json();
    assert_eq!(rows["data"].as_array().unwrap().len(), 1, "{rows}");
    // Refreshing with another client's credentials is refused.
    let r = post(
        &gw,
        "/short/oauth2/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "spa-id"),
            ("refresh_token", &refresh),
        ],
        &[HTTPS],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_client", "Invalid client authentication");

    // anonymous: a missing or bad token falls back to the anonymous consumer.
    oauth_route(
        &gw,
        &up,
        "anon",
        json!({"enable_client_credentials": true, "anonymous": "bob"}),
    )
    .await;
    for r in [
        get(&client(), &gw.url("/anon/x"), &[]).await,
        bearer(&gw, "/anon/x", "bad").await,
    ] {
        assert_eq!(r.status, 200, "{}", r.text());
        let e = echo(&r);
        assert_eq!(e.header("x-consumer-username"), Some("bob"));
        assert_eq!(e.header("x-anonymous-consumer"), Some("true"));
        assert_eq!(e.header("x-authenticated-userid"), None);
    }
}
