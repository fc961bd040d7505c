//! TLS on the proxy, Admin and status listeners: certificate choice by SNI (exact, wildcards,
//! the `*` SNI, the default certificate), ECDSA or RSA by what the client accepts, certificate
//! changes without restart (Admin API and reload), protocol versions, ALPN h2, session
//! resumption, the https-only route rules and route `snis`, and `hybrid gen_cert`.

mod common;

use common::tls::{self, ClientOpts, Key, Validity, common_name, yaml_block};
use common::{Gateway, Upstream, echo};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A certificate entity in YAML with its snis.
fn cert_yaml(id: &str, pem: &tls::Pem, alt: Option<&tls::Pem>, snis: &[&str]) -> String {
    let mut y = format!(
        "- id: {id}\n  cert: {}\n  key: {}\n",
        yaml_block(&pem.cert, 4),
        yaml_block(&pem.key, 4)
    );
    if let Some(alt) = alt {
        y.push_str(&format!(
            "  cert_alt: {}\n  key_alt: {}\n",
            yaml_block(&alt.cert, 4),
            yaml_block(&alt.key, 4)
        ));
    }
    if !snis.is_empty() {
        y.push_str("  snis:\n");
        for s in snis {
            y.push_str(&format!("  - name: \"{s}\"\n"));
        }
    }
    y
}

fn with_tls(yaml: &str) -> common::GatewayBuilder {
    Gateway::with_config(yaml).setting("proxy_listen", "127.0.0.1:0, 127.0.0.1:0 ssl http2")
}

const CERT_IDS: [&str; 4] = [
    "8d3c8f7e-1b1e-4c59-9a0f-000000000001",
    "8d3c8f7e-1b1e-4c59-9a0f-000000000002",
    "8d3c8f7e-1b1e-4c59-9a0f-000000000003",
    "8d3c8f7e-1b1e-4c59-9a0f-000000000004",
];

