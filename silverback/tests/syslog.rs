//! syslog against the real binary: one entry per request at a Unix datagram socket standing in
//! for `/dev/log` (the `syslog_socket` setting), with the priority Kong's severities and
//! facility give, and severities below `log_level` skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::collector::SyslogCollector;
use common::*;
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_entry_per_request_with_kongs_priorities() {
    let up = Upstream::start("up");
    let dir = TempDir::new("syslog");
    let logs = SyslogCollector::start(dir.path());
    let yaml = format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: r
    paths: [/logged]
    plugins:
    - name: syslog
      config:
        facility: local3
        log_level: warning
        successful_severity: warning
        client_errors_severity: err
        server_errors_severity: crit
  - name: quiet
    paths: [/quiet]
    plugins:
    - name: syslog
      config: {{log_level: warning}}
"#,
        up.addr
    );
    let gw = Gateway::with_config(&yaml)
        .setting("syslog_socket", logs.path.to_str().unwrap())
        .start();
    let c = client();
    assert_eq!(
        get(&c, &gw.url("/logged/ok"), &[("authorization", "x-secret")])
            .await
            .status,
        200
    );
    assert_eq!(
        get(&c, &gw.url("/logged/status/404"), &[]).await.status,
        404
    );
    assert_eq!(
        get(&c, &gw.url("/logged/status/503"), &[]).await.status,
        503
    );
    // info (the default successful_severity) is below log_level warning: not sent.
    assert_eq!(get(&c, &gw.url("/quiet"), &[]).await.status, 200);
    let mut got = logs.received.wait_for(3, Duration::from_secs(10));
    assert_eq!(got.len(), 3, "{got:?}");
    // Requests on different connections may reach the log phase in any order; the priority
    // sorts them back (156, 155, 154).
    got.sort_by(|a, b| b.cmp(a));
    // local3 is facility 19: 19 * 8 + severity (warning 4, err 3, crit 2).
    let pid = gw.pid();
    for (entry, (pri, uri)) in got.iter().zip([
        (156, "/logged/ok"),
        (155, "/logged/status/404"),
        (154, "/logged/status/503"),
    ]) {
        let prefix = format!("<{pri}>");
        assert!(entry.starts_with(&prefix), "{entry}");
        let (head, json) = entry.split_once(": ").unwrap();
        assert!(head.ends_with(&format!(" kong[{pid}]")), "{head}");
        let rec: Value = serde_json::from_str(json).unwrap();
        assert_eq!(rec["request"]["uri"], uri);
    }
    assert!(!got.concat().contains("x-secret"));
}
