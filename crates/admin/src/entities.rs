//! The generated entity endpoints (Kong's `kong/api/endpoints.lua` plus the per-entity
//! overrides in `kong/api/routes/*.lua`): collections, items, collections and items under a
//! parent, and the entity a foreign field points at.

use crate::body::Body;
use crate::certificates;
use crate::coerce;
use crate::dao::{Dao, as_uuid, reference, row_id};
use crate::errors::AdminError;
use crate::query::{self, Query};
use crate::response;
use crate::table::Entity;
use axum::response::Response;
use serde_json::{Map as JsonMap, Value, json};
use silverback_model::schema::Map;
use silverback_store::{Page, Store};
use uuid::Uuid;

/// A write refused because the store is read-only (DB-less), with Kong's message.
fn read_only<S: Store>(
    dao: &Dao<'_, S>,
    operation: &str,
    e: Entity,
    key: Option<&str>,
) -> Result<(), AdminError> {
    if dao.st.store.writable() {
        return Ok(());
    }
    let by = match (key, e.schema.endpoint_key) {
        (Some(k), Some(field)) if as_uuid(k).is_none() => format!(" by '{field}'"),
        _ => String::new(),
    };
    Err(AdminError::Unsupported(format!(
        "cannot {operation} '{}' entities{by} when not using a database",
        e.schema.name
    )))
}

/// The body as an entity object, form values coerced by the schema.
fn entity_body<S: Store>(
    dao: &Dao<'_, S>,
    e: Entity,
    body: Body,
    stored: Option<&Map>,
) -> Result<Map, AdminError> {
    let (mut map, is_form) = body.into_object()?;
    if is_form {
        let stored_name = stored.and_then(|r| r.get("name")).and_then(Value::as_str);
        coerce::entity(e.schema, &mut map, dao.st.plugins, stored_name);
    }
    Ok(map)
}

/// `{"data": [...], "offset": "...", "next": ...}`; no `offset` on the last page.
pub(crate) fn page_body(rows: Vec<Map>, offset: Option<String>, next: Option<String>) -> Value {
    let mut body = JsonMap::new();
    body.insert(
        "data".into(),
        Value::Array(rows.into_iter().map(Value::Object).collect()),
    );
    if let Some(o) = offset {
        body.insert("offset".into(), o.into());
    }
    body.insert("next".into(), next.map_or(Value::Null, Value::from));
    Value::Object(body)
}

async fn with_names<S: Store>(
    dao: &Dao<'_, S>,
    e: Entity,
    page: Page,
) -> Result<Vec<Map>, AdminError> {
    let mut rows = page.rows;
    for row in &mut rows {
        certificates::add_names(dao, e, row).await?;
    }
    Ok(rows)
}

/// `GET /{entities}` (and Kong's `GET /consumers?custom_id=`).
pub async fn list<S: Store>(
    dao: &Dao<'_, S>,
    e: Entity,
    q: &Query,
) -> Result<Response, AdminError> {
    if e.ep.entity == "consumers"
        && let Some(custom_id) = q.get("custom_id")
    {
        if custom_id.is_empty() {
            return Err(AdminError::BadRequest(
                "custom_id must be an unempty string".into(),
            ));
        }
        let found = dao
            .st
            .store
            .get_by(e.schema, "custom_id", custom_id)
            .await?;
        let data: Vec<Value> = found.into_iter().map(Value::Object).collect();
        return Ok(response::ok(&json!({ "data": data, "next": null })));
    }
    let lq = query::list_query(q)?;
    let page = dao.st.store.list(e.schema, &lq).await?;
    let offset = page.offset.clone();
    let rows = with_names(dao, e, page).await?;
    let next = offset.as_deref().map(|o| query::next_top(e.ep.name, o, q));
    Ok(response::ok(&page_body(rows, offset, next)))
}

/// `POST /{entities}`.
pub async fn create<S: Store>(
    dao: &Dao<'_, S>,
    e: Entity,
    body: Body,
) -> Result<Response, AdminError> {
    read_only(dao, "create", e, None)?;
    let map = entity_body(dao, e, body, None)?;
    let row = dao.insert(e, map).await?;
    Ok(response::created(&Value::Object(row)))
}

