//! hmac-auth against the real binary, with signatures, dates and digests made by Python's
//! `hmac`, `hashlib` and `email.utils`: each algorithm, request-line and @request-target,
//! Kong's messages, clock skew, enforce_headers, body digests, hide_credentials and anonymous.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod python;

use common::*;
use python::{hmac_sign, http_date, sha256_digest};

const SECRET: &str = "alice-secret";
const NOT_VALID: &str = "HMAC signature cannot be verified";
const NOT_SAME: &str = "HMAC signature does not match";
const NO_DATE: &str = "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication";

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  custom_id: a-1
  hmacauth_credentials:
  - username: alice-hmac
    secret: {SECRET}
- username: anon
services:
- name: s
  url: http://{}
  routes:
  - name: plain
    paths: [/plain]
    plugins:
    - name: hmac-auth
  - name: strict
    paths: [/strict]
    plugins:
    - name: hmac-auth
      config:
        enforce_headers: [date, request-line]
        algorithms: [hmac-sha256]
        validate_request_body: true
        hide_credentials: true
        clock_skew: 60
        realm: kong
  - name: anon
    paths: [/anon]
    plugins:
    - name: hmac-auth
      config: {{anonymous: anon}}
"#,
        up.addr
    )
}

fn authorization(user: &str, alg: &str, headers: &str, signature: &str) -> String {
    format!(
        r#"hmac username="{user}", algorithm="{alg}", headers="{headers}", signature="{signature}""#
    )
}

/// `Authorization` for a request signed over `date` and the request line.
fn signed(alg: &str, date: &str, method: &str, target: &str) -> String {
    let text = format!("date: {date}\n{method} {target} HTTP/1.1");
    authorization(
        "alice-hmac",
        alg,
        "date request-line",
        &hmac_sign(alg, SECRET, &text),
    )
}

