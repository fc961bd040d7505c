//! `silverback start`: runs the gateway in the foreground until SIGTERM/SIGINT/SIGQUIT, reloading
//! its config on SIGHUP.

use super::{Common, load_settings};
use silverback_config::Settings;

pub fn run(common: &Common) -> i32 {
    let settings = match load_settings(common) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    init_logging(&settings);
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    match crate::node::run(settings) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("Error: {e}");
            1
        }
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "{},hyper=warn,h2=warn,hickory_resolver=warn,hickory_proto=warn",
        settings.log_level.as_filter()
    ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
