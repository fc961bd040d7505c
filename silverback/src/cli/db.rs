//! `config db_import FILE` and `config db_export [FILE]`: a declarative file into and out of the
//! SQLite store, as Kong's verbs do it.
//!
//! Import reads and validates the whole file first (the loader DB-less mode uses), then upserts
//! every entity in one transaction: entities already in the database and not in the file stay,
//! as with Kong, and any failure leaves the database as it was.

use super::migrations::{open_store, runtime};
use super::{Common, load_settings};
use silverback_config::{Database, Settings};
use silverback_plugins::registry::BUNDLED;
use silverback_store::off::Declarative;
use silverback_store::sqlite::Sqlite;
use silverback_store::{Store, StoreError, export};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Kong's default export file.
const DEFAULT_EXPORT: &str = "kong.yml";

pub fn db_import(file: &Path, common: &Common) -> i32 {
    report(import(file, common))
}

pub fn db_export(file: Option<&Path>, common: &Common) -> i32 {
    report(export_to(file, common))
}

fn report(result: Result<(), String>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

fn settings_with_database(common: &Common, off_message: &str) -> Result<Settings, String> {
    let settings = load_settings(common).map_err(|e| e.to_string())?;
    if settings.database == Database::Off {
        return Err(off_message.to_string());
    }
    Ok(settings)
}

/// The store must be migrated to this build's schema before data goes in or out.
async fn check_schema(db: &Sqlite) -> Result<(), String> {
    let state = db.schema_state().await.map_err(|e| e.to_string())?;
    if state.needs_bootstrap() {
        return Err(format!(
            "the database at {} is not bootstrapped; run 'silverback migrations bootstrap'",
            db.path().display()
        ));
    }
    if !state.unknown.is_empty() {
        return Err(format!(
            "the database has migrations this build does not know ({}); it was written by a newer Silverback",
            state.unknown.join(", ")
        ));
    }
    if !state.pending.is_empty() {
        return Err("New migrations available; run 'silverback migrations up' to proceed".into());
    }
    Ok(())
}

fn import(file: &Path, common: &Common) -> Result<(), String> {
    let settings = settings_with_database(
        common,
        "'silverback config db_import' only works with a database.\n\
         When using database=off, reload your declarative configuration\n\
         using the /config endpoint.",
    )?;
    let source = Declarative {
        path: Some(file.to_path_buf()),
        plugins: &*BUNDLED,
    };
    let config = match source.read() {
        Ok(c) => c,
        Err(StoreError::Declarative(e)) => {
            let mut msg = format!("{} is not a valid declarative config:", file.display());
            for line in e.lines() {
                msg.push_str("\n  ");
                msg.push_str(&line);
            }
            return Err(msg);
        }
        Err(e) => return Err(e.to_string()),
    };
    println!("parse successful, beginning import");
    let rt = runtime()?;
    let db = open_store(&rt, &settings, "silverback config db_import")?;
    let result = rt.block_on(async {
        check_schema(&db).await?;
        db.import(&config)
            .await
            .map_err(|e| format!("Failed importing:\n{e}"))
    });
    rt.block_on(db.close());
    let changes = result?;
    println!("import successful ({} entities)", changes.len());
    Ok(())
}

fn export_to(file: Option<&Path>, common: &Common) -> Result<(), String> {
    let settings = settings_with_database(
        common,
        "'silverback config db_export' only works with a database.",
    )?;
    let target = file.map_or_else(|| PathBuf::from(DEFAULT_EXPORT), Path::to_path_buf);
    let to_stdout = target.as_os_str() == "-";
    if !to_stdout && target.exists() {
        return Err(format!(
            "{} already exists. Will not overwrite it.",
            target.display()
        ));
    }
    let rt = runtime()?;
    let db = open_store(&rt, &settings, "silverback config db_export")?;
    let loaded = rt.block_on(async {
        check_schema(&db).await?;
        db.load().await.map_err(|e| e.to_string())
    });
    rt.block_on(db.close());
    let config = loaded?;
    let yaml = export::to_yaml(&export::declarative(&config)).map_err(|e| e.to_string())?;
    if to_stdout {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(yaml.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"));
    }
    // `create_new`: never overwrite a file that appeared since the check.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .and_then(|mut f| f.write_all(yaml.as_bytes()).and_then(|()| f.sync_all()))
        .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    let count: usize = config.iter().map(|(_, rows)| rows.len()).sum();
    println!("{} written ({count} entities)", target.display());
    Ok(())
}
