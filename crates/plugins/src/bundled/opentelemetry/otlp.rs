//! The OTLP/HTTP protobuf encoding of spans (`opentelemetry.proto.trace.v1`), written by hand
//! for the few messages the exporter sends: a span is encoded once, on the request's `log`
//! phase, and the queue thread wraps a batch of them into an `ExportTraceServiceRequest`
//! with the resource (Kong's `kong.observability.otlp`).

/// A span attribute's value. Kong sends numbers as doubles, but `http.status_code` as an int.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrValue {
    Str(String),
    Int(i64),
    Double(f64),
}

/// OTLP's `SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanKind {
    Server = 2,
    Client = 3,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub name: &'static str,
    pub kind: SpanKind,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// Kong sets status code 2 (error) on failed balancer tries.
    pub error: bool,
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A nested message: encoded by `body`, then written with its length.
fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    bytes_field(out, field, &inner);
}

/// `KeyValue { key = 1; AnyValue value = 2 }`.
fn key_value(out: &mut Vec<u8>, field: u32, name: &str, value: &AttrValue) {
    message(out, field, |kv| {
        bytes_field(kv, 1, name.as_bytes());
        message(kv, 2, |any| match value {
            AttrValue::Str(s) => bytes_field(any, 1, s.as_bytes()),
            AttrValue::Int(i) => {
                key(any, 3, VARINT);
                varint(any, *i as u64);
            }
            AttrValue::Double(d) => fixed64(any, 4, d.to_bits()),
        });
    });
}

/// One `Span` message (without its field key and length).
pub(crate) fn encode_span(span: &Span) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + span.attributes.len() * 40);
    bytes_field(&mut out, 1, &span.trace_id);
    bytes_field(&mut out, 2, &span.span_id);
    if let Some(p) = &span.parent_span_id {
        bytes_field(&mut out, 4, p);
    }
    bytes_field(&mut out, 5, span.name.as_bytes());
    key(&mut out, 6, VARINT);
    varint(&mut out, span.kind as u64);
    fixed64(&mut out, 7, span.start_unix_nano);
    fixed64(&mut out, 8, span.end_unix_nano);
    for (name, value) in &span.attributes {
        key_value(&mut out, 9, name, value);
    }
    if span.error {
        // `Status { code = 3 }`: STATUS_CODE_ERROR.
        message(&mut out, 15, |s| {
            key(s, 3, VARINT);
            varint(s, 2);
        });
    }
    out
}

/// The `ExportTraceServiceRequest` for a batch of encoded spans: one resource with
/// `resource` attributes and Kong's instrumentation scope (`kong-internal` 0.1.0).
pub(crate) fn encode_request(resource: &[(String, AttrValue)], spans: &[Vec<u8>]) -> Vec<u8> {
    let size: usize = spans.iter().map(|s| s.len() + 6).sum();
    let mut out = Vec::with_capacity(size + 256);
    message(&mut out, 1, |rs| {
        message(rs, 1, |r| {
            for (name, value) in resource {
                key_value(r, 1, name, value);
            }
        });
        message(rs, 2, |ss| {
            message(ss, 1, |scope| {
                bytes_field(scope, 1, b"kong-internal");
                bytes_field(scope, 2, b"0.1.0");
            });
            for span in spans {
                bytes_field(ss, 2, span);
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message;

    fn span() -> Span {
        Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            name: "kong.balancer",
            kind: SpanKind::Client,
            start_unix_nano: 1_700_000_000_123_456_789,
            end_unix_nano: 1_700_000_000_223_456_789,
            attributes: vec![
                ("net.peer.ip", AttrValue::Str("127.0.0.1".into())),
                ("http.status_code", AttrValue::Int(502)),
                ("try_count", AttrValue::Double(1.0)),
                ("negative", AttrValue::Int(-5)),
            ],
            error: true,
        }
    }

    /// Decoded by prost with the OpenTelemetry project's own message definitions.
    #[test]
    fn decodes_with_the_reference_definitions() {
        let resource = vec![
            ("service.name".to_string(), AttrValue::Str("kong".into())),
            ("x".to_string(), AttrValue::Str("y".into())),
        ];
        let root = Span {
            parent_span_id: None,
            name: "kong",
            kind: SpanKind::Server,
            attributes: vec![],
            error: false,
            ..span()
        };
        let body = encode_request(&resource, &[encode_span(&span()), encode_span(&root)]);
        let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        assert_eq!(req.resource_spans.len(), 1);
        let rs = &req.resource_spans[0];
        let attrs = &rs.resource.as_ref().unwrap().attributes;
        assert_eq!(attrs[0].key, "service.name");
        assert_eq!(
            attrs[0].value.as_ref().unwrap().value,
            Some(Value::StringValue("kong".into()))
        );
        let ss = &rs.scope_spans[0];
        let scope = ss.scope.as_ref().unwrap();
        assert_eq!(
            (scope.name.as_str(), scope.version.as_str()),
            ("kong-internal", "0.1.0")
        );
        assert_eq!(ss.spans.len(), 2);
        let s = &ss.spans[0];
        assert_eq!(s.trace_id, vec![1; 16]);
        assert_eq!(s.span_id, vec![2; 8]);
        assert_eq!(s.parent_span_id, vec![3; 8]);
        assert_eq!(s.name, "kong.balancer");
        assert_eq!(s.kind, 3);
        assert_eq!(s.start_time_unix_nano, 1_700_000_000_123_456_789);
        assert_eq!(s.end_time_unix_nano, 1_700_000_000_223_456_789);
        let values: Vec<_> = s
            .attributes
            .iter()
            .map(|kv| {
                (
                    kv.key.as_str(),
                    kv.value.as_ref().unwrap().value.clone().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            values,
            vec![
                ("net.peer.ip", Value::StringValue("127.0.0.1".into())),
                ("http.status_code", Value::IntValue(502)),
                ("try_count", Value::DoubleValue(1.0)),
                ("negative", Value::IntValue(-5)),
            ]
        );
        assert_eq!(s.status.as_ref().unwrap().code, 2);
        let r = &ss.spans[1];
        assert!(r.parent_span_id.is_empty());
        assert_eq!((r.name.as_str(), r.kind), ("kong", 2));
        assert!(r.status.is_none());
    }
}
