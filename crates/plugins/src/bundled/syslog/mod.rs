//! syslog: sends each request's log record to the local syslog daemon (the Unix datagram socket
//! `/dev/log`, or the `syslog_socket` setting) with the severity its status class is
//! configured for, skipping severities below `log_level`, as Kong's plugin does through
//! syslog(3). The queue thread does the I/O.

mod schema;

use super::log_sink::{Deliver, QueueParams, Sink};
use crate::handler::{Handler, Phases};
use crate::pdk::{Ctx, serialize::serialize};
use crate::registry::PluginDef;
use schema::{FACILITIES, SEVERITIES};
use serde_json::Value;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const NAME: &str = "syslog";

/// Kong's sender name (`lsyslog.open("kong", ...)`).
const IDENT: &str = "kong";

static SOCKET: LazyLock<RwLock<PathBuf>> = LazyLock::new(|| RwLock::new("/dev/log".into()));

/// Where syslog entries go (the `syslog_socket` setting); set by the node before plugins are
/// built.
pub fn set_socket(path: PathBuf) {
    *SOCKET.write().unwrap_or_else(|e| e.into_inner()) = path;
}

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 4,
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

struct Syslog {
    sink: Arc<Sink>,
    /// The least important severity still sent (`log_level`), as a syslog number.
    threshold: u8,
    successful: u8,
    client_errors: u8,
    server_errors: u8,
    facility: u8,
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let severity = |name: &str| {
        let v = config.get(name).and_then(Value::as_str).unwrap_or("info");
        SEVERITIES
            .iter()
            .find(|(n, _)| *n == v)
            .map(|(_, s)| *s)
            .ok_or_else(|| format!("unknown severity {v}"))
    };
    let facility = config
        .get("facility")
        .and_then(Value::as_str)
        .unwrap_or("user");
    let facility = FACILITIES
        .iter()
        .find(|(n, _)| *n == facility)
        .map(|(_, f)| *f)
        .ok_or_else(|| format!("unknown facility {facility}"))?;
    let socket = SOCKET.read().unwrap_or_else(|e| e.into_inner()).clone();
    let key = socket.display().to_string();
    let sink = Sink::shared(NAME, key, QueueParams::immediate(), || {
        Box::new(SyslogDeliver {
            path: socket,
            socket: None,
        })
    })?;
    Ok(Arc::new(Syslog {
        sink,
        threshold: severity("log_level")?,
        successful: severity("successful_severity")?,
        client_errors: severity("client_errors_severity")?,
        server_errors: severity("server_errors_severity")?,
        facility,
    }))
}

impl Handler for Syslog {
    fn log(&self, ctx: &Ctx) {
        let status = ctx.response.status.as_u16();
        let severity = match status {
            500.. => self.server_errors,
            400..500 => self.client_errors,
            _ => self.successful,
        };
        // Lower numbers are more severe.
        if severity > self.threshold {
            return;
        }
        let json = match serde_json::to_string(&serialize(ctx)) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(plugin = NAME, request_id = ctx.request_id(), error = %e, "cannot serialize log entry");
                return;
            }
        };
        let priority = u16::from(self.facility) * 8 + u16::from(severity);
        let line = format!(
            "<{priority}>{} {IDENT}[{}]: {json}",
            timestamp(SystemTime::now()),
            std::process::id()
        );
        self.sink.push(line.into_bytes());
    }
}

/// syslog(3)'s timestamp, `Mmm dd hh:mm:ss` (UTC).
fn timestamp(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since the epoch to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let name = MONTHS.get((month - 1) as usize).copied().unwrap_or("Jan");
    format!(
        "{name} {day:>2} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

struct SyslogDeliver {
    path: PathBuf,
    socket: Option<UnixDatagram>,
}

impl Deliver for SyslogDeliver {
    fn deliver(&mut self, batch: &[Vec<u8>]) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("cannot send to {}: {e}", self.path.display());
        if self.socket.is_none() {
            self.socket = Some(UnixDatagram::unbound().map_err(fail)?);
        }
        let Some(socket) = &self.socket else {
            return Err("no socket".into());
        };
        for entry in batch {
            socket.send_to(entry, &self.path).map_err(fail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn syslog_timestamps() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_943_250); // 2026-11-29 09:07:30 UTC
        assert_eq!(timestamp(t), "Nov 29 09:07:30");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_200 + 3_723); // 2024-03-01 01:02:03
        assert_eq!(timestamp(t), "Mar  1 01:02:03");
    }
}
