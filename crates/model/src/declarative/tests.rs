use super::*;
use crate::entities::plugins_for_tests::TestPlugins;
use serde_json::json;

fn ctx() -> Context<'static> {
    Context {
        plugins: &TestPlugins,
    }
}

fn load_yaml(text: &str) -> Result<Config, DeclarativeError> {
    load_text(text, &ctx(), 1_700_000_000)
}

fn errors(text: &str) -> Vec<String> {
    match load_yaml(text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.lines(),
    }
}

const FULL: &str = r#"
_format_version: "3.0"
_transform: true
services:
- name: example-service
  url: http://example.com:8080/base
  tags: [demo]
  routes:
  - name: r1
    paths: [/api]
    plugins:
    - name: test-plugin
      config: {minute: 5}
  plugins:
  - name: test-plugin
upstreams:
- name: backend.internal
  targets:
  - target: 10.0.0.1:8080
    weight: 50
  - target: 10.0.0.2
consumers:
- username: alice
  custom_id: a-1
routes:
- paths: ["/other"]
  service: example-service
plugins:
- name: test-plugin
  consumer: alice
"#;

#[test]
fn loads_nested_config_with_defaults_and_references() {
    let c = load_yaml(FULL).unwrap();
    let svc = &c.services().unwrap()[0];
    assert_eq!(svc.host, "example.com");
    assert_eq!(svc.port, 8080);
    assert_eq!(svc.path.as_deref(), Some("/base"));
    assert_eq!(svc.protocol, "http");
    assert_eq!(svc.retries, 5);
    assert_eq!(svc.connect_timeout, 60000);

    let routes = c.routes().unwrap();
    assert_eq!(routes.len(), 2);
    assert!(
        routes
            .iter()
            .all(|r| r.service.map(|s| s.id) == Some(svc.id))
    );
    assert!(routes[0].strip_path);
    assert_eq!(routes[0].protocols, vec!["http", "https"]);
    assert_eq!(routes[0].https_redirect_status_code, 426);

    let targets = c.targets().unwrap();
    assert_eq!(
        targets[1].target, "10.0.0.2:8000",
        "Kong's default target port"
    );
    assert_eq!(targets[1].weight, 100);

    let plugins = c.plugins().unwrap();
    assert_eq!(plugins.len(), 3);
    let route_plugin = plugins.iter().find(|p| p.route.is_some()).unwrap();
    assert_eq!(route_plugin.config["minute"], 5);
    assert_eq!(
        route_plugin.config["policy"], "local",
        "plugin defaults filled"
    );
    let consumer_plugin = plugins.iter().find(|p| p.consumer.is_some()).unwrap();
    assert_eq!(
        consumer_plugin.consumer.unwrap().id,
        c.consumers().unwrap()[0].id
    );

    // Fields Kong returns as null are present.
    let row = &c.rows("services")[0];
    assert!(row.get("client_certificate").unwrap().is_null());
    assert_eq!(row["created_at"], json!(1_700_000_000));
}

#[test]
fn ids_are_deterministic_and_match_kong_keys() {
    let a = load_yaml(FULL).unwrap();
    let b = load_yaml(FULL).unwrap();
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.hash().len(), 32);
    let ids = |c: &Config, e: &str| {
        c.rows(e)
            .iter()
            .map(|r| r["id"].clone())
            .collect::<Vec<_>>()
    };
    for e in [
        "services",
        "routes",
        "plugins",
        "targets",
        "consumers",
        "upstreams",
    ] {
        assert_eq!(ids(&a, e), ids(&b, e), "{e}");
    }
    assert_eq!(
        a.services().unwrap()[0].id,
        super::ids::kong_id("services", "example-service")
    );
    assert_ne!(ids(&a, "routes")[0], ids(&a, "routes")[1]);
}

#[test]
fn empty_and_minimal_files() {
    let c = load_yaml("_format_version: \"3.0\"\n").unwrap();
    assert!(c.is_empty());
    assert_eq!(c.hash(), crate::EMPTY_CONFIG_HASH);
    assert!(load_text("{\"_format_version\":\"1.1\"}", &ctx(), 0).is_ok());
}

