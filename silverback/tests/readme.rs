//! The documentation stays true: README.md carries exactly what `silverback config settings`
//! prints, and every example file under examples/ is a valid declarative config.
//!
//! After changing a setting, refresh the README with `UPDATE_README=1 cargo test -p silverback
//! --test readme` (or paste the output of `silverback config settings` between the markers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_silverback");
const START: &str = "<!-- settings:start -->\n";
const END: &str = "<!-- settings:end -->";

fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Runs `silverback <args>` without any SILVERBACK_* setting from the caller's environment.
fn silverback(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("SILVERBACK_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run silverback");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn readme_settings_table_is_the_generated_one() {
    let (code, generated, err) = silverback(&["config", "settings"]);
    assert_eq!(code, 0, "{err}");
    assert!(generated.starts_with("| Setting | Default | Description |\n"));
    for name in [
        "prefix",
        "proxy_listen",
        "declarative_config",
        "worker_threads",
    ] {
        assert!(generated.contains(&format!("| `{name}` |")), "{generated}");
    }

    let path = repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the markers {START:?} and {END:?}");
    };
    assert!(start < end, "the settings markers are out of order");
    let body = &readme[start + START.len()..end];
    if body == generated {
        return;
    }
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!(
            "{}{generated}{}",
            &readme[..start + START.len()],
            &readme[end..]
        );
        std::fs::write(&path, updated).unwrap();
        return;
    }
    panic!(
        "README.md's settings section differs from `silverback config settings`; refresh it \
         with `UPDATE_README=1 cargo test -p silverback --test readme`.\n--- README\n{body}\n--- \
         generated\n{generated}"
    );
}

/// Declarative files under `dir`, at any depth.
fn config_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            config_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml" | "json")
        ) {
            out.push(path);
        }
    }
}

#[test]
fn every_example_passes_config_parse() {
    let mut files = Vec::new();
    config_files(&repo_root().join("examples"), &mut files);
    assert!(!files.is_empty(), "no example files found");
    for file in files {
        let (code, out, err) = silverback(&["config", "parse", &file.display().to_string()]);
        assert_eq!(code, 0, "{}:\n{out}{err}", file.display());
        assert!(
            out.contains("parse successful"),
            "{}: {out}",
            file.display()
        );
    }
}
