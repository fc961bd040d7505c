//! The routing table: which URL names serve which entity schemas, and how entities nest.
//!
//! Kong generates its entity endpoints from the schemas (`kong/api/endpoints.lua`): for every
//! entity a collection and an item, and for every foreign field `f` of an entity `E` pointing
//! at `P`: `/E/{e}/f` (the referenced entity), `/P/{p}/E` (E's under a P) and `/P/{p}/E/{e}`.
//! The same is done here from [`silverback_model::entities::ENTITIES`], so a new entity (plugin
//! credentials such as `keyauth_credentials` at `/key-auths` and `/consumers/{c}/key-auth`) needs
//! one line in [`ENDPOINTS`] and nothing else.

use silverback_model::EntitySchema;

/// How an entity type is exposed.
#[derive(Debug)]
pub struct Endpoint {
    /// The collection's URL name (`services`, `key-auths`).
    pub name: &'static str,
    /// The name under a parent when it differs (`key-auth` under `/consumers/{c}`).
    pub nested_name: Option<&'static str>,
    /// The schema name in the entity registry.
    pub entity: &'static str,
    /// `/name` and `/name/{id}` are served (Kong disables them for targets).
    pub top_level: bool,
    /// `/name/{id}/{foreign field}` is served (Kong disables `/snis/{s}/certificate` and
    /// `/targets/{t}/upstream`).
    pub foreign_items: bool,
}

const fn ep(name: &'static str, entity: &'static str) -> Endpoint {
    Endpoint {
        name,
        nested_name: None,
        entity,
        top_level: true,
        foreign_items: true,
    }
}

/// Every exposed entity type. Entries whose schema is not (yet) registered are skipped.
pub static ENDPOINTS: &[Endpoint] = &[
    ep("services", "services"),
    ep("routes", "routes"),
    ep("consumers", "consumers"),
    ep("plugins", "plugins"),
    ep("upstreams", "upstreams"),
    Endpoint {
        top_level: false,
        foreign_items: false,
        ..ep("targets", "targets")
    },
    ep("certificates", "certificates"),
    Endpoint {
        foreign_items: false,
        ..ep("snis", "snis")
    },
    ep("ca_certificates", "ca_certificates"),
    // Plugin credentials (Kong's admin_api_name / admin_api_nested_name).
    Endpoint {
        nested_name: Some("key-auth"),
        ..ep("key-auths", "keyauth_credentials")
    },
    Endpoint {
        nested_name: Some("basic-auth"),
        ..ep("basic-auths", "basicauth_credentials")
    },
    Endpoint {
        nested_name: Some("jwt"),
        ..ep("jwts", "jwt_secrets")
    },
    ep("acls", "acls"),
    Endpoint {
        nested_name: Some("hmac-auth"),
        ..ep("hmac-auths", "hmacauth_credentials")
    },
    ep("oauth2", "oauth2_credentials"),
    // The oauth2 plugin's tokens (Kong generates their endpoints; authorization codes have
    // none: `generate_admin_api = false`).
    ep("oauth2_tokens", "oauth2_tokens"),
];

/// An endpoint with its schema.
#[derive(Clone, Copy)]
pub struct Entity {
    pub ep: &'static Endpoint,
    pub schema: &'static EntitySchema,
}

impl std::fmt::Debug for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Entity").field(&self.ep.name).finish()
    }
}

impl Entity {
    /// The name under a parent collection.
    pub fn nested_name(&self) -> &'static str {
        self.ep.nested_name.unwrap_or(self.ep.name)
    }
}

/// Every exposed entity whose schema exists.
pub fn entities() -> impl Iterator<Item = Entity> {
    ENDPOINTS.iter().filter_map(|ep| {
        silverback_model::entities::schema(ep.entity).map(|schema| Entity { ep, schema })
    })
}

/// The entity served at `/{name}`.
pub fn by_url(name: &str) -> Option<Entity> {
    entities().find(|e| e.ep.name == name)
}

/// The endpoint of an entity type by schema name.
pub fn by_entity(entity: &str) -> Option<Entity> {
    entities().find(|e| e.ep.entity == entity)
}