#[test]
fn every_error_is_listed_with_its_path() {
    let lines = errors(
        r#"
_format_version: "3.0"
services:
- name: s1
  host: example.com
  port: 99999
  routes:
  - name: bad-route
    paths: ["nope", "/ok"]
  - name: no-match-fields
- name: s1
  host: other.com
plugins:
- name: ghost-auth
- name: test-plugin
  service: missing-service
"#,
    );
    let all = lines.join("\n");
    assert!(
        all.contains("services[0] (service 's1'): port: value should be between 0 and 65535"),
        "{all}"
    );
    assert!(
        all.contains(
            "services[0].routes[0] (route 'bad-route'): paths[0]: should start with: / (fixed path) or ~/ (regex path)"
        ),
        "{all}"
    );
    assert!(
        all.contains("must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"),
        "{all}"
    );
    assert!(
        all.contains(
            "uniqueness violation: 'services' entity with name set to 's1' already declared"
        ),
        "{all}"
    );
    assert!(
        all.contains("plugins[0]") && all.contains("plugin 'ghost-auth' is not available"),
        "{all}"
    );
    assert!(
        all.contains("invalid reference 'service: missing-service' (no such entry in 'services')"),
        "{all}"
    );
    assert!(
        !all.contains("missing primary key"),
        "a bad reference is reported once: {all}"
    );
}

#[test]
fn kong_error_body_shape() {
    let err = load_yaml("_format_version: \"3.0\"\nservices:\n- name: x\n").unwrap_err();
    let body = err.to_kong_json();
    assert_eq!(body["code"], 14);
    assert_eq!(body["name"], "invalid declarative configuration");
    assert_eq!(
        body["fields"]["services"][0]["host"],
        "required field missing"
    );
    assert_eq!(body["flattened_errors"][0]["entity_type"], "service");
    assert_eq!(body["flattened_errors"][0]["entity_name"], "x");
}

#[test]
fn format_and_top_level_errors() {
    let all = errors("services: []\n").join("\n");
    assert!(
        all.contains("_format_version: required field missing"),
        "{all}"
    );
    let all = errors("_format_version: \"9.9\"\nbogus: 1\n").join("\n");
    assert!(
        all.contains("_format_version: expected one of: 1.1, 2.1, 3.0"),
        "{all}"
    );
    assert!(all.contains("bogus: unknown field"), "{all}");
    assert!(matches!(
        load_yaml("services: [unclosed"),
        Err(DeclarativeError::Parse(_))
    ));
}

/// Kong validates the top level and the entities in one pass: neither hides the other.
#[test]
fn top_level_errors_do_not_hide_entity_errors() {
    let bad_service = "services:\n- name: x\n  host: example.com\n  port: 70000\n";
    let port = "services[0] (service 'x'): port: value should be between 0 and 65535";
    for (top, want) in [
        (
            "_format_version: \"3.0\"\nbogus: 1\n",
            "bogus: unknown field",
        ),
        ("", "_format_version: required field missing"),
        (
            "_format_version: \"9.9\"\n",
            "_format_version: expected one of",
        ),
        ("_format_version: 3.0\n", "_format_version: expected one of"),
        (
            "_format_version: \"3.0\"\n_transform: maybe\n",
            "_transform: expected a boolean",
        ),
    ] {
        let all = errors(&format!("{top}{bad_service}")).join("\n");
        assert!(all.contains(want), "{top:?}: {all}");
        assert!(all.contains(port), "{top:?}: {all}");
    }
    // Both land in Kong's error body.
    let err = load_yaml(&format!("bogus: 1\n{bad_service}")).unwrap_err();
    let body = err.to_kong_json();
    assert_eq!(body["fields"]["bogus"], "unknown field");
    assert_eq!(body["fields"]["_format_version"], "required field missing");
    assert_eq!(
        body["fields"]["services"][0]["port"],
        "value should be between 0 and 65535"
    );
    // A top-level error alone still rejects a file whose entities are fine.
    let all =
        errors("_format_version: \"3.0\"\nbogus: 1\nservices:\n- name: x\n  host: example.com\n")
            .join("\n");
    assert_eq!(all, "bogus: unknown field");
}

/// lyaml reads `y` and `n` as strings: a service may be named `y`, and tags `n`, `Y`, `N`.
#[test]
fn y_and_n_are_strings_as_in_kong() {
    let c = load_yaml(
        "_format_version: \"3.0\"\nservices:\n- name: y\n  host: example.com\n  tags: [n, Y, N]\n  enabled: on\n",
    )
    .unwrap();
    let svc = &c.services().unwrap()[0];
    assert_eq!(svc.name.as_deref(), Some("y"));
    assert_eq!(c.rows("services")[0]["tags"], json!(["n", "Y", "N"]));
    assert_eq!(c.rows("services")[0]["enabled"], json!(true));
}

#[test]
fn legacy_regex_paths_get_tilde() {
    let c = load_yaml(
        r#"
_format_version: "1.1"
services:
- name: s
  host: example.com
  routes:
  - paths: ["/users/\\d+", "/plain", "/a/./b"]
"#,
    )
    .unwrap();
    let paths = c.routes().unwrap()[0].paths.clone().unwrap();
    assert_eq!(paths, vec!["~/users/\\d+", "/plain", "/a/b"]);
}

