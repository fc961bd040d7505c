//! Where a request goes once a route matched: upstream balancers over weighted targets, and DNS
//! resolution of host names (services and targets) with a TTL-respecting cache.

pub mod dns;
mod round_robin;
mod upstream;

pub use dns::{Dns, DnsError};
pub use round_robin::Wheel;
pub use upstream::{Balancer, TargetAddr};
