//! Plugins, as Kong defines them: each plugin is one module under [`bundled`] holding its
//! config schema and its phase handlers, and [`registry::BUNDLED`] is the one list of plugins
//! this build implements.
//!
//! When a config snapshot is built, [`Plugins::build`] builds every configured instance and
//! resolves each route's [`Chain`] by Kong's scope precedence; the proxy runs a request through
//! its chain's phases with a per-request [`Ctx`] (Kong's PDK).

mod bundled;
pub mod chain;
pub mod counters;
pub mod directory;
pub mod handler;
pub mod pdk;
pub mod registry;
pub mod runtime;
pub mod scope;

pub use chain::{Chain, Instance, Run};
pub use directory::Directory;
pub use handler::{Flow, Handler, Phase, Phases, PluginError};
pub use pdk::{Ctx, Exit, ExitBody};
pub use registry::{BUNDLED, PluginDef, Registry};
pub use runtime::{CounterStore, OAuth2Store, Runtime};
pub use scope::{PluginBuildError, Plugins};

/// Locks `m`, going on after a thread panicked while holding it: every value kept under these
/// locks (counters, queues, caches) is valid between any two statements.
pub(crate) fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The prometheus plugin's metrics, for the `/metrics` endpoints of the status and Admin APIs.
pub mod prometheus {
    pub use crate::bundled::prometheus::Switches;
    pub use crate::bundled::prometheus::exposition::{
        CONTENT_TYPE, Connections, Health, Node, TargetHealth, render,
    };
}

/// What the log plugins share with the node: entries they dropped (for `/metrics`), and the
/// signal that log files must be reopened (SIGUSR1, after logrotate moved them).
pub mod logs {
    pub use crate::bundled::file_log::{reopen_generation, request_reopen};
    pub use crate::bundled::log_sink::{dropped_counts, dropped_exposition, wait_drained};
    pub use crate::bundled::syslog::set_socket as set_syslog_socket;
}

/// The node's tracing settings, read by the opentelemetry plugin when it is built.
pub mod tracing_settings {
    pub use crate::bundled::opentelemetry::instrumentation::{Instrumentation, configure};
}
