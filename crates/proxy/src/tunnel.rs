//! Relaying bytes both ways between a client and an upstream connection, once HTTP is done with
//! them (a WebSocket after its `101`) or for a stream route, with the service's timeouts as
//! idle timeouts.
//!
//! Like nginx's upgraded and stream proxying, the timers are re-armed whenever bytes move: the
//! tunnel is closed after `read` with nothing moving either way, or when a write could not go
//! on for `write` (a peer that stopped reading); and it ends when either side closes.

use std::future::Future;
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
    last: Instant,
    write_blocked: bool,
}

impl Activity {
    fn deadline(&self, idle: Idle) -> Instant {
        let limit = if self.write_blocked {
            idle.write
        } else {
            idle.read
        };
        self.last + limit
    }
}

/// Size of each direction's buffer.
const BUF: usize = 16 * 1024;

/// One direction of the tunnel: bytes read from one side, waiting to be written to the other.
struct Direction {
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    moved: u64,
}

impl Direction {
    fn new() -> Direction {
        Direction {
            buf: vec![0; BUF].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            moved: 0,
        }
    }

    /// Moves bytes from `from` to `to`; ready once `from` ended and everything read was
    /// written and `to` shut down for writing.
    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut R,
        to: &mut W,
        activity: &mut Activity,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if self.pos == self.end && !self.eof {
                let mut rb = ReadBuf::new(&mut self.buf);
                match Pin::new(&mut *from).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        (self.pos, self.end) = (0, n);
                        if n == 0 {
                            self.eof = true;
                        } else {
                            activity.last = Instant::now();
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        // Nothing more to write for now: push out what was written.
                        if let Poll::Ready(Err(e)) = Pin::new(&mut *to).poll_flush(cx) {
                            return Poll::Ready(Err(e));
                        }
                        return Poll::Pending;
                    }
                }
            }
            while self.pos < self.end {
                let pending = self.buf.get(self.pos..self.end).unwrap_or_default();
                match Pin::new(&mut *to).poll_write(cx, pending) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        self.pos += n;
                        self.moved += n as u64;
                        activity.last = Instant::now();
                        activity.write_blocked = false;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        activity.write_blocked = true;
                        return Poll::Pending;
                    }
                }
            }
            if self.eof {
                std::task::ready!(Pin::new(&mut *to).poll_flush(cx))?;
                return Pin::new(&mut *to).poll_shutdown(cx);
            }
        }
    }
}

/// Sends what each side had already sent past the HTTP head (`client_early` to the upstream,
/// `upstream_early` to the client), then copies both ways until a side closed, an error
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
    let mut activity = Activity {
        last: Instant::now(),
        write_blocked: false,
    };
    let (mut up, mut down) = (Direction::new(), Direction::new());
    let mut sleep = Box::pin(tokio::time::sleep_until(activity.deadline(idle)));
    // As nginx does for upgraded connections and streams (no half-close), the tunnel ends as
    // soon as one side has closed and what it sent has been passed on.
    let ended = std::future::poll_fn(|cx| {
        let to_upstream = up.poll(cx, client, upstream, &mut activity)?;
        let to_client = down.poll(cx, upstream, client, &mut activity)?;
        if to_upstream.is_ready() || to_client.is_ready() {
            return Poll::Ready(Ok(false));
        }
        let deadline = activity.deadline(idle);
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Ok(true)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    let timed_out = match ended {
        Ok(t) => t,
        Err(e) => return Err(e),
    };
    Ok(Relayed {
        to_upstream: up.moved + client_early.len() as u64,
        to_client: down.moved + upstream_early.len() as u64,
        timed_out,
    })
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
    async fn ends_when_a_side_closes() {
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
        };
        let (done, ()) = tokio::join!(tunnel, peers);
        let done = done.unwrap();
        assert_eq!((done.to_client, done.timed_out), (3, false));
    }
}
