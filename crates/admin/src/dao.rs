//! Entity reads and writes on top of the [`Store`]: lookups by id or endpoint key, references
//! by endpoint key, validation, timestamps, PATCH merging, and forwarding what changed to the
//! [`crate::ConfigSink`] before the response goes out.
//!
//! The store enforces what must hold atomically (unique fields, foreign keys, cascades); this
//! layer makes sure every row handed to it is complete and valid, as Kong's DAO does.

use crate::certificates;
use crate::errors::AdminError;
use crate::state::AdminState;
use crate::table::Entity;
use serde_json::{Value, json};
use silverback_model::entities::Context;
use silverback_model::schema::{Field, Kind, Map, Record, Validator};
use silverback_model::{EntitySchema, entities};
use silverback_store::{Change, ListQuery, MAX_PAGE_SIZE, Store, StoreError};
use uuid::Uuid;

/// A UUID in the hyphenated form Kong's `is_valid_uuid` accepts; anything else is a name.
pub fn as_uuid(s: &str) -> Option<Uuid> {
    (s.len() == 36).then(|| Uuid::try_parse(s).ok()).flatten()
}

/// The id of a stored row.
pub fn row_id(row: &Map) -> Option<Uuid> {
    row.get("id").and_then(Value::as_str).and_then(as_uuid)
}

/// The id a foreign field of a row references.
pub fn reference(row: &Map, field: &str) -> Option<Uuid> {
    row.get(field)
        .and_then(|f| f.get("id"))
        .and_then(Value::as_str)
        .and_then(as_uuid)
}

/// The value a timestamp field gets for "now", in the field's own type.
fn now_value(field: Option<&Field>, now: i64) -> Value {
    match field.map(|f| &f.kind) {
        Some(Kind::Number) => Value::from(now as f64),
        _ => Value::from(now),
    }
}

/// One request's view of the store: the state plus the request's clock.
pub struct Dao<'a, S> {
    pub st: &'a AdminState<S>,
    pub now: i64,
}

impl<'a, S: Store> Dao<'a, S> {
    pub fn new(st: &'a AdminState<S>) -> Self {
        Dao {
            st,
            now: silverback_model::now_secs(),
        }
    }

