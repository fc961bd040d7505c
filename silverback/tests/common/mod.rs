//! Test harness: the real `silverback` binary on ephemeral ports, a scriptable upstream server,
//! and an HTTP client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod collector;
pub mod dns;
pub mod tls;
pub mod tls_echo;
pub mod upstream;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use upstream::Upstream;

pub const BIN: &str = env!("CARGO_BIN_EXE_silverback");

/// The binary under test: `SB_TEST_BIN` when set (worktrees sharing one target directory
/// overwrite each other's `target/debug/silverback`; a copy taken right after the build is
/// immune), else the one cargo built.
pub fn bin() -> String {
    std::env::var("SB_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "silverback-it-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running gateway process.
pub struct Gateway {
    pub dir: TempDir,
    pub child: Option<Child>,
    pub proxy: SocketAddr,
    pub status: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    /// The first `ssl` proxy / Admin / status listener, when there is one.
    pub proxy_ssl: Option<SocketAddr>,
    pub admin_ssl: Option<SocketAddr>,
    pub status_ssl: Option<SocketAddr>,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

/// Builder for a gateway: declarative config text and extra settings.
pub struct GatewayBuilder {
    config: Option<String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl GatewayBuilder {
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.env.push((
            format!("SILVERBACK_{}", name.to_ascii_uppercase()),
            value.into(),
        ));
        self
    }

    /// An extra argument for `silverback start` (e.g. `--conf <file>`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts the gateway and waits until it listens.
    pub fn start(self) -> Gateway {
        let dir = TempDir::new("gw");
        let mut env = base_env(&dir);
        if let Some(cfg) = &self.config {
            let file = dir.path().join("kong.yml");
            std::fs::write(&file, cfg).unwrap();
            env.push((
                "SILVERBACK_DECLARATIVE_CONFIG".into(),
                file.display().to_string(),
            ));
        }
        env.extend(self.env);
        let log = dir.path().join("gateway.log");
        let mut args: Vec<&str> = vec!["start"];
        args.extend(self.args.iter().map(String::as_str));
        let child = spawn(&args, &env, &log);
        let mut gw = Gateway {
            dir,
            child: Some(child),
            proxy: "127.0.0.1:1".parse().unwrap(),
            status: None,
            admin: None,
            proxy_ssl: None,
            admin_ssl: None,
            status_ssl: None,
            env,
            log,
        };
        gw.wait_listening();
        gw
    }
}

/// The settings every test gateway gets: its own prefix under `dir`, DB-less, ephemeral ports,
/// two workers.
pub fn base_env(dir: &TempDir) -> Vec<(String, String)> {
    vec![
        (
            "SILVERBACK_PREFIX".into(),
            dir.path().join("prefix").display().to_string(),
        ),
        ("SILVERBACK_DATABASE".into(), "off".into()),
        ("SILVERBACK_PROXY_LISTEN".into(), "127.0.0.1:0".into()),
        ("SILVERBACK_STATUS_LISTEN".into(), "127.0.0.1:0".into()),
        ("SILVERBACK_ADMIN_LISTEN".into(), "127.0.0.1:0".into()),
        ("SILVERBACK_WORKER_THREADS".into(), "2".into()),
        ("SILVERBACK_LOG_LEVEL".into(), "info".into()),
    ]
}

fn spawn(args: &[&str], env: &[(String, String)], log: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let err = out.try_clone().unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(args).stdout(out).stderr(err);
    for (k, _) in std::env::vars() {
        if k.starts_with("SILVERBACK_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.spawn().expect("spawn silverback")
}

impl Gateway {
    pub fn with_config(yaml: &str) -> GatewayBuilder {
        GatewayBuilder {
            config: Some(yaml.to_string()),
            env: Vec::new(),
            args: Vec::new(),
        }
    }

    /// A gateway on the embedded database (the default store), configured through its Admin
    /// API.
    pub fn with_database() -> GatewayBuilder {
        Self::without_config().setting("database", "sqlite")
    }

    pub fn without_config() -> GatewayBuilder {
        GatewayBuilder {
            config: None,
            env: Vec::new(),
            args: Vec::new(),
        }
    }

    pub fn prefix(&self) -> PathBuf {
        self.dir.path().join("prefix")
    }

    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("kong.yml")
    }

    fn wait_listening(&mut self) {
        let file = self.prefix().join("listeners.json");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Ok(v) = serde_json::from_str::<Value>(&text)
            {
                let first = |name: &str| v[name][0].as_str().and_then(|s| s.parse().ok());
                self.proxy_ssl = first("proxy_ssl");
                self.admin_ssl = first("admin_ssl");
                self.status_ssl = first("status_ssl");
                self.proxy = first("proxy").or(self.proxy_ssl).expect("a proxy listener");
                self.status = v["status"][0].as_str().and_then(|s| s.parse().ok());
                self.admin = v["admin"][0].as_str().and_then(|s| s.parse().ok());
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("gateway exited with {status}:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not start:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `stream_listen` addresses, in the order they were configured.
    pub fn stream_addrs(&self) -> Vec<SocketAddr> {
        let text = std::fs::read_to_string(self.prefix().join("listeners.json")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        v["stream"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str()?.parse().ok()).collect())
            .unwrap_or_default()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "http://{}{}",
            self.admin.expect("admin API listening"),
            path
        )
    }

    pub fn status_url(&self, path: &str) -> String {
        format!("http://{}{}", self.status.expect("status listener"), path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Runs a CLI verb against this instance (same settings); returns (exit code, output).
    pub fn cli(&self, args: &[&str]) -> (i32, String) {
        run_cli(args, &self.env)
    }

    /// Replaces the declarative file and asks the instance to reload it.
    pub fn reload_with(&self, yaml: &str) -> (i32, String) {
        std::fs::write(self.config_file(), yaml).unwrap();
        self.cli(&["reload"])
    }

    /// Peak and current resident memory of the gateway, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// Samples the gateway's VmRSS every 5 ms on a thread until the watch is finished: VmHWM
    /// alone can miss a short peak (the kernel updates it lazily).
    pub fn watch_memory(&self) -> MemoryWatch {
        let pid = self.pid();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_c = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0u64;
            while !stop_c.load(Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    let rss = text
                        .lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    peak = peak.max(rss);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        MemoryWatch {
            stop,
            thread: Some(thread),
        }
    }

    /// Sends a signal (e.g. "HUP") to the gateway process with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET /status` on the status listener, as JSON.
    pub async fn status_json(&self) -> Value {
        let r = get(&client(), &self.status_url("/status"), &[]).await;
        assert_eq!(r.status, 200, "/status: {}", r.text());
        r.json()
    }

    /// The `configuration_hash` the status API reports.
    pub async fn config_hash(&self) -> String {
        self.status_json().await["configuration_hash"]
            .as_str()
            .expect("configuration_hash is a string")
            .to_string()
    }

    /// Polls the status API until the configuration hash differs from `old`; returns the new one.
    pub async fn wait_hash_change(&self, old: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let h = self.config_hash().await;
            if h != old {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "configuration_hash stayed {old} for {timeout:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the gateway again on the same prefix and settings (after `stop` or `kill9`).
    pub fn restart(&mut self) {
        self.kill9();
        let _ = std::fs::remove_file(self.prefix().join("listeners.json"));
        self.child = Some(spawn(&["start"], &self.env, &self.log));
        self.wait_listening();
    }

    /// An Admin API request with a JSON body (empty body when `body` is null).
    pub async fn admin(&self, method: &str, path: &str, body: Value) -> Reply {
        let (headers, body): (&[(&str, &str)], Bytes) = if body.is_null() {
            (&[], Bytes::new())
        } else {
            (
                &[("content-type", "application/json")],
                Bytes::from(body.to_string()),
            )
        };
        send(&client(), method, &self.admin_url(path), headers, body).await
    }

    /// `POST /plugins` of a global plugin `name` with `config`, as a schema test sends it.
    pub async fn post_plugin(&self, name: &str, config: Value) -> Reply {
        let body = serde_json::json!({"name": name, "config": config});
        self.admin("POST", "/plugins", body).await
    }

    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("gateway did not stop:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `silverback <args>` (in `cwd` when given) with only the given settings in the
/// environment, killing it after `timeout`. Returns the exit code (`None` when it had to be
/// killed), the combined output and how long it ran.
pub fn run_cli_timeout(
    args: &[&str],
    env: &[(String, String)],
    cwd: Option<&Path>,
    timeout: Duration,
) -> (Option<i32>, String, Duration) {
    let out_dir = TempDir::new("cli");
    let out_file = out_dir.path().join("out");
    let out = std::fs::File::create(&out_file).unwrap();
    let err = out.try_clone().unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("SILVERBACK_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn silverback");
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    (
        code,
        std::fs::read_to_string(&out_file).unwrap_or_default(),
        took,
    )
}

/// Runs `silverback <args>` to completion with only the given settings in the environment.
pub fn run_cli(args: &[&str], env: &[(String, String)]) -> (i32, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("SILVERBACK_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let out = cmd.output().expect("run silverback");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A running sampler of a process's resident memory.
pub struct MemoryWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl MemoryWatch {
    /// Stops sampling; returns the largest VmRSS seen, in KiB.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for MemoryWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// Reads a response whole.
    pub async fn read(resp: Response<hyper::body::Incoming>) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request with the given headers and body and reads the whole response.
pub async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp: Response<hyper::body::Incoming> = client
        .request(b.body(Full::new(body.into())).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
    Reply::read(resp).await
}

pub async fn get(client: &HttpClient, url: &str, headers: &[(&str, &str)]) -> Reply {
    send(client, "GET", url, headers, Bytes::new()).await
}

/// A YAML service entry pointing at an upstream test server.
pub fn service_yaml(name: &str, up: &Upstream) -> String {
    format!("- name: {name}\n  url: http://{}\n", up.addr)
}

/// Parses the echo body the test upstream returns.
pub fn echo(reply: &Reply) -> upstream::Echo {
    serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
        panic!(
            "not an echo ({e}), status {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )
    })
}

pub fn headers_map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Polls an async condition every 20 ms until it holds; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- Streaming bodies and raw connections ----

/// A request body of `total` bytes produced in `chunk`-sized frames without holding more than one
/// chunk. With `exact`, its size is announced (the client sends Content-Length); otherwise it
/// goes out chunked.
pub struct RepeatBody {
    chunk: Bytes,
    left: u64,
    exact: bool,
}

impl RepeatBody {
    pub fn new(total: u64, chunk: usize, exact: bool) -> Self {
        RepeatBody {
            chunk: Bytes::from(vec![b'u'; chunk]),
            left: total,
            exact,
        }
    }
}

impl hyper::body::Body for RepeatBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64) as usize;
        self.left -= n as u64;
        let data = self.chunk.slice(..n);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        if self.exact {
            hyper::body::SizeHint::with_exact(self.left)
        } else {
            hyper::body::SizeHint::default()
        }
    }
}

/// An HTTP/1.1 connection to `addr` with a body type of the caller's choice.
pub async fn h1_connect<B>(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// An HTTP/2 connection with prior knowledge (h2c) to `addr`.
pub async fn h2_connect<B>(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<B>
where
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// Reads a response body to its end frame by frame, keeping only the count.
pub async fn count_body(mut body: hyper::body::Incoming) -> Result<u64, hyper::Error> {
    let mut n: u64 = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(d) = frame?.into_data() {
            n += d.len() as u64;
        }
    }
    Ok(n)
}

/// Sends `total` bytes to `path` on `addr` over a fresh HTTP/1.1 connection, streamed in 64 KiB
/// frames (Content-Length when `exact`, chunked otherwise); returns the status and body.
pub async fn upload(addr: SocketAddr, path: &str, total: u64, exact: bool) -> Reply {
    let mut send = h1_connect::<RepeatBody>(addr).await;
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header("host", addr.to_string())
        .body(RepeatBody::new(total, 64 * 1024, exact))
        .unwrap();
    let resp = send
        .send_request(req)
        .await
        .unwrap_or_else(|e| panic!("upload to {path}: {e:?}"));
    Reply::read(resp).await
}

/// GETs `path` on `addr` over a fresh HTTP/1.1 connection and counts the body bytes without
/// keeping them; returns the status, headers and count.
pub async fn download(addr: SocketAddr, path: &str) -> (u16, hyper::HeaderMap, u64) {
    let mut send = h1_connect::<http_body_util::Empty<Bytes>>(addr).await;
    let req = Request::builder()
        .uri(path)
        .header("host", addr.to_string())
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = send
        .send_request(req)
        .await
        .unwrap_or_else(|e| panic!("download {path}: {e:?}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let n = count_body(resp.into_body())
        .await
        .unwrap_or_else(|e| panic!("download {path}: body failed: {e:?}"));
    (status, headers, n)
}

/// One client connection, kept for a sequence of requests (the pooled client may open more).
pub struct OneConn {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl OneConn {
    pub async fn open(addr: SocketAddr) -> OneConn {
        OneConn {
            send: h1_connect(addr).await,
            addr,
        }
    }

    /// Sends a request on this connection and reads the whole response.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.send.ready().await.unwrap();
        let mut b = Request::builder().method(method).uri(path);
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            b = b.header("host", self.addr.to_string());
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .send
            .send_request(b.body(Full::new(body.into())).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
        Reply::read(resp).await
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, &[], Bytes::new()).await
    }
}
