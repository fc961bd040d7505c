//! file-log: appends each request's log record as one JSON line to a file. Writing happens on
//! the file's queue thread (one per path, shared by every instance writing there), never on the
//! request path. The file is reopened on SIGUSR1 (after an external logrotate moved it) and,
//! with `reopen`, before every write. A write that fails (a full disk: ENOSPC) drops the line,
//! counts it and keeps going; the proxy never waits for the disk.

mod schema;
mod writer;

use super::log_sink::{QueueParams, Sink};
use crate::handler::{Handler, Phases};
use crate::pdk::Ctx;
use crate::registry::PluginDef;
use serde_json::Value;
use std::sync::Arc;
use writer::FileWriter;

pub use writer::{reopen_generation, request_reopen};

pub(crate) const NAME: &str = "file-log";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 9,
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

struct FileLog {
    sink: Arc<Sink>,
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let path = config
        .get("path")
        .and_then(Value::as_str)
        .ok_or("path is required")?;
    let size = |name: &str| config.get(name).and_then(Value::as_u64);
    let writer = FileWriter::new(
        path.into(),
        config
            .get("reopen")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        size("rotate_size"),
        size("max_total_size"),
    );
    let key = serde_json::json!([
        path,
        config.get("reopen"),
        config.get("rotate_size"),
        config.get("max_total_size"),
    ])
    .to_string();
    let sink = Sink::shared(NAME, key, QueueParams::immediate(), || Box::new(writer))?;
    Ok(Arc::new(FileLog { sink }))
}

impl Handler for FileLog {
    fn log(&self, ctx: &Ctx) {
        self.sink.push_record(ctx, true);
    }
}
