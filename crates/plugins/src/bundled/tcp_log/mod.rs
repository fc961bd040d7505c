//! tcp-log: writes each request's log record as one line of JSON to a TCP server, optionally
//! over TLS, keeping the connection open for `keepalive` milliseconds. As in Kong, an entry
//! that cannot be sent is logged and dropped (no retries); the queue thread does the I/O.

mod schema;

use super::log_sink::{Deliver, QueueParams, Sink};
use super::log_transport::{Conn, connect};
use crate::handler::{Handler, Phases};
use crate::pdk::Ctx;
use crate::registry::PluginDef;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const NAME: &str = "tcp-log";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 7,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases {
            log: true,
            serialize: true,
            ..Phases::default()
        },
        build,
        index: None,
    }
}

struct TcpLog {
    sink: Arc<Sink>,
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let millis = |name: &str, default: f64| {
        let ms = config.get(name).and_then(Value::as_f64).unwrap_or(default);
        Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    };
    let deliver = TcpDeliver {
        host: config
            .get("host")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        port: config
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("invalid port")?,
        timeout: millis("timeout", 10000.0),
        keepalive: millis("keepalive", 60000.0),
        tls: config.get("tls").and_then(Value::as_bool).unwrap_or(false),
        tls_sni: config
            .get("tls_sni")
            .and_then(Value::as_str)
            .map(str::to_string),
        conn: None,
    };
    let key = serde_json::json!([
        config.get("host"),
        config.get("port"),
        config.get("timeout"),
        config.get("keepalive"),
        config.get("tls"),
        config.get("tls_sni"),
    ])
    .to_string();
    let sink = Sink::shared(NAME, key, QueueParams::immediate(), || Box::new(deliver))?;
    Ok(Arc::new(TcpLog { sink }))
}

impl Handler for TcpLog {
    fn log(&self, ctx: &Ctx) {
        self.sink.push_record(ctx, true);
    }
}

struct TcpDeliver {
    host: String,
    port: u16,
    timeout: Duration,
    keepalive: Duration,
    tls: bool,
    tls_sni: Option<String>,
    /// The kept-alive connection and when it was last used.
    conn: Option<(Conn, Instant)>,
}

impl Deliver for TcpDeliver {
    fn deliver(&mut self, batch: &[Vec<u8>]) -> Result<(), String> {
        let reused = self
            .conn
            .take()
            .filter(|(c, used)| used.elapsed() < self.keepalive && !c.is_closed());
        let mut conn = match reused {
            Some((c, _)) => c,
            None => {
                let tls = self.tls.then_some(self.tls_sni.as_deref());
                connect(&self.host, self.port, self.timeout, tls)?
            }
        };
        for entry in batch {
            conn.write_all(entry)
                .and_then(|()| conn.flush())
                .map_err(|e| format!("failed to send data to {}:{}: {e}", self.host, self.port))?;
        }
        self.conn = Some((conn, Instant::now()));
        Ok(())
    }
}
