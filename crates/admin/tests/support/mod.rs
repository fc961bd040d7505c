//! In-process Admin API clients over real stores, for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use silverback_admin::{AdminState, ConfigSink, NodeInfo, router};
use silverback_model::Config;
use silverback_model::entities::{PluginSchema, PluginSchemas};
use silverback_model::schema::{Field, Record};
use silverback_store::off::Memory;
use silverback_store::sqlite::Sqlite;
use silverback_store::{Change, Store};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use tower::ServiceExt;

pub const CERT: &str = include_str!("../data/cert.pem");
pub const KEY: &str = include_str!("../data/key.pem");

static CONFIG: LazyLock<Record> = LazyLock::new(|| {
    Record::new(vec![
        ("minute", Field::integer()),
        ("hour", Field::integer()),
        (
            "policy",
            Field::string().default("local").one_of(["local", "redis"]),
        ),
        ("fault_tolerant", Field::boolean().default(true)),
        (
            "redis",
            Field::record(Record::new(vec![
                ("host", Field::string()),
                ("port", Field::integer().default(6379)),
            ]))
            .default(serde_json::json!({})),
        ),
        (
            "key_names",
            Field::array(Field::string()).default(serde_json::json!(["apikey"])),
        ),
    ])
});

/// Two plugins for tests: `rate-limiting` (typed config) and `key-auth` (no consumer scope).
pub struct TestPlugins;

impl PluginSchemas for TestPlugins {
    fn schema(&self, name: &str) -> Option<PluginSchema<'_>> {
        match name {
            "rate-limiting" | "key-auth" => Some(PluginSchema {
                config: &CONFIG,
                protocols: &["grpc", "grpcs", "http", "https"],
                no_consumer: name == "key-auth",
                no_route: false,
                no_service: false,
            }),
            _ => None,
        }
    }
    fn names(&self) -> Vec<&'static str> {
        vec!["key-auth", "rate-limiting"]
    }
}

static PLUGINS: TestPlugins = TestPlugins;

/// Records what the Admin API reports to the gateway.
#[derive(Default)]
pub struct Recorder {
    pub changes: Mutex<Vec<Change>>,
    pub replaced: AtomicUsize,
}

impl ConfigSink for Recorder {
    fn changed(&self, changes: Vec<Change>) {
        self.changes.lock().unwrap().extend(changes);
    }
    fn replaced(&self, _: Arc<Config>) {
        self.replaced.fetch_add(1, Ordering::SeqCst);
    }
}

impl Recorder {
    pub fn count(&self) -> usize {
        self.changes.lock().unwrap().len()
    }
}

/// A response: status, headers and the body as JSON (`Null` when empty).
pub struct Res {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub text: String,
}

pub struct Api {
    pub router: axum::Router,
    pub sink: Arc<Recorder>,
    _dir: Option<TempDir>,
}

pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn state<S: Store>(store: S, sink: Arc<Recorder>, token: Option<&str>) -> AdminState<S> {
    let mut st = AdminState::new(
        Arc::new(store),
        NodeInfo::new(serde_json::json!({"admin_listen": ["127.0.0.1:8001"], "admin_token": "x"})),
    );
    st.plugins = &PLUGINS;
    st.plugin_list = vec![silverback_admin::PluginInfo {
        name: "key-auth",
        version: "3.10.0".into(),
        priority: 1250,
    }];
    st.sink = sink;
    st.admin_token = token.map(str::to_string);
    st.status = Arc::new(|| serde_json::json!({"total_requests": 7, "connections_active": 1}));
    st
}

impl Api {
    /// A fresh, migrated SQLite database in a temp directory.
    pub async fn sqlite() -> Api {
        Self::sqlite_with_token(None).await
    }

    pub async fn sqlite_with_token(token: Option<&str>) -> Api {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("silverback-admin-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = Sqlite::open(dir.join("kong.db")).await.unwrap();
        db.migrate().await.unwrap();
        let sink = Arc::new(Recorder::default());
        Api {
            router: router(state(db, sink.clone(), token)),
            sink,
            _dir: Some(TempDir(dir)),
        }
    }

    /// The DB-less store, loaded with a declarative config (YAML).
    pub fn dbless(yaml: &str) -> Api {
        let ctx = silverback_model::Context { plugins: &PLUGINS };
        let config = silverback_model::declarative::load_text(yaml, &ctx, 1_700_000_000).unwrap();
        let sink = Arc::new(Recorder::default());
        Api {
            router: router(state(Memory::new(Arc::new(config)), sink.clone(), None)),
            sink,
            _dir: None,
        }
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Res {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Res {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Res {
        self.request("GET", path, &[], Body::empty()).await
    }

    pub async fn delete(&self, path: &str) -> Res {
        self.request("DELETE", path, &[], Body::empty()).await
    }

    pub async fn json(&self, method: &str, path: &str, body: Value) -> Res {
        self.request(
            method,
            path,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    pub async fn form(&self, method: &str, path: &str, body: &str) -> Res {
        self.request(
            method,
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            body.to_string(),
        )
        .await
    }

    pub async fn multipart(&self, method: &str, path: &str, fields: &[(&str, &str)]) -> Res {
        let mut body = String::new();
        for (k, v) in fields {
            body.push_str(&format!(
                "--BOUNDARY\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        body.push_str("--BOUNDARY--\r\n");
        self.request(
            method,
            path,
            &[("content-type", "multipart/form-data; boundary=BOUNDARY")],
            body,
        )
        .await
    }

    /// Asserts the status and returns the JSON body.
    pub async fn ok(&self, method: &str, path: &str, body: Value, status: u16) -> Value {
        let r = self.json(method, path, body).await;
        assert_eq!(r.status.as_u16(), status, "{method} {path}: {}", r.text);
        r.body
    }
}

/// The `id` of an entity body.
pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}
