//! Reading the server name a TLS client asks for, from its ClientHello, without consuming or
//! terminating anything (nginx's `ssl_preread`): the bytes stay in the socket for whoever takes
//! the connection next (the upstream of a tls_passthrough route, or our TLS acceptor).

use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// TLS record header: type, version, length.
const RECORD_HEADER: usize = 5;
const HANDSHAKE: u8 = 0x16;
const CLIENT_HELLO: u8 = 0x01;
const SERVER_NAME: u16 = 0;
/// The most a ClientHello may take here (several records of up to 16 KiB are legal; real ones
/// fit in one, post-quantum key shares included).
const MAX_PEEK: usize = 32 * 1024;
/// Pause between two peeks while the ClientHello is still arriving (peeking does not consume,
/// so the socket stays readable and cannot be waited on).
const PEEK_PAUSE: Duration = Duration::from_millis(2);

/// What the first bytes of a connection say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// A complete ClientHello, with its server name when it has one.
    Tls(Option<String>),
    /// Not a TLS handshake (or a malformed one).
    NotTls,
    /// More bytes are needed.
    Partial,
}

/// Waits for the ClientHello at the start of `stream` (up to `timeout`) and returns its server
/// name; `None` when the client sent none, is not speaking TLS, or is too slow.
pub async fn peek_sni(stream: &TcpStream, timeout: Duration) -> Hello {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 2048];
    loop {
        let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await;
        let n = match peeked {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Hello::NotTls,
            Ok(Ok(n)) => n,
        };
        match parse_client_hello(buf.get(..n).unwrap_or_default()) {
            Hello::Partial => {}
            done => return done,
        }
        if n == buf.len() {
            if buf.len() >= MAX_PEEK {
                return Hello::NotTls;
            }
            buf.resize(buf.len() * 2, 0);
        } else {
            if Instant::now() >= deadline {
                return Hello::NotTls;
            }
            tokio::time::sleep(PEEK_PAUSE).await;
        }
    }
}

/// A byte cursor that fails (returns `None`) instead of panicking past the end.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(
            usize::from(*b.first()?) << 16 | usize::from(*b.get(1)?) << 8 | usize::from(*b.get(2)?),
        )
    }

    /// A vector with a `len_bytes`-byte length prefix.
    fn vec(&mut self, len_bytes: usize) -> Option<&'a [u8]> {
        let len = match len_bytes {
            1 => usize::from(self.u8()?),
            2 => usize::from(self.u16()?),
            _ => return None,
        };
        self.take(len)
    }
}

/// Parses the ClientHello at the start of `data`, which may span several handshake records.
pub fn parse_client_hello(data: &[u8]) -> Hello {
    // The handshake message, put together from the records' payloads.
    let mut message = Vec::new();
    let mut records = Cursor(data);
    loop {
        let Some(header) = records.take(RECORD_HEADER) else {
            return Hello::Partial;
        };
        if header.first() != Some(&HANDSHAKE) || header.get(1) != Some(&3) {
            return Hello::NotTls;
        }
        let len = usize::from(header.get(3).copied().unwrap_or(0)) << 8
            | usize::from(header.get(4).copied().unwrap_or(0));
        let Some(payload) = records.take(len) else {
            return Hello::Partial;
        };
        message.extend_from_slice(payload);
        let mut m = Cursor(&message);
        match (m.u8(), m.u24()) {
            (Some(CLIENT_HELLO), Some(hs_len)) if m.0.len() >= hs_len => {
                return match m.take(hs_len).and_then(server_name) {
                    Some(name) => Hello::Tls(name),
                    None => Hello::NotTls,
                };
            }
            (Some(CLIENT_HELLO), _) | (None, _) => {}
            (Some(_), _) => return Hello::NotTls,
        }
        if message.len() > MAX_PEEK {
            return Hello::NotTls;
        }
    }
}

/// The `server_name` extension's host name of a ClientHello body; `Some(None)` when it has
/// none, `None` when the body is malformed.
fn server_name(body: &[u8]) -> Option<Option<String>> {
    let mut c = Cursor(body);
    c.take(2 + 32)?; // legacy version, random
    c.vec(1)?; // session id
    c.vec(2)?; // cipher suites
    c.vec(1)?; // compression methods
    if c.0.is_empty() {
        return Some(None); // no extensions at all
    }
    let mut exts = Cursor(c.vec(2)?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec(2)?;
        if kind != SERVER_NAME {
            continue;
        }
        let mut list = Cursor(Cursor(data).vec(2)?);
        while !list.0.is_empty() {
            let name_type = list.u8()?;
            let name = list.vec(2)?;
            if name_type == 0 {
                let name = std::str::from_utf8(name).ok()?;
                return Some(Some(name.to_ascii_lowercase()));
            }
        }
        return Some(None);
    }
    Some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello as rustls writes it, for `name`.
    fn client_hello(name: &str) -> Vec<u8> {
        use std::sync::Arc;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn reads_the_server_name() {
        let hello = client_hello("Passthrough.Example.com");
        assert_eq!(
            parse_client_hello(&hello),
            Hello::Tls(Some("passthrough.example.com".into()))
        );
        for cut in [0, 3, 5, 40, hello.len() - 1] {
            assert_eq!(parse_client_hello(&hello[..cut]), Hello::Partial, "{cut}");
        }
        // An IP address is sent without a server name.
        assert_eq!(
            parse_client_hello(&client_hello("127.0.0.1")),
            Hello::Tls(None)
        );
    }

    #[test]
    fn a_hello_split_over_two_records() {
        let hello = client_hello("split.test");
        let payload = &hello[RECORD_HEADER..];
        let (a, b) = payload.split_at(50);
        let mut two = Vec::new();
        for part in [a, b] {
            two.extend_from_slice(&[HANDSHAKE, 3, 1]);
            two.extend_from_slice(&(part.len() as u16).to_be_bytes());
            two.extend_from_slice(part);
        }
        assert_eq!(
            parse_client_hello(&two),
            Hello::Tls(Some("split.test".into()))
        );
    }

    #[test]
    fn other_protocols_are_not_tls() {
        assert_eq!(parse_client_hello(b"GET / HTTP/1.1\r\n\r\n"), Hello::NotTls);
        assert_eq!(
            parse_client_hello(&[0x16, 3, 1, 0, 4, 2, 0, 0, 0]),
            Hello::NotTls
        );
    }
}
