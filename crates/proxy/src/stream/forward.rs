//! Proxying a routed stream connection: connect to a target of the service (balanced and
//! retried as HTTP requests are, over TLS for `tls` services), then relay bytes both ways with
//! the service's timeouts.

use crate::http::Fields;
use crate::request::ConnInfo;
use crate::request::send::{Picked, pick_target, tls_target};
use crate::snapshot::CompiledService;
use crate::tunnel::{self, Idle};
use crate::upstream::{self, Connected};
use silverback_balancer::HashRequest;
use silverback_balancer::health::Outcome;
use tokio::io::{AsyncRead, AsyncWrite};

/// Connects to the service, trying up to `retries + 1` targets on connection (or handshake)
/// failures, and relays `client` to it until either side is done.
pub(super) async fn forward<C>(mut client: C, info: &ConnInfo, service: &CompiledService)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    // The target is held while the connection lasts: least-connections counts it.
    let Some((_picked, upstream)) = connect(info, service).await else {
        return;
    };
    let idle = Idle {
        read: service.read_timeout,
        write: service.write_timeout,
    };
    let relayed = match upstream {
        Connected::Plain(mut s) => tunnel::relay(&mut client, &mut s, b"", b"", idle).await,
        Connected::Tls(mut s) => tunnel::relay(&mut client, &mut *s, b"", b"", idle).await,
    };
    match relayed {
        Ok(r) if r.timed_out => {
            tracing::info!(peer = %info.peer, "stream connection closed after idle timeout");
        }
        Ok(r) => tracing::debug!(
            peer = %info.peer,
            sent = r.to_upstream,
            received = r.to_client,
            "stream connection closed"
        ),
        Err(e) => tracing::debug!(peer = %info.peer, error = %e, "stream connection failed"),
    }
}

/// The balancer's hash of a stream connection: of the client address, the one input a stream
/// has (Kong hashes streams on `ip` only).
pub(super) fn stream_hash(info: &ConnInfo, service: &CompiledService) -> u32 {
    let Some(rule) = service.hash_rule() else {
        return 0;
    };
    let no_headers = Fields::default();
    rule.value(&HashRequest {
        consumer: None,
        credential: None,
        client_ip: info.peer.ip().to_canonical(),
        headers: &no_headers,
        path: "",
        query: None,
        captures: None,
    })
    .hash
}

/// A connection to a target of the service, after up to `retries + 1` attempts.
async fn connect<'s>(
    info: &ConnInfo,
    service: &'s CompiledService,
) -> Option<(Picked<'s>, Connected)> {
    let hash = stream_hash(info, service);
    let mut tried = Vec::new();
    for attempt in 0..service.retries.saturating_add(1) {
        let picked = match pick_target(info, service, hash, &tried).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(service = %service.id, error = %e, "stream proxy failed");
                return None;
            }
        };
        let addr = picked.addr;
        let tls = tls_target(service, picked.host.as_ref(), addr);
        let connected = upstream::connect(addr, service.connect_timeout, tls.as_ref()).await;
        match connected {
            Ok(s) => {
                if let Some(peer) = &picked.peer {
                    peer.report(Outcome::Connected);
                }
                return Some((picked, s));
            }
            Err(e) => {
                picked.report_failure(&e);
                tracing::warn!(
                    upstream = %addr,
                    attempt = attempt + 1,
                    error = %e,
                    "stream upstream connect failed"
                );
                tried.push(addr);
            }
        }
    }
    tracing::error!(service = %service.id, "stream upstream unreachable after retries");
    None
}
