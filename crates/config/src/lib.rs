//! Silverback settings, named as Kong names them.
//!
//! Sources, lowest to highest precedence: built-in defaults, a kong.conf-style file
//! (`key = value`, `#` comments), `SILVERBACK_<NAME>` environment variables, command-line flags.
//! The environment is passed in (not read here) so tests can hand over a map.

mod dns;
mod instrumentation;
mod listen;
mod table;
mod tls;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use dns::{DnsOrder, DnsSettings};
pub use ipnet::IpNet;
pub use listen::{Listen, Subsystem, parse_listen_list, parse_listen_list_for};
pub use table::{ALIASES, KONG_SETTINGS_WITHOUT_EFFECT, SENSITIVE_SETTINGS, SETTINGS, SettingDef};
pub use tls::{CertSource, TlsSettings, TlsVersions};

/// Prefix of the environment variables that set settings.
pub const ENV_PREFIX: &str = "SILVERBACK_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Where the config store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// DB-less: the declarative file is the whole config.
    Off,
    /// The embedded SQLite store at [`Settings::sqlite_path`].
    Sqlite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warn,
    Error,
    Crit,
    Alert,
    Emerg,
}

impl LogLevel {
    /// The tracing filter directive for this level (tracing has no notice/crit/alert/emerg).
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info | LogLevel::Notice => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error | LogLevel::Crit | LogLevel::Alert | LogLevel::Emerg => "error",
        }
    }
}

/// Kong's router flavors. Both match with the same rules here; they differ in that only
/// `traditional` honours a route's `path_handling: v1` (traditional_compatible treats it as v0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterFlavor {
    TraditionalCompatible,
    Traditional,
}

/// Which headers the gateway adds (Kong's `headers` and `headers_upstream`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderSet {
    pub server: bool,
    pub via: bool,
    pub proxy_latency: bool,
    pub response_latency: bool,
    pub upstream_latency: bool,
    pub upstream_status: bool,
    pub request_id: bool,
}

/// A secret setting value: `Debug` never shows it; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(******)")
    }
}

/// Whether a setting holds a secret (see [`SENSITIVE_SETTINGS`]).
pub fn is_sensitive(name: &str) -> bool {
    SENSITIVE_SETTINGS.contains(&name)
}

/// A setting's value as it may be printed: secrets are masked.
fn shown_value<'a>(name: &str, value: &'a str) -> &'a str {
    if is_sensitive(name) && !value.is_empty() {
        "******"
    } else {
        value
    }
}

/// All settings, parsed and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub prefix: PathBuf,
    pub log_level: LogLevel,
    pub proxy_listen: Vec<Listen>,
    pub admin_listen: Vec<Listen>,
    pub status_listen: Vec<Listen>,
    /// TCP/TLS stream proxy listeners (`stream_listen`; empty when `off`).
    pub stream_listen: Vec<Listen>,
    /// Required on every Admin API request when set (`admin_token`).
    pub admin_token: Option<Secret>,
    pub database: Database,
    pub declarative_config: Option<PathBuf>,
    /// The SQLite database file (`sqlite_path`, resolved against the prefix).
    pub sqlite_path: PathBuf,
    /// Number of proxy worker threads, each with its own event loop.
    pub worker_threads: usize,
    pub trusted_ips: Vec<IpNet>,
    pub real_ip_header: String,
    pub real_ip_recursive: bool,
    pub headers: HeaderSet,
    pub headers_upstream: HeaderSet,
    pub upstream_keepalive_pool_size: usize,
    pub upstream_keepalive_max_requests: u64,
    pub upstream_keepalive_idle_timeout: u64,
    pub error_default_type: String,
    pub client_body_buffer_size: u64,
    pub client_max_body_size: u64,
    /// Bytes of responses proxy-cache keeps in memory.
    pub mem_cache_size: u64,
    pub router_flavor: RouterFlavor,
    /// The proxy's access log (`proxy_access_log`, resolved against the prefix); `None` when
    /// `off`.
    pub proxy_access_log: Option<PathBuf>,
    /// Where the syslog plugin sends entries (`syslog_socket`).
    pub syslog_socket: PathBuf,
    /// Certificates, protocols and verification of the TLS listeners and upstreams.
    pub tls: TlsSettings,
    /// `tracing_instrumentations`: `off`, `all` or the instrumentation names.
    pub tracing_instrumentations: Vec<String>,
    /// `tracing_sampling_rate`, between 0 and 1.
    pub tracing_sampling_rate: f64,
    /// The `dns_*` settings.
    pub dns: DnsSettings,
    /// Settings that were accepted but do nothing here, to be logged once at start.
    pub warnings: Vec<String>,
    /// Every setting's value as given, secrets replaced by `******` (Admin API `GET /`).
    pub shown: BTreeMap<String, String>,
}

