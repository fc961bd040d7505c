//! Kong's core entities: one module each, holding the schema (fields, defaults, checks) and the
//! typed view the data plane compiles from.

mod ca_certificates;
mod certificates;
mod consumers;
pub mod credentials;
mod plugins;
mod routes;
mod services;
mod snis;
mod targets;
mod upstreams;

pub use ca_certificates::CaCertificate;
pub use certificates::{Certificate, certified_key, check_certificate, check_key, parse_chain};
pub use consumers::Consumer;
pub use plugins::{NoPlugins, Plugin, PluginSchema, PluginSchemas};
pub use routes::{NetEndpoint, PathHandling, Route};
pub use services::Service;
pub use snis::Sni;
pub use targets::{DEFAULT_TARGET_PORT, Target};
pub use upstreams::Upstream;

use crate::schema::{FieldErrors, Map, Record, Validator};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;
use uuid::Uuid;

/// A reference to another entity, as Kong serializes it: `{"id": "..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ForeignKey {
    pub id: Uuid,
}

/// What validation of some entities needs from outside the model.
pub struct Context<'a> {
    pub plugins: &'a dyn PluginSchemas,
}

/// Entity-specific steps around the generic record validation.
pub type Hook = fn(&Validator, &Context<'_>, &mut Map, &mut FieldErrors);

/// Kong's write `transformations` (hashing a basic-auth password, an oauth2 client secret):
/// run on a validated row that a client wrote, `given` telling which fields the write itself
/// carried (all of them for inserts and replacements, the patch's for updates).
pub type Transform = fn(&mut Map, &dyn Fn(&str) -> bool, &mut FieldErrors);

/// An entity type: Kong's schema plus the steps Kong runs in code around it.
pub struct EntitySchema {
    /// Kong's name, also the Admin API collection and the declarative key (`services`).
    pub name: &'static str,
    /// The field that identifies an entity besides its id (`name`, `username`, ...).
    pub endpoint_key: Option<&'static str>,
    /// Fields whose values identify the entity for deterministic declarative ids.
    pub cache_key: &'static [&'static str],
    pub record: Record,
    /// Expands shorthand fields (`url` of services) before validation.
    pub before: Option<Hook>,
    /// Checks that depend on other values (route protocols, plugin configs) after validation.
    pub after: Option<Hook>,
    /// Kong's `db_export`: false for runtime state (oauth2 tokens and codes), which is neither
    /// exported nor read from declarative files.
    pub db_export: bool,
    /// Write transformations; see [`Transform`].
    pub transform: Option<Transform>,
}

impl EntitySchema {
    /// Fills defaults and auto fields and validates; `Err` holds every problem found.
    pub fn validate(
        &self,
        v: &Validator,
        ctx: &Context<'_>,
        map: &mut Map,
    ) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::default();
        if let Some(before) = self.before {
            before(v, ctx, map, &mut errors);
        }
        v.process(&self.record, map, &mut errors);
        if let Some(after) = self.after {
            after(v, ctx, map, &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Applies the write transformations to a validated row (see [`Transform`]).
    pub fn transform(
        &self,
        map: &mut Map,
        given: &dyn Fn(&str) -> bool,
    ) -> Result<(), FieldErrors> {
        let Some(t) = self.transform else {
            return Ok(());
        };
        let mut errors = FieldErrors::default();
        t(map, given, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Fields that reference other entities: (field name, referenced entity, cascade on delete).
    pub fn foreign_fields(&self) -> impl Iterator<Item = (&'static str, &'static str, bool)> + '_ {
        self.record
            .fields
            .iter()
            .filter_map(|(name, f)| match f.kind {
                crate::schema::Kind::Foreign { reference, cascade } => {
                    Some((*name, reference, cascade))
                }
                _ => None,
            })
    }

    /// Fields holding secrets, which must never be logged.
    pub fn sensitive_fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.record
            .fields
            .iter()
            .filter(|(_, f)| f.sensitive)
            .map(|(n, _)| *n)
    }
}

/// Every core entity, parents before children (the order a config is loaded and built in).
pub static ENTITIES: LazyLock<Vec<EntitySchema>> = LazyLock::new(|| {
    vec![
        certificates::schema(),
        ca_certificates::schema(),
        snis::schema(),
        services::schema(),
        routes::schema(),
        consumers::schema(),
        upstreams::schema(),
        targets::schema(),
        plugins::schema(),
        credentials::keyauth::schema(),
        credentials::basicauth::schema(),
        credentials::jwt::schema(),
        credentials::hmacauth::schema(),
        credentials::acls::schema(),
        credentials::oauth2::credentials_schema(),
        credentials::oauth2::authorization_codes_schema(),
        credentials::oauth2::tokens_schema(),
    ]
});

/// The entity types a declarative file may hold and an export writes (Kong's `db_export`).
pub fn exported() -> impl Iterator<Item = &'static EntitySchema> {
    ENTITIES.iter().filter(|e| e.db_export)
}

/// The schema of an entity type by Kong's name.
pub fn schema(name: &str) -> Option<&'static EntitySchema> {
    ENTITIES.iter().find(|e| e.name == name)
}

#[cfg(test)]
pub(crate) mod plugins_for_tests {
    use super::{PluginSchema, PluginSchemas};
    use crate::schema::{Field, Record};
    use std::sync::LazyLock;

    static CONFIG: LazyLock<Record> = LazyLock::new(|| {
        Record::new(vec![
            ("minute", Field::integer()),
            (
                "policy",
                Field::string().default("local").one_of(["local", "redis"]),
            ),
        ])
    });

    /// One plugin, `test-plugin`, for model tests.
    pub struct TestPlugins;

    impl PluginSchemas for TestPlugins {
        fn schema(&self, name: &str) -> Option<PluginSchema<'_>> {
            (name == "test-plugin").then(|| PluginSchema {
                config: &CONFIG,
                protocols: &["grpc", "grpcs", "http", "https"],
                no_consumer: false,
                no_route: false,
                no_service: false,
            })
        }
        fn names(&self) -> Vec<&'static str> {
            vec!["test-plugin"]
        }
    }
}