/// A child collection under a parent: `/services/{s}/routes` → (routes, field `service`).
pub fn child(parent: Entity, name: &str) -> Option<(Entity, &'static str)> {
    entities().find_map(|c| {
        if c.nested_name() != name {
            return None;
        }
        c.schema
            .foreign_fields()
            .find(|(_, reference, _)| *reference == parent.ep.entity)
            .map(|(field, _, _)| (c, field))
    })
}

/// A foreign field of an entity and the entity it references: `/routes/{r}/service`.
pub fn foreign(entity: Entity, field: &str) -> Option<(&'static str, Entity)> {
    let (f, reference, _) = entity
        .schema
        .foreign_fields()
        .find(|(f, _, _)| *f == field)?;
    by_entity(reference).map(|parent| (f, parent))
}

/// Endpoints not generated from entities, as Kong lists them in `/endpoints`.
const STATIC_ENDPOINTS: &[&str] = &[
    "/",
    "/config",
    "/endpoints",
    "/plugins/enabled",
    "/plugins/schema/{name}",
    "/proxy-cache",
    "/proxy-cache/{cache_key}",
    "/proxy-cache/{plugin_id}/caches/{cache_key}",
    "/schemas/{db_entity_name}/validate",
    "/schemas/{name}",
    "/schemas/plugins/validate",
    "/schemas/plugins/{name}",
    "/status",
    "/tags",
    "/tags/{tags}",
    "/upstreams/{upstreams}/health",
    "/upstreams/{upstreams}/targets/all",
    "/upstreams/{upstreams}/targets/{targets}/healthy",
    "/upstreams/{upstreams}/targets/{targets}/unhealthy",
    "/upstreams/{upstreams}/targets/{targets}/{address}/healthy",
    "/upstreams/{upstreams}/targets/{targets}/{address}/unhealthy",
];

/// Every endpoint template, sorted segment-wise as Kong's `GET /endpoints` does.
pub fn templates() -> Vec<String> {
    let mut out: Vec<String> = STATIC_ENDPOINTS.iter().map(|s| s.to_string()).collect();
    for e in entities() {
        let n = e.ep.name;
        let p = e.ep.entity;
        if e.ep.top_level {
            out.push(format!("/{n}"));
            out.push(format!("/{n}/{{{p}}}"));
        }
        for (field, reference, _) in e.schema.foreign_fields() {
            let Some(parent) = by_entity(reference) else {
                continue;
            };
            if e.ep.foreign_items && e.ep.top_level {
                out.push(format!("/{n}/{{{p}}}/{field}"));
            }
            let (pn, pp, c) = (parent.ep.name, parent.ep.entity, e.nested_name());
            out.push(format!("/{pn}/{{{pp}}}/{c}"));
            out.push(format!("/{pn}/{{{pp}}}/{c}/{{{p}}}"));
        }
    }
    out.sort_by_key(|a| a.replace('/', "\0"));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_follows_foreign_fields() {
        let services = by_url("services").map(|e| e.ep.entity);
        assert_eq!(services, Some("services"));
        let Some(svc) = by_url("services") else {
            return;
        };
        let routes = child(svc, "routes").map(|(c, f)| (c.ep.name, f));
        assert_eq!(routes, Some(("routes", "service")));
        let plugins = child(svc, "plugins").map(|(c, f)| (c.ep.name, f));
        assert_eq!(plugins, Some(("plugins", "service")));
        assert!(child(svc, "consumers").is_none());
        let Some(route) = by_url("routes") else {
            return;
        };
        assert_eq!(
            foreign(route, "service").map(|(f, p)| (f, p.ep.name)),
            Some(("service", "services"))
        );
    }

    #[test]
    fn templates_are_kong_sorted() {
        let t = templates();
        let pos = |s: &str| t.iter().position(|x| x == s);
        assert!(pos("/services").is_some());
        assert!(pos("/services/{services}/routes/{routes}").is_some());
        assert!(pos("/routes/{routes}/service").is_some());
        assert!(pos("/upstreams/{upstreams}/targets/{targets}").is_some());
        // Disabled by Kong.
        assert!(pos("/targets").is_none());
        assert!(pos("/snis/{snis}/certificate").is_none());
        // Segment-wise order: /services/... before /services_x, and / first.
        assert_eq!(t.first().map(String::as_str), Some("/"));
        assert!(pos("/schemas/{name}") < pos("/services"));
    }
}
