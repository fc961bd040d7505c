//! proxy-cache's Admin API (Kong's `kong/plugins/proxy-cache/api.lua`): look at and purge the
//! responses the node holds in memory.
//!
//! - `DELETE /proxy-cache`: empties the dictionary of every proxy-cache plugin (204, also when
//!   there is none).
//! - `GET|DELETE /proxy-cache/{cache_key}`: the entry in the first proxy-cache plugin's
//!   dictionary that has it (200 with the entry, 204), else 404.
//! - `GET|DELETE /proxy-cache/{plugin_id}/caches/{cache_key}`: the entry in that plugin's
//!   dictionary; 404 when the plugin or the entry is not there.
//!
//! Plugins are read from the store, enabled or not, as Kong iterates its `plugins` table. The
//! entries live in the node's [`silverback_plugins::Runtime`], shared with the proxy.

use crate::dao::as_uuid;
use crate::errors::AdminError;
use crate::response;
use crate::state::AdminState;
use crate::table;
use axum::response::Response;
use serde_json::Value;
type Map = serde_json::Map<String, Value>;
use silverback_plugins::runtime::dictionary_of;
use silverback_store::{ListQuery, MAX_PAGE_SIZE, Store};

const NAME: &str = "proxy-cache";

/// The dictionaries of every proxy-cache plugin in the store, once each, in store order.
async fn dictionaries<S: Store>(st: &AdminState<S>) -> Result<Vec<String>, AdminError> {
    let plugins = table::by_entity("plugins").ok_or(AdminError::NotFound)?;
    let mut out: Vec<String> = Vec::new();
    let mut offset = None;
    loop {
        let q = ListQuery {
            size: MAX_PAGE_SIZE,
            offset,
            tags: None,
            foreign: None,
        };
        let page = st.store.list(plugins.schema, &q).await?;
        for row in &page.rows {
            if let Some(dict) = proxy_cache_dictionary(row)
                && !out.iter().any(|d| d == dict)
            {
                out.push(dict.to_string());
            }
        }
        match page.offset {
            Some(o) => offset = Some(o),
            None => return Ok(out),
        }
    }
}

fn proxy_cache_dictionary(row: &Map) -> Option<&str> {
    (row.get("name").and_then(Value::as_str) == Some(NAME))
        .then(|| dictionary_of(row.get("config").unwrap_or(&Value::Null)))
}

/// `DELETE /proxy-cache`.
pub async fn purge_all<S: Store>(st: &AdminState<S>) -> Result<Response, AdminError> {
    for dict in dictionaries(st).await? {
        st.runtime.proxy_cache.flush(&dict);
    }
    Ok(response::no_content())
}

/// `GET /proxy-cache/{cache_key}`.
pub async fn get<S: Store>(st: &AdminState<S>, key: &str) -> Result<Response, AdminError> {
    for dict in dictionaries(st).await? {
        if let Some(entry) = st.runtime.proxy_cache.get_str(&dict, key) {
            return Ok(response::ok(&entry.to_json()));
        }
    }
    Err(AdminError::NotFound)
}

/// `DELETE /proxy-cache/{cache_key}`.
pub async fn purge<S: Store>(st: &AdminState<S>, key: &str) -> Result<Response, AdminError> {
    for dict in dictionaries(st).await? {
        if st.runtime.proxy_cache.purge(&dict, key) {
            return Ok(response::no_content());
        }
    }
    Err(AdminError::NotFound)
}

/// The dictionary of the proxy-cache plugin with this id.
async fn plugin_dictionary<S: Store>(
    st: &AdminState<S>,
    plugin_id: &str,
) -> Result<String, AdminError> {
    let plugins = table::by_entity("plugins").ok_or(AdminError::NotFound)?;
    let id = as_uuid(plugin_id).ok_or(AdminError::NotFound)?;
    let row = st
        .store
        .get(plugins.schema, id)
        .await?
        .ok_or(AdminError::NotFound)?;
    proxy_cache_dictionary(&row)
        .map(str::to_string)
        .ok_or(AdminError::NotFound)
}

/// `GET /proxy-cache/{plugin_id}/caches/{cache_key}`.
pub async fn plugin_get<S: Store>(
    st: &AdminState<S>,
    plugin_id: &str,
    key: &str,
) -> Result<Response, AdminError> {
    let dict = plugin_dictionary(st, plugin_id).await?;
    match st.runtime.proxy_cache.get_str(&dict, key) {
        Some(entry) => Ok(response::ok(&entry.to_json())),
        None => Err(AdminError::NotFound),
    }
}

/// `DELETE /proxy-cache/{plugin_id}/caches/{cache_key}`.
pub async fn plugin_purge<S: Store>(
    st: &AdminState<S>,
    plugin_id: &str,
    key: &str,
) -> Result<Response, AdminError> {
    let dict = plugin_dictionary(st, plugin_id).await?;
    if st.runtime.proxy_cache.purge(&dict, key) {
        Ok(response::no_content())
    } else {
        Err(AdminError::NotFound)
    }
}
