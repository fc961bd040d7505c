//! Where a request goes once a route matched: upstream balancers over weighted targets (round
//! robin, consistent hashing, least connections, latency), the health of their addresses
//! (active and passive checks), and DNS resolution of host names (services and targets) with a
//! TTL-respecting cache.

mod address;
mod consistent_hashing;
pub mod dns;
mod entries;
mod hash;
pub mod health;
mod latency;
mod least_connections;
mod registry;
mod resolve;
mod round_robin;
mod status;
mod upstream;

pub use address::AddressState;
pub use dns::{Dns, DnsError};
pub use entries::{Address, Algorithm, Entries, Resolution};
pub use hash::{HashRequest, HashRule, HashValue};
pub use registry::Registry;
pub use round_robin::Wheel;
pub use status::{AddressHealth, AddressStatus, TargetStatus};
pub use upstream::{Balancer, Peer, PickError, TargetSpec};
