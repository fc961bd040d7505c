//! gRPC through the real binary, with a real gRPC server and client (tonic, messages written
//! by hand, no protoc): unary, client, server and bidirectional streaming calls over h2c to an
//! h2c upstream and over TLS to a grpcs upstream, statuses in trailers passed through, and Kong's rules: 415 and 426 for what
//! is not gRPC over HTTP/2, and gateway errors in the gRPC form with Kong's status mapping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use http::uri::PathAndQuery;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

#[derive(Clone, PartialEq, prost::Message)]
struct Msg {
    #[prost(string, tag = "1")]
    text: String,
}

fn msg(text: impl Into<String>) -> Msg {
    Msg { text: text.into() }
}

type Codec = ProstCodec<Msg, Msg>;

/// Request heads the test server received: `:authority`, then selected headers.
type Seen = Arc<Mutex<Vec<http::request::Parts>>>;

async fn dispatch(
    req: http::Request<hyper::body::Incoming>,
    seen: Seen,
) -> Result<http::Response<tonic::body::Body>, Infallible> {
    let (parts, body) = req.into_parts();
    seen.lock().unwrap().push(parts.clone());
    let path = parts.uri.path().to_string();
    let req = http::Request::from_parts(parts, body);
    let mut grpc = tonic::server::Grpc::new(Codec::default());
    let resp = match path.as_str() {
        "/test.Echo/Unary" => {
            let svc = tower::service_fn(|r: tonic::Request<Msg>| async move {
                Ok::<_, Status>(tonic::Response::new(msg(format!(
                    "hello {}",
                    r.into_inner().text
                ))))
            });
            grpc.unary(svc, req).await
        }
        "/test.Echo/Fail" => {
            let svc = tower::service_fn(|_: tonic::Request<Msg>| async move {
                Err::<tonic::Response<Msg>, _>(Status::not_found("no such thing"))
            });
            grpc.unary(svc, req).await
        }
        "/test.Echo/Count" => {
            let svc = tower::service_fn(|r: tonic::Request<Msg>| async move {
                let n: usize = r.into_inner().text.parse().unwrap_or(0);
                let items: Vec<Result<Msg, Status>> =
                    (0..n).map(|i| Ok(msg(i.to_string()))).collect();
                Ok::<_, Status>(tonic::Response::new(futures_util::stream::iter(items)))
            });
            grpc.server_streaming(svc, req).await
        }
        "/test.Echo/CountThenFail" => {
            let svc = tower::service_fn(|_: tonic::Request<Msg>| async move {
                let items = vec![Ok(msg("one")), Err(Status::resource_exhausted("enough"))];
                Ok::<_, Status>(tonic::Response::new(futures_util::stream::iter(items)))
            });
            grpc.server_streaming(svc, req).await
        }
        "/test.Echo/Join" => {
            let svc = tower::service_fn(|r: tonic::Request<tonic::Streaming<Msg>>| async move {
                let mut s = r.into_inner();
                let mut all = Vec::new();
                while let Some(m) = s.message().await? {
                    all.push(m.text);
                }
                Ok::<_, Status>(tonic::Response::new(msg(all.join(","))))
            });
            grpc.client_streaming(svc, req).await
        }
        "/test.Echo/Chat" => {
            let svc = tower::service_fn(|r: tonic::Request<tonic::Streaming<Msg>>| async move {
                let out = r
                    .into_inner()
                    .map(|m| m.map(|m| msg(format!("echo {}", m.text))));
                Ok::<_, Status>(tonic::Response::new(out))
            });
            grpc.streaming(svc, req).await
        }
        _ => Status::unimplemented("no such method").into_http(),
    };
    Ok(resp)
}

/// A gRPC server over h2c (prior knowledge), recording each request head.
async fn grpc_server() -> (SocketAddr, Seen) {
    grpc_server_on(None).await
}

/// The same over TLS when `tls` is given (h2 by ALPN: a grpcs upstream).
async fn grpc_server_on(tls: Option<Arc<rustls::ServerConfig>>) -> (SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| dispatch(req, record.clone()));
                let h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                let _ = match acceptor {
                    None => h2.serve_connection(TokioIo::new(stream), svc).await,
                    Some(a) => match a.accept(stream).await {
                        Ok(tls) => h2.serve_connection(TokioIo::new(tls), svc).await,
                        Err(_) => return,
                    },
                };
            });
        }
    });
    (addr, seen)
}

