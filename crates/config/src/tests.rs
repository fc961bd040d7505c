use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write_conf(text: &str) -> tempfile_path::TempConf {
    tempfile_path::TempConf::new(text)
}

/// A throwaway conf file removed on drop.
mod tempfile_path {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct TempConf(pub PathBuf);
    static N: AtomicUsize = AtomicUsize::new(0);

    impl TempConf {
        pub fn new(text: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "silverback-conf-test-{}-{}.conf",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&p, text).unwrap();
            TempConf(p)
        }
    }
    impl Drop for TempConf {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn defaults_match_kong() {
    let s = Settings::load(None, env(&[])).unwrap();
    assert_eq!(s.proxy_listen.len(), 2);
    assert_eq!(s.proxy_listen[0].addr.port(), 8000);
    assert_eq!(s.admin_listen[0].addr, "127.0.0.1:8001".parse().unwrap());
    assert_eq!(s.status_listen[0].addr, "127.0.0.1:8007".parse().unwrap());
    assert_eq!(s.real_ip_header, "X-Real-IP");
    assert_eq!(s.upstream_keepalive_pool_size, 512);
    assert_eq!(s.upstream_keepalive_max_requests, 10000);
    assert_eq!(s.upstream_keepalive_idle_timeout, 60);
    assert!(s.headers.server && s.headers.via && s.headers.request_id);
    assert!(s.headers.proxy_latency && s.headers.upstream_latency);
    assert!(!s.headers.upstream_status);
    assert!(s.headers_upstream.request_id);
    assert_eq!(s.client_body_buffer_size, 8192);
    assert_eq!(s.mem_cache_size, 128 * 1024 * 1024);
    assert!(s.worker_threads >= 1);
}

#[test]
fn file_then_env_precedence() {
    let conf = write_conf(
        "# comment\nproxy_listen = 127.0.0.1:9000  # trailing\nlog_level = debug\nreal_ip_header = X-Client\\#1\n",
    );
    let s = Settings::load(
        Some(&conf.0),
        env(&[
            ("SILVERBACK_PROXY_LISTEN", "127.0.0.1:9100"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(s.proxy_listen[0].addr.port(), 9100, "env wins over file");
    assert_eq!(s.log_level, LogLevel::Debug);
    assert_eq!(s.real_ip_header, "X-Client#1");
}

#[test]
fn all_errors_reported_together() {
    let conf = write_conf("proxy_listn = 1.2.3.4:80\nworker_threads = many\nnot a setting line\n");
    let err = Settings::load(
        Some(&conf.0),
        env(&[("SILVERBACK_TRUSTED_IPS", "10.0.0.0/8, banana")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown setting 'proxy_listn'"), "{err}");
    assert!(err.contains("setting 'worker_threads'"), "{err}");
    assert!(err.contains("expected 'name = value'"), "{err}");
    assert!(err.contains("'banana' is not an IP address"), "{err}");
}

#[test]
fn unknown_env_setting_is_an_error() {
    let err = Settings::load(None, env(&[("SILVERBACK_PROXY_LISTENER", "x")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown setting 'proxy_listener'"), "{err}");
}

#[test]
fn kong_only_settings_warn_and_aliases_apply() {
    let conf = write_conf("nginx_worker_processes = 3\nlmdb_map_size = 128m\nnginx_http_foo = 1\n");
    let s = Settings::load(Some(&conf.0), env(&[])).unwrap();
    assert_eq!(s.worker_threads, 3);
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
}

#[test]
fn headers_and_trusted_ips() {
    let s = Settings::load(
        None,
        env(&[
            ("SILVERBACK_HEADERS", "off"),
            ("SILVERBACK_HEADERS_UPSTREAM", "off"),
            ("SILVERBACK_TRUSTED_IPS", "0.0.0.0/0,::/0,192.168.1.1"),
        ]),
    )
    .unwrap();
    assert_eq!(s.headers, HeaderSet::default());
    assert!(!s.headers_upstream.request_id);
    assert_eq!(s.trusted_ips.len(), 3);
    assert!(
        Settings::load(None, env(&[("SILVERBACK_HEADERS", "X-Nope")])).is_err(),
        "unknown header name rejected"
    );
}

#[test]
fn missing_conf_file_is_an_error() {
    let err = Settings::load(Some(Path::new("/nonexistent/silverback.conf")), env(&[]));
    assert!(matches!(err, Err(ConfigError::Read { .. })));
}

#[test]
fn database_sqlite_and_its_path() {
    let s = Settings::load(None, env(&[("SILVERBACK_PREFIX", "/srv/sb")])).unwrap();
    assert_eq!(s.database, Database::Sqlite);
    assert_eq!(s.sqlite_path, std::path::Path::new("/srv/sb/silverback.db"));
    let s = Settings::load(
        None,
        env(&[
            ("SILVERBACK_PREFIX", "/srv/sb"),
            ("SILVERBACK_DATABASE", "sqlite"),
            ("SILVERBACK_SQLITE_PATH", "data/config.db"),
        ]),
    )
    .unwrap();
    assert_eq!(s.database, Database::Sqlite);
    assert_eq!(
        s.sqlite_path,
        std::path::Path::new("/srv/sb/data/config.db")
    );
    let s = Settings::load(None, env(&[("SILVERBACK_SQLITE_PATH", "/var/lib/sb.db")])).unwrap();
    assert_eq!(s.sqlite_path, std::path::Path::new("/var/lib/sb.db"));
    for (value, message) in [
        ("postgres", "not available in this build yet"),
        ("mysql", "is not one of off, sqlite"),
    ] {
        let err = Settings::load(None, env(&[("SILVERBACK_DATABASE", value)])).unwrap_err();
        assert!(err.to_string().contains(message), "{err}");
    }
}

#[test]
fn admin_token_is_a_secret() {
    let s = Settings::load(None, env(&[])).unwrap();
    assert!(s.admin_token.is_none());
    let s = Settings::load(None, env(&[("SILVERBACK_ADMIN_TOKEN", " t0ken ")])).unwrap();
    assert_eq!(s.admin_token.as_ref().map(Secret::expose), Some("t0ken"));
    assert!(!format!("{s:?}").contains("t0ken"));
    assert_eq!(s.shown["admin_token"], "******");
    assert_eq!(s.shown["database"], "sqlite");
    let raw = RawSettings::defaults().with_env(env(&[("SILVERBACK_ADMIN_TOKEN", "t0ken")]));
    assert!(!format!("{raw:?}").contains("t0ken"));
    assert!(is_sensitive("admin_token"));
}
