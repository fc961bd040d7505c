//! TLS to `https` services: Kong's default of not verifying, `tls_verify` with the service's
//! `ca_certificates` (unknown CA, name mismatch, expiry and `tls_verify_depth` give 502 with a
//! log line saying why), the SNI sent, mTLS with `client_certificate`, and keepalive.

mod common;

use common::tls::{self, Key, Validity, yaml_block};
use common::{Gateway, Upstream, echo};
use std::time::Duration;

const CA_ID: &str = "5b0e8a1c-6f7a-4c1b-9d7e-00000000000a";
const CLIENT_CERT_ID: &str = "5b0e8a1c-6f7a-4c1b-9d7e-00000000000b";

/// One https service (and its route at `/<name>`) in YAML.
fn service(name: &str, up: &Upstream, extra: &str) -> String {
    format!(
        "- name: {name}\n  url: https://{}\n{extra}  routes:\n  - name: {name}\n    paths: [\"/{name}\"]\n    preserve_host: true\n",
        up.addr
    )
}

async fn get_host(gw: &Gateway, path: &str, host: &str) -> common::Reply {
    common::get(&common::client(), &gw.url(path), &[("host", host)]).await
}

/// Waits for the gateway's log to mention `text` (log lines are written as requests end).
async fn log_mentions(gw: &Gateway, text: &str) {
    common::eventually(
        Duration::from_secs(5),
        &format!("log line with '{text}'"),
        || async { gw.log_text().contains(text) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_rules_and_failures() {
    let ca = tls::Ca::new("upstream ca");
    let good = ca.leaf(&["secure.test"], Key::Ecdsa, Validity::Current);
    let expired = ca.leaf(&["secure.test"], Key::Ecdsa, Validity::Expired);
    let inter = ca.intermediate("upstream intermediate");
    let deep = inter.leaf(&["secure.test"], Key::Ecdsa, Validity::Current);

    let (good_config, sni_seen) = tls::server_config_recording(&[&good.cert], &good.key);
    let good_up = Upstream::start_tls("good", good_config);
    let expired_up = Upstream::start_tls(
        "expired",
        tls::server_config(&[&expired.cert], &expired.key, None),
    );
    let deep_up = Upstream::start_tls(
        "deep",
        tls::server_config(&[&deep.cert, &inter.pem], &deep.key, None),
    );
    let with_ca = format!("  tls_verify: true\n  ca_certificates: [\"{CA_ID}\"]\n");
    let services = [
        service("noverify", &good_up, ""),
        service("unknownca", &good_up, "  tls_verify: true\n"),
        service("verified", &good_up, &with_ca),
        service("expired", &expired_up, &with_ca),
        service("deep", &deep_up, &with_ca),
        service(
            "shallow",
            &deep_up,
            &format!("{with_ca}  tls_verify_depth: 0\n"),
        ),
    ]
    .concat();
    let yaml = format!(
        "_format_version: \"3.0\"\nca_certificates:\n- id: {CA_ID}\n  cert: {}\nservices:\n{services}",
        yaml_block(&ca.pem, 4)
    );
    let gw = Gateway::with_config(&yaml).start();

    // Kong's default: an https service's certificate is not verified.
    let r = get_host(&gw, "/noverify", "secure.test").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(echo(&r).header("host"), Some("secure.test"));
    assert!(
        sni_seen
            .lock()
            .unwrap()
            .contains(&Some("secure.test".to_string())),
        "the Host sent upstream is the SNI: {:?}",
        sni_seen.lock().unwrap()
    );

    // Verified against the system store, which does not know the test CA.
    let r = get_host(&gw, "/unknownca", "secure.test").await;
    assert_eq!(r.status, 502);
    assert!(
        r.text()
            .contains("An invalid response was received from the upstream server")
    );
    log_mentions(&gw, "unknown CA").await;

    let r = get_host(&gw, "/verified", "secure.test").await;
    assert_eq!(r.status, 200, "{}", r.text());

    let r = get_host(&gw, "/verified", "other.test").await;
    assert_eq!(r.status, 502, "name mismatch");
    log_mentions(&gw, "does not match the upstream host name").await;

    let r = get_host(&gw, "/expired", "secure.test").await;
    assert_eq!(r.status, 502);
    log_mentions(&gw, "certificate has expired").await;

    // One intermediate: within nginx's default depth of 1, not within 0.
    let r = get_host(&gw, "/deep", "secure.test").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get_host(&gw, "/shallow", "secure.test").await;
    assert_eq!(r.status, 502);
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_with_client_certificate_and_keepalive() {
    let server_ca = tls::Ca::new("server ca");
    let client_ca = tls::Ca::new("client ca");
    let server = server_ca.leaf(&["mtls.test"], Key::Ecdsa, Validity::Current);
    let client = client_ca.leaf(&["gateway client"], Key::Ecdsa, Validity::Current);
    let up = Upstream::start_tls(
        "mtls",
        tls::server_config(&[&server.cert], &server.key, Some(&client_ca)),
    );
    let services = [
        service("anonymous", &up, ""),
        service(
            "authenticated",
            &up,
            &format!("  client_certificate: \"{CLIENT_CERT_ID}\"\n"),
        ),
        // Through an upstream entity: its client_certificate serves when the service has none.
        "- name: via-upstream\n  url: https://mtls-upstream\n  routes:\n  - name: via-upstream\n    paths: [\"/via-upstream\"]\n    preserve_host: true\n".to_string(),
    ]
    .concat();
    let yaml = format!(
        "_format_version: \"3.0\"\ncertificates:\n- id: {CLIENT_CERT_ID}\n  cert: {}\n  key: {}\nupstreams:\n- name: mtls-upstream\n  client_certificate: \"{CLIENT_CERT_ID}\"\n  targets:\n  - target: {}\nservices:\n{services}",
        yaml_block(&client.cert, 4),
        yaml_block(&client.key, 4),
        up.addr,
    );
    let gw = Gateway::with_config(&yaml).start();
    let r = get_host(&gw, "/anonymous", "mtls.test").await;
    assert_eq!(r.status, 502, "the upstream wants a client certificate");
    let before = up.conns();
    // One client connection, so one worker and its keepalive pool.
    let mut conn = common::OneConn::open(gw.proxy).await;
    for _ in 0..3 {
        let r = conn
            .send("GET", "/authenticated", &[("host", "mtls.test")], "")
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(
        up.conns() - before,
        1,
        "the TLS connection is kept alive and reused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn global_verify_setting_applies_when_tls_verify_is_unset() {
    let ca = tls::Ca::new("upstream ca");
    let leaf = ca.leaf(&["secure.test"], Key::Ecdsa, Validity::Current);
    let up = Upstream::start_tls("up", tls::server_config(&[&leaf.cert], &leaf.key, None));
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n{}{}",
        service("unset", &up, ""),
        service("verifyoff", &up, "  tls_verify: false\n"),
    );
    let dir = common::TempDir::new("trusted");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let gw = Gateway::with_config(&yaml)
        .setting("nginx_proxy_proxy_ssl_verify", "on")
        .setting("lua_ssl_trusted_certificate", ca_file.to_str().unwrap())
        .start();
    // Verified against lua_ssl_trusted_certificate.
    assert_eq!(get_host(&gw, "/unset", "secure.test").await.status, 200);
    assert_eq!(get_host(&gw, "/unset", "wrong.test").await.status, 502);
    // tls_verify = false wins over the global setting.
    assert_eq!(get_host(&gw, "/verifyoff", "wrong.test").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn large_bodies_both_ways_over_tls_on_both_sides() {
    let ca = tls::Ca::new("upstream ca");
    let leaf = ca.leaf(&["big.test"], Key::Ecdsa, Validity::Current);
    let up = Upstream::start_tls("big", tls::server_config(&[&leaf.cert], &leaf.key, None));
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n{}",
        service("big", &up, "")
    );
    let gw = Gateway::with_config(&yaml)
        .setting("proxy_listen", "127.0.0.1:0, 127.0.0.1:0 ssl")
        .start();
    let addr = gw.proxy_ssl.unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(tls::Seen::default()));
    let config = tls::client_config(&tls::ClientOpts::default(), seen.clone());
    let mut http = tls::Conn::open(addr, "big.test", config, seen)
        .await
        .http()
        .await;
    // 3 MB streamed down, then 2 MB up (buffered to a temp file, then replayed), on one
    // client connection.
    let r = http.get("big.test", "/big/big/3000000").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 3_000_000);
    let body = bytes::Bytes::from(vec![b'x'; 2_000_000]);
    let r = http
        .send_body("POST", "big.test", "/big/sink", &[], body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["received"], 2_000_000);
}
