//! bot-detection against the real binary: Kong's built-in bot list, allow and deny patterns,
//! the duplicate User-Agent error, defaults and config errors through the Admin API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: default
    paths: [/default]
    plugins:
    - name: bot-detection
  - name: lists
    paths: [/lists]
    plugins:
    - name: bot-detection
      config: {{allow: ["Googlebot"], deny: ["^BadBrowser/\\d+", "curl"]}}
"#,
        up.addr
    )
}

fn assert_forbidden(r: &Reply) {
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["message"], "Forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_refused_browsers_pass() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let ua = |v: &'static str| [("user-agent", v)];

    assert_eq!(
        get(&c, &gw.url("/default"), &[]).await.status,
        200,
        "no agent"
    );
    assert_eq!(get(&c, &gw.url("/default"), &ua(BROWSER)).await.status, 200);
    assert_eq!(
        get(&c, &gw.url("/default"), &ua("curl/8.5.0")).await.status,
        200
    );
    for bot in [
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "facebookexternalhit/1.1",
        "Go-http-client/1.1",
    ] {
        assert_forbidden(&get(&c, &gw.url("/default"), &ua(bot)).await);
        // Asked again: the cached verdict is the same.
        assert_forbidden(&get(&c, &gw.url("/default"), &ua(bot)).await);
    }
    // Surrounding blanks do not matter.
    assert_forbidden(&get(&c, &gw.url("/default"), &ua("  Twitterbot/1.0  ")).await);

    // allow wins over the bot list; deny adds to it.
    let r = get(&c, &gw.url("/lists"), &ua("Googlebot/2.1")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_forbidden(&get(&c, &gw.url("/lists"), &ua("BadBrowser/3")).await);
    assert_forbidden(&get(&c, &gw.url("/lists"), &ua("curl/8.5.0")).await);
    assert_forbidden(&get(&c, &gw.url("/lists"), &ua("bingbot/2.0")).await);
    assert_eq!(get(&c, &gw.url("/lists"), &ua(BROWSER)).await.status, 200);

    let r = get(
        &c,
        &gw.url("/default"),
        &[("user-agent", BROWSER), ("user-agent", "other")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "Only one User-Agent header allowed");
    assert_eq!(up.hits(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_defaults_and_kongs_errors() {
    let gw = Gateway::with_database().start();
    let r = gw
        .admin("POST", "/plugins", json!({"name": "bot-detection"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["config"], json!({"allow": [], "deny": []}));

    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "bot-detection", "config": {"deny": ["ok", "(unclosed"]}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["fields"]["config"]["deny"],
        json!([null, "not a valid regex: (unclosed"])
    );
    // Not consumer-scoped.
    let r = gw
        .admin("POST", "/consumers", json!({"username": "bob"}))
        .await;
    assert_eq!(r.status, 201);
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "bot-detection", "consumer": {"username": "bob"}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["fields"]["consumer"], "value must be null");
}