/// `GET /{entities}/{id or key}`.
pub async fn get<S: Store>(dao: &Dao<'_, S>, e: Entity, key: &str) -> Result<Response, AdminError> {
    let mut row = dao.require(e, key).await?;
    certificates::add_names(dao, e, &mut row).await?;
    Ok(response::ok(&Value::Object(row)))
}

/// `PUT /{entities}/{id or key}`: create or replace.
pub async fn put<S: Store>(
    dao: &Dao<'_, S>,
    e: Entity,
    key: &str,
    body: Body,
    parent: Option<(&'static str, Uuid)>,
) -> Result<Response, AdminError> {
    read_only(dao, "create or update", e, Some(key))?;
    let mut map = entity_body(dao, e, body, None)?;
    if let Some((fk, pid)) = parent {
        map.insert(fk.into(), json!({ "id": pid.to_string() }));
    }
    let (key, existing) = if certificates::by_sni_name(e, key) {
        let (id, existing) = certificates::put_target(dao, key).await?;
        certificates::add_put_name(&mut map, key);
        (id.to_string(), existing)
    } else {
        (key.to_string(), dao.select(e, key).await?)
    };
    let row = dao.upsert(e, &key, map, existing).await?;
    Ok(response::ok(&Value::Object(row)))
}

/// The Kong "not found" error of an update, naming the key it was looked up by.
fn update_not_found(e: Entity, key: &str) -> AdminError {
    match (as_uuid(key), e.schema.endpoint_key) {
        (None, Some(field)) => AdminError::EntityNotFound(field, key.to_string()),
        _ => AdminError::EntityNotFound("id", key.to_string()),
    }
}

/// `PATCH /{entities}/{id or key}`: merge into the stored entity.
pub async fn patch<S: Store>(
    dao: &Dao<'_, S>,
    e: Entity,
    key: &str,
    body: Body,
) -> Result<Response, AdminError> {
    read_only(dao, "update", e, Some(key))?;
    let existing = dao
        .select(e, key)
        .await?
        .ok_or_else(|| update_not_found(e, key))?;
    let map = entity_body(dao, e, body, Some(&existing))?;
    let row = dao.update(e, existing, map).await?;
    Ok(response::ok(&Value::Object(row)))
}

/// `DELETE /{entities}/{id or key}`: 204 also when there is nothing to delete.
pub async fn delete<S: Store>(
    dao: &Dao<'_, S>,
    e: Entity,
    key: &str,
) -> Result<Response, AdminError> {
    read_only(dao, "remove", e, Some(key))?;
    if let Some(row) = dao.select(e, key).await?
        && let Some(id) = row_id(&row)
    {
        dao.delete(e, id).await?;
    }
    Ok(response::no_content())
}

/// A parent and the child collection under it: `/services/{s}/routes`.
#[derive(Debug, Clone, Copy)]
pub struct Nest<'a> {
    pub parent: Entity,
    /// The parent's key exactly as it appeared in the URL (for `next` links).
    pub parent_raw: &'a str,
    pub parent_key: &'a str,
    pub child: Entity,
    /// The child's field referencing the parent.
    pub fk: &'static str,
}

impl Nest<'_> {
    /// The field naming a child within its parent, where that is not the endpoint key:
    /// targets by their `target` within the upstream, acls by their `group` within the
    /// consumer (Kong's `kong/plugins/acl/api.lua`).
    fn named_by(&self) -> Option<&'static str> {
        match self.child.ep.entity {
            "targets" => Some("target"),
            "acls" => Some("group"),
            _ => None,
        }
    }

    pub(crate) async fn parent_id<S: Store>(&self, dao: &Dao<'_, S>) -> Result<Uuid, AdminError> {
        let row = dao.require(self.parent, self.parent_key).await?;
        row_id(&row).ok_or(AdminError::NotFound)
    }

    /// The child at `key`, only if it belongs to the parent (Kong answers 404 otherwise).
    pub(crate) async fn child_row<S: Store>(
        &self,
        dao: &Dao<'_, S>,
        pid: Uuid,
        key: &str,
    ) -> Result<Map, AdminError> {
        let row = if let Some(field) = self.named_by().filter(|_| as_uuid(key).is_none()) {
            dao.list_all_for(self.child.schema, self.fk, pid)
                .await?
                .into_iter()
                .find(|r| r.get(field).and_then(Value::as_str) == Some(key))
        } else {
            dao.select(self.child, key).await?
        };
        match row {
            Some(r) if reference(&r, self.fk) == Some(pid) => Ok(r),
            _ => Err(AdminError::NotFound),
        }
    }
}

