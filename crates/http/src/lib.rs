//! HTTP message parts that the proxy, the router and plugins all work on. The proxy owns the
//! wire (framing, connections); what a request *is* once parsed lives here, so plugins can read
//! and change it without depending on the proxy.

pub mod fields;
pub mod value;

pub use fields::Fields;
pub use value::int_value;
