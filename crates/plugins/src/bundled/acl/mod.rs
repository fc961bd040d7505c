//! acl: lets through only consumers in (`allow`) or not in (`deny`) some groups, the groups
//! being the consumer's `acls` rows, or the groups an authentication plugin established
//! (`authenticated_groups`) when there is no consumer or it is the anonymous one. Runs after
//! the authentication plugins (priority 950).

mod schema;

use crate::handler::{Handler, Phase, Phases};
use crate::pdk::{Ctx, Exit, consumer_headers};
use crate::registry::{IndexDef, PluginDef};
use hashbrown::HashMap;
use http::{HeaderName, HeaderValue, StatusCode};
use schema::AclConfig;
use serde_json::Value;
use silverback_model::Row;
use std::any::Any;
use std::sync::Arc;
use uuid::Uuid;

pub(crate) const NAME: &str = "acl";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 950,
        protocols: &["grpc", "grpcs", "http", "https", "ws", "wss"],
        no_consumer: true,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases::ACCESS,
        build,
        index: Some(IndexDef {
            entity: "acls",
            build: build_index,
        }),
    }
}

/// A consumer's groups in row order, with the header value listing them.
struct Groups {
    names: Vec<String>,
    header: Option<HeaderValue>,
}

impl Groups {
    fn new(names: Vec<String>) -> Groups {
        let header = HeaderValue::from_str(&names.join(", ")).ok();
        Groups { names, header }
    }
}

struct ByConsumer(HashMap<Uuid, Groups>);

fn build_index(rows: &[Arc<Row>]) -> Arc<dyn Any + Send + Sync> {
    let mut names: HashMap<Uuid, Vec<String>> = HashMap::new();
    for row in rows {
        let (Some(consumer), Some(group)) = (
            super::auth::consumer_of(row),
            row.get("group").and_then(Value::as_str),
        ) else {
            continue;
        };
        names.entry(consumer).or_default().push(group.to_string());
    }
    Arc::new(ByConsumer(
        names
            .into_iter()
            .map(|(c, g)| (c, Groups::new(g)))
            .collect(),
    ))
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: AclConfig = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    // Kong: a non-empty `deny` makes it a deny list; otherwise `allow` is the allow list.
    let (deny, groups) = match (&conf.deny, &conf.allow) {
        (Some(d), _) if !d.is_empty() => (true, d.clone()),
        (_, a) => (false, a.clone().unwrap_or_default()),
    };
    Ok(Arc::new(Acl { conf, deny, groups }))
}

struct Acl {
    conf: AclConfig,
    deny: bool,
    groups: Vec<String>,
}

fn forbidden() -> Exit {
    Exit::error(StatusCode::FORBIDDEN, "You cannot consume this service")
}

fn unauthorized() -> Exit {
    Exit::error(StatusCode::UNAUTHORIZED, "Unauthorized")
}

impl Acl {
    fn blocked(&self, member_of: &[String]) -> bool {
        let in_group = self.groups.iter().any(|g| member_of.contains(g));
        in_group == self.deny
    }

    /// Decides on groups an authentication plugin established (no consumer's `acls`).
    fn check_authenticated(&self, ctx: &mut Ctx, groups: Vec<String>) -> Result<(), Exit> {
        if self.blocked(&groups) {
            return Err(forbidden());
        }
        let value = HeaderValue::from_str(&groups.join(", ")).ok();
        self.pass(ctx, consumer_headers::AUTHENTICATED_GROUPS, value);
        Ok(())
    }

    fn pass(&self, ctx: &mut Ctx, name: HeaderName, value: Option<HeaderValue>) {
        if let Some(v) = value.filter(|_| !self.conf.hide_groups_header) {
            ctx.request.set_header(name, v);
        }
    }

