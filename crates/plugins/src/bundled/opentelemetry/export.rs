//! Delivery of span batches to the OTLP/HTTP endpoint, on the queue's thread: one POST of
//! `application/x-protobuf` per batch, with the configured headers and Kong's timeouts; only
//! a 200 counts as delivered (Kong's `http_export_request`).

use super::otlp::{AttrValue, encode_request};
use crate::bundled::log_http::HttpPost;
use crate::bundled::log_sink::Deliver;

pub(super) struct OtlpDeliver {
    pub post: HttpPost,
    /// The resource's attributes: Kong's defaults merged with `resource_attributes`.
    pub resource: Vec<(String, AttrValue)>,
}

impl Deliver for OtlpDeliver {
    fn deliver(&mut self, batch: &[Vec<u8>]) -> Result<(), String> {
        let body = encode_request(&self.resource, batch);
        self.post.send(&body)
    }
}

/// Kong's resource attributes (`service.name` = `kong`, `service.instance.id` = the node id,
/// `service.version`), overridden or extended by the plugin's `resource_attributes`.
pub(super) fn resource(node_id: &str, configured: &[(String, String)]) -> Vec<(String, AttrValue)> {
    let mut attrs: Vec<(String, AttrValue)> = vec![
        ("service.name".into(), AttrValue::Str("kong".into())),
        ("service.instance.id".into(), AttrValue::Str(node_id.into())),
        (
            "service.version".into(),
            AttrValue::Str(silverback_model::KONG_VERSION.into()),
        ),
    ];
    for (k, v) in configured {
        let value = AttrValue::Str(v.clone());
        match attrs.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = value,
            None => attrs.push((k.clone(), value)),
        }
    }
    attrs
}
