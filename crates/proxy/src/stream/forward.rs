//! Proxying a routed stream connection: connect to a target of the service (balanced and
//! retried as HTTP requests are), then relay bytes both ways with the service's timeouts.

use crate::request::ConnInfo;
use crate::request::send::pick_target;
use crate::snapshot::CompiledService;
use crate::tunnel::{self, Idle};
use crate::upstream::connect_tcp;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Connects to the service, trying up to `retries + 1` targets on connection failures, and
/// relays `client` to it until either side is done.
pub(super) async fn forward<C>(mut client: C, info: &ConnInfo, service: &CompiledService)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    if &*service.protocol == "tls" {
        // Upstream TLS (tls services) comes with the node's TLS support.
        tracing::error!(
            service = %service.id,
            "TLS to stream upstreams is not available yet; closing the connection"
        );
        return;
    }
    let Some(mut upstream) = connect(info, service).await else {
        return;
    };
    let idle = Idle {
        read: service.read_timeout,
        write: service.write_timeout,
    };
    match tunnel::relay(&mut client, &mut upstream, b"", b"", idle).await {
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

/// A connection to a target of the service, after up to `retries + 1` attempts.
async fn connect(info: &ConnInfo, service: &CompiledService) -> Option<TcpStream> {
    let mut tried = Vec::new();
    for attempt in 0..service.retries.saturating_add(1) {
        let addr = match pick_target(info, service, 0, &tried).await {
            Ok(t) => t.addr,
            Err(e) => {
                tracing::error!(service = %service.id, error = %e, "stream proxy failed");
                return None;
            }
        };
        match connect_tcp(addr, service.connect_timeout).await {
            Ok(s) => return Some(s),
            Err(e) => {
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
