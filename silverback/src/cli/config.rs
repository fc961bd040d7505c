//! `config init` and `config parse`.

use silverback_model::{Context, declarative};
use silverback_plugins::registry::BUNDLED;
use std::path::Path;

/// The example written by `config init`: a working service, route and upstream.
pub const EXAMPLE: &str = include_str!("../../../examples/kong.yml");

pub fn init(file: &Path) -> i32 {
    if file.exists() {
        eprintln!("Error: {} already exists", file.display());
        return 1;
    }
    match std::fs::write(file, EXAMPLE) {
        Ok(()) => {
            println!("{} written", file.display());
            0
        }
        Err(e) => {
            eprintln!("Error: cannot write {}: {e}", file.display());
            1
        }
    }
}

pub fn parse(file: &Path) -> i32 {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error: cannot read {}: {e}", file.display());
            return 1;
        }
    };
    let ctx = Context { plugins: &*BUNDLED };
    match declarative::load_text(&text, &ctx, silverback_model::now_secs()) {
        Ok(config) => {
            println!("parse successful ({} entities)", count(&config));
            0
        }
        Err(e) => {
            eprintln!(
                "Error: {} is not a valid declarative config:",
                file.display()
            );
            for line in e.lines() {
                eprintln!("  {line}");
            }
            1
        }
    }
}

fn count(c: &silverback_model::Config) -> usize {
    c.iter().map(|(_, rows)| rows.len()).sum()
}
