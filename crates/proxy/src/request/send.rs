//! Sending a request upstream: picking the address for each attempt (a balancer's peer, or the
//! service host through DNS), retrying on another address as nginx and Kong do, and reporting
//! every attempt's outcome to the balancer (passive health checks, least-connections counts,
//! latency samples).

use crate::body::RequestBody;
use crate::error::ProxyError;
use crate::http::Fields;
use crate::request::ConnInfo;
use crate::snapshot::{CompiledService, ServiceTarget};
use crate::upstream::{self, AttemptError, Timeouts, pool::PoolKey};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method};
use silverback_balancer::health::Outcome;
use silverback_balancer::{Peer, PickError};
use std::net::SocketAddr;
use std::time::Instant;

/// The parts of the upstream request that do not change between attempts.
pub(super) struct UpstreamHead<'a> {
    pub method: &'a Method,
    pub target: &'a PathAndQuery,
    pub fields: &'a Fields,
    pub preserved_host: Option<&'a HeaderValue>,
}

/// Up to `retries + 1` attempts, each to a newly picked address, on connection failures and
/// timeouts. A request that may already have reached the upstream is only retried when its
/// method is idempotent and its body can be replayed, as nginx does.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send_with_retries(
    conn: &ConnInfo,
    service: &CompiledService,
    head: &UpstreamHead<'_>,
    body: RequestBody<'_>,
    hash: u32,
    started: Instant,
    request_id: &str,
    mut tries: Option<&mut Vec<silverback_plugins::pdk::Try>>,
) -> Result<upstream::h1::Response, ProxyError> {
    let settings = &conn.shared.settings;
    let timeouts = Timeouts {
        connect: service.connect_timeout,
        write: service.write_timeout,
        read: service.read_timeout,
    };
    let attempts = service.retries.saturating_add(1);
    let idempotent = head.method.is_idempotent();
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut body = Some(body);
    let mut last_err = None;
    for attempt in 0..attempts {
        let picked = pick_target(conn, service, hash, &tried).await?;
        let addr = picked.addr;
        let Some(this_body) = body.take() else { break };
        let next_body = if attempt + 1 < attempts {
            this_body.replay()
        } else {
            None
        };
        let req = upstream::h1::Head {
            method: head.method,
            target: head.target.as_str(),
            host: head.preserved_host.or(picked.host.as_ref()),
            fields: head.fields,
        };
        if let Some(t) = tries.as_deref_mut() {
            t.push(silverback_plugins::pdk::Try {
                addr,
                start_offset_ms: silverback_plugins::pdk::log::millis(started.elapsed()),
                failed_status: None,
            });
        }
        let key = PoolKey { addr };
        // Only balanced attempts are timed (the latency algorithm's samples).
        let sent_at = picked.peer.as_ref().map(|_| Instant::now());
        match upstream::send(&key, &settings.keepalive, &timeouts, req, this_body).await {
            Ok(resp) => {
                if let (Some(peer), Some(at)) = (&picked.peer, sent_at) {
                    peer.report(Outcome::Status(resp.status.as_u16()));
                    peer.record_latency(at.elapsed());
                }
                return Ok(resp);
            }
            Err((e, sent)) => {
                if let AttemptError::ClientBody(reason) = e {
                    return Err(if reason.over_limit {
                        ProxyError::BodyOverLimit
                    } else if reason.too_large {
                        ProxyError::BodyTooLarge
                    } else {
                        ProxyError::ClientBody(reason.message)
                    });
                }
                let timeout = matches!(
                    e,
                    AttemptError::Timeout { .. } | AttemptError::ConnectTimeout
                );
                if let Some(peer) = &picked.peer {
                    peer.report(if timeout {
                        Outcome::Timeout
                    } else {
                        Outcome::TcpFailure
                    });
                }
                if let Some(last) = tries.as_deref_mut().and_then(|t| t.last_mut()) {
                    last.failed_status = Some(if timeout { 504 } else { 502 });
                }
                tracing::warn!(
                    request_id,
                    upstream = %addr,
                    attempt = attempt + 1,
                    error = %e,
                    "upstream attempt failed"
                );
                tried.push(addr);
                last_err = Some(e);
                if (sent && !idempotent) || next_body.is_none() {
                    break;
                }
                body = next_body;
            }
        }
    }
    Err(match last_err {
        Some(AttemptError::Timeout { write }) => {
            ProxyError::Timeout(if write { "write" } else { "read" })
        }
        Some(AttemptError::ConnectTimeout) => ProxyError::Timeout("connect"),
        Some(AttemptError::Connect(e)) => ProxyError::Connect(e.to_string()),
        Some(AttemptError::Io(e)) => ProxyError::Upstream(e.to_string()),
        Some(AttemptError::Upstream(e)) => ProxyError::Upstream(e),
        Some(AttemptError::ClientBody(e)) => ProxyError::ClientBody(e.message),
        None => ProxyError::Internal("no attempt made".into()),
    })
}

/// Where one attempt goes.
struct Picked<'s> {
    addr: SocketAddr,
    host: Option<HeaderValue>,
    /// The balancer's address, for upstreams: reports go to it.
    peer: Option<Peer<'s>>,
}

/// A balanced address of the upstream (another one than those `tried` when there is one), or
/// the service host.
async fn pick_target<'s>(
    conn: &ConnInfo,
    service: &'s CompiledService,
    hash: u32,
    tried: &[SocketAddr],
) -> Result<Picked<'s>, ProxyError> {
    match &service.target {
        ServiceTarget::Upstream(b) => {
            let peer = match b.pick(hash, tried) {
                Ok(p) => p,
                Err(PickError::Resolving) => {
                    // A new balancer's names are being looked up for the first time.
                    b.wait_resolved(service.connect_timeout).await;
                    b.pick(hash, tried).map_err(|_| ProxyError::NoPeer)?
                }
                Err(PickError::NoPeer) => return Err(ProxyError::NoPeer),
            };
            Ok(Picked {
                addr: peer.addr,
                host: peer.host_header(service.tls_default),
                peer: Some(peer),
            })
        }
        ServiceTarget::Host => {
            let addr = match service.host_ip {
                Some(ip) => SocketAddr::new(ip, service.port),
                None => conn
                    .shared
                    .dns()
                    .to_ip(&service.host, service.port)
                    .await
                    .map_err(|e| ProxyError::NameResolution(e.to_string()))?,
            };
            Ok(Picked {
                addr,
                host: service.host_header.clone(),
                peer: None,
            })
        }
    }
}
