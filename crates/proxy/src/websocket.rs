//! WebSocket upgrades over HTTP/1.1, as Kong OSS proxies them on http routes: a request whose
//! `Upgrade` is `websocket` goes through the pipeline like any other (routing, `access`), is
//! sent upstream with `Connection: keep-alive, Upgrade` and `Upgrade: websocket`, and when the
//! upstream answers `101 Switching Protocols` that answer is relayed (through `header_filter`)
//! and the two connections are joined: bytes are copied both ways until either side closes or
//! the service's timeouts find them idle. `log` runs when the tunnel ends.

use crate::body::ResponseBody;
use crate::tunnel::{self, Idle};
use crate::upstream::h1::Conn;
use bytes::BytesMut;
use http::HeaderValue;
use http::header::{CONNECTION, UPGRADE};
use silverback_http::Fields;
use tokio::io::{AsyncRead, AsyncWrite};

/// The joined upstream connection of a `101` reply, and its idle limits.
pub struct Tunnel {
    pub(crate) upstream: Box<Conn>,
    pub(crate) idle: Idle,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel").field("idle", &self.idle).finish()
    }
}

/// Whether a request's (removed, hop-by-hop) Upgrade field asks for a WebSocket, as Kong
/// checks it (the Upgrade value alone, case-insensitively).
pub fn is_websocket(upgrade: Option<&[u8]>) -> bool {
    upgrade.is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"websocket"))
}

/// The hop-by-hop fields Kong sends upstream with a WebSocket handshake.
pub(crate) fn ask_upstream(fields: &mut Fields) {
    fields.set(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
    fields.set(UPGRADE, HeaderValue::from_static("websocket"));
}

/// The `101` reply's own hop-by-hop fields: the upstream's Upgrade (removed while its head was
/// parsed) and `Connection: upgrade`, as nginx writes it.
pub(crate) fn answer_client(fields: &mut Fields) {
    let mut i = 0;
    let mut upgrade = None;
    while let Some(name) = fields.name_at(i) {
        if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = fields
                .value_at(i)
                .and_then(|v| HeaderValue::from_bytes(v).ok());
            break;
        }
        i += 1;
    }
    fields.set(
        UPGRADE,
        upgrade.unwrap_or_else(|| HeaderValue::from_static("websocket")),
    );
    fields.set(CONNECTION, HeaderValue::from_static("upgrade"));
}

impl ResponseBody {
    /// The tunnel of a `101` reply, also from under plugins' body hooks (which stay in place
    /// so that `log` runs once the tunnel is over).
    pub fn take_tunnel(&mut self) -> Option<Box<Tunnel>> {
        match self {
            ResponseBody::Upgrade(_) => match std::mem::replace(self, ResponseBody::Empty) {
                ResponseBody::Upgrade(t) => Some(t),
                _ => None,
            },
            ResponseBody::Hooked(h) => h.inner_mut().take_tunnel(),
            _ => None,
        }
    }
}

/// Joins the client connection (with what it sent after the handshake, `client_early`) to
/// the upstream's until the tunnel ends.
pub async fn relay<C>(mut client: C, client_early: BytesMut, tunnel: Box<Tunnel>)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let Tunnel { upstream, idle } = *tunnel;
    let (io, upstream_early) = (*upstream).into_parts();
    let mut io = crate::transport::AsyncIo(&io);
    match tunnel::relay(&mut client, &mut io, &client_early, &upstream_early, idle).await {
        Ok(r) if r.timed_out => tracing::debug!("WebSocket tunnel closed after idle timeout"),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "WebSocket tunnel failed"),
    }
}
