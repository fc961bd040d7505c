//! Asking the name servers: the hickory resolver built from `dns_resolver` (or resolv.conf),
//! one query per record type, and failures sorted the way Kong's client sorts them ("name
//! error" and empty answers apart from server failures, which are remembered for less time).

use super::{Record, RecordKind, Srv};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use std::net::SocketAddr;
use std::time::Duration;

/// Why a name has no records of a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The name does not exist ("name error"): it replaces a stale answer.
    NameError(String),
    /// The name has no records of that type.
    NotFound(String),
    /// The name server failed or did not answer.
    Error(String),
}

/// Builds the resolver: resolv.conf's search domains and options, with `dns_resolver`'s name
/// servers when given. Its own cache and hosts file are off: ours are used.
pub(super) fn resolver(servers: &[SocketAddr]) -> Result<TokioResolver, String> {
    let system = hickory_resolver::system_conf::read_system_conf();
    let (config, mut opts) = match (system, servers.is_empty()) {
        (Ok((config, opts)), true) => (config, opts),
        (Ok((config, opts)), false) => {
            let (domain, search, _) = config.into_parts();
            (
                ResolverConfig::from_parts(domain, search, name_servers(servers)),
                opts,
            )
        }
        (Err(_), false) => (
            ResolverConfig::from_name_servers(name_servers(servers)),
            ResolverOpts::default(),
        ),
        (Err(e), true) => {
            return Err(format!(
                "cannot read the system resolver configuration: {e}"
            ));
        }
    };
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| format!("cannot configure the resolver: {e}"))
}

fn name_servers(servers: &[SocketAddr]) -> Vec<NameServerConfig> {
    servers
        .iter()
        .map(|s| {
            let mut udp = ConnectionConfig::udp();
            udp.port = s.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = s.port();
            NameServerConfig::new(s.ip(), true, vec![udp, tcp])
        })
        .collect()
}

fn record_type(kind: RecordKind) -> RecordType {
    match kind {
        RecordKind::A => RecordType::A,
        RecordKind::Aaaa => RecordType::AAAA,
        RecordKind::Srv => RecordType::SRV,
    }
}

/// The records of one type for `name`, with their smallest TTL.
pub(super) async fn records(
    resolver: &TokioResolver,
    name: &str,
    kind: RecordKind,
) -> Result<(Vec<Record>, Duration), Failure> {
    let lookup = resolver
        .lookup(name, record_type(kind))
        .await
        .map_err(classify)?;
    let mut records = Vec::new();
    let mut ttl = u32::MAX;
    for r in lookup.answers() {
        let record = match &r.data {
            RData::A(a) if kind == RecordKind::A => Record::Ip(a.0.into()),
            RData::AAAA(a) if kind == RecordKind::Aaaa => Record::Ip(a.0.into()),
            RData::SRV(s) if kind == RecordKind::Srv => Record::Srv(Srv {
                target: s
                    .target
                    .to_utf8()
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
                port: s.port,
                weight: s.weight,
                priority: s.priority,
            }),
            // CNAMEs on the way and other types.
            _ => continue,
        };
        ttl = ttl.min(r.ttl);
        records.push(record);
    }
    if records.is_empty() {
        return Err(Failure::NotFound(
            "dns client error: 101 empty record received".into(),
        ));
    }
    Ok((records, Duration::from_secs(u64::from(ttl))))
}

/// Kong's wording for the failures a lookup can end with.
fn classify(e: NetError) -> Failure {
    if e.is_nx_domain() {
        return Failure::NameError("dns server error: 3 name error".into());
    }
    if e.is_no_records_found() {
        return Failure::NotFound("dns client error: 101 empty record received".into());
    }
    match e {
        NetError::Dns(hickory_resolver::net::DnsError::ResponseCode(code)) => {
            let n = u16::from(code);
            let what = match code {
                ResponseCode::ServFail => "server failure".to_string(),
                ResponseCode::Refused => "refused".to_string(),
                ResponseCode::FormErr => "format error".to_string(),
                ResponseCode::NotImp => "not implemented".to_string(),
                other => other.to_string(),
            };
            Failure::Error(format!("dns server error: {n} {what}"))
        }
        NetError::Timeout => Failure::Error("dns client error: timeout".into()),
        other => Failure::Error(format!("dns client error: {other}")),
    }
}
