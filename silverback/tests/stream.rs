//! The stream proxy against the real binary: TCP routes matched by sources and destinations,
//! retries over an upstream's targets, idle timeouts, tls_passthrough routes picked by the
//! ClientHello's SNI with the client's TLS session ending at the upstream, tls routes whose TLS
//! ends at the gateway with the certificate of their SNI, and tls services reached over TLS with
//! the service's verification settings; udp routes, whose datagrams travel in per-client
//! sessions that end when idle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tls::{self as certs, Key, Validity, yaml_block};
use common::tls_echo::{Cert, TlsEcho, connect};
use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

/// A TCP server that greets each connection with `<tag>\n` and echoes what it reads.
async fn tcp_echo(tag: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tag = format!("{tag}\n");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tag = tag.clone();
            tokio::spawn(async move {
                let _ = s.write_all(tag.as_bytes()).await;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Connects from `source` (a loopback address) to `to`.
async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// The greeting of the upstream reached, and an echo through it.
async fn greeting_and_echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
) -> String {
    let mut r = BufReader::new(stream);
    let mut tag = String::new();
    tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut tag))
        .await
        .expect("no greeting")
        .unwrap();
    r.get_mut().write_all(b"ping\n").await.unwrap();
    let mut echoed = String::new();
    r.read_line(&mut echoed).await.unwrap();
    assert_eq!(echoed, "ping\n");
    tag.trim().to_string()
}

