//! Kong's bundled plugins, one module each (Kong's `kong/plugins/<name>/`): `schema.rs` holds
//! the config record, `mod.rs` the handler. `auth.rs` holds what the authentication plugins
//! share.

mod acl;
mod auth;
mod basic_auth;
mod bot_detection;
mod correlation_id;
mod cors;
pub(crate) mod file_log;
mod hmac_auth;
mod http_log;
mod ip_restriction;
mod jwt;
mod key_auth;
mod log_http;
mod log_schema;
pub mod log_sink;
mod log_transport;
mod oauth2;
pub(crate) mod opentelemetry;
pub(crate) mod prometheus;
pub(crate) mod proxy_cache;
mod rate_limiting;
mod redirect;
mod request_size_limiting;
mod request_termination;
mod request_transformer;
mod response_ratelimiting;
mod response_transformer;
pub(crate) mod syslog;
mod tcp_log;
mod udp_log;

use crate::registry::PluginDef;

/// Every plugin of this build, by name.
pub(crate) fn all() -> Vec<PluginDef> {
    vec![
        acl::definition(),
        basic_auth::definition(),
        bot_detection::definition(),
        correlation_id::definition(),
        cors::definition(),
        file_log::definition(),
        hmac_auth::definition(),
        http_log::definition(),
        ip_restriction::definition(),
        jwt::definition(),
        key_auth::definition(),
        oauth2::definition(),
        opentelemetry::definition(),
        proxy_cache::definition(),
        prometheus::definition(),
        rate_limiting::definition(),
        redirect::definition(),
        request_size_limiting::definition(),
        request_termination::definition(),
        request_transformer::definition(),
        response_transformer::definition(),
        response_ratelimiting::definition(),
        syslog::definition(),
        tcp_log::definition(),
        udp_log::definition(),
    ]
}