    fn check(&self, ctx: &mut Ctx) -> Result<(), Exit> {
        let consumer = ctx
            .consumer
            .as_ref()
            .map(|c| c.id)
            .or_else(|| ctx.credential.as_ref().and_then(|c| c.consumer_id));
        let has_credential = ctx.credential.is_some();
        let Some(consumer) = consumer else {
            return match ctx.authenticated_groups.clone() {
                Some(groups) => self.check_authenticated(ctx, groups),
                None if has_credential => Err(forbidden()),
                None => Err(unauthorized()),
            };
        };
        // Authenticated groups win over an anonymous consumer's (or any consumer's, when
        // always_use_authenticated_groups).
        if (!has_credential || self.conf.always_use_authenticated_groups)
            && let Some(groups) = ctx.authenticated_groups.clone()
        {
            return self.check_authenticated(ctx, groups);
        }
        let directory = ctx.directory.clone();
        let groups = directory
            .index::<ByConsumer>(NAME)
            .and_then(|i| i.0.get(&consumer))
            .filter(|g| !g.names.is_empty());
        let value = match groups {
            Some(g) => {
                if self.blocked(&g.names) {
                    return Err(forbidden());
                }
                g.header.clone()
            }
            // A consumer without groups passes a deny list (with an empty groups header, as
            // Kong sends it) and fails an allow list.
            None if self.deny => Some(HeaderValue::from_static("")),
            None if has_credential => return Err(forbidden()),
            None => return Err(unauthorized()),
        };
        self.pass(ctx, consumer_headers::CONSUMER_GROUPS, value);
        Ok(())
    }
}

impl Handler for Acl {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        match self.check(ctx) {
            Ok(()) => Phase::CONTINUE,
            Err(exit) => exit.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;
    use crate::handler::Flow;
    use crate::pdk::{ConsumerRef, CredentialRef};
    use serde_json::json;

    fn acl(config: Value) -> Arc<dyn Handler> {
        let mut full = json!({"allow": null, "deny": null, "hide_groups_header": false,
                              "always_use_authenticated_groups": false});
        if let (Some(f), Some(c)) = (full.as_object_mut(), config.as_object()) {
            f.extend(c.clone());
        }
        build(&full).unwrap()
    }

    fn ctx() -> Ctx {
        Ctx::for_tests(Arc::new(Directory::default()))
    }

    fn consumer() -> Arc<ConsumerRef> {
        Arc::new(ConsumerRef::new(
            Uuid::nil(),
            Some("c".into()),
            None,
            Arc::new(Row::new(Default::default())),
        ))
    }

    fn run(h: &Arc<dyn Handler>, ctx: &mut Ctx) -> Option<u16> {
        match h.access(ctx) {
            Phase::Ready(Ok(Flow::Continue)) => None,
            Phase::Ready(Ok(Flow::Exit(e))) => Some(e.status.as_u16()),
            _ => Some(500),
        }
    }

    #[test]
    fn authenticated_groups_without_a_consumer() {
        let h = acl(json!({"allow": ["a"]}));
        let mut c = ctx();
        assert_eq!(run(&h, &mut c), Some(401));
        c.authenticated_groups = Some(vec!["b".into(), "a".into()]);
        assert_eq!(run(&h, &mut c), None);
        assert_eq!(c.request.header("x-authenticated-groups"), Some("b, a"));
        assert_eq!(c.request.header("x-consumer-groups"), None);
        c.authenticated_groups = Some(vec!["b".into()]);
        assert_eq!(run(&h, &mut c), Some(403));
        let deny = acl(json!({"deny": ["b"]}));
        assert_eq!(run(&deny, &mut c), Some(403));
    }

    #[test]
    fn authenticated_groups_win_over_the_anonymous_consumers() {
        let h = acl(json!({"allow": ["a"]}));
        let mut c = ctx();
        c.authenticate(Some(consumer()), None);
        // The anonymous consumer has no groups: 401.
        assert_eq!(run(&h, &mut c), Some(401));
        c.authenticated_groups = Some(vec!["a".into()]);
        assert_eq!(run(&h, &mut c), None);
        assert_eq!(c.request.header("x-authenticated-groups"), Some("a"));

        // With a credential the consumer's own groups count, unless
        // always_use_authenticated_groups.
        let cred = CredentialRef {
            id: Uuid::nil(),
            consumer_id: Some(Uuid::nil()),
            identifier: HeaderValue::from_static("x"),
        };
        c.authenticate(Some(consumer()), Some(cred));
        assert_eq!(run(&h, &mut c), Some(403));
        let always = acl(json!({"allow": ["a"], "always_use_authenticated_groups": true}));
        assert_eq!(run(&always, &mut c), None);
    }
}