/// Values gathered from every source, before parsing. `Debug` redacts secret settings.
#[derive(Default, Clone)]
pub struct RawSettings {
    values: BTreeMap<String, String>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for RawSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values: BTreeMap<&str, &str> = self
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), shown_value(k, v)))
            .collect();
        f.debug_struct("RawSettings")
            .field("values", &values)
            .field("errors", &self.errors)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl RawSettings {
    /// Starts from the built-in defaults.
    pub fn defaults() -> Self {
        let values = SETTINGS
            .iter()
            .map(|d| (d.name.to_string(), d.default.to_string()))
            .collect();
        RawSettings {
            values,
            ..Default::default()
        }
    }

    /// Applies a kong.conf-style file.
    pub fn with_file(mut self, path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        for (n, line) in text.lines().enumerate() {
            let line = strip_comment(line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) => {
                    self.set(k.trim(), v.trim(), &format!("{}:{}", path.display(), n + 1))
                }
                None => self.errors.push(format!(
                    "{}:{}: expected 'name = value', got '{line}'",
                    path.display(),
                    n + 1
                )),
            }
        }
        Ok(self)
    }

    /// Applies `SILVERBACK_<NAME>` variables from the given environment.
    pub fn with_env<I, K, V>(mut self, env: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (k, v) in env {
            if let Some(name) = k.as_ref().strip_prefix(ENV_PREFIX) {
                let origin = format!("environment variable {}", k.as_ref());
                self.set(&name.to_ascii_lowercase(), v.as_ref().trim(), &origin);
            }
        }
        self
    }

    /// Applies one value given on the command line.
    pub fn with_override(mut self, name: &str, value: &str) -> Self {
        self.set(name, value, "command line");
        self
    }

    fn set(&mut self, name: &str, value: &str, origin: &str) {
        let name = table::ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(name, |(_, to)| to);
        if table::find(name).is_some() {
            self.values.insert(name.to_string(), value.to_string());
        } else if KONG_SETTINGS_WITHOUT_EFFECT.contains(&name) || name.starts_with("nginx_") {
            self.warnings.push(format!(
                "setting '{name}' ({origin}) is a Kong/nginx setting that has no effect in Silverback"
            ));
        } else {
            self.errors
                .push(format!("unknown setting '{name}' ({origin})"));
        }
    }

    fn get(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    /// Parses and checks every value; all problems are reported together.
    pub fn parse(self) -> Result<Settings, ConfigError> {
        let mut errors = self.errors.clone();
        let mut check = |name: &str, r: Result<(), String>| {
            if let Err(e) = r {
                errors.push(format!("setting '{name}': {e}"));
            }
        };
        let mut s = Settings {
            prefix: PathBuf::from(self.get("prefix")),
            log_level: LogLevel::Notice,
            proxy_listen: Vec::new(),
            admin_listen: Vec::new(),
            status_listen: Vec::new(),
            stream_listen: Vec::new(),
            admin_token: None,
            database: Database::Off,
            declarative_config: None,
            sqlite_path: PathBuf::new(),
            worker_threads: 1,
            trusted_ips: Vec::new(),
            real_ip_header: self.get("real_ip_header").to_string(),
            real_ip_recursive: false,
            headers: HeaderSet::default(),
            headers_upstream: HeaderSet::default(),
            upstream_keepalive_pool_size: 0,
            upstream_keepalive_max_requests: 0,
            upstream_keepalive_idle_timeout: 0,
            error_default_type: String::new(),
            client_body_buffer_size: 0,
            client_max_body_size: 0,
            mem_cache_size: 0,
            router_flavor: RouterFlavor::TraditionalCompatible,
            syslog_socket: PathBuf::from(self.get("syslog_socket").trim()),
            proxy_access_log: None,
            tls: self.parse_tls(&mut check),
            tracing_instrumentations: Vec::new(),
            tracing_sampling_rate: 0.01,
            dns: DnsSettings::default(),
            warnings: self.warnings.clone(),
            shown: self
                .values
                .iter()
                .map(|(k, v)| (k.clone(), shown_value(k, v).to_string()))
                .collect(),
        };
        check("prefix", non_empty(self.get("prefix")));
        check("syslog_socket", non_empty(self.get("syslog_socket")));
        check(
            "log_level",
            parse_log_level(self.get("log_level")).map(|v| s.log_level = v),
        );
        for (name, slot) in [
            ("proxy_listen", &mut s.proxy_listen),
            ("admin_listen", &mut s.admin_listen),
            ("status_listen", &mut s.status_listen),
        ] {
            check(name, parse_listen_list(self.get(name)).map(|v| *slot = v));
        }
        check(
            "stream_listen",
            parse_listen_list_for(self.get("stream_listen"), Subsystem::Stream)
                .map(|v| s.stream_listen = v),
        );
        let token = self.get("admin_token").trim();
        if !token.is_empty() {
            s.admin_token = Some(Secret::new(token));
        }
        check(
            "database",
            parse_database(self.get("database")).map(|v| s.database = v),
        );
        let declarative = self.get("declarative_config");
        if !declarative.is_empty() {
            s.declarative_config = Some(PathBuf::from(declarative));
        }
        check("sqlite_path", non_empty(self.get("sqlite_path")));
        s.sqlite_path = s.prefix.join(self.get("sqlite_path").trim());
        // Kong allows a log format name after the path; only the path matters here.
        let access_log = self.get("proxy_access_log").split_whitespace().next();
        s.proxy_access_log = match access_log {
            None | Some("off") => None,
            Some(path) => Some(s.prefix.join(path)),
        };
        check(
            "worker_threads",
            parse_workers(self.get("worker_threads")).map(|v| s.worker_threads = v),
        );
        check(
            "trusted_ips",
            parse_trusted_ips(self.get("trusted_ips")).map(|v| s.trusted_ips = v),
        );
        check("real_ip_header", non_empty(self.get("real_ip_header")));
        check(
            "real_ip_recursive",
            values::parse_bool(self.get("real_ip_recursive")).map(|v| s.real_ip_recursive = v),
        );
        check(
            "headers",
            parse_headers(self.get("headers"), false).map(|v| s.headers = v),
        );
        check(
            "headers_upstream",
            parse_headers(self.get("headers_upstream"), true).map(|v| s.headers_upstream = v),
        );
        check(
            "upstream_keepalive_pool_size",
            values::parse_uint(self.get("upstream_keepalive_pool_size"))
                .map(|v| s.upstream_keepalive_pool_size = v as usize),
        );
        check(
            "upstream_keepalive_max_requests",
            values::parse_uint(self.get("upstream_keepalive_max_requests"))
                .map(|v| s.upstream_keepalive_max_requests = v),
        );
        check(
            "upstream_keepalive_idle_timeout",
            values::parse_uint(self.get("upstream_keepalive_idle_timeout"))
                .map(|v| s.upstream_keepalive_idle_timeout = v),
        );
        check(
            "error_default_type",
            parse_error_type(self.get("error_default_type")).map(|v| s.error_default_type = v),
        );
        check(
            "client_body_buffer_size",
            values::parse_size(self.get("client_body_buffer_size"))
                .map(|v| s.client_body_buffer_size = v),
        );
        check(
            "client_max_body_size",
            values::parse_size(self.get("client_max_body_size"))
                .map(|v| s.client_max_body_size = v),
        );
        check(
            "mem_cache_size",
            values::parse_size(self.get("mem_cache_size")).map(|v| s.mem_cache_size = v),
        );
        check(
            "router_flavor",
            parse_router_flavor(self.get("router_flavor")).map(|v| s.router_flavor = v),
        );
        check(
            "tracing_instrumentations",
            instrumentation::parse_instrumentations(self.get("tracing_instrumentations"))
                .map(|v| s.tracing_instrumentations = v),
        );
        check(
            "tracing_sampling_rate",
            instrumentation::parse_sampling_rate(self.get("tracing_sampling_rate"))
                .map(|v| s.tracing_sampling_rate = v),
        );
        self.parse_dns(&mut s.dns, &mut check);
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }
}