async fn client(gw: &Gateway) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", gw.proxy))
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(channel)
}

async fn unary(
    grpc: &mut tonic::client::Grpc<tonic::transport::Channel>,
    path: &'static str,
    text: &str,
) -> Result<Msg, Status> {
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(msg(text)),
        PathAndQuery::from_static(path),
        Codec::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A server-streaming call: the upstream counts to `n`; the messages received.
async fn count(grpc: &mut tonic::client::Grpc<tonic::transport::Channel>, n: u32) -> Vec<String> {
    grpc.ready().await.unwrap();
    let mut stream = grpc
        .server_streaming(
            tonic::Request::new(msg(n.to_string())),
            PathAndQuery::from_static("/test.Echo/Count"),
            Codec::default(),
        )
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        got.push(m.text);
    }
    got
}

fn config(up: SocketAddr) -> String {
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials:
  - key: grpc-key
services:
- name: echo
  url: grpc://{up}
  routes:
  - name: echo
    protocols: [grpc]
    paths: [/test.Echo/]
  - name: secure-only
    protocols: [grpcs]
    paths: [/test.Secure/]
  - name: authenticated
    protocols: [grpc]
    paths: [/test.Auth/]
    plugins:
    - name: key-auth
- name: down
  url: grpc://{dead}
  retries: 1
  routes:
  - protocols: [grpc]
    paths: [/test.Down/]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_and_streaming_calls_pass_through() {
    let (up, seen) = grpc_server().await;
    let gw = Gateway::with_config(&config(up)).start();
    let mut grpc = client(&gw).await;

    assert_eq!(
        unary(&mut grpc, "/test.Echo/Unary", "world").await.unwrap(),
        msg("hello world")
    );
    let head = seen.lock().unwrap().last().cloned().unwrap();
    // Kong's Host for the service (non-default port), h2 to the upstream, gRPC's te.
    assert_eq!(head.uri.authority().unwrap().as_str(), up.to_string());
    assert_eq!(head.version, http::Version::HTTP_2);
    assert_eq!(head.headers["te"], "trailers");
    assert_eq!(head.headers["x-forwarded-proto"], "http");
    assert!(
        head.headers["via"]
            .to_str()
            .unwrap()
            .starts_with("2 silverback")
    );
    assert!(head.headers.contains_key("x-kong-request-id"));

    // Server streaming.
    let got = count(&mut grpc, 5).await;
    assert_eq!(got, ["0", "1", "2", "3", "4"]);

    // Client streaming.
    grpc.ready().await.unwrap();
    let parts = futures_util::stream::iter(["a", "b", "c"].map(msg));
    let joined = grpc
        .client_streaming(
            tonic::Request::new(parts),
            PathAndQuery::from_static("/test.Echo/Join"),
            Codec::default(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(joined, msg("a,b,c"));

    // Bidirectional: each answer arrives before the next message is sent.
    let (tx, rx) = tokio::sync::mpsc::channel::<Msg>(1);
    let outgoing =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    grpc.ready().await.unwrap();
    let call = grpc.streaming(
        tonic::Request::new(outgoing),
        PathAndQuery::from_static("/test.Echo/Chat"),
        Codec::default(),
    );
    tx.send(msg("first")).await.unwrap();
    let mut answers = call.await.unwrap().into_inner();
    for i in 0..5 {
        if i > 0 {
            tx.send(msg(i.to_string())).await.unwrap();
        }
        let expected = if i == 0 {
            "echo first".to_string()
        } else {
            format!("echo {i}")
        };
        let m = tokio::time::timeout(Duration::from_secs(5), answers.message())
            .await
            .expect("no answer while the call is open")
            .unwrap()
            .unwrap();
        assert_eq!(m.text, expected);
    }
    drop(tx);
    assert!(answers.message().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcs_services_are_reached_over_tls() {
    let ca = common::tls::Ca::new("grpcs ca");
    let leaf = ca.leaf(
        &["grpc.test"],
        common::tls::Key::Ecdsa,
        common::tls::Validity::Current,
    );
    let mut tls = (*common::tls::server_config(&[&leaf.cert], &leaf.key, None)).clone();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let (up, seen) = grpc_server_on(Some(Arc::new(tls))).await;
    let config = format!(
        r#"_format_version: "3.0"
services:
- name: secure
  url: grpcs://{up}
  routes:
  - protocols: [grpc]
    paths: [/test.Echo/]
"#
    );
    let gw = Gateway::with_config(&config).start();
    let mut grpc = client(&gw).await;
    assert_eq!(
        unary(&mut grpc, "/test.Echo/Unary", "tls").await.unwrap(),
        msg("hello tls")
    );
    // Server streaming over the same multiplexed TLS connection.
    let got = count(&mut grpc, 3).await;
    assert_eq!(got, ["0", "1", "2"]);
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 2);
    for head in &heads {
        assert_eq!(head.uri.scheme_str(), Some("https"));
        assert_eq!(head.uri.authority().unwrap().as_str(), up.to_string());
        assert_eq!(head.headers["te"], "trailers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_pass_through_in_trailers() {
    let (up, _) = grpc_server().await;
    let gw = Gateway::with_config(&config(up)).start();
    let mut grpc = client(&gw).await;
    let err = unary(&mut grpc, "/test.Echo/Fail", "x").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "no such thing");
    // A status after messages travels in trailers.
    grpc.ready().await.unwrap();
    let mut stream = grpc
        .server_streaming(
            tonic::Request::new(msg("")),
            PathAndQuery::from_static("/test.Echo/CountThenFail"),
            Codec::default(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap(), Some(msg("one")));
    let err = stream.message().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(err.message(), "enough");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_errors_take_the_grpc_form() {
    let (up, seen) = grpc_server().await;
    let gw = Gateway::with_config(&config(up)).start();
    let mut grpc = client(&gw).await;
    // Upstream down: nginx's 502, which Kong maps to Internal with nginx's message.
    let err = unary(&mut grpc, "/test.Down/Unary", "x").await.unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err:?}");
    assert_eq!(
        err.message(),
        "An invalid response was received from the upstream server"
    );
    // A plugin's refusal: Kong's kong.response.error gives the code's name.
    let err = unary(&mut grpc, "/test.Auth/Unary", "x").await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "Unauthenticated");
    let mut req = tonic::Request::new(msg("key"));
    req.metadata_mut()
        .insert("apikey", "grpc-key".parse().unwrap());
    grpc.ready().await.unwrap();
    let ok = grpc
        .unary(
            req,
            PathAndQuery::from_static("/test.Auth/Unary"),
            Codec::default(),
        )
        .await;
    // The server has no such method: its own status comes back.
    assert_eq!(ok.unwrap_err().code(), Code::Unimplemented);
    // No route.
    let err = unary(&mut grpc, "/test.Nowhere/Unary", "x")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Plain gRPC on a grpcs-only route.
    let err = unary(&mut grpc, "/test.Secure/Unary", "x")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Cancelled);
    assert_eq!(err.message(), "gRPC request matched gRPCs route");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|h| h.uri.path() == "/test.Auth/Unary"),
        "only the authenticated call reached the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_grpc_requests_on_grpc_routes() {
    let (up, _) = grpc_server().await;
    let gw = Gateway::with_config(&config(up)).start();
    // gRPC over HTTP/1.1: 426.
    let r = send(
        &client_h1(),
        "POST",
        &gw.url("/test.Echo/Unary"),
        &[("content-type", "application/grpc")],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 426);
    assert_eq!(r.json()["message"], "Please use HTTP2 protocol");
    assert_eq!(r.header("upgrade"), Some("HTTP/2"));
    // HTTP/2 without a gRPC content type: 415.
    let mut h2 = h2_connect::<Empty<Bytes>>(gw.proxy).await;
    for content_type in [None, Some("application/json")] {
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}/test.Echo/Unary", gw.proxy));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = h2
            .send_request(req.body(Empty::new()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 415);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["message"], "Non-gRPC request matched gRPC route");
    }
}

fn client_h1() -> HttpClient {
    common::client()
}