/// `GET /{parents}/{p}/{children}`.
pub async fn nested_list<S: Store>(
    dao: &Dao<'_, S>,
    n: Nest<'_>,
    q: &Query,
) -> Result<Response, AdminError> {
    let pid = n.parent_id(dao).await?;
    let mut lq = query::list_query(q)?;
    lq.foreign = Some((n.fk, pid));
    let page = dao.st.store.list(n.child.schema, &lq).await?;
    let offset = page.offset.clone();
    let rows = with_names(dao, n.child, page).await?;
    let next = offset
        .as_deref()
        .map(|o| query::next_nested(n.parent.ep.name, n.parent_raw, n.child.nested_name(), o));
    Ok(response::ok(&page_body(rows, offset, next)))
}

/// `POST /{parents}/{p}/{children}`: the parent reference comes from the URL.
pub async fn nested_create<S: Store>(
    dao: &Dao<'_, S>,
    n: Nest<'_>,
    body: Body,
) -> Result<Response, AdminError> {
    read_only(dao, "create", n.child, None)?;
    let pid = n.parent_id(dao).await?;
    let mut map = entity_body(dao, n.child, body, None)?;
    map.insert(n.fk.into(), json!({ "id": pid.to_string() }));
    let row = dao.insert(n.child, map).await?;
    Ok(response::created(&Value::Object(row)))
}

/// `GET /{parents}/{p}/{children}/{c}`.
pub async fn nested_get<S: Store>(
    dao: &Dao<'_, S>,
    n: Nest<'_>,
    key: &str,
) -> Result<Response, AdminError> {
    let pid = n.parent_id(dao).await?;
    let mut row = n.child_row(dao, pid, key).await?;
    certificates::add_names(dao, n.child, &mut row).await?;
    Ok(response::ok(&Value::Object(row)))
}

/// `PUT /{parents}/{p}/{children}/{c}`: an upsert attached to the parent (targets: an update
/// of an existing target, as Kong's upstreams routes do).
pub async fn nested_put<S: Store>(
    dao: &Dao<'_, S>,
    n: Nest<'_>,
    key: &str,
    body: Body,
) -> Result<Response, AdminError> {
    if n.child.ep.entity == "targets" {
        return nested_patch(dao, n, key, body).await;
    }
    read_only(dao, "create or update", n.child, Some(key))?;
    let pid = n.parent_id(dao).await?;
    if n.child.ep.entity == "acls" && as_uuid(key).is_none() {
        // `PUT /consumers/{c}/acls/{group}`: the consumer's row for that group, or a new one.
        let existing = n.child_row(dao, pid, key).await.ok();
        let id = existing
            .as_ref()
            .and_then(row_id)
            .unwrap_or_else(Uuid::new_v4);
        let mut map = entity_body(dao, n.child, body, None)?;
        map.entry("group")
            .or_insert_with(|| Value::String(key.to_string()));
        map.insert(n.fk.into(), json!({ "id": pid.to_string() }));
        let row = dao.upsert(n.child, &id.to_string(), map, existing).await?;
        return Ok(response::ok(&Value::Object(row)));
    }
    put(dao, n.child, key, body, Some((n.fk, pid))).await
}

/// `PATCH /{parents}/{p}/{children}/{c}`.
pub async fn nested_patch<S: Store>(
    dao: &Dao<'_, S>,
    n: Nest<'_>,
    key: &str,
    body: Body,
) -> Result<Response, AdminError> {
    read_only(dao, "update", n.child, Some(key))?;
    let pid = n.parent_id(dao).await?;
    let existing = n.child_row(dao, pid, key).await?;
    let mut map = entity_body(dao, n.child, body, Some(&existing))?;
    if n.child.ep.entity != "targets" && !map.contains_key(n.fk) {
        map.insert(n.fk.into(), json!({ "id": pid.to_string() }));
    }
    let row = dao.update(n.child, existing, map).await?;
    Ok(response::ok(&Value::Object(row)))
}

