//! Relaying bytes both ways between a client and an upstream connection, once HTTP is done with
//! them (a WebSocket after its `101`) or for a stream route, with the service's timeouts as
//! idle timeouts.
//!
//! Like nginx's upgraded and stream proxying, the timers are re-armed whenever bytes move: the
//! tunnel is closed after `read` with nothing moving either way, or when a write could not go
//! on for `write` (a peer that stopped reading).

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

/// The idle limits of a tunnel: the service's `read_timeout` and `write_timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    pub read: Duration,
    pub write: Duration,
}

/// How a tunnel ended, with the bytes it carried each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    pub to_upstream: u64,
    pub to_client: u64,
    /// Closed by an idle timeout rather than by a peer.
    pub timed_out: bool,
}

/// When bytes last moved, and whether a write is waiting for its peer.
struct Activity {
    last: Cell<Instant>,
    write_blocked: Cell<bool>,
}

impl Activity {
    fn deadline(&self, idle: Idle) -> Instant {
        let limit = if self.write_blocked.get() {
            idle.write
        } else {
            idle.read
        };
        self.last.get() + limit
    }
}

/// One side of the tunnel, noting activity as it reads and writes.
struct Tracked<'a, T> {
    io: &'a mut T,
    activity: &'a Activity,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<'_, T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut *this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.last.set(Instant::now());
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<'_, T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut *this.io).poll_write(cx, data);
        match &r {
            Poll::Pending => this.activity.write_blocked.set(true),
            Poll::Ready(result) => {
                this.activity.write_blocked.set(false);
                if matches!(result, Ok(n) if *n > 0) {
                    this.activity.last.set(Instant::now());
                }
            }
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_shutdown(cx)
    }
}

/// Sends what each side had already sent past the HTTP head (`client_early` to the upstream,
/// `upstream_early` to the client), then copies both ways until both sides closed, an error
/// occurred or the tunnel went idle.
pub async fn relay<C, U>(
    client: &mut C,
    upstream: &mut U,
    client_early: &[u8],
    upstream_early: &[u8],
    idle: Idle,
) -> io::Result<Relayed>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let early = async {
        if !client_early.is_empty() {
            upstream.write_all(client_early).await?;
        }
        if !upstream_early.is_empty() {
            client.write_all(upstream_early).await?;
        }
        io::Result::Ok(())
    };
    match tokio::time::timeout(idle.write, early).await {
        Ok(r) => r?,
        Err(_) => return Err(io::ErrorKind::TimedOut.into()),
    }
    let activity = Activity {
        last: Cell::new(Instant::now()),
        write_blocked: Cell::new(false),
    };
    let mut a = Tracked {
        io: client,
        activity: &activity,
    };
    let mut b = Tracked {
        io: upstream,
        activity: &activity,
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    loop {
        let deadline = activity.deadline(idle);
        tokio::select! {
            r = &mut copy => {
                let (up, down) = r?;
                return Ok(Relayed {
                    to_upstream: up + client_early.len() as u64,
                    to_client: down + upstream_early.len() as u64,
                    timed_out: false,
                });
            }
            _ = tokio::time::sleep_until(deadline) => {
                // Bytes may have moved since the deadline was taken: only a deadline that still
                // holds ends the tunnel.
                if Instant::now() >= activity.deadline(idle) {
                    return Ok(Relayed {
                        to_upstream: client_early.len() as u64,
                        to_client: upstream_early.len() as u64,
                        timed_out: true,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn relays_both_ways_and_times_out_when_idle() {
        let (mut client, mut client_far) = tokio::io::duplex(64);
        let (mut upstream, mut upstream_far) = tokio::io::duplex(64);
        let idle = Idle {
            read: Duration::from_millis(200),
            write: Duration::from_millis(200),
        };
        let started = std::time::Instant::now();
        let tunnel = relay(&mut client, &mut upstream, b"early", b"hello", idle);
        let peers = async {
            let mut buf = [0u8; 5];
            upstream_far.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"early");
            client_far.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"hello");
            client_far.write_all(b"ping").await.unwrap();
            let mut four = [0u8; 4];
            upstream_far.read_exact(&mut four).await.unwrap();
            assert_eq!(&four, b"ping");
        };
        let (done, ()) = tokio::join!(tunnel, peers);
        assert!(done.unwrap().timed_out);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn ends_when_both_sides_close() {
        let (mut client, mut client_far) = tokio::io::duplex(64);
        let (mut upstream, mut upstream_far) = tokio::io::duplex(64);
        let idle = Idle {
            read: Duration::from_secs(5),
            write: Duration::from_secs(5),
        };
        let tunnel = relay(&mut client, &mut upstream, b"", b"", idle);
        let peers = async {
            upstream_far.write_all(b"bye").await.unwrap();
            upstream_far.shutdown().await.unwrap();
            let mut got = Vec::new();
            client_far.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"bye");
            client_far.shutdown().await.unwrap();
        };
        let (done, ()) = tokio::join!(tunnel, peers);
        let done = done.unwrap();
        assert_eq!((done.to_client, done.timed_out), (3, false));
    }
}
