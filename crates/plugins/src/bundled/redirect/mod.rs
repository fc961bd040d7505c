//! redirect: answers every request with a redirect to a configured URL, optionally keeping
//! the request's path and query.

mod schema;

use crate::handler::{Handler, Phase, Phases};
use crate::pdk::{Ctx, Exit, ExitBody};
use crate::registry::PluginDef;
use bytes::Bytes;
use http::header::LOCATION;
use http::{HeaderValue, StatusCode};
use schema::RedirectConfig;
use serde_json::Value;
use std::sync::Arc;

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: "redirect",
        // Kong: after rate limiting, validation and transformations, before AI plugins.
        priority: 779,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases::ACCESS,
        build,
        index: None,
    }
}

/// An absolute URL's parts, as far as the redirect needs them.
pub(crate) struct UrlParts<'a> {
    /// `scheme://authority`
    pub origin: &'a str,
    pub authority: &'a str,
    /// `#fragment`, kept when the path and query are replaced.
    pub fragment: &'a str,
}

pub(crate) fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let origin = &url[..scheme.len() + 3 + end];
    let fragment = url.find('#').map_or("", |i| &url[i..]);
    Some(UrlParts {
        origin,
        authority,
        fragment,
    })
}

struct Redirect {
    status: StatusCode,
    location: String,
    keep_incoming_path: bool,
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: RedirectConfig = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    Ok(Arc::new(Redirect {
        status: StatusCode::from_u16(conf.status_code).map_err(|e| e.to_string())?,
        location: conf.location,
        keep_incoming_path: conf.keep_incoming_path,
    }))
}

impl Handler for Redirect {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        let location = match split_url(&self.location).filter(|_| self.keep_incoming_path) {
            // The location's path and query give way to the request's.
            Some(parts) => {
                let query = ctx
                    .request
                    .query()
                    .filter(|q| !q.is_empty())
                    .map_or(String::new(), |q| format!("?{q}"));
                format!(
                    "{}{}{query}{}",
                    parts.origin,
                    ctx.request.path(),
                    parts.fragment
                )
            }
            None => self.location.clone(),
        };
        let mut exit = Exit {
            status: self.status,
            body: ExitBody::Raw {
                body: Bytes::from_static(b"redirecting"),
                content_type: None,
            },
            headers: Vec::new(),
        };
        if let Ok(v) = HeaderValue::from_str(&location) {
            exit = exit.with_header(LOCATION, v);
        }
        exit.into()
    }
}
