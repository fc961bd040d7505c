//! The stream proxy against the real binary: TCP routes matched by sources and destinations,
//! retries over an upstream's targets, idle timeouts, and tls_passthrough routes picked by the
//! ClientHello's SNI with the client's TLS session ending at the upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tls_echo::{Cert, TlsEcho, connect};
use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

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
