//! HTTP/1.1 on the wire, owned by the proxy: header fields kept where they arrived, message
//! framing, and the server side of client connections.

pub mod date;
pub mod framing;
pub mod server;
pub mod timer;

pub use silverback_http::{Fields, fields};
