//! The proxy's access log (`proxy_access_log`): one line per request in nginx's `combined`
//! format, for people who grep. The request path only hands a few cheap clones to a bounded
//! channel; a writer thread formats and appends them, flushing whenever it has caught up, and
//! reopens the file on SIGUSR1. When the writer falls behind (or the disk is full) lines are
//! dropped, never the request.

use http::{HeaderValue, Method, Version, uri::PathAndQuery};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::{SystemTime, UNIX_EPOCH};

/// Lines that may wait for the writer.
const QUEUE: usize = 16_384;

/// What one access log line says.
pub struct AccessEntry {
    pub client: IpAddr,
    pub time: SystemTime,
    pub method: Method,
    pub target: PathAndQuery,
    pub version: Version,
    pub status: u16,
    /// Response body bytes, when known when the response started.
    pub body_bytes: Option<u64>,
    pub referer: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
}

#[derive(Debug)]
pub struct AccessLog {
    tx: SyncSender<AccessEntry>,
    dropped: AtomicU64,
}

impl AccessLog {
    /// Opens (creating) the file now, so a bad path is reported at start, and starts the writer.
    pub fn open(path: PathBuf) -> std::io::Result<AccessLog> {
        let file = open(&path)?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(path, file, rx))?;
        Ok(AccessLog {
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    pub fn record(&self, entry: AccessEntry) {
        if self.tx.try_send(entry).is_err() {
            let n = self.dropped.fetch_add(1, Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "access log lines dropped: the writer is behind"
                );
            }
        }
    }
}

fn open(path: &PathBuf) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

fn write_lines(path: PathBuf, file: File, rx: Receiver<AccessEntry>) {
    let mut out = BufWriter::new(file);
    let mut generation = silverback_plugins::logs::reopen_generation();
    let mut failures = 0u64;
    let mut line = String::new();
    loop {
        let entry = match rx.try_recv() {
            Ok(e) => e,
            Err(TryRecvError::Empty) => {
                // Caught up: make what was written visible, then wait.
                let _ = out.flush();
                match rx.recv() {
                    Ok(e) => e,
                    Err(_) => return,
                }
            }
            Err(TryRecvError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        };
        let now = silverback_plugins::logs::reopen_generation();
        if now != generation {
            generation = now;
            let _ = out.flush();
            match open(&path) {
                Ok(f) => out = BufWriter::new(f),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot reopen the access log")
                }
            }
        }
        line.clear();
        format_combined(&entry, &mut line);
        if let Err(e) = out.write_all(line.as_bytes()) {
            failures += 1;
            if failures.is_power_of_two() {
                tracing::error!(path = %path.display(), error = %e, failures, "cannot write the access log");
            }
        }
    }
}

/// nginx's `combined`: `$remote_addr - $remote_user [$time_local] "$request" $status
/// $body_bytes_sent "$http_referer" "$http_user_agent"`.
fn format_combined(e: &AccessEntry, out: &mut String) {
    use std::fmt::Write;
    let text = |v: &Option<HeaderValue>| {
        v.as_ref()
            .map(|v| escape(&String::from_utf8_lossy(v.as_bytes())))
            .unwrap_or_else(|| "-".into())
    };
    let bytes = e
        .body_bytes
        .map_or_else(|| "-".to_string(), |b| b.to_string());
    let _ = writeln!(
        out,
        "{} - - [{}] \"{} {} {:?}\" {} {bytes} \"{}\" \"{}\"",
        e.client.to_canonical(),
        time_local(e.time),
        e.method,
        escape(e.target.as_str()),
        e.version,
        e.status,
        text(&e.referer),
        text(&e.user_agent),
    );
}

/// nginx escapes `"`, `\` and bytes outside printable ASCII as `\xHH`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.push_str(&format!("\\x{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// `$time_local` in UTC: `29/Nov/2026:09:20:02 +0000`, from the HTTP date
/// `Sun, 29 Nov 2026 09:20:02 GMT`.
fn time_local(t: SystemTime) -> String {
    let t = if t < UNIX_EPOCH { UNIX_EPOCH } else { t };
    let http = httpdate::fmt_http_date(t);
    let parts: Vec<&str> = http.split(' ').collect();
    match parts.as_slice() {
        [_, day, month, year, time, _] => format!("{day}/{month}/{year}:{time} +0000"),
        _ => http,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn combined_format() {
        let e = AccessEntry {
            client: "127.0.0.1".parse().unwrap(),
            time: UNIX_EPOCH + Duration::from_secs(1_795_943_250),
            method: Method::GET,
            target: PathAndQuery::from_static("/a?b=c"),
            version: Version::HTTP_11,
            status: 200,
            body_bytes: Some(12),
            referer: None,
            user_agent: Some(HeaderValue::from_static("say \"hi\"")),
        };
        let mut line = String::new();
        format_combined(&e, &mut line);
        assert_eq!(
            line,
            "127.0.0.1 - - [29/Nov/2026:09:07:30 +0000] \"GET /a?b=c HTTP/1.1\" 200 12 \"-\" \"say \\x22hi\\x22\"\n"
        );
    }
}