/// Reads until the gateway closes the connection; panics after `within`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(mut s: S, within: Duration) {
    let mut buf = Vec::new();
    tokio::time::timeout(within, s.read_to_end(&mut buf))
        .await
        .expect("connection not closed")
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_routes_by_destination_and_source() {
    let (a, b, c) = (
        tcp_echo("a").await,
        tcp_echo("b").await,
        tcp_echo("c").await,
    );
    let config = format!(
        r#"_format_version: "3.0"
services:
- name: a
  url: tcp://{a}
  routes:
  - name: to-first-address
    protocols: [tcp]
    destinations: [{{ip: 127.0.0.1}}]
- name: b
  url: tcp://{b}
  routes:
  - name: to-second-address
    protocols: [tcp]
    destinations: [{{ip: 127.0.0.2}}]
- name: c
  url: tcp://{c}
  routes:
  - name: from-third-address
    protocols: [tcp]
    sources: [{{ip: 127.0.0.3/32}}, {{ip: 10.0.0.0/8, port: 1}}]
"#
    );
    let gw = Gateway::with_config(&config)
        .setting("stream_listen", "127.0.0.1:0, 127.0.0.2:0 reuseport")
        .start();
    let listens = gw.stream_addrs();
    assert_eq!(listens.len(), 2, "{}", gw.log_text());
    let first = TcpStream::connect(listens[0]).await.unwrap();
    assert_eq!(greeting_and_echo(first).await, "a");
    let second = TcpStream::connect(listens[1]).await.unwrap();
    assert_eq!(greeting_and_echo(second).await, "b");
    // A source rule outranks a destination rule.
    for listen in &listens {
        let from_third = connect_from("127.0.0.3", *listen).await;
        assert_eq!(greeting_and_echo(from_third).await, "c");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_closes_and_retries_reach_a_live_target() {
    let live = tcp_echo("live").await;
    // A port nothing listens on.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let config = format!(
        r#"_format_version: "3.0"
upstreams:
- name: pool
  targets:
  - target: {dead}
  - target: {live}
services:
- name: balanced
  host: pool
  protocol: tcp
  retries: 2
  connect_timeout: 1000
  routes:
  - name: sources-only
    protocols: [tcp]
    sources: [{{ip: 127.0.0.1}}]
"#
    );
    let gw = Gateway::with_config(&config)
        .setting("stream_listen", "127.0.0.1:0")
        .start();
    let listen = gw.stream_addrs()[0];
    // Round-robin sends every other first attempt to the dead target.
    for _ in 0..4 {
        let s = TcpStream::connect(listen).await.unwrap();
        assert_eq!(greeting_and_echo(s).await, "live");
    }
    assert!(gw.log_text().contains("stream upstream connect failed"));
    // No route for this source: closed at once.
    let other = connect_from("127.0.0.9", listen).await;
    closed_within(other, Duration::from_secs(5)).await;
    assert!(gw.log_text().contains("no Route found with those values"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_services_timeout() {
    let up = tcp_echo("up").await;
    let config = format!(
        r#"_format_version: "3.0"
services:
- name: slow
  url: tcp://{up}
  read_timeout: 400
  write_timeout: 400
  routes:
  - protocols: [tcp]
    destinations: [{{port: 1}}, {{ip: 127.0.0.0/8}}]
"#
    );
    let gw = Gateway::with_config(&config)
        .setting("stream_listen", "127.0.0.1:0")
        .start();
    let s = TcpStream::connect(gw.stream_addrs()[0]).await.unwrap();
    let mut r = BufReader::new(s);
    let mut tag = String::new();
    r.read_line(&mut tag).await.unwrap();
    assert_eq!(tag, "up\n");
    // Traffic keeps it open past the timeout...
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        r.get_mut().write_all(b"x\n").await.unwrap();
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        assert_eq!(line, "x\n");
    }
    // ...silence closes it.
    let started = Instant::now();
    closed_within(r, Duration::from_secs(5)).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_passthrough_by_sni() {
    let (cert_a, cert_b) = (Cert::self_signed("a.test"), Cert::self_signed("b.test"));
    let (a, b) = (
        TlsEcho::start("a", &cert_a).await,
        TlsEcho::start("b", &cert_b).await,
    );
    let config = format!(
        r#"_format_version: "3.0"
services:
- name: a
  url: tcp://{}
  routes:
  - name: pass-a
    protocols: [tls_passthrough]
    snis: [a.test]
- name: b
  url: tcp://{}
  routes:
  - name: pass-b
    protocols: [tls_passthrough]
    snis: ["*.b.test", b.test]
"#,
        a.addr, b.addr
    );
    let gw = Gateway::with_config(&config)
        .setting("stream_listen", "127.0.0.1:0 ssl")
        .start();
    let listen = gw.stream_addrs()[0];
    // Each client trusts only its upstream's certificate: the handshake succeeding shows the
    // session ends at that upstream, not at the gateway.
    let tls = connect(listen, "a.test", cert_a.client_config())
        .await
        .unwrap();
    assert_eq!(greeting_and_echo(tls).await, "a");
    let tls = connect(listen, "b.test", cert_b.client_config())
        .await
        .unwrap();
    assert_eq!(greeting_and_echo(tls).await, "b");
    // The upstream's certificate is the one the client sees.
    let tls = connect(listen, "b.test", cert_a.client_config()).await;
    assert!(tls.is_err(), "b's certificate must not pass as a's");
    // An SNI no route has: closed without a handshake.
    assert!(
        connect(listen, "c.test", cert_a.client_config())
            .await
            .is_err()
    );
}

/// A client that trusts `ca` only.
fn trusting(ca: &certs::Ca) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).unwrap();
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_routes_terminate_with_the_certificate_of_their_sni() {
    let ca = certs::Ca::new("stream ca");
    let exact = ca.leaf(&["t.test"], Key::Ecdsa, Validity::Current);
    let wildcard = ca.leaf(&["*.w.test"], Key::Rsa, Validity::Current);
    let (plain_t, plain_w) = (tcp_echo("t").await, tcp_echo("w").await);
    let config = format!(
        r#"_format_version: "3.0"
certificates:
- cert: {}
  key: {}
  snis: [t.test]
- cert: {}
  key: {}
  snis: ["*.w.test"]
services:
- name: t
  url: tcp://{plain_t}
  routes:
  - name: terminate-t
    protocols: [tls]
    snis: [t.test]
- name: w
  url: tcp://{plain_w}
  routes:
  - name: terminate-w
    protocols: [tls]
    snis: [one.w.test]
"#,
        yaml_block(&exact.cert, 4),
        yaml_block(&exact.key, 4),
        yaml_block(&wildcard.cert, 4),
        yaml_block(&wildcard.key, 4),
    );
    let gw = Gateway::with_config(&config)
        .setting("stream_listen", "127.0.0.1:0 ssl")
        .start();
    let listen = gw.stream_addrs()[0];
    // The client trusts the CA of the gateway's certificates, and the upstream speaks plain
    // TCP: the session ends at the gateway, with the certificate of the route's SNI.
    let tls = connect(listen, "t.test", trusting(&ca)).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(certs::common_name(&presented), "t.test");
    assert_eq!(greeting_and_echo(tls).await, "t");
    let tls = connect(listen, "one.w.test", trusting(&ca)).await.unwrap();
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(certs::common_name(&presented), "*.w.test");
    assert_eq!(greeting_and_echo(tls).await, "w");
    // A name no route has: closed before any handshake.
    assert!(connect(listen, "other.test", trusting(&ca)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_services_are_reached_over_tls_and_verified_as_configured() {
    const CA_ID: &str = "5b0e8a1c-6f7a-4c1b-9d7e-0000000000c1";
    let ca = certs::Ca::new("stream upstream ca");
    let leaf = ca.leaf(&["127.0.0.1"], Key::Ecdsa, Validity::Current);
    let up = TlsEcho::with_config(
        "secure",
        certs::server_config(&[&leaf.cert], &leaf.key, None),
    )
    .await;
    let config = format!(
        r#"_format_version: "3.0"
ca_certificates:
- id: {CA_ID}
  cert: {}
services:
- name: verified
  url: tls://{}
  tls_verify: true
  ca_certificates: ["{CA_ID}"]
  routes:
  - name: to-first-address
    protocols: [tcp]
    destinations: [{{ip: 127.0.0.1}}]
- name: unknown-ca
  url: tls://{}
  tls_verify: true
  retries: 0
  routes:
  - name: to-second-address
    protocols: [tcp]
    destinations: [{{ip: 127.0.0.2}}]
- name: unverified
  url: tls://{}
  routes:
  - name: to-third-address
    protocols: [tcp]
    destinations: [{{ip: 127.0.0.3}}]
"#,
        yaml_block(&ca.pem, 4),
        up.addr,
        up.addr,
        up.addr,
    );
    let gw = Gateway::with_config(&config)
        .setting(
            "stream_listen",
            "127.0.0.1:0, 127.0.0.2:0 reuseport, 127.0.0.3:0 reuseport",
        )
        .start();
    let listens = gw.stream_addrs();
    assert_eq!(listens.len(), 3, "{}", gw.log_text());
    // Plain from the client, TLS to the upstream, verified with the service's CA.
    let verified = TcpStream::connect(listens[0]).await.unwrap();
    assert_eq!(greeting_and_echo(verified).await, "secure");
    // Kong's default: not verified.
    let unverified = TcpStream::connect(listens[2]).await.unwrap();
    assert_eq!(greeting_and_echo(unverified).await, "secure");
    // Verification without a CA that knows the certificate fails; the log says why.
    let refused = TcpStream::connect(listens[1]).await.unwrap();
    closed_within(refused, Duration::from_secs(5)).await;
    common::eventually(
        Duration::from_secs(5),
        "log line with the reason",
        || async { gw.log_text().contains("unknown CA") },
    )
    .await;
}

/// A UDP server that answers each datagram with `<tag> <sender's port> <datagram>` (twice for
/// the datagram `twice`).
async fn udp_echo(tag: &str) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let tag = tag.to_string();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let reply = format!(
                "{tag} {} {}",
                from.port(),
                String::from_utf8_lossy(&buf[..n])
            );
            let copies = if &buf[..n] == b"twice" { 2 } else { 1 };
            for _ in 0..copies {
                let _ = socket.send_to(reply.as_bytes(), from).await;
            }
        }
    });
    addr
}

/// Sends `text` to `to` from `socket` and returns the answer's fields (tag, port the upstream
/// saw, echoed text).
async fn udp_ask(socket: &UdpSocket, to: SocketAddr, text: &str) -> (String, u16, String) {
    socket.send_to(text.as_bytes(), to).await.unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("no udp answer")
        .unwrap();
    assert_eq!(
        from, to,
        "the answer comes from the address the client sent to"
    );
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    let mut parts = answer.splitn(3, ' ');
    (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_routes_relay_datagrams_in_sessions() {
    let (a, b) = (udp_echo("a").await, udp_echo("b").await);
    let config = format!(
        r#"_format_version: "3.0"
services:
- name: a
  url: udp://{a}
  read_timeout: 400
  routes:
  - name: udp-first-address
    protocols: [udp]
    destinations: [{{ip: 127.0.0.1}}]
- name: b
  url: udp://{b}
  routes:
  - name: udp-second-address
    protocols: [udp]
    destinations: [{{ip: 127.0.0.2}}]
"#
    );
    let gw = Gateway::with_config(&config)
        .setting(
            "stream_listen",
            "127.0.0.1:0 udp, 127.0.0.2:0 udp reuseport",
        )
        .start();
    let listens = gw.stream_addrs();
    assert_eq!(listens.len(), 2, "{}", gw.log_text());
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (tag, port, text) = udp_ask(&client, listens[0], "one").await;
    assert_eq!((tag.as_str(), text.as_str()), ("a", "one"));
    // The same client's next datagram goes through the same session (same upstream socket).
    let (_, again, text) = udp_ask(&client, listens[0], "two").await;
    assert_eq!((again, text.as_str()), (port, "two"));
    // Another client gets a session of its own.
    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_, other_port, _) = udp_ask(&other, listens[0], "three").await;
    assert_ne!(other_port, port);
    // Every reply of the upstream reaches the client (nginx's default `proxy_responses`).
    let first = udp_ask(&other, listens[0], "twice").await;
    let mut buf = [0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), other.recv_from(&mut buf))
        .await
        .expect("no second reply")
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        format!("a {} twice", first.1)
    );
    // Routed by destination.
    let (tag, _, text) = udp_ask(&client, listens[1], "four").await;
    assert_eq!((tag.as_str(), text.as_str()), ("b", "four"));
    // After the service's read_timeout without traffic the session ends; the next datagram
    // opens a new one.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (_, later, text) = udp_ask(&client, listens[0], "five").await;
    assert_eq!(text, "five");
    assert_ne!(later, port, "a new session after the idle timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_accepts_stream_routes_as_kong() {
    let gw = Gateway::with_database().start();
    let r = gw
        .admin(
            "POST",
            "/services",
            serde_json::json!({"name": "s", "url": "tcp://127.0.0.1:9"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let ok = gw
        .admin(
            "POST",
            "/services/s/routes",
            serde_json::json!({"protocols": ["tls_passthrough"], "snis": ["x.test"]}),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text());
    let r = gw
        .admin(
            "POST",
            "/services/s/routes",
            serde_json::json!({"protocols": ["tcp"], "destinations": [{"ip": "10.0.0.0/8", "port": 80}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let bad = gw
        .admin(
            "POST",
            "/services/s/routes",
            serde_json::json!({"protocols": ["tcp"], "paths": ["/x"]}),
        )
        .await;
    assert_eq!(bad.status, 400);
    let body = bad.json();
    assert_eq!(
        body["fields"]["paths"],
        "cannot set 'paths' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'"
    );
}
