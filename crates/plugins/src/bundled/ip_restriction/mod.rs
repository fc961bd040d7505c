//! ip-restriction: allows or denies clients by address (IPs and CIDR ranges, v4 and v6). The
//! address is the client's after `trusted_ips` / `real_ip_header`, nginx's `$remote_addr`.

mod schema;

use crate::handler::{Handler, Phase, Phases};
use crate::pdk::{Ctx, Exit};
use crate::registry::PluginDef;
use http::StatusCode;
use ipnet::IpNet;
use schema::IpRestrictionConfig;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;

pub(crate) const NAME: &str = "ip-restriction";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 990,
        protocols: &["grpc", "grpcs", "http", "https", "tcp", "tls"],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases::ACCESS,
        build,
        index: None,
    }
}

/// A list of ranges; a single address is a /32 or /128.
#[derive(Debug, Default)]
struct Ranges(Vec<IpNet>);

impl Ranges {
    fn parse(list: Option<&[String]>) -> Result<Ranges, String> {
        let mut nets = Vec::new();
        for text in list.unwrap_or_default() {
            let net = match text.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => text
                    .parse::<IpNet>()
                    .map_err(|_| format!("invalid ip or cidr range: '{text}'"))?,
            };
            nets.push(net.trunc());
        }
        Ok(Ranges(nets))
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: IpRestrictionConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    // Kong hands any number to `kong.response.error`; one that is not a status fails there.
    let status = match conf.status {
        None => StatusCode::FORBIDDEN,
        Some(s) => StatusCode::from_u16(s as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    };
    Ok(Arc::new(IpRestriction {
        allow: Ranges::parse(conf.allow.as_deref())?,
        deny: Ranges::parse(conf.deny.as_deref())?,
        status,
        message: conf.message,
    }))
}

struct IpRestriction {
    allow: Ranges,
    deny: Ranges,
    status: StatusCode,
    message: Option<String>,
}

impl IpRestriction {
    fn refuse(&self, ip: IpAddr) -> Exit {
        let message = match &self.message {
            Some(m) => m.clone(),
            None => format!("IP address not allowed: {ip}"),
        };
        tracing::warn!("{message}");
        Exit::error(self.status, message)
    }
}

impl Handler for IpRestriction {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
        let ip = ctx.client_ip.to_canonical();
        if self.deny.contains(&ip) {
            return self.refuse(ip).into();
        }
        if !self.allow.0.is_empty() && !self.allow.contains(&ip) {
            return self.refuse(ip).into();
        }
        Phase::CONTINUE
    }
}
