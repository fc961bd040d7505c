//! The byte stream under our HTTP/1.1 codecs: a TCP socket, or TLS (rustls) over one.
//!
//! Both codecs (the client-facing server and the upstream client) do non-blocking reads and
//! writes inside their own tasks and wait on readiness themselves. TLS keeps that shape: a
//! read decrypts what the socket has, a write encrypts and sends what the socket takes, and
//! encrypted bytes the socket did not take yet wait in rustls until [`Stream::flush`] or the
//! next write. A plain socket pays one well-predicted branch per call.

use bytes::BytesMut;
use std::cell::{Cell, RefCell};
use std::io::{self, IoSlice, Read, Write};
use std::task::{Context, Poll};
use tokio::net::TcpStream;

/// A connection's byte stream.
pub enum Stream {
    Plain(TcpStream),
    /// Boxed: the rustls state is large and only TLS connections carry it.
    Tls(Box<TlsStream>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Stream::Plain",
            Stream::Tls(_) => "Stream::Tls",
        })
    }
}

/// rustls over a TCP socket, used from one task (interior mutability: the codecs hold `&Stream`
/// while a request body and the reply share the connection).
pub struct TlsStream {
    tcp: TcpStream,
    tls: RefCell<rustls::Connection>,
    /// Decrypted bytes waiting in rustls (so readiness does not depend on the socket alone).
    plaintext: Cell<usize>,
    /// The peer sent close_notify or closed the socket.
    closed: Cell<bool>,
}

impl TlsStream {
    /// Wraps a connection whose handshake is done (rustls may already hold application data
    /// that arrived with the handshake, and unsent records such as session tickets).
    pub fn new(tcp: TcpStream, tls: impl Into<rustls::Connection>) -> TlsStream {
        let mut tls = tls.into();
        let (plaintext, closed) = match tls.process_new_packets() {
            Ok(state) => (state.plaintext_bytes_to_read(), state.peer_has_closed()),
            Err(_) => (0, true),
        };
        TlsStream {
            tcp,
            tls: RefCell::new(tls),
            plaintext: Cell::new(plaintext),
            closed: Cell::new(closed),
        }
    }

    /// The rustls connection, for what the handshake negotiated (SNI, ALPN, version).
    pub fn with_connection<T>(&self, f: impl FnOnce(&rustls::Connection) -> T) -> T {
        f(&self.tls.borrow())
    }

