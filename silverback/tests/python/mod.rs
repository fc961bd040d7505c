//! An independent implementation for the authentication tests: credentials, signatures and
//! tokens are made by Python 3 (its standard library and the `cryptography` package), never by
//! the code under test.
#![allow(dead_code)]

use std::process::Command;

/// Runs a Python 3 script with arguments (`sys.argv[1..]`) and returns its standard output,
/// trimmed.
pub fn run(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("python3 prints text")
        .trim()
        .to_string()
}

/// `base64(text)`, standard alphabet with padding.
pub fn base64(text: &str) -> String {
    run(
        "import base64,sys; print(base64.b64encode(sys.argv[1].encode()).decode())",
        &[text],
    )
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(&format!("{user}:{password}")))
}
