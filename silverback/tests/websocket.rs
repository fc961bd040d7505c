//! WebSocket through the real binary, with a real client and echo upstream (tungstenite):
//! the handshake goes through the pipeline (an auth plugin can refuse it; log runs when the
//! tunnel ends), frames flow both ways until a close, and the service's timeouts close an idle
//! tunnel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// Handshake request headers the echo upstream received.
type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A WebSocket server echoing every text and binary message, recording handshake headers.
async fn echo_upstream() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                #[allow(clippy::result_large_err)] // tungstenite's callback type
                let callback = |req: &Request, resp: Response| {
                    let headers = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    record.lock().unwrap().push(headers);
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_close() {
                        break;
                    }
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_both_ways_through_the_pipeline() {
    let (up, seen) = echo_upstream().await;
    let dir = TempDir::new("ws-log");
    let log = dir.path().join("ws.json");
    let config = format!(
        r#"_format_version: "3.0"
services:
- name: ws
  url: http://{up}
  routes:
  - name: ws
    paths: [/ws]
    plugins:
    - name: file-log
      config: {{path: {}}}
    - name: response-transformer
      config: {{add: {{headers: ["x-filtered:yes"]}}}}
"#,
        log.display()
    );
    let gw = Gateway::with_config(&config).start();
    let url = format!("ws://{}/ws/chat", gw.proxy);
    let (mut ws, resp) = tokio_tungstenite::connect_async(&url).await.unwrap();
    assert_eq!(resp.status(), 101);
    // header_filter ran on the 101; Kong's headers are there.
    assert_eq!(resp.headers()["x-filtered"], "yes");
    assert!(resp.headers().contains_key("x-kong-request-id"));
    let seen_headers = seen.lock().unwrap()[0].clone();
    assert_eq!(header(&seen_headers, "upgrade"), Some("websocket"));
    assert_eq!(
        header(&seen_headers, "connection"),
        Some("keep-alive, Upgrade")
    );
    assert!(header(&seen_headers, "sec-websocket-key").is_some());
    assert_eq!(header(&seen_headers, "x-forwarded-prefix"), Some("/ws"));

    for i in 0..20 {
        let text = format!("hello {i}");
        ws.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
    }
    let big = vec![7u8; 200_000];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(big));
    assert!(
        !log.exists() || std::fs::read_to_string(&log).unwrap().is_empty(),
        "log runs when the tunnel ends, not before"
    );
    ws.close(None).await.unwrap();
    // The close handshake completes through the tunnel, then the stream ends.
    while let Some(Ok(m)) = ws.next().await {
        assert!(m.is_close(), "{m:?}");
    }
    eventually(Duration::from_secs(10), "log line written", || async {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() == 1)
    })
    .await;
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["response"]["status"], 101);
    assert_eq!(line["request"]["uri"], "/ws/chat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_plugin_refuses_the_upgrade() {
    let (up, seen) = echo_upstream().await;
    let config = format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials:
  - key: secret-key
services:
- name: ws
  url: http://{up}
  routes:
  - paths: [/ws]
    plugins:
    - name: key-auth
"#
    );
    let gw = Gateway::with_config(&config).start();
    let url = format!("ws://{}/ws", gw.proxy);
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 401);
        }
        other => panic!("expected 401, got {:?}", other.map(|(_, r)| r.status())),
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "never reached the upstream"
    );
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        url.as_str(),
    )
    .unwrap();
    req.headers_mut()
        .insert("apikey", "secret-key".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text("authorized")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("authorized")
    );
    let forwarded = seen.lock().unwrap()[0].clone();
    assert_eq!(header(&forwarded, "x-consumer-username"), Some("alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tunnels_close_after_the_services_timeout() {
    let (up, _) = echo_upstream().await;
    let config = format!(
        r#"_format_version: "3.0"
services:
- name: ws
  url: http://{up}
  read_timeout: 500
  write_timeout: 500
  routes:
  - paths: [/ws]
"#
    );
    let gw = Gateway::with_config(&config).start();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", gw.proxy))
        .await
        .unwrap();
    // Messages more often than the timeout keep it open.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        ws.send(Message::text("tick")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("tick"));
    }
    let started = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("tunnel not closed");
    assert!(
        !matches!(end, Some(Ok(Message::Text(_)))),
        "nothing but the end arrives: {end:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_request_to_a_websocket_upstream_is_not_upgraded() {
    let up = Upstream::start("plain");
    let gw = Gateway::with_config(&format!(
        "_format_version: \"3.0\"\nservices:\n{}  routes:\n  - paths: [/]\n",
        service_yaml("s", &up)
    ))
    .start();
    // An Upgrade other than websocket is not passed on (Kong only forwards websocket).
    let r = get(&client(), &gw.url("/x"), &[("upgrade", "h2c")]).await;
    assert_eq!(r.status, 200);
    let echoed = echo(&r);
    assert_eq!(echoed.header("upgrade"), None);
}
