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
use std::net::SocketAddr;
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
            picked.record_try(s, started);
        }
        let (tls, key) = connection_key(service, req.host, addr);
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
                picked.report_status(resp.status.as_u16(), sent_at);
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
                let timeout = picked.report_failure(&e);
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

/// The pool key of an attempt to `addr`, and for TLS services what the handshake needs
/// ([`tls_target`]). TLS connections are pooled per configuration and server name.
pub(crate) fn connection_key(
    service: &CompiledService,
    host: Option<&HeaderValue>,
    addr: SocketAddr,
) -> (Option<upstream::TlsTarget>, PoolKey) {
    use rustls::pki_types::ServerName;
    let target = tls_target(service, host, addr);
    let tls = target
        .as_ref()
        .zip(service.tls.as_ref())
        .map(|(t, config)| {
            let name: Box<str> = match &t.name {
                ServerName::DnsName(d) => d.as_ref().into(),
                _ => addr.ip().to_string().into(),
            };
            (config.id, name)
        });
    (target, PoolKey { addr, tls })
}

/// For a TLS service, the service's configuration and the server name of an attempt to
/// `addr`: the Host sent upstream without its port (nginx's `proxy_ssl_name $upstream_host`),
/// or the address when there is no usable name.
pub(crate) fn tls_target(
    service: &CompiledService,
    host: Option<&HeaderValue>,
    addr: SocketAddr,
) -> Option<upstream::TlsTarget> {
    use rustls::pki_types::ServerName;
    let tls = service.tls.as_ref()?;
    let name = host
        .and_then(|h| h.to_str().ok())
        .map(host_without_port)
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .and_then(|h| ServerName::try_from(h).ok())
        .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
    Some(upstream::TlsTarget {
        config: tls.config.clone(),
        name,
    })
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

impl Picked<'_> {
    /// Notes an attempt to this address for the log plugins (Kong's `balancer_data.tries`).
    pub(crate) fn record_try(
        &self,
        served: &mut silverback_plugins::pdk::Served,
        started: Instant,
    ) {
        served.tries.push(silverback_plugins::pdk::Try {
            addr: self.addr,
            started: started.elapsed(),
            ended: None,
            failed_status: None,
        });
        if served.upstream_host_name.as_deref() != Some(self.name) {
            served.upstream_host_name = Some(self.name.into());
        }
    }

    /// Reports a response to the balancer (passive health, and the latency of an attempt
    /// sent at `sent_at`).
    pub(crate) fn report_status(&self, status: u16, sent_at: Option<Instant>) {
        if let Some(peer) = &self.peer {
            peer.report(Outcome::Status(status));
            if let Some(at) = sent_at {
                peer.record_latency(at.elapsed());
            }
        }
    }

    /// Reports a failed attempt to the balancer; returns whether it was a timeout.
    pub(crate) fn report_failure(&self, e: &AttemptError) -> bool {
        let timeout = matches!(
            e,
            AttemptError::Timeout { .. } | AttemptError::ConnectTimeout
        );
        if let Some(peer) = &self.peer {
            peer.report(if timeout {
                Outcome::Timeout
            } else {
                Outcome::TcpFailure
            });
        }
        timeout
    }
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
