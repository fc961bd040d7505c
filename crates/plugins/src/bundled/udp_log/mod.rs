//! udp-log: sends each request's log record as one JSON datagram to a UDP server. The queue
//! thread does the I/O; an entry that cannot be sent is logged and dropped, as in Kong.

mod schema;

use super::log_sink::{Deliver, QueueParams, Sink};
use crate::handler::{Handler, Phases};
use crate::pdk::Ctx;
use crate::registry::PluginDef;
use serde_json::Value;
use std::net::{ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const NAME: &str = "udp-log";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 8,
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

struct UdpLog {
    sink: Arc<Sink>,
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let ms = config
        .get("timeout")
        .and_then(Value::as_f64)
        .unwrap_or(10000.0);
    let deliver = UdpDeliver {
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
        timeout: Duration::from_secs_f64(ms.max(1.0) / 1000.0),
        socket: None,
    };
    let key = serde_json::json!([
        config.get("host"),
        config.get("port"),
        config.get("timeout")
    ])
    .to_string();
    let sink = Sink::shared(NAME, key, QueueParams::immediate(), || Box::new(deliver))?;
    Ok(Arc::new(UdpLog { sink }))
}

impl Handler for UdpLog {
    fn log(&self, ctx: &Ctx) {
        self.sink.push_record(ctx, false);
    }
}

struct UdpDeliver {
    host: String,
    port: u16,
    timeout: Duration,
    /// Connected to the log server once its name resolved.
    socket: Option<UdpSocket>,
}

impl UdpDeliver {
    fn socket(&mut self) -> Result<&UdpSocket, String> {
        if self.socket.is_none() {
            let fail = |e: std::io::Error| {
                format!("could not connect to {}:{}: {e}", self.host, self.port)
            };
            let addr = (self.host.as_str(), self.port)
                .to_socket_addrs()
                .map_err(fail)?
                .next()
                .ok_or_else(|| format!("{} has no address", self.host))?;
            let local = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(local).map_err(fail)?;
            socket.connect(addr).map_err(fail)?;
            socket.set_write_timeout(Some(self.timeout)).map_err(fail)?;
            self.socket = Some(socket);
        }
        self.socket.as_ref().ok_or_else(|| "no socket".to_string())
    }
}

impl Deliver for UdpDeliver {
    fn deliver(&mut self, batch: &[Vec<u8>]) -> Result<(), String> {
        for entry in batch {
            let sent = self.socket()?.send(entry);
            if let Err(e) = sent {
                // Resolve and connect again next time (the server may have moved).
                self.socket = None;
                return Err(format!(
                    "could not send data to {}:{}: {e}",
                    self.host, self.port
                ));
            }
        }
        Ok(())
    }
}
