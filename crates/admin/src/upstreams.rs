//! Kong's upstream health endpoints (`kong/api/routes/upstreams.lua`): `GET
//! /upstreams/{u}/health` (targets with their health, or the balancer's with
//! `?balancer_health=1`) and `PUT /upstreams/{u}/targets/{t}[/{address}]/healthy|unhealthy`.
//! The health comes from this node's balancers, through [`UpstreamHealth`]; DB-less nodes
//! serve them the same way.

use crate::dao::Dao;
use crate::entities::{Nest, page_body};
use crate::errors::AdminError;
use crate::query::{self, Query};
use crate::response;
use crate::state::UpstreamHealth;
use axum::response::Response;
use serde_json::{Map as JsonMap, Value};
use silverback_store::Store;

/// `GET /upstreams/{u}/health`.
pub async fn health<S: Store>(
    dao: &Dao<'_, S>,
    n: Nest<'_>,
    q: &Query,
) -> Result<Response, AdminError> {
    let upstream = n.parent_id(dao).await?;
    let node_id = dao.st.node.node_id.to_string();
    let mut body = JsonMap::new();
    if q.get("balancer_health") == Some("1") {
        if let Some(data) = dao.st.health.balancer(upstream) {
            body.insert("data".into(), data);
        }
        body.insert("next".into(), Value::Null);
        body.insert("node_id".into(), node_id.into());
        return Ok(response::ok(&Value::Object(body)));
    }
    let mut lq = query::list_query(q)?;
    lq.foreign = Some((n.fk, upstream));
    let page = dao.st.store.list(n.child.schema, &lq).await?;
    let offset = page.offset.clone();
    let mut rows = page.rows;
    add_health(&mut rows, dao.st.health.as_ref(), upstream);
    let next = offset.as_deref().map(|o| {
        format!(
            "/upstreams/{}/health?offset={}",
            query::escape(n.parent_raw),
            query::escape(o)
        )
    });
    let Value::Object(mut listed) = page_body(rows, offset, next) else {
        return Err(AdminError::NotFound);
    };
    listed.insert("node_id".into(), node_id.into());
    Ok(response::ok(&Value::Object(listed)))
}

/// Kong's `page_for_upstream_with_health`: each target gets `health` and `data`; a target the
/// balancer has no addresses for is `DNS_ERROR`.
fn add_health(
    rows: &mut [silverback_model::schema::Map],
    health: &dyn UpstreamHealth,
    upstream: uuid::Uuid,
) {
    let Some(targets) = health.targets(upstream) else {
        return;
    };
    for row in rows {
        let name = row
            .get("target")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let found = targets.iter().find(|t| t.target == name);
        let state = found.map_or("DNS_ERROR", |t| t.health);
        row.insert("health".into(), state.into());
        row.insert("data".into(), found.map_or(Value::Null, |t| t.data.clone()));
    }
}

/// `PUT /upstreams/{u}/targets/{t}/healthy` (and `unhealthy`, and the `{address}` forms).
pub async fn set_health<S: Store>(
    dao: &Dao<'_, S>,
    n: Nest<'_>,
    target: &str,
    address: Option<&str>,
    healthy: bool,
) -> Result<Response, AdminError> {
    let upstream = n.parent_id(dao).await?;
    let row = n.child_row(dao, upstream, target).await?;
    let name = row
        .get("target")
        .and_then(Value::as_str)
        .unwrap_or_default();
    dao.st
        .health
        .set(upstream, name, address, healthy)
        .map_err(AdminError::BadRequest)?;
    Ok(response::no_content())
}
