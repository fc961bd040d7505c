//! The command line: `version`, `config init|parse`, `check`, settings from a conf file and the
//! environment, `start` refusing bad settings or files, `health`, `stop`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// How long a `start` that must fail may take.
const QUICK: Duration = Duration::from_secs(5);

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Runs `silverback start` with the test settings plus `extra`, expecting it to exit by itself.
fn start_expecting_failure(dir: &TempDir, extra: &[(&str, &str)]) -> (i32, String) {
    let mut env = base_env(dir);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let (code, out, took) = run_cli_timeout(&["start"], &env, None, Duration::from_secs(20));
    let code = code.unwrap_or_else(|| panic!("start kept running with {extra:?}:\n{out}"));
    assert!(took < QUICK, "start took {took:?} to fail");
    let prefix = dir.path().join("prefix");
    assert!(
        !prefix.join("listeners.json").exists() && !prefix.join("pids/silverback.pid").exists(),
        "a failed start leaves no instance files"
    );
    (code, out)
}

#[test]
fn version() {
    let (code, out) = run_cli(&["version"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(&format!("Silverback {VERSION} (Kong Gateway 3.")),
        "{out}"
    );
    assert!(out.trim_end().ends_with("compatible)"), "{out}");
    let (code, out) = run_cli(&["--version"], &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), format!("silverback {VERSION}"));
    // An unknown verb is a usage error.
    let (code, out) = run_cli(&["frobnicate"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unrecognized subcommand"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_init_writes_a_file_parse_and_start_accept() {
    let dir = TempDir::new("cli-init");
    let file = dir.path().join("kong.yml");
    let (code, out) = run_cli(&["config", "init", &path_str(&file)], &[]);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("_format_version: \"3.0\""), "{text}");

    let (code, out) = run_cli(&["config", "parse", &path_str(&file)], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("parse successful"), "{out}");

    // Never overwrites.
    std::fs::write(&file, format!("{text}# edited by hand\n")).unwrap();
    let (code, out) = run_cli(&["config", "init", &path_str(&file)], &[]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("already exists"), "{out}");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .ends_with("# edited by hand\n")
    );

    // Without a file name: kong.yml in the working directory.
    let cwd = TempDir::new("cli-init-cwd");
    let (code, out, _) = run_cli_timeout(&["config", "init"], &[], Some(cwd.path()), QUICK);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        std::fs::read_to_string(cwd.path().join("kong.yml")).unwrap(),
        text
    );

    // The gateway serves it.
    let gw = Gateway::with_config(&text).start();
    let r = get(&client(), &gw.status_url("/status/ready"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(&client(), &gw.url("/nothing-here"), &[]).await;
    assert_eq!(r.status, 404);
}

#[test]
fn config_parse_lists_every_error_with_its_place() {
    let dir = TempDir::new("cli-parse");
    let file = dir.path().join("bad.yml");
    std::fs::write(
        &file,
        r#"_format_version: "3.0"
services:
- name: x
  host: example.com
  port: 70000
  routes:
  - name: r1
    paths: ["no-slash"]
- name: gopher-svc
  host: example.org
  protocol: gopher
plugins:
- name: openid-connect
routes:
- name: orphan
  paths: [/o]
  service: missing-service
"#,
    )
    .unwrap();
    let (code, out) = run_cli(&["config", "parse", &path_str(&file)], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "Error: {} is not a valid declarative config:",
            file.display()
        )),
        "{out}"
    );
    for line in [
        "services[0] (service 'x'): port: value should be between 0 and 65535",
        "services[0].routes[0] (route 'r1'): paths[0]: should start with: / (fixed path) or ~/ (regex path)",
        "services[1] (service 'gopher-svc'): protocol: expected one of: ",
        "invalid reference 'service: missing-service' (no such entry in 'services')",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // No plugins in this build: any plugin is refused, by name, at its place.
    let plugin_line = out
        .lines()
        .find(|l| l.contains("plugin 'openid-connect' is not available"))
        .unwrap_or_else(|| panic!("no plugin error in:\n{out}"));
    assert!(
        plugin_line.trim_start().starts_with("plugins[0]"),
        "{plugin_line}"
    );
    assert!(plugin_line.contains("name: "), "{plugin_line}");

    // A misspelt top-level key.
    std::fs::write(&file, "_format_version: \"3.0\"\nservicez: []\n").unwrap();
    let (code, out) = run_cli(&["config", "parse", &path_str(&file)], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("servicez: unknown field"), "{out}");
    // Not YAML.
    std::fs::write(&file, "services: [\n  - {name: x,\n").unwrap();
    let (code, out) = run_cli(&["config", "parse", &path_str(&file)], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("invalid YAML: "), "{out}");
    assert!(out.contains("line 2"), "the parse error says where: {out}");
    // No _format_version.
    std::fs::write(&file, "services: []\n").unwrap();
    let (code, out) = run_cli(&["config", "parse", &path_str(&file)], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("_format_version"), "{out}");
    // No file.
    let missing = dir.path().join("missing.yml");
    let (code, out) = run_cli(&["config", "parse", &path_str(&missing)], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot read"), "{out}");
}

/// `config parse` promises every error; Kong's declarative schema validation also reports an
/// unknown top-level key together with the entities' errors in one pass.
#[test]
fn config_parse_reports_top_level_and_entity_errors_together() {
    let dir = TempDir::new("cli-parse-top");
    let file = dir.path().join("bad.yml");
    std::fs::write(
        &file,
        "_format_version: \"3.0\"\nbogus: 1\nservices:\n- name: x\n  host: example.com\n  port: 70000\n",
    )
    .unwrap();
    let (code, out) = run_cli(&["config", "parse", &path_str(&file)], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bogus: unknown field"), "{out}");
    assert!(
        out.contains("services[0] (service 'x'): port: value should be between 0 and 65535"),
        "{out}"
    );
}

/// Kong reads kong.yml with lyaml, whose implicit booleans are true/false, yes/no and on/off (in
/// their three casings) only: `y` and `n` stay strings, so a service may be named `y`.
#[test]
fn config_parse_reads_y_and_n_as_strings_like_kong() {
    let dir = TempDir::new("cli-parse-yn");
    let file = dir.path().join("kong.yml");
    std::fs::write(
        &file,
        "_format_version: \"3.0\"\nservices:\n- name: y\n  host: example.com\n  tags: [n, Y, N]\n",
    )
    .unwrap();
    let (code, out) = run_cli(&["config", "parse", &path_str(&file)], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("parse successful"), "{out}");
}

#[test]
fn start_refuses_unknown_and_malformed_settings() {
    let dir = TempDir::new("cli-settings");
    let (code, out) = start_expecting_failure(&dir, &[("SILVERBACK_PROXY_LISTN", "127.0.0.1:0")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("unknown setting 'proxy_listn' (environment variable SILVERBACK_PROXY_LISTN)"),
        "{out}"
    );

    let (code, out) = start_expecting_failure(&dir, &[("SILVERBACK_WORKER_THREADS", "lots")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("setting 'worker_threads': 'lots' is not a non-negative integer"),
        "{out}"
    );

    // All problems at once.
    let (code, out) = start_expecting_failure(
        &dir,
        &[
            ("SILVERBACK_WORKER_THREADS", "0"),
            ("SILVERBACK_LOG_LEVEL", "chatty"),
            ("SILVERBACK_PROXY_LISTEN", "not-an-address"),
        ],
    );
    assert_eq!(code, 1, "{out}");
    for want in [
        "setting 'worker_threads'",
        "setting 'log_level'",
        "setting 'proxy_listen'",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn start_refuses_an_invalid_declarative_file() {
    let dir = TempDir::new("cli-badfile");
    let file = dir.path().join("kong.yml");
    std::fs::write(
        &file,
        "_format_version: \"3.0\"\nservices:\n- name: x\n  host: example.com\n  port: 70000\n  routes:\n  - paths: [/x]\nplugins:\n- name: openid-connect\n",
    )
    .unwrap();
    let (code, out) =
        start_expecting_failure(&dir, &[("SILVERBACK_DECLARATIVE_CONFIG", &path_str(&file))]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("invalid declarative config"), "{out}");
    assert!(
        out.contains("services[0] (service 'x'): port: value should be between 0 and 65535"),
        "{out}"
    );
    assert!(
        out.contains("plugin 'openid-connect' is not available"),
        "{out}"
    );

    // A file that is not there.
    let (code, out) = start_expecting_failure(
        &dir,
        &[(
            "SILVERBACK_DECLARATIVE_CONFIG",
            &path_str(&dir.path().join("missing.yml")),
        )],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("missing.yml"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conf_file_is_honoured_and_the_environment_overrides_it() {
    let up = Upstream::start("u");
    let dir = TempDir::new("cli-conf");
    let conf = dir.path().join("silverback.conf");
    std::fs::write(
        &conf,
        "# Silverback settings, kong.conf syntax\n\
         \n\
         headers = off                   # overridden by the environment below\n\
         error_default_type = text/html  # gateway errors without Accept\n\
         client_max_body_size=1k\n\
         nginx_http_gzip = on            # an nginx directive: accepted, no effect\n",
    )
    .unwrap();
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n  - paths: [/ok]\n- name: dead\n  url: http://127.0.0.1:1\n  retries: 0\n  routes:\n  - paths: [/dead]\n",
        up.addr
    );
    let gw = Gateway::with_config(&cfg)
        .arg("--conf")
        .arg(path_str(&conf))
        .setting("headers", "server_tokens")
        .start();
    let cl = client();
    // From the environment: server_tokens replaces the file's `off` (and is not merged with it).
    let r = get(&cl, &gw.url("/nowhere"), &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("server"),
        Some(format!("silverback/{VERSION}").as_str())
    );
    assert!(r.header("x-kong-request-id").is_none(), "{:?}", r.headers);
    let r = get(&cl, &gw.url("/ok"), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.header("via").is_some());
    assert!(r.header("x-kong-proxy-latency").is_none());
    // From the file: error_default_type and client_max_body_size.
    let r = get(&cl, &gw.url("/dead"), &[]).await;
    assert_eq!(r.status, 502);
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{:?}",
        r.headers
    );
    let r = send(&cl, "POST", &gw.url("/ok"), &[], vec![b'x'; 2048]).await;
    assert_eq!(r.status, 413, "{}", r.text());
    let r = send(&cl, "POST", &gw.url("/ok"), &[], vec![b'x'; 1000]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        gw.log_text().contains("'nginx_http_gzip'") && gw.log_text().contains("no effect"),
        "{}",
        gw.log_text()
    );

    // `check` reads the same syntax.
    let (code, out) = run_cli(&["check", &path_str(&conf)], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("is valid"), "{out}");
    assert!(
        out.contains("nginx_http_gzip"),
        "the warning is shown: {out}"
    );
    let bad = dir.path().join("bad.conf");
    std::fs::write(
        &bad,
        "# comment\nworker_threads = many\nno equals sign here\nproxy_lisen = 1.2.3.4:80\n",
    )
    .unwrap();
    let (code, out) = run_cli(&["check", &path_str(&bad)], &[]);
    assert_eq!(code, 1, "{out}");
    for want in [
        "setting 'worker_threads': 'many' is not a non-negative integer",
        &format!("{}:3: expected 'name = value'", bad.display()),
        &format!("unknown setting 'proxy_lisen' ({}:4)", bad.display()),
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_running_and_ready() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n  - paths: [/]\n",
        up.addr
    ))
    .start();
    let (code, out) = gw.cli(&["health"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("running (pid {})", gw.pid())),
        "{out}"
    );
    assert!(out.contains("healthy"), "{out}");
    // --prefix alone finds the instance.
    let (code, out) = run_cli(&["health", "--prefix", &path_str(&gw.prefix())], &[]);
    assert_eq!(code, 0, "{out}");

    // Running without a config: up, but not ready.
    let empty = Gateway::without_config().start();
    let (code, out) = empty.cli(&["health"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("running"), "{out}");
    assert!(out.contains("not ready (503)"), "{out}");

    // Nothing running in this prefix.
    let nothing = TempDir::new("cli-health");
    let (code, out) = run_cli(&["health"], &base_env(&nothing));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not running"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_lets_in_flight_requests_finish_and_cleans_up() {
    let up = Upstream::start("u");
    let mut gw = Gateway::with_config(&format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n  - paths: [/]\n",
        up.addr
    ))
    .start();
    let pid_file = gw.prefix().join("pids/silverback.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        gw.pid().to_string()
    );
    // A second instance in the same prefix is refused.
    let (code, out, _) = run_cli_timeout(&["start"], &gw.env, None, Duration::from_secs(20));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("already running"), "{out}");

    let url = gw.url("/delay/800");
    let in_flight = tokio::spawn(async move { get(&client(), &url, &[]).await });
    eventually(
        Duration::from_secs(5),
        "the slow request reaches the upstream",
        || async { up.hits() >= 1 },
    )
    .await;
    let (code, out) = tokio::task::block_in_place(|| gw.cli(&["stop"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("stopped"), "{out}");
    let status = gw
        .wait_exit(Duration::from_secs(5))
        .expect("the process is gone once stop returns");
    assert_eq!(status.code(), Some(0), "{}", gw.log_text());
    let r = in_flight.await.unwrap();
    assert_eq!(
        r.status,
        200,
        "the in-flight request completed: {}",
        r.text()
    );
    assert!(!pid_file.exists());
    assert!(!gw.prefix().join("listeners.json").exists());
    assert!(
        std::net::TcpStream::connect(gw.proxy).is_err(),
        "no longer listening"
    );
    // Stopping again: nothing to stop.
    let (code, out) = gw.cli(&["stop"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not running"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_and_sigquit_stop_cleanly() {
    for sig in ["INT", "QUIT"] {
        let mut gw = Gateway::without_config().start();
        let pid_file = gw.prefix().join("pids/silverback.pid");
        assert!(pid_file.exists());
        gw.signal(sig);
        let status = gw
            .wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("SIG{sig} did not stop the gateway"));
        assert_eq!(status.code(), Some(0), "SIG{sig}: {}", gw.log_text());
        assert!(!pid_file.exists(), "SIG{sig}: pid file left behind");
        assert!(gw.log_text().contains("Silverback stopped"));
    }
}

#[test]
fn a_stale_pid_file_does_not_block_start() {
    let mut gw = Gateway::without_config().start();
    let pid_file = gw.prefix().join("pids/silverback.pid");
    gw.signal("KILL");
    gw.wait_exit(Duration::from_secs(5)).expect("killed");
    assert!(pid_file.exists(), "SIGKILL leaves the pid file");
    // Same prefix and settings: it starts (and is still running when the timeout ends it).
    let (code, out, _) = run_cli_timeout(&["start"], &gw.env, None, Duration::from_secs(4));
    assert_eq!(code, None, "start exited: {out}");
    assert!(
        out.contains(&format!("Silverback {VERSION} started")),
        "{out}"
    );
}