    fn ctx(&self) -> Context<'a> {
        Context {
            plugins: self.st.plugins,
        }
    }

    /// Looks an entity up by a URL segment: a UUID is an id, anything else the endpoint key
    /// (certificates: the name of one of their SNIs).
    pub async fn select(&self, e: Entity, key: &str) -> Result<Option<Map>, AdminError> {
        if let Some(id) = as_uuid(key) {
            return Ok(self.st.store.get(e.schema, id).await?);
        }
        if e.ep.entity == "certificates" {
            return certificates::select_by_sni(self, key).await;
        }
        match e.schema.endpoint_key {
            Some(field) => Ok(self.st.store.get_by(e.schema, field, key).await?),
            None => Err(AdminError::InvalidPrimaryKey(key.to_string())),
        }
    }

    /// Like [`Dao::select`], but a missing entity is Kong's 404.
    pub async fn require(&self, e: Entity, key: &str) -> Result<Map, AdminError> {
        self.select(e, key).await?.ok_or(AdminError::NotFound)
    }

    /// Every row of an entity type that references `parent` through `field`.
    pub async fn list_all_for(
        &self,
        schema: &'static EntitySchema,
        field: &'static str,
        parent: Uuid,
    ) -> Result<Vec<Map>, AdminError> {
        let mut out = Vec::new();
        let mut offset = None;
        loop {
            let q = ListQuery {
                size: MAX_PAGE_SIZE,
                offset,
                tags: None,
                foreign: Some((field, parent)),
            };
            let page = self.st.store.list(schema, &q).await?;
            out.extend(page.rows);
            match page.offset {
                Some(o) => offset = Some(o),
                None => return Ok(out),
            }
        }
    }

    /// Replaces references given by a unique field (`"service": {"name": "x"}`) with
    /// `{"id": ...}`; references that match nothing are Kong's code 13.
    async fn resolve_foreign(
        &self,
        schema: &'static EntitySchema,
        map: &mut Map,
    ) -> Result<(), AdminError> {
        let mut unresolved = Vec::new();
        for (field, reference, _) in schema.foreign_fields() {
            let Some(Value::Object(given)) = map.get(field) else {
                continue;
            };
            if given
                .get("id")
                .and_then(Value::as_str)
                .and_then(as_uuid)
                .is_some()
            {
                continue;
            }
            let Some(parent) = entities::schema(reference) else {
                continue;
            };
            let keys: Vec<(&'static str, String)> = parent
                .record
                .fields
                .iter()
                .filter(|(n, f)| f.unique || parent.endpoint_key == Some(*n))
                .filter_map(|(n, _)| {
                    given
                        .get(*n)
                        .and_then(Value::as_str)
                        .map(|v| (*n, v.to_string()))
                })
                .collect();
            let mut misses = Vec::new();
            let mut found = None;
            for (key, value) in keys {
                match self.st.store.get_by(parent, key, &value).await? {
                    Some(row) => {
                        found = row_id(&row);
                        break;
                    }
                    None => {
                        misses.push((field.to_string(), key.to_string(), json!(value), reference))
                    }
                }
            }
            match found {
                Some(id) => {
                    map.insert(field.into(), json!({ "id": id.to_string() }));
                }
                None => unresolved.extend(misses),
            }
        }
        if unresolved.is_empty() {
            Ok(())
        } else {
            Err(AdminError::Unresolved(unresolved))
        }
    }

    /// Resolves references, validates a complete row (defaults filled, checks run), then
    /// applies the schema's write transformations (password hashing) to the fields `given` by
    /// the client in this write.
    async fn prepare(
        &self,
        e: Entity,
        map: &mut Map,
        given: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(), AdminError> {
        self.resolve_foreign(e.schema, map).await?;
        let v = Validator::new(self.now);
        e.schema
            .validate(&v, &self.ctx(), map)
            .map_err(AdminError::Schema)?;
        e.schema.transform(map, given).map_err(AdminError::Schema)
    }

    /// Runs one store write and hands what it changed to the sink. Writes are serialized on
    /// this node so the live config receives changes in the order the store committed them
    /// (two writes to one row must not arrive swapped).
    async fn write(
        &self,
        op: impl Future<Output = Result<Vec<Change>, StoreError>>,
    ) -> Result<Vec<Change>, AdminError> {
        let _in_commit_order = self.st.write_order.lock().await;
        let changes = op.await?;
        if !changes.is_empty() {
            self.st.sink.changed(changes.clone());
        }
        Ok(changes)
    }

    /// The row as the store reports it stored (`row` when the store reports nothing).
    fn stored(schema: &'static EntitySchema, row: Map, changes: Vec<Change>) -> Map {
        let id = row_id(&row);
        changes
            .into_iter()
            .find_map(|c| match c {
                Change::Upserted(name, r) if name == schema.name && row_id(&r) == id => Some(r),
                _ => None,
            })
            .unwrap_or(row)
    }

    /// Validates and stores a new row, without entity-specific steps (used for SNIs created
    /// alongside their certificate).
    pub async fn insert_row(&self, e: Entity, mut body: Map) -> Result<Map, AdminError> {
        self.prepare(e, &mut body, &|_| true).await?;
        let changes = self
            .write(self.st.store.insert(e.schema, body.clone()))
            .await?;
        Ok(Self::stored(e.schema, body, changes))
    }

    /// Deletes one row and what cascades from it, without entity-specific steps.
    pub async fn delete_row(&self, e: Entity, id: Uuid) -> Result<(), AdminError> {
        self.write(self.st.store.delete(e.schema, id)).await?;
        Ok(())
    }

    /// POST: a new entity.
    pub async fn insert(&self, e: Entity, mut body: Map) -> Result<Map, AdminError> {
        self.prepare(e, &mut body, &|_| true).await?;
        let snis = certificates::take_names(e, &mut body, false)?;
        if let Some(names) = &snis {
            certificates::check_names_free(self, names, row_id(&body)).await?;
        }
        let changes = self
            .write(self.st.store.insert(e.schema, body.clone()))
            .await?;
        let mut row = Self::stored(e.schema, body, changes);
        certificates::after_write(self, e, &mut row, snis).await?;
        Ok(row)
    }

    /// PUT: creates or replaces the entity at `key` (id, or endpoint key set from the URL),
    /// keeping the `created_at` of a row being replaced.
    pub async fn upsert(
        &self,
        e: Entity,
        key: &str,
        mut body: Map,
        existing: Option<Map>,
    ) -> Result<Map, AdminError> {
        let id = match as_uuid(key) {
            Some(id) => id,
            None => {
                if let Some(field) = e.schema.endpoint_key
                    && e.ep.entity != "certificates"
                {
                    body.insert(field.into(), Value::String(key.to_string()));
                }
                existing
                    .as_ref()
                    .and_then(row_id)
                    .or_else(|| body.get("id").and_then(Value::as_str).and_then(as_uuid))
                    .unwrap_or_else(Uuid::new_v4)
            }
        };
        body.insert("id".into(), id.to_string().into());
        self.stamp(e.schema, &mut body, existing.as_ref());
        // A replacement is a whole new row: every field counts as given.
        self.prepare(e, &mut body, &|_| true).await?;
        let snis = certificates::take_names(e, &mut body, true)?;
        if let Some(names) = &snis {
            certificates::check_names_free(self, names, Some(id)).await?;
        }
        let changes = self
            .write(self.st.store.upsert(e.schema, body.clone()))
            .await?;
        let mut row = Self::stored(e.schema, body, changes);
        certificates::after_write(self, e, &mut row, snis).await?;
        Ok(row)
    }

    /// PATCH: merges `patch` into the stored row and validates the result as a whole.
    pub async fn update(&self, e: Entity, existing: Map, patch: Map) -> Result<Map, AdminError> {
        let mut row = existing.clone();
        let plugin_name = patch
            .get("name")
            .or_else(|| existing.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let plugin_config = match (e.ep.entity, plugin_name) {
            ("plugins", Some(name)) => self.st.plugins.schema(&name).map(|p| p.config),
            _ => None,
        };
        let given: Vec<String> = patch.keys().cloned().collect();
        merge(&e.schema.record, &mut row, patch, plugin_config);
        // The identity of the row never changes through PATCH.
        for f in ["id", "created_at"] {
            match existing.get(f) {
                Some(v) => row.insert(f.into(), v.clone()),
                None => row.remove(f),
            };
        }
        self.stamp(e.schema, &mut row, Some(&existing));
        // Stored secrets are already hashed: only what the patch carries is transformed.
        self.prepare(e, &mut row, &|f| given.iter().any(|g| g == f))
            .await?;
        let snis = certificates::take_names(e, &mut row, false)?;
        if let Some(names) = &snis {
            certificates::check_names_free(self, names, row_id(&row)).await?;
        }
        let changes = self
            .write(self.st.store.upsert(e.schema, row.clone()))
            .await?;
        let mut row = Self::stored(e.schema, row, changes);
        certificates::after_write(self, e, &mut row, snis).await?;
        Ok(row)
    }

    /// Sets `updated_at` to now and `created_at` to the replaced row's (or now).
    fn stamp(&self, schema: &'static EntitySchema, map: &mut Map, existing: Option<&Map>) {
        if let Some(f) = schema.record.field("updated_at") {
            map.insert("updated_at".into(), now_value(Some(f), self.now));
        }
        if let Some(f) = schema.record.field("created_at") {
            let created = existing
                .and_then(|r| r.get("created_at"))
                .filter(|v| !v.is_null())
                .cloned()
                .or_else(|| map.get("created_at").filter(|v| !v.is_null()).cloned())
                .unwrap_or_else(|| now_value(Some(f), self.now));
            map.insert("created_at".into(), created);
        }
    }

    /// DELETE by id (missing rows are not an error).
    pub async fn delete(&self, e: Entity, id: Uuid) -> Result<(), AdminError> {
        certificates::before_delete(self, e, id).await?;
        self.delete_row(e, id).await
    }
}

/// Kong's `merge_values`: nested records merge field by field (plugin `config` by the plugin's
/// own schema); everything else, arrays and maps included, is replaced.
pub fn merge(rec: &Record, target: &mut Map, patch: Map, plugin_config: Option<&Record>) {
    for (k, v) in patch {
        let sub = match rec.field(&k).map(|f| &f.kind) {
            Some(Kind::Record(r)) => Some(r),
            Some(Kind::Json) if k == "config" => plugin_config,
            _ => None,
        };
        match (sub, target.get_mut(&k), v) {
            (Some(r), Some(Value::Object(t)), Value::Object(p)) => merge(r, t, p, None),
            (_, _, v) => {
                target.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_form_is_strict() {
        assert!(as_uuid("6e8a1d4c-1b36-4e35-9f3c-3f3e1f7d6a10").is_some());
        assert!(as_uuid("6e8a1d4c1b364e359f3c3f3e1f7d6a10").is_none());
        assert!(as_uuid("my-service").is_none());
    }

    #[test]
    fn merge_is_recursive_for_records_only() {
        let Some(up) = entities::schema("upstreams") else {
            return;
        };
        let mut row = json!({
            "name": "u",
            "healthchecks": {"active": {"timeout": 1, "concurrency": 10}, "threshold": 0},
            "tags": ["a", "b"],
        });
        let patch = json!({
            "healthchecks": {"active": {"timeout": 5}},
            "tags": ["c"],
        });
        if let (Value::Object(r), Value::Object(p)) = (&mut row, patch) {
            merge(&up.record, r, p, None);
        }
        assert_eq!(
            row,
            json!({
                "name": "u",
                "healthchecks": {"active": {"timeout": 5, "concurrency": 10}, "threshold": 0},
                "tags": ["c"],
            })
        );
    }
}
