//! Kong's data model: entity schemas and their validation, the declarative config format, and
//! [`Config`], the complete validated entity set every snapshot is compiled from.

mod config;
pub mod declarative;
pub mod entities;
pub mod schema;
pub mod tls;
pub mod typedefs;

pub use config::{Change, Config, EMPTY_CONFIG_HASH, Row, RowError};
pub use entities::{Context, EntitySchema, ForeignKey};

/// The Kong Gateway version whose behaviour and Admin API Silverback implements.
pub const KONG_VERSION: &str = "3.10.0";

/// Lower-case hex of bytes (hashes and digests).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
