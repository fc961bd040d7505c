//! What plugins see of a request (Kong's PDK): the request as it will go upstream, the response
//! on its way back, who the client is, and the route and service it matched.

mod client;
pub mod log;
mod request;
mod response;
pub mod serialize;

pub use client::{ConsumerRef, CredentialRef, EntityRef, headers as consumer_headers};
pub use log::{Served, Try};
pub use request::{ArgValue, Body, BodyArgs, BodyLimit, QueryValue, Request, Scheme, header_key};
pub use response::{Exit, ExitBody, Response, ResponseSource};

use crate::directory::Directory;
use crate::runtime::Runtime;
use http::HeaderValue;
use std::any::Any;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// A regex path's captures (Kong's `uri_captures`): by position (0 is the whole match) and
/// by name.
#[derive(Debug, Default, Clone)]
pub struct UriCaptures {
    pub positional: Vec<Option<String>>,
    pub named: Vec<(String, String)>,
}

impl UriCaptures {
    pub fn name(&self, name: &str) -> Option<&str> {
        self.named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The per-request state plugins read and change.
pub struct Ctx {
    pub request: Request,
    pub response: Response,
    /// The client address after `trusted_ips` / `real_ip_header` processing.
    pub client_ip: IpAddr,
    /// The address of the connection's peer.
    pub peer_ip: IpAddr,
    pub route: Option<Arc<EntityRef>>,
    pub service: Option<Arc<EntityRef>>,
    pub consumer: Option<Arc<ConsumerRef>>,
    pub credential: Option<CredentialRef>,
    /// Groups an authentication plugin established without a consumer (Kong's
    /// `authenticated_groups`).
    pub authenticated_groups: Option<Vec<String>>,
    pub uri_captures: UriCaptures,
    pub request_id: HeaderValue,
    pub started: Instant,
    /// Consumers and credentials of the config this request runs on.
    pub directory: Arc<Directory>,
    /// State plugins write at request time (oauth2 codes and tokens), outside the config.
    pub runtime: Arc<Runtime>,
    /// Whether `client_ip` is one of `trusted_ips` (Kong's `kong.ip.is_trusted`): only then
    /// are the client's `X-Forwarded-*` headers believed.
    pub client_trusted: bool,
    /// The local address the request came in on (nginx's `$server_addr` / `$server_port`).
    pub server_addr: Option<std::net::SocketAddr>,
    /// Kong's `KONG_PROXIED` on a plugin's exit: the response stands for the upstream's (a
    /// proxy-cache hit), so it gets the headers of a proxied response (`Via`,
    /// `X-Kong-Upstream-Latency`, `X-Kong-Proxy-Latency`) instead of the gateway's own.
    pub proxied: bool,
    /// Sizes and latencies, filled by the proxy for the `log` phase.
    pub served: Served,
    /// Header and query names an authentication plugin read a credential from: their values
    /// are redacted in log records.
    secret_names: smallvec::SmallVec<[Arc<str>; 2]>,
    /// Per-plugin data, keyed by the plugin's position in the chain.
    data: Vec<(usize, Box<dyn Any + Send + Sync>)>,
    current: usize,
    plugin_id: Option<Uuid>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("request", &self.request)
            .field("consumer", &self.consumer.as_ref().map(|c| c.id))
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    pub fn new(
        request: Request,
        client_ip: IpAddr,
        peer_ip: IpAddr,
        request_id: HeaderValue,
        started: Instant,
        directory: Arc<Directory>,
    ) -> Self {
        Ctx {
            request,
            response: Response::default(),
            client_ip,
            peer_ip,
            route: None,
            service: None,
            consumer: None,
            credential: None,
            authenticated_groups: None,
            uri_captures: UriCaptures::default(),
            request_id,
            started,
            directory,
            runtime: Runtime::shared_default(),
            client_trusted: false,
            server_addr: None,
            proxied: false,
            served: Served::default(),
            secret_names: smallvec::SmallVec::new(),
            data: Vec::new(),
            current: 0,
            plugin_id: None,
        }
    }

    /// A `GET /` from 127.0.0.1 on `directory`, for unit tests of plugins and chains.
    #[cfg(test)]
    pub(crate) fn for_tests(directory: Arc<Directory>) -> Self {
        Ctx::new(
            Request::new(
                http::Method::GET,
                Scheme::Http,
                http::Version::HTTP_11,
                None,
                Default::default(),
                http::uri::PathAndQuery::from_static("/"),
            ),
            [127, 0, 0, 1].into(),
            [127, 0, 0, 1].into(),
            HeaderValue::from_static("rid"),
            Instant::now(),
            directory,
        )
    }

    /// The request id as text (logs, error bodies).
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }

    /// Marks a header or query argument as holding a credential (an API key, a token), so log
    /// records never show its value.
    pub fn add_secret_name(&mut self, name: Arc<str>) {
        if !self
            .secret_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&name))
        {
            self.secret_names.push(name);
        }
    }

    /// The names [`Ctx::add_secret_name`] collected.
    pub fn secret_names(&self) -> &[Arc<str>] {
        &self.secret_names
    }

    /// Set by the chain runner before it calls a plugin.
    pub(crate) fn enter_plugin(&mut self, position: usize, id: Uuid) {
        self.current = position;
        self.plugin_id = Some(id);
    }

    /// The id of the running plugin's configuration (Kong's `kong.plugin.get_id`).
    pub fn plugin_id(&self) -> Option<Uuid> {
        self.plugin_id
    }

    /// Data the running plugin stored earlier in this request (Kong's `kong.ctx.plugin`).
    pub fn data<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.data
            .iter()
            .find(|(p, _)| *p == self.current)
            .and_then(|(_, d)| d.downcast_ref())
    }

    /// The running plugin's data, to change in place (a body being buffered, counts to add
    /// in a later phase).
    pub fn data_mut<T: Any + Send + Sync>(&mut self) -> Option<&mut T> {
        let current = self.current;
        self.data
            .iter_mut()
            .find(|(p, _)| *p == current)
            .and_then(|(_, d)| d.downcast_mut())
    }

    pub fn set_data<T: Any + Send + Sync>(&mut self, value: T) {
        let current = self.current;
        match self.data.iter_mut().find(|(p, _)| *p == current) {
            Some(slot) => slot.1 = Box::new(value),
            None => self.data.push((current, Box::new(value))),
        }
    }
}