impl RawSettings {
    fn parse_dns(&self, d: &mut DnsSettings, check: &mut impl FnMut(&str, Result<(), String>)) {
        check(
            "dns_resolver",
            dns::parse_resolvers(self.get("dns_resolver")).map(|v| d.resolvers = v),
        );
        check("dns_hostsfile", non_empty(self.get("dns_hostsfile")));
        d.hostsfile = PathBuf::from(self.get("dns_hostsfile").trim());
        check(
            "dns_order",
            dns::parse_order(self.get("dns_order")).map(|v| d.order = v),
        );
        let valid = self.get("dns_valid_ttl").trim();
        if !valid.is_empty() {
            check(
                "dns_valid_ttl",
                dns::parse_seconds(valid).map(|v| d.valid_ttl = Some(v)),
            );
        }
        for (name, slot) in [
            ("dns_stale_ttl", &mut d.stale_ttl),
            ("dns_not_found_ttl", &mut d.not_found_ttl),
            ("dns_error_ttl", &mut d.error_ttl),
        ] {
            check(name, dns::parse_seconds(self.get(name)).map(|v| *slot = v));
        }
        check(
            "dns_cache_size",
            values::parse_uint(self.get("dns_cache_size"))
                .map(|v| d.cache_size = usize::try_from(v).unwrap_or(usize::MAX).max(1)),
        );
    }
}

