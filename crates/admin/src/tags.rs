//! `GET /tags` and `GET /tags/{tag}` (`kong/api/routes/tags.lua`): `{entity_name, entity_id,
//! tag}` rows across every entity type, paged by the store's tag index
//! ([`Store::list_tags`]). `?tags=` is ignored here, as in Kong.

use crate::errors::AdminError;
use crate::query::{self, Query};
use crate::response;
use crate::state::AdminState;
use axum::response::Response;
use serde_json::Value;
use silverback_model::schema::FieldErrors;
use silverback_store::{ListQuery, Store};

/// `GET /tags` (`tag: None`) and `GET /tags/{tag}` (`tag` as the raw decoded bytes, `raw_tag`
/// as it appeared in the URL, for the `next` link).
pub async fn list<S: Store>(
    st: &AdminState<S>,
    tag: Option<&[u8]>,
    raw_tag: &str,
    q: &Query,
) -> Result<Response, AdminError> {
    let tag = match tag {
        Some(bytes) => Some(std::str::from_utf8(bytes).map_err(|_| {
            let mut e = FieldErrors::default();
            e.field("tag", "invalid utf-8");
            AdminError::Schema(e)
        })?),
        None => None,
    };
    let lq = ListQuery {
        size: query::size(q)?,
        offset: q.get("offset").map(str::to_string),
        tags: None,
        foreign: None,
    };
    let page = st.store.list_tags(tag, &lq).await?;
    let link = page.offset.as_deref().map(|o| match tag {
        Some(_) => format!("/tags/{raw_tag}?offset={}", query::escape(o)),
        None => format!("/tags?offset={}", query::escape(o)),
    });
    let mut body = serde_json::Map::new();
    body.insert(
        "data".into(),
        Value::Array(page.rows.into_iter().map(Value::Object).collect()),
    );
    if let Some(o) = page.offset {
        body.insert("offset".into(), o.into());
    }
    body.insert("next".into(), link.map_or(Value::Null, Value::from));
    Ok(response::ok(&Value::Object(body)))
}
