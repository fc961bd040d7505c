//! Sending a request upstream: picking the address for each attempt (a balancer's peer, or the
//! service host through DNS), retrying on another address as nginx and Kong do, and reporting
//! every attempt's outcome to the balancer (passive health checks, least-connections counts,
//! latency samples).

use crate::body::RequestBody;
use crate::error::ProxyError;
use crate::http::Fields;
use crate::request::{ConnInfo, host_without_port};
use crate::snapshot::{CompiledService, ServiceTarget};
use crate::upstream::{self, AttemptError, Timeouts, pool::PoolKey};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method};
use silverback_balancer::health::Outcome;
use silverback_balancer::{Peer, PickError};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// The parts of the upstream request that do not change between attempts.
pub(super) struct UpstreamHead<'a> {
    pub method: &'a Method,
    pub target: &'a PathAndQuery,
    pub fields: &'a Fields,
    pub upgrade: bool,
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
    mut served: Option<&mut silverback_plugins::pdk::Served>,
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
            upgrade: head.upgrade,
        };
        if let Some(s) = served.as_deref_mut() {
            s.tries.push(silverback_plugins::pdk::Try {
                addr,
                started: started.elapsed(),
                ended: None,
                failed_status: None,
            });
            if s.upstream_host_name.as_deref() != Some(picked.name) {
                s.upstream_host_name = Some(picked.name.into());
            }
        }
        let (tls, tls_key) = match &service.tls {
            Some(t) => {
                let (target, server_name) = tls_target(t, req.host, addr.ip());
                (Some(target), Some((t.id, server_name)))
            }
            None => (None, None),
        };
        let key = PoolKey { addr, tls: tls_key };
        // Only balanced attempts are timed (the latency algorithm's samples).
        let sent_at = picked.peer.as_ref().map(|_| Instant::now());
        let sending = upstream::send(
            &key,
            tls.as_ref(),
            &settings.keepalive,
            &timeouts,
            req,
            this_body,
        );
        match sending.await {
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
                if let Some(last) = served.as_deref_mut().and_then(|s| s.tries.last_mut()) {
                    last.failed_status = Some(if timeout { 504 } else { 502 });
                    last.ended = Some(started.elapsed());
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
        Some(e @ AttemptError::Tls(_)) => ProxyError::Connect(e.to_string()),
        None => ProxyError::Internal("no attempt made".into()),
    })
}

/// The TLS side of an attempt: the service's configuration and the server name, which is the
/// Host sent upstream without its port (nginx's `proxy_ssl_name $upstream_host`), or the
/// address when there is no usable name. Returns the name as text too, for the pool key.
fn tls_target(
    tls: &crate::tls::upstream::UpstreamTls,
    host: Option<&HeaderValue>,
    ip: IpAddr,
) -> (upstream::h1::TlsTarget, Box<str>) {
    use rustls::pki_types::ServerName;
    let name = host
        .and_then(|h| h.to_str().ok())
        .map(host_without_port)
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .and_then(|h| ServerName::try_from(h).ok())
        .unwrap_or_else(|| ServerName::IpAddress(ip.into()));
    let text: Box<str> = match &name {
        ServerName::DnsName(d) => d.as_ref().into(),
        _ => ip.to_string().into(),
    };
    (
        upstream::h1::TlsTarget {
            config: tls.config.clone(),
            name,
        },
        text,
    )
}

/// Where one attempt goes.
pub(crate) struct Picked<'s> {
    pub(crate) addr: SocketAddr,
    /// The Host the target gets.
    pub(crate) host: Option<HeaderValue>,
    /// Kong's `balancer_data.hostname` (the upstream's `host_header`, else the target's or
    /// the service's host), for traces.
    pub(crate) name: &'s str,
    /// The balancer's address, for upstreams: reports go to it.
    pub(crate) peer: Option<Peer<'s>>,
}

/// A balanced address of the upstream (another one than those `tried` when there is one), or
/// the service host.
pub(crate) async fn pick_target<'s>(
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
                name: peer.host_name(),
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
                name: &service.host,
                peer: None,
            })
        }
    }
}
