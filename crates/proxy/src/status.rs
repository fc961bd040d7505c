//! The status API (Kong's `status_listen`): `/status`, `/status/ready` and `/metrics`.

use crate::state::Shared;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves the status API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "status listener accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(serve_connection(stream, shared.clone()));
    }
}

/// Serves the status API over TLS, on the connections of an `ssl` listener.
pub async fn serve_tls(
    mut incoming: tokio::sync::mpsc::Receiver<crate::tls::accept::Incoming>,
    shared: Arc<Shared>,
) {
    while let Some((stream, _)) = incoming.recv().await {
        tokio::spawn(serve_connection(stream, shared.clone()));
    }
}

async fn serve_connection<I>(stream: I, shared: Arc<Shared>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let shared = shared.clone();
        async move {
            if is_metrics(&req) {
                return Ok::<_, Infallible>(metrics_response(&shared).await);
            }
            Ok::<_, Infallible>(route(&req, &shared))
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

fn route(req: &Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"message": "Method not allowed"}),
        );
    }
    match req.uri().path().trim_end_matches('/') {
        "/status" => json_response(StatusCode::OK, status_body(shared)),
        "/status/ready" => match shared.readiness(shared.settings.dbless) {
            Ok(()) => json_response(StatusCode::OK, json!({"message": "ready"})),
            Err(why) => json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"message": why})),
        },
        _ => json_response(StatusCode::NOT_FOUND, json!({"message": "Not found"})),
    }
}

/// Kong's `/status` body.
pub fn status_body(shared: &Shared) -> serde_json::Value {
    json!({
        "server": server_counters(shared),
        "configuration_hash": shared.snapshot().config.hash(),
    })
}

/// The `server` section of Kong's `/status` (also served by the Admin API).
pub fn server_counters(shared: &Shared) -> serde_json::Value {
    let t = shared.totals();
    let writing = t.in_flight.max(0);
    json!({
        "connections_accepted": t.accepted,
        "connections_handled": t.accepted,
        "connections_active": t.active.max(0),
        "connections_reading": 0,
        "connections_writing": writing,
        "connections_waiting": (t.active - writing).max(0),
        "total_requests": t.requests,
    })
}

fn is_metrics(req: &Request<Incoming>) -> bool {
    (req.method() == Method::GET || req.method() == Method::HEAD)
        && req.uri().path().trim_end_matches('/') == "/metrics"
}

/// `/metrics` in the Prometheus text format, with Kong's content type.
async fn metrics_response(shared: &Shared) -> Response<Full<Bytes>> {
    let body = crate::metrics::render(shared).await;
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(silverback_plugins::prometheus::CONTENT_TYPE),
    );
    resp
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}
