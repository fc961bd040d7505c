//! Node endpoints (`kong/api/routes/kong.lua`, `health.lua`): `GET /`, `GET /status`,
//! `GET /endpoints` and `GET /plugins/enabled`. `GET /` is what `deck ping` and most scripts
//! read first: `version` (Kong's, so clients pick Kong 3 behaviour) and
//! `configuration.database`.

use crate::errors::AdminError;
use crate::response;
use crate::state::{AdminState, redact_configuration};
use axum::response::Response;
use serde_json::{Map, Value, json};
use silverback_store::{ListQuery, MAX_PAGE_SIZE, Store};

/// Distinct plugin names configured in the store, in first-seen order.
async fn plugins_in_use<S: Store>(st: &AdminState<S>) -> Result<Vec<String>, AdminError> {
    let Some(schema) = silverback_model::entities::schema("plugins") else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = Vec::new();
    let mut offset = None;
    loop {
        let q = ListQuery {
            size: MAX_PAGE_SIZE,
            offset,
            ..ListQuery::default()
        };
        let page = st.store.list(schema, &q).await?;
        for row in &page.rows {
            if let Some(n) = row.get("name").and_then(Value::as_str)
                && !names.iter().any(|x| x == n)
            {
                names.push(n.to_string());
            }
        }
        match page.offset {
            Some(o) => offset = Some(o),
            None => return Ok(names),
        }
    }
}

/// `GET /`.
pub async fn root<S: Store>(st: &AdminState<S>) -> Result<Response, AdminError> {
    let available: Map<String, Value> = st
        .plugin_list
        .iter()
        .map(|p| {
            (
                p.name.to_string(),
                json!({ "version": p.version, "priority": p.priority }),
            )
        })
        .collect();
    let mut configuration = redact_configuration(st.node.configuration.clone());
    if let Value::Object(c) = &mut configuration {
        c.entry("database")
            .or_insert_with(|| st.store.strategy().into());
    }
    let body = json!({
        "tagline": "Welcome to kong",
        "version": st.node.kong_version,
        "silverback_version": st.node.silverback_version,
        "edition": "community",
        "hostname": st.node.hostname,
        "node_id": st.node.node_id.to_string(),
        "timers": { "running": 0, "pending": 0 },
        "plugins": {
            "available_on_server": available,
            "enabled_in_cluster": plugins_in_use(st).await?,
        },
        "lua_version": "Silverback (Rust)",
        "configuration": configuration,
        "pids": { "master": std::process::id(), "workers": [std::process::id()] },
    });
    Ok(response::ok(&body))
}

/// `GET /status`: the server counters, and either database reachability or, DB-less, the
/// hash of the running configuration.
pub async fn status<S: Store>(st: &AdminState<S>) -> Result<Response, AdminError> {
    let mut body = Map::new();
    body.insert("server".into(), (st.status)());
    body.insert(
        "memory".into(),
        json!({ "workers_lua_vms": [], "lua_shared_dicts": {} }),
    );
    if st.store.writable() {
        let reachable = match silverback_model::entities::schema("services") {
            Some(schema) => {
                let q = ListQuery {
                    size: 1,
                    ..ListQuery::default()
                };
                st.store.list(schema, &q).await.is_ok()
            }
            None => true,
        };
        body.insert("database".into(), json!({ "reachable": reachable }));
    } else {
        let config = st.store.load().await?;
        body.insert("configuration_hash".into(), config.hash().into());
    }
    Ok(response::ok(&Value::Object(body)))
}

/// `GET /metrics` (the prometheus plugin's Admin API endpoint): the text the node renders.
pub async fn metrics<S>(st: &AdminState<S>) -> Response {
    let body = (st.metrics)().await;
    let mut res = Response::new(axum::body::Body::from(body));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(silverback_plugins::prometheus::CONTENT_TYPE),
    );
    res
}

/// `GET /endpoints`.
pub fn endpoints() -> Response {
    response::ok(&json!({ "data": crate::table::templates() }))
}

/// `GET /plugins/enabled`: the plugins this node can run.
pub fn enabled<S>(st: &AdminState<S>) -> Response {
    let names: Vec<&str> = st.plugin_list.iter().map(|p| p.name).collect();
    response::ok(&json!({ "enabled_plugins": names }))
}
