//! The blocking HTTP/1.1 client the queue threads of http-log and opentelemetry post batches
//! with: one connection kept alive for `keepalive`, Kong's connect, send and read timeouts.

mod endpoint;

use crate::bundled::log_transport::{Conn, Verify, connect_verifying};
use base64::Engine;
pub(crate) use endpoint::Endpoint;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

/// Timeouts of one delivery (Kong's `set_timeouts(connect, send, read)`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    pub send: Duration,
    pub read: Duration,
}

impl Timeouts {
    pub fn all(t: Duration) -> Self {
        Timeouts {
            connect: t,
            send: t,
            read: t,
        }
    }
}

/// Posts bodies to one endpoint.
pub(crate) struct HttpPost {
    pub method: String,
    pub content_type: String,
    pub timeouts: Timeouts,
    pub keepalive: Duration,
    pub headers: Vec<(String, String)>,
    pub endpoint: Endpoint,
    /// Which answers mean delivered (http-log: any 2xx; opentelemetry: 200 only, as Kong).
    pub accepts: fn(u16) -> bool,
    /// How an `https` endpoint's certificate is checked (http-log: not at all, as Kong's).
    pub verify: Verify,
    /// The kept-alive connection and when it was last used.
    conn: Option<(BufReader<Conn>, Instant)>,
}

enum Failure {
    /// The request could not be sent or its answer read.
    Io(String),
    /// The server answered with an error status.
    Status(String),
}

impl HttpPost {
    /// A client with http-log's defaults (10 s timeouts, 60 s keepalive, 2xx accepted).
    pub fn new(method: &str, content_type: &str, endpoint: Endpoint) -> Self {
        HttpPost {
            method: method.to_string(),
            content_type: content_type.to_string(),
            timeouts: Timeouts::all(Duration::from_secs(10)),
            keepalive: Duration::from_secs(60),
            headers: Vec::new(),
            endpoint,
            accepts: |status| status < 300,
            verify: Verify::Nothing,
            conn: None,
        }
    }

    /// Sends `body`, on the kept-alive connection while the server keeps it open.
    pub fn send(&mut self, body: &[u8]) -> Result<(), String> {
        // A kept-alive connection may have been closed by the server: try once more fresh.
        let reused = self
            .conn
            .take()
            .filter(|(c, used)| used.elapsed() < self.keepalive && !c.get_ref().is_closed());
        if let Some((conn, _)) = reused {
            match self.post(conn, body) {
                Ok(()) => return Ok(()),
                Err(Failure::Status(e)) => return Err(e),
                Err(Failure::Io(_)) => {}
            }
        }
        let e = &self.endpoint;
        let sni = e.tls.then_some(None);
        let conn = connect_verifying(&e.host, e.port, self.timeouts.connect, sni, self.verify)?;
        conn.set_timeouts(self.timeouts.send, self.timeouts.read)
            .map_err(|e| {
                format!(
                    "failed request to {}:{}: {e}",
                    self.endpoint.host, self.endpoint.port
                )
            })?;
        self.post(BufReader::new(conn), body).map_err(|f| match f {
            Failure::Status(e) | Failure::Io(e) => e,
        })
    }

    fn head(&self, len: usize) -> String {
        let e = &self.endpoint;
        let host = if e.host.contains(':') {
            format!("[{}]", e.host)
        } else {
            e.host.clone()
        };
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: silverback\r\nContent-Length: {len}\r\n",
            self.method, e.path, e.port
        );
        // A Content-Type among the configured headers wins (opentelemetry's `headers`).
        if !self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            head.push_str(&format!("Content-Type: {}\r\n", self.content_type));
        }
        if let Some(u) = &e.userinfo {
            let token = base64::engine::general_purpose::STANDARD.encode(u);
            head.push_str(&format!("Authorization: Basic {token}\r\n"));
        }
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        head
    }

    fn post(&mut self, mut conn: BufReader<Conn>, body: &[u8]) -> Result<(), Failure> {
        let io = |e: std::io::Error| {
            Failure::Io(format!(
                "failed request to {}:{}: {e}",
                self.endpoint.host, self.endpoint.port
            ))
        };
        let head = self.head(body.len());
        let w = conn.get_mut();
        w.write_all(head.as_bytes()).map_err(io)?;
        w.write_all(body).map_err(io)?;
        w.flush().map_err(io)?;
        let (status, keep, body) = read_response(&mut conn).map_err(io)?;
        if keep {
            self.conn = Some((conn, Instant::now()));
        }
        if (self.accepts)(status) {
            Ok(())
        } else {
            Err(Failure::Status(format!(
                "request to {}:{} returned status code {status} and body {}",
                self.endpoint.host,
                self.endpoint.port,
                String::from_utf8_lossy(&body)
            )))
        }
    }
}

/// Reads a response: its status, whether the connection can be reused, and its body.
fn read_response(conn: &mut BufReader<Conn>) -> std::io::Result<(u16, bool, Vec<u8>)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(bad("connection closed before a response"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("malformed status line"))?;
    let mut length = None;
    let mut chunked = false;
    let mut keep = !line.starts_with("HTTP/1.0");
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(bad("connection closed in the response head"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => keep = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| bad("malformed chunk size"))?;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    line.clear();
                    if conn.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            conn.read_exact(&mut body[start..])?;
            line.clear();
            conn.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        conn.read_exact(&mut body)?;
    } else if status != 204 && status != 304 {
        conn.read_to_end(&mut body)?;
        keep = false;
    }
    Ok((status, keep, body))
}