#[tokio::test(flavor = "multi_thread")]
async fn sni_selects_exact_then_wildcards_then_default() {
    let up = Upstream::start("tls-up");
    let ca = tls::Ca::new("test ca");
    let exact = ca.leaf(&["exact.test"], Key::Ecdsa, Validity::Current);
    let prefix_wild = ca.leaf(&["prefix-wild"], Key::Ecdsa, Validity::Current);
    let suffix_wild = ca.leaf(&["suffix-wild"], Key::Ecdsa, Validity::Current);
    let default = ca.leaf(&["default.test"], Key::Ecdsa, Validity::Current);
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n{}  routes:\n  - name: r\n    paths: [\"/\"]\ncertificates:\n{}{}{}",
        common::service_yaml("s", &up),
        cert_yaml(CERT_IDS[0], &exact, None, &["exact.test"]),
        cert_yaml(CERT_IDS[1], &prefix_wild, None, &["*.wild.test"]),
        cert_yaml(CERT_IDS[2], &suffix_wild, None, &["api.example.*"]),
    );
    let dir = common::TempDir::new("tls-default");
    let cert_file = dir.path().join("default.crt");
    let key_file = dir.path().join("default.key");
    std::fs::write(&cert_file, &default.cert).unwrap();
    std::fs::write(&key_file, &default.key).unwrap();
    let gw = with_tls(&yaml)
        .setting("ssl_cert", cert_file.to_str().unwrap())
        .setting("ssl_cert_key", key_file.to_str().unwrap())
        .start();
    let addr = gw.proxy_ssl.expect("an ssl proxy listener");
    let opts = ClientOpts::default();
    for (sni, expected) in [
        ("exact.test", "exact.test"),
        ("EXACT.test", "exact.test"),
        ("a.wild.test", "prefix-wild"),
        ("b.a.wild.test", "default.test"),
        ("api.example.org", "suffix-wild"),
        ("api.example.co.uk", "default.test"),
        ("other.test", "default.test"),
    ] {
        let (reply, cert) = tls::get(addr, sni, "/x", &opts).await;
        assert_eq!(reply.status, 200, "{sni}: {}", reply.text());
        assert_eq!(common_name(&cert), expected, "certificate for {sni}");
        let e = echo(&reply);
        assert_eq!(e.header("x-forwarded-proto"), Some("https"));
    }
    // Plain HTTP on the other listener still works.
    let r = common::get(&common::client(), &gw.url("/x"), &[]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn star_sni_and_ecdsa_or_rsa_by_client() {
    let up = Upstream::start("tls-up");
    let ca = tls::Ca::new("test ca");
    let rsa = ca.leaf(&["dual-rsa"], Key::Rsa, Validity::Current);
    let ecdsa = ca.leaf(&["dual-ecdsa"], Key::Ecdsa, Validity::Current);
    let star = ca.leaf(&["star"], Key::Ecdsa, Validity::Current);
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n{}  routes:\n  - name: r\n    paths: [\"/\"]\ncertificates:\n{}{}",
        common::service_yaml("s", &up),
        cert_yaml(CERT_IDS[0], &rsa, Some(&ecdsa), &["dual.test"]),
        cert_yaml(CERT_IDS[1], &star, None, &["*"]),
    );
    let gw = with_tls(&yaml).start();
    let addr = gw.proxy_ssl.unwrap();
    let (_, cert) = tls::get(addr, "dual.test", "/", &ClientOpts::default()).await;
    assert_eq!(
        common_name(&cert),
        "dual-ecdsa",
        "ECDSA to a client that takes it"
    );
    let rsa_only = ClientOpts {
        rsa_only: true,
        ..ClientOpts::default()
    };
    let (reply, cert) = tls::get(addr, "dual.test", "/", &rsa_only).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        common_name(&cert),
        "dual-rsa",
        "RSA to a client that cannot take ECDSA"
    );
    let (_, cert) = tls::get(addr, "whatever.test", "/", &ClientOpts::default()).await;
    assert_eq!(common_name(&cert), "star", "the '*' SNI before the default");
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_alpn_and_session_resumption() {
    let up = Upstream::start("tls-up");
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n{}  routes:\n  - name: r\n    paths: [\"/\"]\n",
        common::service_yaml("s", &up)
    );
    let gw = with_tls(&yaml).start();
    let addr = gw.proxy_ssl.unwrap();
    // The generated default certificate under the prefix.
    assert!(gw.prefix().join("ssl/kong-default-ecdsa.crt").exists());

    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let opts = ClientOpts {
            versions: vec![version],
            ..ClientOpts::default()
        };
        let seen = Arc::new(Mutex::new(tls::Seen::default()));
        let config = tls::client_config(&opts, seen.clone());
        let conn = tls::Conn::open(addr, "v.test", config.clone(), seen.clone()).await;
        assert_eq!(conn.version(), Some(version.version));
        assert_eq!(common_name(&conn.cert()), "localhost");
        assert!(!conn.resumed());
        let mut http = conn.http().await;
        // Keepalive: two requests on one connection.
        for _ in 0..2 {
            assert_eq!(http.get("v.test", "/").await.status, 200);
        }
        drop(http);
        // The same client again resumes its session (ticket or session cache).
        let again = tls::Conn::open(addr, "v.test", config, seen).await;
        assert!(again.resumed(), "{version:?} session resumed");
        let mut http = again.http().await;
        assert_eq!(http.get("v.test", "/").await.status, 200);
    }

    let h2 = ClientOpts {
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        ..ClientOpts::default()
    };
    let seen = Arc::new(Mutex::new(tls::Seen::default()));
    let conn = tls::Conn::open(addr, "v.test", tls::client_config(&h2, seen.clone()), seen).await;
    assert_eq!(conn.alpn().as_deref(), Some(&b"h2"[..]));
    let mut http = conn.http().await;
    let r = http.get("v.test", "/h2").await;
    assert_eq!(r.status, 200);
    let e = echo(&r);
    assert_eq!(e.header("x-forwarded-proto"), Some("https"));
    assert!(
        e.header("via").unwrap().starts_with("2 "),
        "{:?}",
        e.header("via")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cipher_suite_settings_limit_versions() {
    let gw = Gateway::without_config()
        .setting("proxy_listen", "127.0.0.1:0 ssl")
        .setting("ssl_cipher_suite", "modern")
        .start();
    let addr = gw.proxy_ssl.unwrap();
    let seen = Arc::new(Mutex::new(tls::Seen::default()));
    let tls12 = ClientOpts {
        versions: vec![&rustls::version::TLS12],
        ..ClientOpts::default()
    };
    let refused = tls::Conn::try_open(
        addr,
        "x.test",
        tls::client_config(&tls12, seen.clone()),
        seen.clone(),
    )
    .await;
    assert!(refused.is_err(), "modern is TLS 1.3 only");
    let conn = tls::Conn::open(
        addr,
        "x.test",
        tls::client_config(&ClientOpts::default(), seen.clone()),
        seen,
    )
    .await;
    assert_eq!(conn.version(), Some(rustls::ProtocolVersion::TLSv1_3));
    // No route: Kong's 404 over TLS.
    assert_eq!(conn.http().await.get("x.test", "/").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn https_only_routes_redirects_and_route_snis() {
    let up = Upstream::start("tls-up");
    let yaml = format!(
        r#"_format_version: "3.0"
services:
{}  routes:
  - name: secure
    paths: ["/secure"]
    protocols: ["https"]
  - name: moved
    paths: ["/moved"]
    protocols: ["https"]
    https_redirect_status_code: 308
  - name: plain-only
    paths: ["/plain"]
    protocols: ["http"]
  - name: by-sni
    paths: ["/sni"]
    protocols: ["https"]
    snis: ["only.test"]
"#,
        common::service_yaml("s", &up)
    );
    let gw = with_tls(&yaml).start();
    let addr = gw.proxy_ssl.unwrap();
    let client = common::client();
    let r = common::get(&client, &gw.url("/secure"), &[]).await;
    assert_eq!(r.status, 426);
    assert!(r.text().contains("Please use HTTPS protocol"));
    let r = common::get(&client, &gw.url("/moved?a=1"), &[("host", "site.test")]).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("https://site.test/moved?a=1"));
    let opts = ClientOpts::default();
    let (r, _) = tls::get(addr, "any.test", "/secure", &opts).await;
    assert_eq!(r.status, 200);
    let (r, _) = tls::get(addr, "any.test", "/moved", &opts).await;
    assert_eq!(r.status, 200);
    // An http-only route is matched over TLS as well, as in Kong.
    let (r, _) = tls::get(addr, "any.test", "/plain", &opts).await;
    assert_eq!(r.status, 200);
    let (r, _) = tls::get(addr, "only.test", "/sni", &opts).await;
    assert_eq!(r.status, 200);
    let (r, _) = tls::get(addr, "other.test", "/sni", &opts).await;
    assert_eq!(r.status, 404, "route snis are matched against the SNI");
}

/// Polls new handshakes for `sni` until the served certificate's CN is `cn`.
async fn wait_for_cert(addr: std::net::SocketAddr, sni: &str, cn: &str) {
    let opts = ClientOpts::default();
    common::eventually(
        Duration::from_secs(10),
        &format!("{sni} served by {cn}"),
        || async {
            let (_, cert) = tls::get(addr, sni, "/", &opts).await;
            common_name(&cert) == cn
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_change_through_the_admin_api_without_restart() {
    let gw = Gateway::with_database()
        .setting("proxy_listen", "127.0.0.1:0, 127.0.0.1:0 ssl")
        .start();
    let addr = gw.proxy_ssl.unwrap();
    let ca = tls::Ca::new("test ca");
    let first = ca.leaf(&["first"], Key::Ecdsa, Validity::Current);
    let second = ca.leaf(&["second"], Key::Ecdsa, Validity::Current);
    let r = gw
        .admin(
            "POST",
            "/certificates",
            json!({"cert": first.cert, "key": first.key, "snis": ["swap.test"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    wait_for_cert(addr, "swap.test", "first").await;
    let r = gw
        .admin(
            "PATCH",
            &format!("/certificates/{id}"),
            json!({"cert": second.cert, "key": second.key}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for_cert(addr, "swap.test", "second").await;
    let r = gw
        .admin(
            "DELETE",
            &format!("/certificates/{id}"),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(r.status, 204);
    wait_for_cert(addr, "swap.test", "localhost").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_change_on_reload() {
    let ca = tls::Ca::new("test ca");
    let first = ca.leaf(&["first"], Key::Ecdsa, Validity::Current);
    let second = ca.leaf(&["second"], Key::Rsa, Validity::Current);
    let config = |pem: &tls::Pem| {
        format!(
            "_format_version: \"3.0\"\ncertificates:\n{}",
            cert_yaml(CERT_IDS[0], pem, None, &["reload.test"])
        )
    };
    let gw = with_tls(&config(&first)).start();
    let addr = gw.proxy_ssl.unwrap();
    wait_for_cert(addr, "reload.test", "first").await;
    let (code, out) = gw.reload_with(&config(&second));
    assert_eq!(code, 0, "{out}");
    wait_for_cert(addr, "reload.test", "second").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_and_status_apis_over_tls() {
    let gw = Gateway::without_config()
        .setting("admin_listen", "127.0.0.1:0 ssl http2")
        .setting("status_listen", "127.0.0.1:0 ssl")
        .start();
    let admin = gw.admin_ssl.expect("an ssl admin listener");
    let status = gw.status_ssl.expect("an ssl status listener");
    assert!(
        gw.prefix()
            .join("ssl/admin-kong-default-ecdsa.crt")
            .exists()
    );
    let opts = ClientOpts::default();
    let (r, cert) = tls::get(admin, "localhost", "/", &opts).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tagline"], "Welcome to kong");
    assert_eq!(common_name(&cert), "localhost");
    let h2 = ClientOpts {
        alpn: vec![b"h2".to_vec()],
        ..ClientOpts::default()
    };
    let (r, _) = tls::get(admin, "localhost", "/services", &h2).await;
    assert_eq!(r.status, 200);
    let (r, _) = tls::get(status, "localhost", "/status", &opts).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["server"]["total_requests"].is_number());
}

#[test]
fn hybrid_gen_cert_writes_a_pair_once() {
    let dir = common::TempDir::new("gen-cert");
    let cert = dir.path().join("cluster.crt");
    let key = dir.path().join("cluster.key");
    let args = [
        "hybrid",
        "gen_cert",
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    ];
    let (code, out) = common::run_cli(&args, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Successfully generated certificate/key pairs"));
    let pem = std::fs::read_to_string(&cert).unwrap();
    let der = rustls::pki_types::CertificateDer::from(
        x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .unwrap()
            .1
            .contents,
    );
    assert_eq!(common_name(&der), "kong_clustering");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (code, out) = common::run_cli(&args, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("already exists"), "{out}");
    let (code, out) = common::run_cli(&["hybrid", "gen_cert", "only-one"], &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("both cert and key path needs to be provided"),
        "{out}"
    );
}

/// Whether a second handshake of the same client resumes the first one's session.
async fn resumes(
    addr: std::net::SocketAddr,
    version: &'static rustls::SupportedProtocolVersion,
) -> bool {
    let opts = ClientOpts {
        versions: vec![version],
        ..ClientOpts::default()
    };
    let seen = Arc::new(Mutex::new(tls::Seen::default()));
    let config = tls::client_config(&opts, seen.clone());
    let mut http = tls::Conn::open(addr, "r.test", config.clone(), seen.clone())
        .await
        .http()
        .await;
    // A request makes the client read the tickets sent after the handshake.
    http.get("r.test", "/").await;
    drop(http);
    tls::Conn::open(addr, "r.test", config, seen)
        .await
        .resumed()
}

#[tokio::test(flavor = "multi_thread")]
async fn resumption_by_session_cache_without_tickets() {
    let gw = Gateway::without_config()
        .setting("proxy_listen", "127.0.0.1:0 ssl")
        .setting("ssl_session_tickets", "off")
        .start();
    let addr = gw.proxy_ssl.unwrap();
    assert!(resumes(addr, &rustls::version::TLS12).await);
    assert!(resumes(addr, &rustls::version::TLS13).await);
    let gw = Gateway::without_config()
        .setting("proxy_listen", "127.0.0.1:0 ssl")
        .setting("ssl_session_tickets", "off")
        .setting("ssl_session_cache_size", "0")
        .start();
    let addr = gw.proxy_ssl.unwrap();
    assert!(!resumes(addr, &rustls::version::TLS12).await);
    assert!(!resumes(addr, &rustls::version::TLS13).await);
}
