//! Command-line verbs, named as Kong's: `start`, `stop`, `reload`, `health`, `check`,
//! `config init|parse|settings|db_import|db_export`, `migrations`, `hybrid gen_cert`, `version`.

mod config;
mod db;
mod hybrid;
pub mod instance;
mod migrations;
mod settings;
mod start;

use clap::{Args, Parser, Subcommand};
use silverback_config::{ConfigError, RawSettings, Settings};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "silverback",
    version,
    about = "A Kong-compatible API gateway",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every verb that looks at settings takes.
#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Configuration file (kong.conf syntax: `name = value`).
    #[arg(short = 'c', long = "conf")]
    pub conf: Option<PathBuf>,
    /// Working directory (overrides the `prefix` setting).
    #[arg(short = 'p', long = "prefix")]
    pub prefix: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway in the foreground.
    Start(Common),
    /// Stop a running instance (graceful: in-flight requests finish).
    Stop(Common),
    /// Make a running instance re-read its declarative config; the file is checked first.
    Reload(Common),
    /// Report whether an instance is running and ready.
    Health(Common),
    /// Check a configuration file's settings.
    Check {
        /// The configuration file.
        conf: PathBuf,
    },
    /// Declarative config tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage the database schema (database = sqlite).
    #[command(subcommand)]
    Migrations(migrations::MigrationsCommand),
    /// Hybrid mode utilities (`gen_cert`).
    #[command(subcommand)]
    Hybrid(hybrid::HybridCommand),
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Write an example kong.yml.
    Init {
        /// Where to write it.
        #[arg(default_value = "kong.yml")]
        file: PathBuf,
    },
    /// Validate a declarative file; prints every error with its entity path and field.
    Parse { file: PathBuf },
    /// Print the settings reference in markdown, as the README shows it.
    Settings,
    /// Import a declarative file into the database (entities are added or updated, never
    /// deleted); an invalid file changes nothing.
    #[command(name = "db_import", alias = "db-import")]
    DbImport {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Export the database as a declarative file (default kong.yml; `-` for stdout).
    #[command(name = "db_export", alias = "db-export")]
    DbExport {
        file: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

/// Loads settings the way every verb does: defaults, file, `SILVERBACK_*`, then flags.
pub fn load_settings(common: &Common) -> Result<Settings, ConfigError> {
    let mut raw = RawSettings::defaults();
    if let Some(conf) = &common.conf {
        raw = raw.with_file(conf)?;
    }
    raw = raw.with_env(std::env::vars());
    if let Some(prefix) = &common.prefix {
        raw = raw.with_override("prefix", &prefix.to_string_lossy());
    }
    raw.parse()
}

/// Runs the command line; returns the process exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Start(c) => start::run(&c),
        Command::Stop(c) => instance::stop(&c),
        Command::Reload(c) => instance::reload(&c),
        Command::Health(c) => instance::health(&c),
        Command::Check { conf } => {
            let common = Common {
                conf: Some(conf.clone()),
                prefix: None,
            };
            match load_settings(&common) {
                Ok(s) => {
                    for w in &s.warnings {
                        eprintln!("warning: {w}");
                    }
                    println!("configuration at {} is valid", conf.display());
                    0
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    1
                }
            }
        }
        Command::Config(ConfigCommand::Init { file }) => config::init(&file),
        Command::Config(ConfigCommand::Parse { file }) => {
            // Kong checks the file against the schemas of the configured database mode
            // (DB-less refuses the `cluster` rate-limiting policy).
            let common = Common {
                conf: None,
                prefix: None,
            };
            if let Ok(s) = load_settings(&common) {
                silverback_plugins::counters::schema::set_database_off(
                    s.database == silverback_config::Database::Off,
                );
            }
            config::parse(&file)
        }
        Command::Config(ConfigCommand::Settings) => settings::run(),
        Command::Config(ConfigCommand::DbImport { file, common }) => db::db_import(&file, &common),
        Command::Config(ConfigCommand::DbExport { file, common }) => {
            db::db_export(file.as_deref(), &common)
        }
        Command::Migrations(command) => migrations::run(command),
        Command::Hybrid(command) => hybrid::run(command),
        Command::Version => {
            println!(
                "Silverback {} (Kong Gateway {} compatible)",
                env!("CARGO_PKG_VERSION"),
                silverback_model::KONG_VERSION
            );
            0
        }
    }
}