    fn read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            if self.plaintext.get() > 0 {
                let want = self.plaintext.get().min(buf.capacity() - buf.len()).max(1);
                let start = buf.len();
                buf.resize(start + want, 0);
                let got = self.read_plaintext(&mut buf[start..]);
                buf.truncate(start + *got.as_ref().unwrap_or(&0));
                match got {
                    Ok(0) => {}
                    other => return other,
                }
            }
            if !self.decrypt()? {
                return Ok(0);
            }
        }
    }

    /// Like `read_buf`, into a slice (for the `AsyncRead` of tunnels).
    fn read_slice(&self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.plaintext.get() > 0 {
                match self.read_plaintext(dst) {
                    Ok(0) => {}
                    other => return other,
                }
            }
            if !self.decrypt()? {
                return Ok(0);
            }
        }
    }

    /// Takes decrypted bytes rustls holds; `Ok(0)` when it held none after all.
    fn read_plaintext(&self, dst: &mut [u8]) -> io::Result<usize> {
        match self.tls.borrow_mut().reader().read(dst) {
            Ok(n) => {
                self.plaintext.set(self.plaintext.get().saturating_sub(n));
                Ok(n)
            }
            Err(e) => {
                self.plaintext.set(0);
                if e.kind() == io::ErrorKind::WouldBlock {
                    Ok(0)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Reads and decrypts what the socket has: false once the peer has closed, `WouldBlock`
    /// when the socket has nothing.
    fn decrypt(&self) -> io::Result<bool> {
        if self.closed.get() {
            return Ok(false);
        }
        let mut tls = self.tls.borrow_mut();
        let n = tls.read_tls(&mut TcpIo(&self.tcp))?;
        let state = match tls.process_new_packets() {
            Ok(s) => s,
            Err(e) => {
                // The alert rustls queued tells the peer why; best effort.
                let _ = tls.write_tls(&mut TcpIo(&self.tcp));
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        };
        self.plaintext.set(state.plaintext_bytes_to_read());
        if n == 0 || state.peer_has_closed() {
            self.closed.set(true);
        }
        // Key updates and tickets answer reads; send them when the socket takes them.
        if tls.wants_write() {
            let _ = flush_some(&mut tls, &self.tcp);
        }
        Ok(true)
    }

    fn write_vectored(&self, parts: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut tls = self.tls.borrow_mut();
        // Records already encrypted go first; take no more while the socket is full.
        if tls.wants_write() && !flush_some(&mut tls, &self.tcp)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = tls.writer().write_vectored(parts)?;
        flush_some(&mut tls, &self.tcp)?;
        Ok(n)
    }
}

/// Writes encrypted records until none is left (true) or the socket is full (false).
fn flush_some(tls: &mut rustls::Connection, tcp: &TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(&mut TcpIo(tcp)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Non-blocking std I/O over a tokio socket, for rustls (tokio clears readiness on WouldBlock).
struct TcpIo<'a>(&'a TcpStream);

impl Read for TcpIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for TcpIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A body piece up to this size is copied behind the head it follows, so the two go out as
/// one buffer with send(2) rather than as two with writev(2).
pub(crate) const COALESCE_MAX: usize = 8 * 1024;

impl Stream {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.tcp,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Ready when a read may make progress: decrypted bytes are waiting, or the socket is
    /// readable.
    #[inline]
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(s) => s.poll_read_ready(cx),
            Stream::Tls(t) if t.plaintext.get() > 0 || t.closed.get() => Poll::Ready(Ok(())),
            Stream::Tls(t) => t.tcp.poll_read_ready(cx),
        }
    }

    #[inline]
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp().poll_write_ready(cx)
    }

    pub async fn writable(&self) -> io::Result<()> {
        self.tcp().writable().await
    }

    /// Reads what is there into `buf`'s spare room; `Ok(0)` at end of stream, `WouldBlock`
    /// when nothing is.
    #[inline]
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.try_read_buf(buf),
            Stream::Tls(t) => t.read_buf(buf),
        }
    }

    /// Like [`Stream::try_read_buf`], but a read that took less than the room there was
    /// drained the socket: its readiness is cleared at once, so the next read waits for the
    /// event loop instead of spending a system call on EAGAIN (as nginx does).
    #[inline]
    pub fn read_draining(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => {
                let spare = buf.capacity() - buf.len();
                let mut got = None;
                let r = s.try_io(tokio::io::Interest::READABLE, || {
                    let n = s.try_read_buf(buf)?;
                    got = Some(n);
                    if n > 0 && n < spare {
                        Err(io::ErrorKind::WouldBlock.into())
                    } else {
                        Ok(n)
                    }
                });
                match (got, r) {
                    (Some(n), _) => Ok(n),
                    (None, r) => r,
                }
            }
            // The TLS reads clear readiness on the socket's own EAGAIN.
            Stream::Tls(t) => t.read_buf(buf),
        }
    }

    /// One slice goes out with send(2): the kernel's writev path costs more per call (it
    /// imports an iovec array and notifies file watchers).
    #[inline]
    pub fn try_write_vectored(&self, parts: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) if parts.len() == 1 => s.try_write(&parts[0]),
            Stream::Plain(s) => s.try_write_vectored(parts),
            Stream::Tls(t) => t.write_vectored(parts),
        }
    }

    #[inline]
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.try_write(buf),
            Stream::Tls(t) => t.write_vectored(&[IoSlice::new(buf)]),
        }
    }

    /// Sends the encrypted bytes still held (nothing to do on a plain socket).
    #[inline]
    pub async fn flush(&self) -> io::Result<()> {
        let Stream::Tls(t) = self else {
            return Ok(());
        };
        loop {
            let done = flush_some(&mut t.tls.borrow_mut(), &t.tcp)?;
            if done {
                return Ok(());
            }
            t.tcp.writable().await?;
        }
    }

    /// Ends a TLS session with close_notify, best effort; a plain socket just closes on drop.
    pub fn close(&self) {
        if let Stream::Tls(t) = self {
            let mut tls = t.tls.borrow_mut();
            tls.send_close_notify();
            let _ = flush_some(&mut tls, &t.tcp);
        }
    }
}

/// `AsyncRead` + `AsyncWrite` over a borrowed [`Stream`], for the byte tunnels (WebSocket) that
/// relay with tokio's I/O traits once the HTTP codecs are done with a connection.
pub struct AsyncIo<'a>(pub &'a Stream);

impl tokio::io::AsyncRead for AsyncIo<'_> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            let got = match self.0 {
                Stream::Plain(s) => s.try_read(buf.initialize_unfilled()),
                Stream::Tls(t) => t.read_slice(buf.initialize_unfilled()),
            };
            match got {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl tokio::io::AsyncWrite for AsyncIo<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Stream::Tls(t) = self.0 else {
            return Poll::Ready(Ok(()));
        };
        loop {
            if flush_some(&mut t.tls.borrow_mut(), &t.tcp)? {
                return Poll::Ready(Ok(()));
            }
            std::task::ready!(t.tcp.poll_write_ready(cx))?;
        }
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if let Stream::Tls(t) = self.0 {
            t.tls.borrow_mut().send_close_notify();
        }
        std::task::ready!(self.as_mut().poll_flush(cx))?;
        let _ = socket2::SockRef::from(self.0.tcp()).shutdown(std::net::Shutdown::Write);
        Poll::Ready(Ok(()))
    }
}
