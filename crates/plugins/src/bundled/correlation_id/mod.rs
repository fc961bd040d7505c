//! correlation-id: gives each request an id in a header (unless the client sent one), passes
//! it upstream and, with `echo_downstream`, back to the client.

mod schema;

use crate::handler::{Handler, Phase, Phases, PluginError};
use crate::pdk::Ctx;
use crate::registry::PluginDef;
use http::{HeaderName, HeaderValue};
use schema::CorrelationIdConfig;
use serde_json::Value;
use std::cell::Cell;
use std::sync::Arc;
use uuid::Uuid;

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: "correlation-id",
        priority: 100_001,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases {
            access: true,
            header_filter: true,
            ..Phases::default()
        },
        build,
        index: None,
    }
}

#[derive(Clone, Copy)]
enum Generator {
    Uuid,
    UuidCounter,
    Tracker,
}

struct CorrelationId {
    header: HeaderName,
    generator: Generator,
    echo_downstream: bool,
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: CorrelationIdConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let name = conf.header_name.as_deref().unwrap_or("Kong-Request-ID");
    Ok(Arc::new(CorrelationId {
        header: HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|e| format!("header_name: {e}"))?,
        generator: match conf.generator.as_str() {
            "uuid" => Generator::Uuid,
            "tracker" => Generator::Tracker,
            _ => Generator::UuidCounter,
        },
        echo_downstream: conf.echo_downstream,
    }))
}

thread_local! {
    /// Kong's per-worker uuid and counter for `uuid#counter` (a worker thread here).
    static WORKER: (Uuid, Cell<u64>) = (Uuid::new_v4(), Cell::new(0));
}

impl CorrelationId {
    fn generate(&self, ctx: &Ctx) -> String {
        match self.generator {
            Generator::Uuid => Uuid::new_v4().to_string(),
            Generator::UuidCounter => WORKER.with(|(id, n)| {
                n.set(n.get() + 1);
                format!("{id}#{}", n.get())
            }),
            // nginx's server address and port, worker pid, connection serial and request
            // count, and time. Workers are threads here, so the request serial of this worker
            // stands in for the connection serial and its request count.
            Generator::Tracker => WORKER.with(|(_, n)| {
                n.set(n.get() + 1);
                let (ip, port) = ctx
                    .server_addr
                    .map_or((String::new(), 0), |a| (a.ip().to_string(), a.port()));
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                format!("{ip}-{port}-{}-{}-1-{now:.3}", std::process::id(), n.get())
            }),
        }
    }
}

/// The id this request carries, for `header_filter`.
struct Echo(HeaderValue);

impl Handler for CorrelationId {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        let sent = ctx
            .request
            .header(self.header.as_str())
            .filter(|v| !v.is_empty())
            .and_then(|v| HeaderValue::from_str(v).ok());
        let id = match sent {
            Some(v) => v,
            None => {
                let Ok(v) = HeaderValue::from_str(&self.generate(ctx)) else {
                    return Phase::CONTINUE;
                };
                ctx.request.set_header(self.header.clone(), v.clone());
                v
            }
        };
        if self.echo_downstream {
            ctx.set_data(Echo(id));
        }
        Phase::CONTINUE
    }

    fn header_filter(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
        if !self.echo_downstream {
            return Ok(());
        }
        let id = match ctx.data::<Echo>() {
            Some(Echo(v)) => v.clone(),
            // The access phase did not run (an earlier plugin answered): the client's id, or a
            // new one.
            None => match ctx
                .request
                .header(self.header.as_str())
                .filter(|v| !v.is_empty())
            {
                Some(v) => HeaderValue::from_str(v),
                None => HeaderValue::from_str(&self.generate(ctx)),
            }
            .map_err(|e| PluginError::internal(e.to_string()))?,
        };
        ctx.response.headers.set(self.header.clone(), id);
        Ok(())
    }
}
