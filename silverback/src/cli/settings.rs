//! `config settings`: the settings reference as markdown, generated from the one settings table
//! so the README (which must contain this output verbatim, see `tests/readme.rs`) cannot drift.

use silverback_config::{ALIASES, KONG_SETTINGS_WITHOUT_EFFECT, SETTINGS};
use std::fmt::Write;

pub fn run() -> i32 {
    print!("{}", render());
    0
}

/// The table (name, default, description), then the aliases and the Kong settings accepted
/// without effect.
pub fn render() -> String {
    let mut out = String::from("| Setting | Default | Description |\n| --- | --- | --- |\n");
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            String::new()
        } else {
            format!("`{}`", cell(s.default))
        };
        let _ = writeln!(out, "| `{}` | {default} | {} |", cell(s.name), cell(s.doc));
    }
    let aliases: Vec<String> = ALIASES
        .iter()
        .map(|(alias, to)| format!("`{alias}` → `{to}`"))
        .collect();
    let _ = write!(
        out,
        "\nKong's names for settings that Silverback spells differently are accepted as aliases: {}.\n",
        aliases.join(", ")
    );
    let ignored: Vec<String> = KONG_SETTINGS_WITHOUT_EFFECT
        .iter()
        .filter(|name| !name.starts_with("nginx_"))
        .map(|name| format!("`{name}`"))
        .collect();
    let _ = write!(
        out,
        "\nAccepted without effect, so that an existing kong.conf loads (each one is reported as a \
         warning by `start` and `check`): {}, and every `nginx_*` setting that is not an alias above.\n",
        ignored.join(", ")
    );
    out
}

/// A table cell: `|` would end the cell, even inside backticks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_row_and_pipes_are_escaped() {
        let text = render();
        for s in SETTINGS {
            assert!(text.contains(&format!("| `{}` |", s.name)), "{}", s.name);
        }
        assert_eq!(cell("a|b"), "a\\|b");
        // Rows have exactly four unescaped separators.
        for line in text.lines().filter(|l| l.starts_with("| `")) {
            let unescaped = line.replace("\\|", "");
            assert_eq!(unescaped.matches('|').count(), 4, "{line}");
        }
    }
}
