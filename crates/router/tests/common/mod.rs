//! Helpers shared by the integration tests: an owned request and a route builder.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod naive;

use http::{HeaderMap, HeaderName, HeaderValue};
use silverback_router::{NetMatch, Request, RouteSpec};
use std::net::SocketAddr;
use uuid::Uuid;

/// Owned request data; `as_req` borrows it as a router [`Request`].
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub host: String,
    pub path: String,
    pub https: bool,
    pub sni: Option<String>,
    pub headers: HeaderMap,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl Req {
    pub fn new(method: &str, host: &str, path: &str) -> Req {
        Req {
            method: method.into(),
            host: host.into(),
            path: path.into(),
            https: false,
            sni: None,
            headers: HeaderMap::new(),
            src: "10.0.0.1:40000".parse().unwrap(),
            dst: "127.0.0.1:8000".parse().unwrap(),
        }
    }

    pub fn get(path: &str) -> Req {
        Req::new("GET", "domain.org", path)
    }

    /// Adds one header line (repeated calls add more lines for the same name).
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    pub fn https(mut self, sni: Option<&str>) -> Req {
        self.https = true;
        self.sni = sni.map(String::from);
        self
    }

    pub fn src(mut self, addr: &str) -> Req {
        self.src = addr.parse().unwrap();
        self
    }

    pub fn dst(mut self, addr: &str) -> Req {
        self.dst = addr.parse().unwrap();
        self
    }

    pub fn as_req(&self) -> Request<'_> {
        Request {
            method: &self.method,
            host: &self.host,
            path: &self.path,
            https: self.https,
            headers: &self.headers,
            sni: self.sni.as_deref(),
            src: self.src,
            dst: self.dst,
        }
    }
}

/// A route with id `0x...<n>` and the given fields set by `f`.
pub fn route(n: u128, f: impl FnOnce(&mut RouteSpec)) -> RouteSpec {
    let mut r = RouteSpec {
        id: Uuid::from_u128(0xe8fb37f1_102d_461e_9c51_6608a6bb8100 + n),
        ..Default::default()
    };
    f(&mut r);
    r
}

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn net(ip: Option<&str>, port: Option<u16>) -> NetMatch {
    NetMatch {
        ip: ip.map(|i| {
            if i.contains('/') {
                i.parse().unwrap()
            } else {
                let addr: std::net::IpAddr = i.parse().unwrap();
                ipnet::IpNet::from(addr)
            }
        }),
        port,
    }
}
