//! The oauth2 plugin's codes and tokens in the node's config store (SQLite: they survive a
//! restart), written beside the config but never through it: these writes produce no config
//! change, so issuing a token rebuilds nothing.

use serde_json::{Value, json};
use silverback_model::EntitySchema;
use silverback_model::schema::Map;
use silverback_plugins::PluginError;
use silverback_plugins::runtime::{AuthorizationCode, OAuth2Store, StoreFuture, Token, now_secs};
use silverback_store::{ListQuery, MAX_PAGE_SIZE, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const CODES: &str = "oauth2_authorization_codes";
const TOKENS: &str = "oauth2_tokens";

/// How often rows past their `ttl` are deleted from the store (lookups ignore them anyway).
pub const PURGE_EVERY: Duration = Duration::from_secs(600);

pub struct StoreOAuth2<S> {
    store: Arc<S>,
}

impl<S: Store> StoreOAuth2<S> {
    pub fn new(store: Arc<S>) -> Self {
        StoreOAuth2 { store }
    }

    /// Deletes codes and tokens past their `ttl`; how many went.
    pub async fn purge_expired(&self) -> Result<usize, PluginError> {
        let now = now_secs();
        let mut purged = 0;
        for name in [CODES, TOKENS] {
            let schema = schema(name)?;
            let mut gone = Vec::new();
            let mut query = ListQuery {
                size: MAX_PAGE_SIZE,
                ..ListQuery::default()
            };
            loop {
                let page = self.store.list(schema, &query).await.map_err(backend)?;
                for row in &page.rows {
                    let created = row.get("created_at").and_then(Value::as_i64).unwrap_or(0);
                    let ttl = row.get("ttl").and_then(Value::as_i64);
                    let expired =
                        silverback_model::entities::credentials::expires_at(Some(created), ttl)
                            .is_some_and(|t| now >= t);
                    if expired && let Some(id) = uuid(row, "id") {
                        gone.push(id);
                    }
                }
                match page.offset {
                    Some(o) => query.offset = Some(o),
                    None => break,
                }
            }
            for id in gone {
                self.store.delete(schema, id).await.map_err(backend)?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}

fn schema(name: &str) -> Result<&'static EntitySchema, PluginError> {
    silverback_model::entities::schema(name).ok_or_else(|| PluginError::Backend {
        what: "oauth2 store",
        reason: format!("no '{name}' entity"),
    })
}

fn backend(e: StoreError) -> PluginError {
    PluginError::Backend {
        what: "oauth2 store",
        reason: e.to_string(),
    }
}

fn fk(id: Option<Uuid>) -> Value {
    id.map_or(Value::Null, |id| json!({ "id": id }))
}

fn uuid(row: &Map, field: &str) -> Option<Uuid> {
    let v = row.get(field)?;
    let s = v.get("id").unwrap_or(v).as_str()?;
    Uuid::try_parse(s).ok()
}

fn text(row: &Map, field: &str) -> Option<String> {
    row.get(field).and_then(Value::as_str).map(str::to_string)
}

fn object(v: Value) -> Map {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn code_row(c: &AuthorizationCode) -> Map {
    object(json!({
        "id": c.id,
        "created_at": c.created_at,
        "service": fk(c.service),
        "credential": { "id": c.credential },
        "code": c.code,
        "authenticated_userid": c.authenticated_userid,
        "scope": c.scope,
        "challenge": c.challenge,
        "challenge_method": c.challenge_method,
        "plugin": fk(c.plugin),
        "ttl": c.ttl,
    }))
}

fn code_of(row: &Map) -> Option<AuthorizationCode> {
    Some(AuthorizationCode {
        id: uuid(row, "id")?,
        created_at: row.get("created_at").and_then(Value::as_i64).unwrap_or(0),
        service: uuid(row, "service"),
        credential: uuid(row, "credential")?,
        code: text(row, "code")?,
        authenticated_userid: text(row, "authenticated_userid"),
        scope: text(row, "scope"),
        challenge: text(row, "challenge"),
        challenge_method: text(row, "challenge_method"),
        plugin: uuid(row, "plugin"),
        ttl: row.get("ttl").and_then(Value::as_i64),
    })
}

fn token_row(t: &Token) -> Map {
    object(json!({
        "id": t.id,
        "created_at": t.created_at,
        "service": fk(t.service),
        "credential": { "id": t.credential },
        "token_type": "bearer",
        "expires_in": t.expires_in,
        "access_token": t.access_token,
        "refresh_token": t.refresh_token,
        "authenticated_userid": t.authenticated_userid,
        "scope": t.scope,
        "ttl": t.ttl,
    }))
}

fn token_of(row: &Map) -> Option<Token> {
    Some(Token {
        id: uuid(row, "id")?,
        created_at: row.get("created_at").and_then(Value::as_i64).unwrap_or(0),
        service: uuid(row, "service"),
        credential: uuid(row, "credential")?,
        expires_in: row.get("expires_in").and_then(Value::as_i64).unwrap_or(0),
        access_token: text(row, "access_token")?,
        refresh_token: text(row, "refresh_token"),
        authenticated_userid: text(row, "authenticated_userid"),
        scope: text(row, "scope"),
        ttl: row.get("ttl").and_then(Value::as_i64),
    })
}

impl<S: Store> StoreOAuth2<S> {
    async fn by<T>(
        &self,
        entity: &str,
        field: &'static str,
        value: &str,
        parse: fn(&Map) -> Option<T>,
    ) -> Result<Option<T>, PluginError> {
        let row = self
            .store
            .get_by(schema(entity)?, field, value)
            .await
            .map_err(backend)?;
        Ok(row.as_ref().and_then(parse))
    }
}

impl<S: Store> OAuth2Store for StoreOAuth2<S> {
    fn insert_code(&self, code: AuthorizationCode) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.store
                .insert(schema(CODES)?, code_row(&code))
                .await
                .map(drop)
                .map_err(backend)
        })
    }

    fn code(&self, code: &str) -> StoreFuture<'_, Option<AuthorizationCode>> {
        let code = code.to_string();
        Box::pin(async move { self.by(CODES, "code", &code, code_of).await })
    }

    fn delete_code(&self, id: Uuid) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.store
                .delete(schema(CODES)?, id)
                .await
                .map(drop)
                .map_err(backend)
        })
    }

    fn insert_token(&self, token: Token) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.store
                .insert(schema(TOKENS)?, token_row(&token))
                .await
                .map(drop)
                .map_err(backend)
        })
    }

    fn update_token(&self, token: Token) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.store
                .upsert(schema(TOKENS)?, token_row(&token))
                .await
                .map(drop)
                .map_err(backend)
        })
    }

    fn token_by_access(&self, access_token: &str) -> StoreFuture<'_, Option<Token>> {
        let t = access_token.to_string();
        Box::pin(async move { self.by(TOKENS, "access_token", &t, token_of).await })
    }

    fn token_by_refresh(&self, refresh_token: &str) -> StoreFuture<'_, Option<Token>> {
        let t = refresh_token.to_string();
        Box::pin(async move { self.by(TOKENS, "refresh_token", &t, token_of).await })
    }

    fn delete_token(&self, id: Uuid) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.store
                .delete(schema(TOKENS)?, id)
                .await
                .map(drop)
                .map_err(backend)
        })
    }
}