impl Settings {
    /// Loads settings the way the `silverback` binary does.
    pub fn load<I, K, V>(conf: Option<&Path>, env: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut raw = RawSettings::defaults();
        if let Some(path) = conf {
            raw = raw.with_file(path)?;
        }
        raw.with_env(env).parse()
    }

    /// A path inside the prefix.
    pub fn prefixed(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.prefix.join(rel)
    }
}

/// Removes a `#` comment; `\#` stands for a literal `#`, as in kong.conf.
fn strip_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'#') => {
                out.push('#');
                chars.next();
            }
            '#' => break,
            c => out.push(c),
        }
    }
    out
}

fn non_empty(v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(())
    }
}

fn parse_log_level(v: &str) -> Result<LogLevel, String> {
    Ok(match v.trim().to_ascii_lowercase().as_str() {
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "notice" => LogLevel::Notice,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        "crit" => LogLevel::Crit,
        "alert" => LogLevel::Alert,
        "emerg" => LogLevel::Emerg,
        _ => {
            return Err(format!(
                "'{v}' is not one of debug, info, notice, warn, error, crit, alert, emerg"
            ));
        }
    })
}

fn parse_database(v: &str) -> Result<Database, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(Database::Off),
        "sqlite" => Ok(Database::Sqlite),
        "postgres" => Err(format!(
            "database '{v}' is not available in this build yet; use 'sqlite', or 'off' with declarative_config"
        )),
        _ => Err(format!("'{v}' is not one of off, sqlite")),
    }
}

fn parse_workers(v: &str) -> Result<usize, String> {
    if v.trim().eq_ignore_ascii_case("auto") {
        return Ok(std::thread::available_parallelism().map_or(1, usize::from));
    }
    match values::parse_uint(v)? {
        0 => Err("must be at least 1 (or auto)".into()),
        n if n > 1024 => Err("must be at most 1024".into()),
        n => Ok(n as usize),
    }
}

fn parse_trusted_ips(v: &str) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for item in values::parse_list(v) {
        if item.eq_ignore_ascii_case("none") || item.starts_with("unix:") {
            continue;
        }
        let net = item
            .parse::<IpNet>()
            .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| format!("'{item}' is not an IP address or CIDR"))?;
        out.push(net);
    }
    Ok(out)
}

fn parse_headers(v: &str, upstream: bool) -> Result<HeaderSet, String> {
    let mut set = HeaderSet::default();
    for item in values::parse_list(v) {
        let lower = item.to_ascii_lowercase();
        match lower.as_str() {
            "x-kong-request-id" => set.request_id = true,
            _ if upstream => {
                return Err(format!("'{item}' is not one of X-Kong-Request-Id, off"));
            }
            "server_tokens" => {
                set.server = true;
                set.via = true;
            }
            "latency_tokens" => {
                set.proxy_latency = true;
                set.response_latency = true;
                set.upstream_latency = true;
            }
            "server" => set.server = true,
            "via" => set.via = true,
            "x-kong-proxy-latency" => set.proxy_latency = true,
            "x-kong-response-latency" => set.response_latency = true,
            "x-kong-upstream-latency" => set.upstream_latency = true,
            "x-kong-upstream-status" => set.upstream_status = true,
            // Admin latency only concerns the Admin API, which reports it itself.
            "x-kong-admin-latency" => {}
            _ => return Err(format!("'{item}' is not a known header")),
        }
    }
    Ok(set)
}

fn parse_error_type(v: &str) -> Result<String, String> {
    let v = v.trim().to_ascii_lowercase();
    match v.as_str() {
        "text/plain" | "application/json" | "text/html" | "application/xml" => Ok(v),
        _ => Err(format!(
            "'{v}' is not one of text/plain, application/json, text/html, application/xml"
        )),
    }
}

fn parse_router_flavor(v: &str) -> Result<RouterFlavor, String> {
    match v.trim() {
        "traditional_compatible" => Ok(RouterFlavor::TraditionalCompatible),
        "traditional" => Ok(RouterFlavor::Traditional),
        other => Err(format!(
            "'{other}' is not supported; use traditional_compatible or traditional"
        )),
    }
}

#[cfg(test)]
mod tests;
