//! Log servers for the log plugins' tests: HTTP (records each request), TCP (records each
//! line), UDP and Unix datagram (record each datagram). Each runs on its own threads with
//! blocking sockets and keeps what it received for the test to read.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a collector received, in order.
#[derive(Clone)]
pub struct Received<T>(Arc<Mutex<Vec<T>>>);

impl<T> Default for Received<T> {
    fn default() -> Self {
        Received(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T: Clone> Received<T> {
    fn push(&self, v: T) {
        self.0.lock().unwrap().push(v);
    }

    pub fn all(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until at least `n` items arrived, then a little longer to catch extra ones.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<T> {
        let deadline = Instant::now() + timeout;
        while self.0.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {n} log entries, got {}",
                self.0.lock().unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        self.all()
    }
}

/// One HTTP request a log server received.
#[derive(Debug, Clone)]
pub struct HttpEntry {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpEntry {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An HTTP log server answering 200 to everything.
pub struct HttpCollector {
    pub addr: SocketAddr,
    pub received: Received<HttpEntry>,
}

impl HttpCollector {
    pub fn start() -> HttpCollector {
        Self::start_on("127.0.0.1:0".parse().unwrap())
    }

    pub fn start_on(addr: SocketAddr) -> HttpCollector {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Received::default();
        let r = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let r = r.clone();
                std::thread::spawn(move || serve_http(stream, &r));
            }
        });
        HttpCollector { addr, received }
    }
}

fn serve_http<S: Read + Write>(stream: S, received: &Received<HttpEntry>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        received.push(HttpEntry {
            method,
            path,
            headers,
            body,
        });
        let out = reader.get_mut();
        if out
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

impl HttpCollector {
    /// The same over TLS (the test certificate of `crates/admin/tests/data`).
    pub fn start_tls() -> HttpCollector {
        let config = tls_config();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Received::default();
        let r = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, config) = (r.clone(), config.clone());
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    serve_http(rustls::StreamOwned::new(conn, stream), &r);
                });
            }
        });
        HttpCollector { addr, received }
    }
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/admin/tests/data/");
    let certs = CertificateDer::pem_file_iter(format!("{data}cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{data}key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

/// A TCP log server recording each line (tcp-log ends each entry with a newline).
pub struct TcpCollector {
    pub addr: SocketAddr,
    pub received: Received<String>,
}

impl TcpCollector {
    pub fn start() -> TcpCollector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Received::default();
        let r = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let r = r.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        match line {
                            Ok(l) => r.push(l),
                            Err(_) => return,
                        }
                    }
                });
            }
        });
        TcpCollector { addr, received }
    }
}

/// A UDP log server recording each datagram.
pub struct UdpCollector {
    pub addr: SocketAddr,
    pub received: Received<Vec<u8>>,
}

impl UdpCollector {
    pub fn start() -> UdpCollector {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let received = Received::default();
        let r = received.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0; 65536];
            while let Ok(n) = socket.recv(&mut buf) {
                r.push(buf[..n].to_vec());
            }
        });
        UdpCollector { addr, received }
    }
}

/// A Unix datagram socket standing in for the local syslog daemon (`/dev/log`).
pub struct SyslogCollector {
    pub path: PathBuf,
    pub received: Received<String>,
}

impl SyslogCollector {
    pub fn start(dir: &Path) -> SyslogCollector {
        let path = dir.join("syslog.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let received = Received::default();
        let r = received.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0; 65536];
            while let Ok(n) = socket.recv(&mut buf) {
                r.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        SyslogCollector { path, received }
    }
}

/// A TLS log server recording each line, with the SNI each connection sent.
pub struct TlsCollector {
    pub addr: SocketAddr,
    pub received: Received<String>,
    pub snis: Received<Option<String>>,
}

impl TlsCollector {
    pub fn start() -> TlsCollector {
        let config = tls_config();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Received::default();
        let snis = Received::default();
        let (r, s) = (received.clone(), snis.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, s, config) = (r.clone(), s.clone(), config.clone());
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    while tls.conn.is_handshaking() {
                        if tls.conn.complete_io(&mut tls.sock).is_err() {
                            return;
                        }
                    }
                    s.push(tls.conn.server_name().map(str::to_string));
                    for line in BufReader::new(tls).lines() {
                        match line {
                            Ok(l) => r.push(l),
                            Err(_) => return,
                        }
                    }
                });
            }
        });
        TlsCollector {
            addr,
            received,
            snis,
        }
    }
}
