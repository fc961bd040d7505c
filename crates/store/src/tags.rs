//! `GET /tags` and `GET /tags/{tag}` rows, shared by every backend: their shape, order and
//! offsets follow Kong's tags strategy (ordered by entity id, then the tag's position in the
//! entity's `tags`; offsets `[entity_id, position]`, or `[entity_id]` for one tag).

use crate::{ListQuery, MAX_PAGE_SIZE, Page, StoreError, offset};
use serde_json::Value;
use silverback_model::Config;
use silverback_model::schema::Map;

/// One tag of one entity. `position` counts from 1, as Postgres' `WITH ORDINALITY` does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TagRow {
    pub entity_id: String,
    pub position: u64,
    pub entity_name: String,
    pub tag: String,
}

impl TagRow {
    /// The row as the Admin API returns it.
    pub(crate) fn to_map(&self) -> Map {
        let mut m = Map::new();
        m.insert("entity_id".into(), self.entity_id.clone().into());
        m.insert("entity_name".into(), self.entity_name.clone().into());
        m.insert("tag".into(), self.tag.clone().into());
        m
    }
}

/// Where a page starts: after this entity id (and, for all tags, this position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagCursor {
    pub entity_id: String,
    pub position: u64,
}

/// Reads a `/tags` offset; one-tag pages carry the entity id only.
pub(crate) fn decode_cursor(token: &str, one_tag: bool) -> Result<TagCursor, StoreError> {
    let invalid = || StoreError::InvalidOffset(token.to_string());
    let parts = offset::decode(token, if one_tag { 1 } else { 2 })?;
    let entity_id = parts
        .first()
        .and_then(Value::as_str)
        .ok_or_else(invalid)?
        .to_string();
    let position = match parts.get(1) {
        Some(v) => v.as_u64().ok_or_else(invalid)?,
        // For one tag, an entity appears once: skip it whole.
        None => u64::MAX,
    };
    Ok(TagCursor {
        entity_id,
        position,
    })
}

/// The offset after `last`.
pub(crate) fn encode_cursor(last: &TagRow, one_tag: bool) -> String {
    if one_tag {
        offset::encode(&[Value::from(last.entity_id.clone())])
    } else {
        offset::encode(&[
            Value::from(last.entity_id.clone()),
            Value::from(last.position),
        ])
    }
}

/// The page size a query asks for, within Kong's bounds.
pub(crate) fn page_size(query: &ListQuery) -> usize {
    query.size.clamp(1, MAX_PAGE_SIZE)
}

/// Cuts `rows` (already ordered, starting after the cursor, at most `size + 1` long) into a page.
pub(crate) fn into_page(mut rows: Vec<TagRow>, size: usize, one_tag: bool) -> Page {
    let more = rows.len() > size;
    rows.truncate(size);
    let offset = match rows.last() {
        Some(last) if more => Some(encode_cursor(last, one_tag)),
        _ => None,
    };
    Page {
        rows: rows.iter().map(TagRow::to_map).collect(),
        offset,
    }
}

/// Answers a tags query from a whole config (the trait's default, used by DB-less).
pub(crate) fn page_from_config(
    config: &Config,
    tag: Option<&str>,
    query: &ListQuery,
) -> Result<Page, StoreError> {
    let one_tag = tag.is_some();
    let cursor = match &query.offset {
        Some(t) => Some(decode_cursor(t, one_tag)?),
        None => None,
    };
    let mut all = Vec::new();
    for (entity, rows) in config.iter() {
        for row in rows {
            let Some(id) = row.get("id").and_then(Value::as_str) else {
                continue;
            };
            let Some(tags) = row.get("tags").and_then(Value::as_array) else {
                continue;
            };
            for (i, t) in tags.iter().filter_map(Value::as_str).enumerate() {
                if tag.is_some_and(|want| want != t) {
                    continue;
                }
                all.push(TagRow {
                    entity_id: id.to_string(),
                    position: i as u64 + 1,
                    entity_name: entity.to_string(),
                    tag: t.to_string(),
                });
            }
        }
    }
    all.sort();
    let size = page_size(query);
    let rows: Vec<TagRow> = all
        .into_iter()
        .filter(|r| match &cursor {
            None => true,
            Some(c) => {
                r.entity_id > c.entity_id || (r.entity_id == c.entity_id && r.position > c.position)
            }
        })
        .take(size + 1)
        .collect();
    Ok(into_page(rows, size, one_tag))
}