/// `DELETE /{parents}/{p}/{children}/{c}`: 404 when the child is absent or elsewhere.
pub async fn nested_delete<S: Store>(
    dao: &Dao<'_, S>,
    n: Nest<'_>,
    key: &str,
) -> Result<Response, AdminError> {
    read_only(dao, "remove", n.child, Some(key))?;
    let pid = n.parent_id(dao).await?;
    let row = n.child_row(dao, pid, key).await?;
    if let Some(id) = row_id(&row) {
        dao.delete(n.child, id).await?;
    }
    Ok(response::no_content())
}

/// The entity a foreign field points at: `/routes/{r}/service`.
#[derive(Debug, Clone, Copy)]
pub struct Foreign<'a> {
    pub entity: Entity,
    pub key: &'a str,
    pub fk: &'static str,
    pub target: Entity,
}

impl Foreign<'_> {
    /// The referencing row and the referenced id (404 when either is missing).
    async fn resolve<S: Store>(&self, dao: &Dao<'_, S>) -> Result<(Map, Option<Uuid>), AdminError> {
        let row = dao.require(self.entity, self.key).await?;
        let id = reference(&row, self.fk);
        Ok((row, id))
    }
}

/// `GET /routes/{r}/service`.
pub async fn foreign_get<S: Store>(
    dao: &Dao<'_, S>,
    f: Foreign<'_>,
) -> Result<Response, AdminError> {
    let (_, id) = f.resolve(dao).await?;
    let id = id.ok_or(AdminError::NotFound)?;
    let mut row = dao
        .st
        .store
        .get(f.target.schema, id)
        .await?
        .ok_or(AdminError::NotFound)?;
    certificates::add_names(dao, f.target, &mut row).await?;
    Ok(response::ok(&Value::Object(row)))
}

/// `PATCH /routes/{r}/service`: updates the referenced entity.
pub async fn foreign_patch<S: Store>(
    dao: &Dao<'_, S>,
    f: Foreign<'_>,
    body: Body,
) -> Result<Response, AdminError> {
    read_only(dao, "update", f.target, None)?;
    let (_, id) = f.resolve(dao).await?;
    let id = id.ok_or(AdminError::NotFound)?;
    let existing = dao
        .st
        .store
        .get(f.target.schema, id)
        .await?
        .ok_or(AdminError::NotFound)?;
    let map = entity_body(dao, f.target, body, Some(&existing))?;
    let row = dao.update(f.target, existing, map).await?;
    Ok(response::ok(&Value::Object(row)))
}

/// `PUT /routes/{r}/service`: replaces the referenced entity, or creates one and attaches it
/// when the field is empty.
pub async fn foreign_put<S: Store>(
    dao: &Dao<'_, S>,
    f: Foreign<'_>,
    body: Body,
) -> Result<Response, AdminError> {
    read_only(dao, "create or update", f.target, None)?;
    let (row, id) = f.resolve(dao).await?;
    let map = entity_body(dao, f.target, body, None)?;
    let (id, attach) = match id {
        Some(id) => (id, false),
        None => (Uuid::new_v4(), true),
    };
    let existing = dao.st.store.get(f.target.schema, id).await?;
    let target = dao.upsert(f.target, &id.to_string(), map, existing).await?;
    if attach {
        let mut link = Map::new();
        link.insert(f.fk.into(), json!({ "id": id.to_string() }));
        dao.update(f.entity, row, link).await?;
    }
    Ok(response::ok(&Value::Object(target)))
}

/// `DELETE /routes/{r}/service`: never deletes through the reference (405), 404 when unset.
pub async fn foreign_delete<S: Store>(
    dao: &Dao<'_, S>,
    f: Foreign<'_>,
) -> Result<Response, AdminError> {
    let (_, id) = f.resolve(dao).await?;
    match id {
        Some(_) => Err(AdminError::MethodNotAllowed),
        None => Err(AdminError::NotFound),
    }
}
