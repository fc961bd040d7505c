//! The settings Silverback understands, with Kong's names and defaults.
//!
//! This table is the one list: the loader rejects names that are not here, and the README's
//! settings table is generated from it (`silverback config settings`).

/// One setting: Kong's name, the default as written in kong.conf, and what it does.
#[derive(Debug, Clone, Copy)]
pub struct SettingDef {
    pub name: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

const fn def(name: &'static str, default: &'static str, doc: &'static str) -> SettingDef {
    SettingDef { name, default, doc }
}

pub const SETTINGS: &[SettingDef] = &[
    def(
        "prefix",
        "/usr/local/silverback",
        "Working directory: pid file, listeners file, temp files of large request bodies.",
    ),
    def(
        "log_level",
        "notice",
        "debug, info, notice, warn, error, crit, alert or emerg.",
    ),
    def(
        "proxy_listen",
        "0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384",
        "Proxy listeners (`ip:port` and flags, comma separated; `off` disables). Plain listeners serve HTTP/1.1 and h2c; `ssl` listeners terminate TLS (certificate chosen by SNI from the certificates and snis entities, else the default certificate) and offer h2 by ALPN with the `http2` flag. The `proxy_protocol` flag has no effect yet.",
    ),
    def(
        "stream_listen",
        "off",
        "Stream proxy listeners for routes of protocols tcp, tls, tls_passthrough and udp (`ip:port` and flags, comma separated; `off` disables). On an `ssl` listener the TLS ClientHello's SNI is read to route: tls_passthrough routes relay the encrypted bytes, tls routes terminate TLS with the certificate of their SNI. A `udp` listener serves udp routes.",
    ),
    def(
        "admin_listen",
        "127.0.0.1:8001 reuseport backlog=16384, 127.0.0.1:8444 http2 ssl reuseport backlog=16384",
        "Admin API listeners (loopback by default; `off` disables). `ssl` listeners serve the Admin API over TLS with `admin_ssl_cert`.",
    ),
    def(
        "admin_token",
        "",
        "When set, every Admin API request must carry it in `Kong-Admin-Token` or `Authorization: Bearer`. A secret: never printed. (Silverback only: Kong OSS relies on binding the Admin API to loopback.)",
    ),
    def(
        "status_listen",
        "127.0.0.1:8007 reuseport backlog=16384",
        "Status API listener: /status, /status/ready; with `ssl`, over TLS with `status_ssl_cert`.",
    ),
    def(
        "ssl_cert",
        "",
        "The proxy's default TLS certificates (PEM file paths, or PEM text; comma separated, one RSA and one ECDSA at most), served when no SNI entity matches. Empty: a self-signed ECDSA certificate generated under `<prefix>/ssl/` on first start.",
    ),
    def(
        "ssl_cert_key",
        "",
        "The keys of `ssl_cert`, in the same order. A secret: never printed.",
    ),
    def(
        "ssl_cipher_suite",
        "intermediate",
        "`modern` (TLS 1.3 only), `intermediate` (TLS 1.2 and 1.3, Mozilla's list), `old` (every suite rustls has), `fips` (TLS 1.2) or `custom` (`ssl_protocols` and `ssl_ciphers`).",
    ),
    def(
        "ssl_protocols",
        "TLSv1.2 TLSv1.3",
        "TLS versions when `ssl_cipher_suite = custom` (TLSv1 and TLSv1.1 are not available).",
    ),
    def(
        "ssl_ciphers",
        "",
        "TLS 1.2 cipher suites when `ssl_cipher_suite = custom`, in OpenSSL names separated by `:`; names rustls does not implement (DHE, CBC) are skipped. TLS 1.3 suites are always on.",
    ),
    def(
        "ssl_prefer_server_ciphers",
        "on",
        "With `ssl_cipher_suite = custom`: the server's cipher order wins over the client's.",
    ),
    def(
        "ssl_session_tickets",
        "on",
        "TLS session resumption by tickets (keys rotated every 6 hours, per process).",
    ),
    def(
        "ssl_session_cache_size",
        "10m",
        "Size of the TLS session cache shared by the workers (about 4000 sessions per megabyte, as nginx); 0 disables it.",
    ),
    def(
        "admin_ssl_cert",
        "",
        "The Admin API's TLS certificates on `ssl` listeners (as `ssl_cert`). Empty: a self-signed one generated under `<prefix>/ssl/`.",
    ),
    def(
        "admin_ssl_cert_key",
        "",
        "The keys of `admin_ssl_cert`. A secret: never printed.",
    ),
    def(
        "status_ssl_cert",
        "",
        "The status API's TLS certificates on `ssl` listeners (as `ssl_cert`). Empty: a self-signed one generated under `<prefix>/ssl/`.",
    ),
    def(
        "status_ssl_cert_key",
        "",
        "The keys of `status_ssl_cert`. A secret: never printed.",
    ),
    def(
        "client_ssl",
        "off",
        "Present `client_ssl_cert` to TLS upstreams whose service sets no `client_certificate`.",
    ),
    def(
        "client_ssl_cert",
        "",
        "The client certificate of `client_ssl` (PEM path or text).",
    ),
    def(
        "client_ssl_cert_key",
        "",
        "The key of `client_ssl_cert`. A secret: never printed.",
    ),
    def(
        "lua_ssl_trusted_certificate",
        "system",
        "CA certificates upstream certificates are verified against when a service has no `ca_certificates`: `system` (the OS store) and/or PEM files, comma separated.",
    ),
    def(
        "nginx_proxy_proxy_ssl_verify",
        "off",
        "Verify upstream TLS certificates for services that leave `tls_verify` unset (nginx's `proxy_ssl_verify`, injected as in Kong; also `nginx_http_proxy_ssl_verify`).",
    ),
    def(
        "database",
        "sqlite",
        "Config store: `sqlite` (embedded database at `sqlite_path`, created and migrated on first start, written through the Admin API) or `off` (DB-less: `declarative_config`, read-only Admin API, `POST /config`). `postgres` is not available yet.",
    ),
    def(
        "declarative_config",
        "",
        "Path of the kong.yml / JSON file served when database = off.",
    ),
    def(
        "sqlite_path",
        "silverback.db",
        "The SQLite database file when database = sqlite; relative paths are inside the prefix. (Silverback only: Kong has no embedded database.)",
    ),
    def(
        "worker_threads",
        "auto",
        "Proxy worker threads (one event loop per core, like nginx worker processes); `auto` = CPU count.",
    ),
    def(
        "trusted_ips",
        "",
        "IPs / CIDRs whose X-Forwarded-* and real-IP headers are trusted; 0.0.0.0/0,::/0 trusts all.",
    ),
    def(
        "real_ip_header",
        "X-Real-IP",
        "Header carrying the client IP when the peer is trusted.",
    ),
    def(
        "real_ip_recursive",
        "off",
        "With X-Forwarded-For: take the last untrusted address instead of the last one.",
    ),
    def(
        "headers",
        "server_tokens, latency_tokens, X-Kong-Request-Id",
        "Headers added to client responses: server_tokens, latency_tokens, Server, Via, X-Kong-Proxy-Latency, X-Kong-Response-Latency, X-Kong-Upstream-Latency, X-Kong-Upstream-Status, X-Kong-Request-Id, or off.",
    ),
    def(
        "headers_upstream",
        "X-Kong-Request-Id",
        "Headers added to upstream requests: X-Kong-Request-Id or off.",
    ),
    def(
        "upstream_keepalive_pool_size",
        "512",
        "Idle upstream connections kept per worker and upstream address; 0 disables keepalive.",
    ),
    def(
        "upstream_keepalive_max_requests",
        "10000",
        "Requests sent over one upstream connection before it is closed; 0 = unlimited.",
    ),
    def(
        "upstream_keepalive_idle_timeout",
        "60",
        "Seconds an idle upstream connection is kept; 0 = no limit.",
    ),
    def(
        "error_default_type",
        "text/plain",
        "Body type of gateway errors when Accept does not choose: text/plain, application/json, text/html, application/xml.",
    ),
    def(
        "client_body_buffer_size",
        "8k",
        "Request bodies up to this size are buffered in memory; larger ones spill to a temp file under the prefix.",
    ),
    def(
        "client_max_body_size",
        "0",
        "Largest accepted request body (413 above it); 0 = unlimited.",
    ),
    def(
        "mem_cache_size",
        "128m",
        "Memory for proxy-cache's `memory` strategy (Kong's `kong_db_cache` dictionary): cached responses beyond it are evicted, least recently used first, and a response larger than it is not cached.",
    ),
    def(
        "proxy_access_log",
        "off",
        "Path of the proxy's access log (relative to the prefix), one line per request in nginx's `combined` format, written off the request path and reopened on SIGUSR1; `off` disables it. Kong's default is `logs/access.log`: Silverback's is `off` because the line costs CPU on every request; set it to Kong's value to get Kong's behaviour.",
    ),
    def(
        "syslog_socket",
        "/dev/log",
        "The local syslog daemon's Unix datagram socket, where the syslog plugin sends entries. (Silverback only: Kong always uses `/dev/log`.)",
    ),
    def(
        "tracing_instrumentations",
        "off",
        "Which spans the opentelemetry plugin exports: `off` (it only propagates trace headers), `all`, or a list of `request` (the request's `kong` span), `balancer` (a `kong.balancer` span per upstream try); Kong's other types (`db_query`, `dns_query`, `router`, `http_client`, `plugin_rewrite`, `plugin_access`, `plugin_header_filter`) are accepted and produce no spans yet.",
    ),
    def(
        "tracing_sampling_rate",
        "0.01",
        "Share of traces sampled (0 to 1) when the opentelemetry plugin's `sampling_rate` is not set; a trace the caller marked as not sampled never is.",
    ),
    def(
        "dns_resolver",
        "",
        "Name servers (`ip[:port]`, comma separated; port 53 by default) used instead of those of `/etc/resolv.conf`, whose `search`, `ndots`, `timeout` and `attempts` still apply.",
    ),
    def(
        "dns_hostsfile",
        "/etc/hosts",
        "The hosts file, read once at start; its names are answered without asking a name server.",
    ),
    def(
        "dns_order",
        "LAST,SRV,A,CNAME",
        "Record types tried in turn for a name: `LAST` (the type that answered last time), `SRV` (port and weight from the records), `A`, `AAAA`, `CNAME` (followed within the other lookups).",
    ),
    def(
        "dns_valid_ttl",
        "",
        "Seconds every answer is cached, instead of its records' TTL.",
    ),
    def(
        "dns_stale_ttl",
        "3600",
        "Seconds an expired answer is still used while it is refreshed in the background, so a failing name server does not fail requests.",
    ),
    def(
        "dns_not_found_ttl",
        "30",
        "Seconds a name that does not exist (or has no records) is remembered as such.",
    ),
    def(
        "dns_error_ttl",
        "1",
        "Seconds a failed lookup (server failure, timeout) is remembered before asking again.",
    ),
    def(
        "dns_cache_size",
        "10000",
        "Most names kept in the DNS cache; beyond it, names whose answers expired longest ago are dropped.",
    ),
    def(
        "router_flavor",
        "traditional_compatible",
        "Routing semantics: traditional_compatible, or traditional (same matching; only traditional honours path_handling v1).",
    ),
];

/// Kong settings that tune nginx/OpenResty internals or features Silverback does not have yet.
/// They are accepted (so an existing kong.conf loads) and reported as having no effect.
pub const KONG_SETTINGS_WITHOUT_EFFECT: &[&str] = &[
    "proxy_error_log",
    "proxy_stream_access_log",
    "proxy_stream_error_log",
    "admin_access_log",
    "admin_error_log",
    "admin_gui_access_log",
    "admin_gui_error_log",
    "status_access_log",
    "status_error_log",
    "vaults",
    "plugins",
    "port_maps",
    "host_ports",
    "anonymous_reports",
    "proxy_server",
    "proxy_server_ssl_verify",
    "node_id",
    "admin_gui_listen",
    "lmdb_environment_path",
    "lmdb_map_size",
    "worker_events_max_payload",
    "ssl_dhparam",
    "ssl_session_timeout",
    "lua_ssl_verify_depth",
    "lua_ssl_protocols",
    "allow_debug_header",
    "nginx_user",
    "nginx_daemon",
    "nginx_main_daemon",
    "nginx_main_user",
    "nginx_main_worker_rlimit_nofile",
    "nginx_events_worker_connections",
    "nginx_events_multi_accept",
    "nginx_http_charset",
    "nginx_http_keepalive_requests",
    "db_update_frequency",
    "db_update_propagation",
    "db_cache_ttl",
    "db_cache_neg_ttl",
    "db_resurrect_ttl",
    "db_cache_warmup_entities",
    "dedicated_config_processing",
    "worker_consistency",
    "worker_state_update_frequency",
    "lua_socket_pool_size",
    "lua_package_path",
    "lua_package_cpath",
    "lua_max_req_headers",
    "lua_max_resp_headers",
    "lua_max_uri_args",
    "lua_max_post_args",
    "kic",
    "pluginserver_names",
    "untrusted_lua",
    "untrusted_lua_sandbox_requires",
    "untrusted_lua_sandbox_environment",
    "openresty_path",
    "wasm",
    "wasm_filters_path",
    "wasm_dynamic_module",
    "wasm_filters",
    "dns_no_sync",
    "new_dns_client",
    "resolver_address",
    "resolver_hosts_file",
    "resolver_family",
    "resolver_valid_ttl",
    "resolver_stale_ttl",
    "resolver_error_ttl",
    "resolver_lru_cache_size",
    "resolver_mem_cache_size",
];

/// Kong's names for settings Silverback spells differently; the value goes to the second name.
pub const ALIASES: &[(&str, &str)] = &[
    ("nginx_worker_processes", "worker_threads"),
    ("nginx_main_worker_processes", "worker_threads"),
    ("nginx_http_client_max_body_size", "client_max_body_size"),
    (
        "nginx_http_client_body_buffer_size",
        "client_body_buffer_size",
    ),
    ("nginx_proxy_real_ip_header", "real_ip_header"),
    ("nginx_proxy_real_ip_recursive", "real_ip_recursive"),
    (
        "nginx_http_proxy_ssl_verify",
        "nginx_proxy_proxy_ssl_verify",
    ),
    ("opentelemetry_tracing", "tracing_instrumentations"),
    (
        "opentelemetry_tracing_sampling_rate",
        "tracing_sampling_rate",
    ),
];

pub fn find(name: &str) -> Option<&'static SettingDef> {
    SETTINGS.iter().find(|d| d.name == name)
}

/// Settings whose values are secrets: redacted wherever settings are shown or logged.
pub const SENSITIVE_SETTINGS: &[&str] = &[
    "admin_token",
    "ssl_cert_key",
    "admin_ssl_cert_key",
    "status_ssl_cert_key",
    "client_ssl_cert_key",
];