#[test]
fn nested_fk_is_rejected_and_certificates_nest_snis() {
    let all = errors(
        r#"
_format_version: "3.0"
services:
- name: s
  host: example.com
  routes:
  - paths: [/a]
    service: s
"#,
    )
    .join("\n");
    assert!(
        all.contains("services[0].routes[0]") && all.contains("service: unknown field"),
        "{all}"
    );
}

#[test]
fn same_scope_plugin_twice_is_a_uniqueness_error() {
    let all = errors(
        r#"
_format_version: "3.0"
plugins:
- name: test-plugin
- name: test-plugin
"#,
    )
    .join("\n");
    assert!(
        all.contains("uniqueness violation: 'plugins' entity with primary key"),
        "{all}"
    );
}

const CREDENTIALS: &str = r#"
consumers:
- username: alice
  keyauth_credentials:
  - key: alice-key
    ttl: 3600
  - {}
  basicauth_credentials:
  - username: alice
    password: s3cret
  jwt_secrets:
  - key: alice-iss
    algorithm: HS512
  hmacauth_credentials:
  - username: alice-hmac
  acls:
  - group: admins
  - group: users
  oauth2_credentials:
  - name: app
    client_id: app-id
    redirect_uris: [https://app.test/cb]
- username: bob
  acls:
  - group: admins
keyauth_credentials:
- consumer: bob
  key: bob-key
"#;

#[test]
fn credentials_nest_under_consumers_in_every_format() {
    for version in FORMAT_VERSIONS {
        let text = format!("_format_version: \"{version}\"\n{CREDENTIALS}");
        let c = load_yaml(&text).unwrap_or_else(|e| panic!("{version}: {e:?}"));
        let consumers = c.consumers().unwrap();
        let alice = consumers
            .iter()
            .find(|x| x.username.as_deref() == Some("alice"))
            .unwrap()
            .id;
        let keys = c.keyauth_credentials().unwrap();
        assert_eq!(keys.len(), 3);
        assert!(
            keys.iter()
                .any(|k| k.key == "alice-key" && k.ttl == Some(3600))
        );
        let generated = keys
            .iter()
            .find(|k| k.key != "alice-key" && k.key != "bob-key")
            .unwrap();
        assert_eq!(generated.key.len(), 32);
        assert_eq!(generated.consumer.id, alice);
        let basic = &c.basicauth_credentials().unwrap()[0];
        assert!(basic.password.starts_with("$argon2id$"), "hashed on load");
        assert!(basic.verify("s3cret"));
        // Kong's ids: v5 of the cache key.
        assert_eq!(
            basic.id,
            ids::kong_id("basicauth_credentials", "basicauth_credentials:*:alice")
        );
        let acls = c.acls().unwrap();
        assert_eq!(
            acls.len(),
            3,
            "one group per consumer, shared names allowed"
        );
        assert!(
            acls.iter()
                .any(|a| a.id == ids::kong_id("acls", &format!("acls:*:{alice}:admins")))
        );
        assert_eq!(c.jwt_secrets().unwrap()[0].algorithm, "HS512");
        assert_eq!(c.hmacauth_credentials().unwrap()[0].secret.len(), 32);
        let app = &c.oauth2_credentials().unwrap()[0];
        assert_eq!(app.client_id, "app-id");
        assert!(!app.hash_secret);
    }
}

#[test]
fn transform_false_keeps_stored_secrets() {
    let sha1 = "6d1e8f3f1c3a7d0c4f2e9b8a7c6d5e4f3a2b1c0d";
    let text = format!(
        r#"
_format_version: "3.0"
_transform: false
consumers:
- username: alice
  basicauth_credentials:
  - username: alice
    password: {sha1}
"#
    );
    let c = load_yaml(&text).unwrap();
    assert_eq!(c.basicauth_credentials().unwrap()[0].password, sha1);
}

#[test]
fn credential_errors_and_runtime_entities() {
    let e = errors(
        r#"
_format_version: "3.0"
consumers:
- username: alice
  basicauth_credentials:
  - username: dup
    password: a
  - username: dup
    password: b
  acls:
  - group: g
  - group: g
oauth2_tokens:
- expires_in: 5
"#,
    );
    let text = e.join("\n");
    assert!(text.contains("oauth2_tokens: unknown field"), "{text}");
    assert!(
        text.contains("uniqueness violation: 'basicauth_credentials' entity with username set to 'dup' already declared"),
        "{text}"
    );
    assert!(
        text.contains("uniqueness violation: 'acls' entity with primary key set to"),
        "{text}"
    );
}
