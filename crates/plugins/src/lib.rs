//! Plugins, as Kong defines them: each plugin is one module holding its config schema and its
//! phase handlers, and [`registry::BUNDLED`] is the one list of plugins this build implements.
//!
//! A configured plugin instance is built once per config snapshot ([`PluginDef::build`]); the
//! proxy runs the instances of a route's chain in priority order in each phase.

pub mod phase;
pub mod registry;

pub use phase::{Ctx, Exit, Flow, Handler};
pub use registry::{PluginDef, Registry};
