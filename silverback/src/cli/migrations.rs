//! `silverback migrations bootstrap|up|finish|list|status|reset`: the SQLite store's schema, with
//! Kong's verbs, messages and exit codes (`list`/`status`: 3 needs bootstrap, 5 new migrations).

use super::{Common, load_settings};
use clap::{Args, Subcommand};
use silverback_config::{Database, Settings};
use silverback_store::sqlite::{SchemaState, Sqlite};
use std::io::{BufRead, IsTerminal, Write};

/// Options every migrations verb takes, as Kong's.
#[derive(Args, Debug, Clone, Default)]
pub struct MigrationOpts {
    #[command(flatten)]
    pub common: Common,
    /// Assume "yes" to prompts and run non-interactively.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// `bootstrap`: reset the database first.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Suppress all output but errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Accepted for Kong compatibility; SQLite waits for locks on its own.
    #[arg(long, hide = true)]
    pub db_timeout: Option<u64>,
    /// Accepted for Kong compatibility; migrations lock the database file.
    #[arg(long, hide = true)]
    pub lock_timeout: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum MigrationsCommand {
    /// Create the schema in a new database and apply every migration.
    Bootstrap(MigrationOpts),
    /// Apply new migrations.
    Up(MigrationOpts),
    /// Finish pending migrations (Silverback's complete in `up`; kept for Kong's scripts).
    Finish(MigrationOpts),
    /// List executed and new migrations (exit 3: needs bootstrap, 5: new migrations).
    List(MigrationOpts),
    /// Same report and exit codes as `list`.
    Status(MigrationOpts),
    /// Delete every table and all data (asks first, or `--yes`).
    Reset(MigrationOpts),
}

const NEEDS_BOOTSTRAP: &str =
    "Database needs bootstrapping; run 'silverback migrations bootstrap' to create it.";

/// Opens the SQLite store named by the settings, refusing other databases with Kong's kind of
/// message. Also used by `config db_import|db_export`.
pub(super) fn open_store(
    rt: &tokio::runtime::Runtime,
    settings: &Settings,
    what: &str,
) -> Result<Sqlite, String> {
    match settings.database {
        Database::Sqlite => rt
            .block_on(Sqlite::open(&settings.sqlite_path))
            .map_err(|e| e.to_string()),
        Database::Off => Err(format!(
            "'{what}' only works with a database; set database = sqlite (SILVERBACK_DATABASE=sqlite)"
        )),
    }
}

/// A runtime for one command-line verb.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

pub fn run(command: MigrationsCommand) -> i32 {
    let (verb, opts) = match &command {
        MigrationsCommand::Bootstrap(o) => ("bootstrap", o),
        MigrationsCommand::Up(o) => ("up", o),
        MigrationsCommand::Finish(o) => ("finish", o),
        MigrationsCommand::List(o) => ("list", o),
        MigrationsCommand::Status(o) => ("status", o),
        MigrationsCommand::Reset(o) => ("reset", o),
    };
    let opts = opts.clone();
    let out = Out { quiet: opts.quiet };
    let result = (|| {
        let settings = load_settings(&opts.common).map_err(|e| e.to_string())?;
        let rt = runtime()?;
        let db = open_store(&rt, &settings, &format!("silverback migrations {verb}"))?;
        let state = rt.block_on(db.schema_state()).map_err(|e| e.to_string())?;
        let code = rt.block_on(async {
            match command {
                MigrationsCommand::Bootstrap(_) => bootstrap(&db, state, opts.force, &out).await,
                MigrationsCommand::Up(_) => up(&db, state, &out).await,
                MigrationsCommand::Finish(_) => finish(&state, &out),
                MigrationsCommand::List(_) | MigrationsCommand::Status(_) => {
                    Ok(list(&db, &state, &out))
                }
                MigrationsCommand::Reset(_) => reset(&db, &state, opts.yes, &out).await,
            }
        });
        rt.block_on(db.close());
        code
    })();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

/// Progress lines, silenced by `--quiet`.
struct Out {
    quiet: bool,
}

impl Out {
    fn say(&self, line: &str) {
        if !self.quiet {
            println!("{line}");
        }
    }
}

async fn apply(db: &Sqlite, out: &Out) -> Result<(), String> {
    let applied = db.migrate().await.map_err(|e| e.to_string())?;
    for name in &applied {
        out.say(&format!("core migrated up to: {name} (executed)"));
    }
    out.say(&format!(
        "{} migration{} processed",
        applied.len(),
        if applied.len() == 1 { "" } else { "s" }
    ));
    out.say("Database is up-to-date");
    Ok(())
}

async fn bootstrap(db: &Sqlite, state: SchemaState, force: bool, out: &Out) -> Result<i32, String> {
    if force && !state.needs_bootstrap() {
        out.say("Resetting database...");
        db.reset().await.map_err(|e| e.to_string())?;
    } else if !state.needs_bootstrap() {
        out.say("Database already bootstrapped");
        return Ok(0);
    }
    out.say(&format!(
        "Bootstrapping database at {}...",
        db.path().display()
    ));
    apply(db, out).await?;
    Ok(0)
}

async fn up(db: &Sqlite, state: SchemaState, out: &Out) -> Result<i32, String> {
    if state.needs_bootstrap() {
        return Err(format!("Cannot run migrations: {NEEDS_BOOTSTRAP}"));
    }
    if state.pending.is_empty() && state.unknown.is_empty() {
        out.say("Database is already up-to-date");
        return Ok(0);
    }
    apply(db, out).await?;
    Ok(0)
}

fn finish(state: &SchemaState, out: &Out) -> Result<i32, String> {
    if state.needs_bootstrap() {
        return Err(format!("Cannot run migrations: {NEEDS_BOOTSTRAP}"));
    }
    if !state.pending.is_empty() {
        out.say("New migrations available; run 'silverback migrations up' to proceed");
    } else {
        out.say("No pending migrations to finish");
    }
    Ok(0)
}

fn list(db: &Sqlite, state: &SchemaState, out: &Out) -> i32 {
    out.say(&format!("Database: {}", db.path().display()));
    if state.needs_bootstrap() {
        out.say(NEEDS_BOOTSTRAP);
        return 3;
    }
    out.say(&format!(
        "Executed migrations:\n  core: {}",
        state.executed.join(", ")
    ));
    if !state.unknown.is_empty() {
        eprintln!(
            "Error: the database has migrations this build does not know ({}); it was written by a newer Silverback",
            state.unknown.join(", ")
        );
        return 1;
    }
    if !state.pending.is_empty() {
        out.say(&format!(
            "\nNew migrations available:\n  core: {}",
            state.pending.join(", ")
        ));
        out.say("\nRun 'silverback migrations up' to proceed");
        return 5;
    }
    out.say("\nDatabase is up-to-date");
    0
}

async fn reset(db: &Sqlite, state: &SchemaState, yes: bool, out: &Out) -> Result<i32, String> {
    if state.needs_bootstrap() && state.unknown.is_empty() {
        out.say("Database not bootstrapped, nothing to reset");
        return Ok(0);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err("not a tty: invoke 'reset' non-interactively with the --yes flag".into());
        }
        if !confirm("Are you sure? This operation is irreversible.") {
            out.say("cancelled");
            return Ok(0);
        }
    }
    out.say("Resetting database...");
    db.reset().await.map_err(|e| e.to_string())?;
    out.say("Database successfully reset");
    Ok(0)
}

/// Asks up to three times, as Kong does; anything but yes cancels.
fn confirm(question: &str) -> bool {
    let stdin = std::io::stdin();
    for _ in 0..3 {
        print!("> {question} [y/n] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        if stdin.lock().read_line(&mut answer).is_err() {
            return false;
        }
        match answer.trim() {
            "y" | "Y" | "yes" | "YES" => return true,
            "n" | "N" | "no" | "NO" => return false,
            _ => {}
        }
    }
    false
}
