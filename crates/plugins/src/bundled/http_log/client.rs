//! The blocking HTTP/1.1 client http-log's queue thread posts batches with; it keeps one
//! connection alive for `keepalive` milliseconds.

use super::endpoint::Endpoint;
use crate::bundled::log_sink::Deliver;
use crate::bundled::log_transport::{Conn, connect};
use base64::Engine;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

pub(super) struct HttpDeliver {
    pub method: String,
    pub content_type: String,
    pub timeout: Duration,
    pub keepalive: Duration,
    pub headers: Vec<(String, String)>,
    pub endpoint: Endpoint,
    /// Whether entries go as a JSON array (`max_batch_size` > 1) or one object per request.
    pub batched: bool,
    /// The kept-alive connection and when it was last used.
    pub conn: Option<(BufReader<Conn>, Instant)>,
}

impl Deliver for HttpDeliver {
    fn deliver(&mut self, batch: &[Vec<u8>]) -> Result<(), String> {
        let body = self.payload(batch);
        // A kept-alive connection may have been closed by the server: try once more fresh.
        let reused = self
            .conn
            .take()
            .filter(|(c, used)| used.elapsed() < self.keepalive && !c.get_ref().is_closed());
        if let Some((conn, _)) = reused {
            match self.post(conn, &body) {
                Ok(()) => return Ok(()),
                Err(Failure::Status(e)) => return Err(e),
                Err(Failure::Io(_)) => {}
            }
        }
        let e = &self.endpoint;
        let sni = e.tls.then_some(None);
        let conn = connect(&e.host, e.port, self.timeout, sni)?;
        self.post(BufReader::new(conn), &body).map_err(|f| match f {
            Failure::Status(e) | Failure::Io(e) => e,
        })
    }
}

enum Failure {
    /// The request could not be sent or its answer read.
    Io(String),
    /// The log server answered with an error status.
    Status(String),
}

impl HttpDeliver {
    fn payload(&self, batch: &[Vec<u8>]) -> Vec<u8> {
        if !self.batched && batch.len() == 1 {
            return batch.first().cloned().unwrap_or_default();
        }
        let mut out = Vec::with_capacity(batch.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (i, e) in batch.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(e);
        }
        out.push(b']');
        out
    }

    fn head(&self, len: usize) -> String {
        let e = &self.endpoint;
        let host = if e.host.contains(':') {
            format!("[{}]", e.host)
        } else {
            e.host.clone()
        };
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: silverback\r\nContent-Type: {}\r\nContent-Length: {len}\r\n",
            self.method, e.path, e.port, self.content_type
        );
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
        if status < 300 {
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
