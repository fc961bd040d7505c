//! A running instance, found through its prefix: the pid file and the listeners file.

use super::{Common, load_settings};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn pid_file(prefix: &Path) -> PathBuf {
    prefix.join("pids").join("silverback.pid")
}

/// Where the running instance writes the addresses it listens on (ports resolved).
pub fn listeners_file(prefix: &Path) -> PathBuf {
    prefix.join("listeners.json")
}

/// The pid of a live instance in this prefix.
pub fn running_pid(prefix: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(pid_file(prefix)).ok()?;
    let pid = Pid::from_raw(text.trim().parse().ok()?);
    kill(pid, None).ok().map(|_| pid)
}

/// Writes a file atomically (write to a temp file, then rename).
pub fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

fn instance(common: &Common) -> Result<(PathBuf, Pid), i32> {
    let settings = load_settings(common).map_err(|e| {
        eprintln!("Error: {e}");
        1
    })?;
    match running_pid(&settings.prefix) {
        Some(pid) => Ok((settings.prefix, pid)),
        None => {
            eprintln!(
                "Error: Silverback is not running in {}",
                settings.prefix.display()
            );
            Err(1)
        }
    }
}

pub fn stop(common: &Common) -> i32 {
    let (prefix, pid) = match instance(common) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if let Err(e) = kill(pid, Signal::SIGTERM) {
        eprintln!("Error: cannot signal process {pid}: {e}");
        return 1;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while running_pid(&prefix).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if running_pid(&prefix).is_some() {
        eprintln!("Error: Silverback (pid {pid}) did not stop within 30s");
        return 1;
    }
    println!("Silverback stopped");
    0
}

pub fn reload(common: &Common) -> i32 {
    let settings = match load_settings(common) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    // Check the file first so a bad one is reported here, not just in the instance's log.
    // With a database the file is not read, so nothing to check.
    if settings.database == silverback_config::Database::Off
        && let Some(file) = &settings.declarative_config
        && {
            silverback_plugins::counters::schema::set_database_off(true);
            super::config::parse(file) != 0
        }
    {
        eprintln!("Error: not reloading; the running instance keeps its current config");
        return 1;
    }
    let (_, pid) = match instance(common) {
        Ok(x) => x,
        Err(code) => return code,
    };
    match kill(pid, Signal::SIGHUP) {
        Ok(()) => {
            println!("Silverback reloaded");
            0
        }
        Err(e) => {
            eprintln!("Error: cannot signal process {pid}: {e}");
            1
        }
    }
}

pub fn health(common: &Common) -> i32 {
    let (prefix, pid) = match instance(common) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let status = status_addr(&prefix).and_then(|addr| http_get(addr, "/status/ready").ok());
    match status {
        Some((200, _)) => {
            println!("silverback......running (pid {pid})");
            println!("Silverback is healthy at {}", prefix.display());
            0
        }
        Some((code, body)) => {
            println!("silverback......running (pid {pid})");
            eprintln!("Error: Silverback is not ready ({code}): {body}");
            1
        }
        None => {
            println!("silverback......running (pid {pid})");
            println!(
                "Silverback is running at {} (no status listener)",
                prefix.display()
            );
            0
        }
    }
}

fn status_addr(prefix: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(listeners_file(prefix)).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["status"].as_array()?.first()?.as_str()?.parse().ok()
}

/// A minimal HTTP/1.0 GET for talking to our own status listener.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    Ok((code, body))
}
