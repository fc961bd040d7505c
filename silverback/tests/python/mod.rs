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

/// base64 of the HMAC (`hmac-sha1`, `hmac-sha256` ...) of `text` under `secret`.
pub fn hmac_sign(algorithm: &str, secret: &str, text: &str) -> String {
    run(
        r#"
import base64, hashlib, hmac, sys
alg, secret, text = sys.argv[1:4]
digest = getattr(hashlib, alg.replace("hmac-", ""))
print(base64.b64encode(hmac.new(secret.encode(), text.encode(), digest).digest()).decode())
"#,
        &[algorithm, secret, text],
    )
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) `offset` seconds from now.
pub fn http_date(offset: i64) -> String {
    run(
        "import email.utils, sys, time; print(email.utils.formatdate(time.time() + int(sys.argv[1]), usegmt=True))",
        &[&offset.to_string()],
    )
}

/// `SHA-256=<base64 of the SHA-256 of body>`, a `Digest` header value.
pub fn sha256_digest(body: &str) -> String {
    run(
        "import base64, hashlib, sys; print('SHA-256=' + base64.b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).decode())",
        &[body],
    )
}
