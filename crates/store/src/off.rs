//! DB-less storage: the declarative file is the config.

use crate::{Store, StoreError};
use silverback_model::entities::PluginSchemas;
use silverback_model::{Config, Context, declarative};
use std::path::PathBuf;

/// Reads and validates the declarative file each time it is loaded (start and reload).
pub struct Declarative {
    /// `None`: no file configured, the config is empty.
    pub path: Option<PathBuf>,
    pub plugins: &'static dyn PluginSchemas,
}

impl Declarative {
    /// Parses and validates declarative text.
    pub fn parse(&self, text: &str) -> Result<Config, StoreError> {
        let ctx = Context {
            plugins: self.plugins,
        };
        Ok(declarative::load_text(
            text,
            &ctx,
            silverback_model::now_secs(),
        )?)
    }
}

impl Store for Declarative {
    fn strategy(&self) -> &'static str {
        "off"
    }

    async fn load(&self) -> Result<Config, StoreError> {
        let Some(path) = &self.path else {
            return Ok(Config::empty());
        };
        let text = std::fs::read_to_string(path).map_err(|source| StoreError::Read {
            path: path.clone(),
            source,
        })?;
        self.parse(&text)
    }
}
