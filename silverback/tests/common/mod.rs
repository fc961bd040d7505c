//! Test harness: the real `silverback` binary on ephemeral ports, a scriptable upstream server,
//! and an HTTP client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod upstream;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use upstream::Upstream;

pub const BIN: &str = env!("CARGO_BIN_EXE_silverback");

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
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

/// Builder for a gateway: declarative config text and extra settings.
pub struct GatewayBuilder {
    config: Option<String>,
    env: Vec<(String, String)>,
}

impl GatewayBuilder {
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.env.push((
            format!("SILVERBACK_{}", name.to_ascii_uppercase()),
            value.into(),
        ));
        self
    }

    /// Starts the gateway and waits until it listens.
    pub fn start(self) -> Gateway {
        let dir = TempDir::new("gw");
        let mut env: Vec<(String, String)> = vec![
            (
                "SILVERBACK_PREFIX".into(),
                dir.path().join("prefix").display().to_string(),
            ),
            ("SILVERBACK_DATABASE".into(), "off".into()),
            ("SILVERBACK_PROXY_LISTEN".into(), "127.0.0.1:0".into()),
            ("SILVERBACK_STATUS_LISTEN".into(), "127.0.0.1:0".into()),
            ("SILVERBACK_WORKER_THREADS".into(), "2".into()),
            ("SILVERBACK_LOG_LEVEL".into(), "info".into()),
        ];
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
        let child = spawn(&["start"], &env, &log);
        let mut gw = Gateway {
            dir,
            child: Some(child),
            proxy: "127.0.0.1:1".parse().unwrap(),
            status: None,
            env,
            log,
        };
        gw.wait_listening();
        gw
    }
}

fn spawn(args: &[&str], env: &[(String, String)], log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    let mut cmd = Command::new(BIN);
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
        }
    }

    pub fn without_config() -> GatewayBuilder {
        GatewayBuilder {
            config: None,
            env: Vec::new(),
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
                self.proxy = v["proxy"][0].as_str().unwrap().parse().unwrap();
                self.status = v["status"][0].as_str().and_then(|s| s.parse().ok());
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

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
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

    /// Sends SIGTERM and waits for a clean exit.
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

/// Runs `silverback <args>` to completion with only the given settings in the environment.
pub fn run_cli(args: &[&str], env: &[(String, String)]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
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

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
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
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
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