fn assert_401(r: &Reply, message: &str, challenge: &str) {
    assert_eq!(r.status, 401, "{}", r.text());
    let body = r.json();
    assert_eq!(body["message"], message);
    assert_eq!(body["request_id"].as_str(), r.header("x-kong-request-id"));
    assert_eq!(r.header("www-authenticate"), Some(challenge));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_dates_and_kongs_messages() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let url = gw.url("/plain?a=1");
    let date = http_date(0);

    assert_401(&get(&c, &url, &[]).await, "Unauthorized", "hmac");

    for alg in ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"] {
        let auth = signed(alg, &date, "GET", "/plain?a=1");
        let r = get(&c, &url, &[("date", &date), ("authorization", &auth)]).await;
        assert_eq!(r.status, 200, "{alg}: {}", r.text());
        let e = echo(&r);
        assert_eq!(e.headers["x-consumer-username"], "alice");
        assert_eq!(e.headers["x-consumer-custom-id"], "a-1");
        assert_eq!(e.headers["x-credential-identifier"], "alice-hmac");
        assert!(!e.headers.contains_key("x-anonymous-consumer"));
        // Not hidden by default.
        assert_eq!(e.headers["authorization"], auth);
    }

    // @request-target and x-date, in Proxy-Authorization.
    let text = format!("x-date: {date}\n@request-target: post /plain?a=1");
    let auth = authorization(
        "alice-hmac",
        "hmac-sha256",
        "x-date @request-target",
        &hmac_sign("hmac-sha256", SECRET, &text),
    );
    let r = send(
        &c,
        "POST",
        &url,
        &[("x-date", &date), ("proxy-authorization", &auth)],
        "body",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // A header listed but not sent is signed as `name:`.
    let text = format!("date: {date}\nx-missing:");
    let auth = authorization(
        "alice-hmac",
        "hmac-sha256",
        "date x-missing",
        &hmac_sign("hmac-sha256", SECRET, &text),
    );
    let r = get(&c, &url, &[("date", &date), ("authorization", &auth)]).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // The date: missing, unparsable, or outside the default 300 s skew either way.
    let good = signed("hmac-sha256", &date, "GET", "/plain?a=1");
    assert_401(
        &get(&c, &url, &[("authorization", &good)]).await,
        NO_DATE,
        "hmac",
    );
    for bad in ["yesterday", &http_date(-400), &http_date(400)] {
        let auth = signed("hmac-sha256", bad, "GET", "/plain?a=1");
        let r = get(&c, &url, &[("date", bad), ("authorization", &auth)]).await;
        assert_401(&r, NO_DATE, "hmac");
    }
    // Within the skew is fine. A good x-date makes up for a bad date (the signature, over
    // the date header, then fails).
    let near = http_date(-200);
    let auth = signed("hmac-sha256", &near, "GET", "/plain?a=1");
    let r = get(&c, &url, &[("date", &near), ("authorization", &auth)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(
        &c,
        &url,
        &[
            ("date", "nope"),
            ("x-date", &date),
            ("authorization", &good),
        ],
    )
    .await;
    assert_401(&r, NOT_SAME, "hmac");

    // Failures.
    let with = |auth: String| {
        let (c, url, date) = (c.clone(), url.clone(), date.clone());
        async move { get(&c, &url, &[("date", &date), ("authorization", &auth)]).await }
    };
    let sig = hmac_sign("hmac-sha256", SECRET, &format!("date: {date}"));
    assert_401(
        &with(authorization("nobody", "hmac-sha256", "date", &sig)).await,
        NOT_VALID,
        "hmac",
    );
    assert_401(
        &with(authorization("alice-hmac", "hmac-md5", "date", &sig)).await,
        NOT_VALID,
        "hmac",
    );
    assert_401(
        &with(r#"hmac username="alice-hmac", signature="x""#.to_string()).await,
        NOT_VALID,
        "hmac",
    );
    assert_401(&with("Basic YTpi".to_string()).await, NOT_VALID, "hmac");
    assert_401(&with("x".repeat(7000)).await, NOT_VALID, "hmac");
    assert_eq!(
        with(authorization("alice-hmac", "hmac-sha256", "date", &sig))
            .await
            .status,
        200
    );
    let wrong = hmac_sign("hmac-sha256", "other-secret", &format!("date: {date}"));
    assert_401(
        &with(authorization("alice-hmac", "hmac-sha256", "date", &wrong)).await,
        NOT_SAME,
        "hmac",
    );
    // Signed with one algorithm, announced as another; not base64.
    assert_401(
        &with(authorization("alice-hmac", "hmac-sha512", "date", &sig)).await,
        NOT_SAME,
        "hmac",
    );
    assert_401(
        &with(authorization("alice-hmac", "hmac-sha256", "date", "!!!")).await,
        NOT_SAME,
        "hmac",
    );
    // The request line is what was signed: another query or method does not pass.
    let r = get(
        &c,
        &gw.url("/plain?a=2"),
        &[("date", &date), ("authorization", &good)],
    )
    .await;
    assert_401(&r, NOT_SAME, "hmac");
    let r = send(
        &c,
        "DELETE",
        &url,
        &[("date", &date), ("authorization", &good)],
        "",
    )
    .await;
    assert_401(&r, NOT_SAME, "hmac");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforced_headers_algorithms_and_body_digest() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let url = gw.url("/strict");
    let challenge = "hmac realm=\"kong\"";
    let date = http_date(0);
    let body = r#"{"amount": 10}"#;
    let digest = sha256_digest(body);

    let auth = signed("hmac-sha256", &date, "POST", "/strict");
    let r = send(
        &c,
        "POST",
        &url,
        &[
            ("date", &date),
            ("digest", &digest),
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = echo(&r);
    assert_eq!(e.body, body);
    assert_eq!(e.headers["x-consumer-username"], "alice");
    // hide_credentials.
    assert!(!e.headers.contains_key("authorization"));

    let post = |headers: Vec<(&'static str, String)>, body: &'static str| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(&c, "POST", &url, &h, body).await
        }
    };
    // A wrong digest, or none with a body: the signature "does not match".
    let r = post(
        vec![
            ("date", date.clone()),
            ("digest", sha256_digest("other")),
            ("authorization", auth.clone()),
        ],
        body,
    )
    .await;
    assert_401(&r, NOT_SAME, challenge);
    let r = post(
        vec![("date", date.clone()), ("authorization", auth.clone())],
        body,
    )
    .await;
    assert_401(&r, NOT_SAME, challenge);
    // No digest and no body is fine.
    let r = post(
        vec![("date", date.clone()), ("authorization", auth.clone())],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Only hmac-sha256 is allowed here, and date and request-line must be signed.
    let sha1 = signed("hmac-sha1", &date, "POST", "/strict");
    let r = post(vec![("date", date.clone()), ("authorization", sha1)], "").await;
    assert_401(&r, NOT_VALID, challenge);
    let only_date = authorization(
        "alice-hmac",
        "hmac-sha256",
        "date",
        &hmac_sign("hmac-sha256", SECRET, &format!("date: {date}")),
    );
    let r = post(
        vec![("date", date.clone()), ("authorization", only_date)],
        "",
    )
    .await;
    assert_401(&r, NOT_VALID, challenge);
    // clock_skew 60.
    let old = http_date(-120);
    let r = post(
        vec![
            ("date", old.clone()),
            (
                "authorization",
                signed("hmac-sha256", &old, "POST", "/strict"),
            ),
        ],
        "",
    )
    .await;
    assert_401(&r, NO_DATE, challenge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_fallback() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let url = gw.url("/anon");
    let date = http_date(0);

    let e = echo(&get(&c, &url, &[("x-credential-identifier", "root")]).await);
    assert_eq!(e.headers["x-consumer-username"], "anon");
    assert_eq!(e.headers["x-anonymous-consumer"], "true");
    assert!(!e.headers.contains_key("x-credential-identifier"));
    let bad = signed("hmac-sha256", &date, "GET", "/elsewhere");
    let e = echo(&get(&c, &url, &[("date", &date), ("authorization", &bad)]).await);
    assert_eq!(e.headers["x-consumer-username"], "anon");
    let good = signed("hmac-sha256", &date, "GET", "/anon");
    let e = echo(&get(&c, &url, &[("date", &date), ("authorization", &good)]).await);
    assert_eq!(e.headers["x-consumer-username"], "alice");
    assert_eq!(e.headers["x-credential-identifier"], "alice-hmac");
}
