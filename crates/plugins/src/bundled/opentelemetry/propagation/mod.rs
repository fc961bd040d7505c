//! Trace context propagation (Kong's `kong.observability.tracing.propagation`): the incoming
//! context is extracted from the first configured format whose headers the request carries,
//! `clear` headers are removed, and the outgoing context is injected toward the upstream in
//! every configured format (`preserve`: the one it came in, else `default_format`).

mod extract;
mod inject;

use serde_json::Value;
use silverback_http::Fields;

pub(crate) use extract::extract;
pub(crate) use inject::inject;

pub(crate) type TraceId = [u8; 16];
pub(crate) type SpanId = [u8; 8];

/// A trace header format, by Kong's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    W3c,
    B3,
    B3Single,
    Jaeger,
    Ot,
    Datadog,
    Aws,
    Gcp,
    Instana,
}

impl Format {
    pub const ALL: [Format; 9] = [
        Format::W3c,
        Format::B3,
        Format::B3Single,
        Format::Jaeger,
        Format::Ot,
        Format::Datadog,
        Format::Aws,
        Format::Gcp,
        Format::Instana,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::W3c => "w3c",
            Format::B3 => "b3",
            Format::B3Single => "b3-single",
            Format::Jaeger => "jaeger",
            Format::Ot => "ot",
            Format::Datadog => "datadog",
            Format::Aws => "aws",
            Format::Gcp => "gcp",
            Format::Instana => "instana",
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// The extraction order Kong used before `propagation` existed (`header_type`).
const LEGACY_EXTRACT: [Format; 8] = [
    Format::B3,
    Format::W3c,
    Format::Jaeger,
    Format::Ot,
    Format::Datadog,
    Format::Aws,
    Format::Gcp,
    Format::Instana,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injector {
    /// The format the context was extracted from, else `default_format`.
    Preserve,
    Format(Format),
}

/// A plugin's propagation settings, compiled when the plugin is built.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Propagation {
    pub extract: Vec<Format>,
    /// Header names (lower case) removed after extraction.
    pub clear: Vec<String>,
    pub inject: Vec<Injector>,
    pub default_format: Format,
}

impl Propagation {
    /// Kong's `get_plugin_params`: `propagation` as configured when any of its fields but
    /// `default_format` is set, else the legacy `header_type` mapped onto it.
    pub fn from_config(config: &Value) -> Propagation {
        let prop = config.get("propagation");
        let field = |name: &str| prop.and_then(|p| p.get(name)).filter(|v| !v.is_null());
        let names = |name: &str| -> Vec<String> {
            field(name)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let default_format = field("default_format")
            .and_then(Value::as_str)
            .and_then(Format::parse)
            .unwrap_or(Format::W3c);
        let mut p = Propagation {
            extract: names("extract")
                .iter()
                .filter_map(|n| Format::parse(n))
                .collect(),
            clear: names("clear")
                .iter()
                .map(|n| n.to_ascii_lowercase())
                .collect(),
            inject: names("inject")
                .iter()
                .filter_map(|n| match n.as_str() {
                    "preserve" => Some(Injector::Preserve),
                    other => Format::parse(other).map(Injector::Format),
                })
                .collect(),
            default_format,
        };
        let configured = ["extract", "clear", "inject"]
            .iter()
            .any(|n| field(n).is_some());
        if configured {
            return p;
        }
        match config.get("header_type").and_then(Value::as_str) {
            Some("preserve") => {
                p.extract = LEGACY_EXTRACT.to_vec();
                p.inject = vec![Injector::Preserve];
            }
            Some("ignore") => p.inject = vec![Injector::Format(default_format)],
            Some(other) => {
                p.extract = LEGACY_EXTRACT.to_vec();
                p.inject = vec![Injector::Preserve];
                p.inject.extend(Format::parse(other).map(Injector::Format));
            }
            None => {}
        }
        p
    }
}

/// What an extractor read from the request (Kong's extracted tracing context). Ids are
/// Kong's internal sizes: shorter ones are padded with leading zeros, longer ones keep their
/// last bytes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Extracted {
    pub trace_id: Option<TraceId>,
    /// The trace id's size in bytes as received (an injector keeps it when its format allows).
    pub trace_id_size: Option<usize>,
    /// The caller's span: the parent of this request's span.
    pub span_id: Option<SpanId>,
    /// For formats that share span ids between caller and callee: the caller's parent.
    pub parent_id: Option<SpanId>,
    pub should_sample: Option<bool>,
    pub reuse_span_id: bool,
    /// B3's debug flag (`X-B3-Flags`, `d` in the single header).
    pub flags: Option<String>,
    pub w3c_flags: Option<u8>,
    /// B3 came as the single `b3` header.
    pub single_header: bool,
}

impl Extracted {
    /// Kong keeps the first extractor whose context has anything in it.
    pub fn is_empty(&self) -> bool {
        *self == Extracted::default()
    }
}

/// The context sent upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    pub trace_id: TraceId,
    pub trace_id_size: Option<usize>,
    /// The span the upstream call belongs to: its parent on the other side.
    pub span_id: SpanId,
    pub parent_id: Option<SpanId>,
    pub should_sample: bool,
    pub flags: Option<String>,
    pub single_header: bool,
}

/// A header's value when it was sent once (Kong's extractors ignore a header sent more than
/// once: `ngx.req.get_headers` makes a list of it).
fn single<'a>(headers: &'a Fields, name: &str) -> Option<&'a str> {
    if headers.get_all(name).nth(1).is_some() {
        return None;
    }
    std::str::from_utf8(headers.get(name)?).ok()
}

/// Lower-case hex of `bytes`, as Kong's `to_hex`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Kong's `from_hex` then `to_id_size`: hex digits (an odd count gets a leading 0) as bytes,
/// the last `N` kept, shorter ids padded with leading zeros. `None` for a non-hex digit.
pub(crate) fn id_from_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let digits = hex.as_bytes();
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().rev().zip(digits.rchunks(2)) {
        *slot = pair.iter().fold(0u8, |acc, d| (acc << 4) | hex_value(*d));
    }
    Some(out)
}

fn hex_value(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        b'A'..=b'F' => d - b'A' + 10,
        _ => 0,
    }
}

/// The size in bytes of an id given as `len` hex digits.
fn hex_size(len: usize) -> usize {
    len.div_ceil(2)
}

/// The last `N` bytes of `id` (Kong's `to_id_size` shortening a trace id for a format).
pub(crate) fn last_bytes<const N: usize>(id: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().rev().zip(id.iter().rev()) {
        *o = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_padded_and_truncated_as_kong() {
        assert_eq!(
            id_from_hex::<8>("abc"),
            Some([0, 0, 0, 0, 0, 0, 0x0a, 0xbc])
        );
        assert_eq!(
            id_from_hex::<8>("0102030405060708090a"),
            Some([3, 4, 5, 6, 7, 8, 9, 10])
        );
        assert_eq!(id_from_hex::<8>("xyz"), None);
        assert_eq!(to_hex(&[0, 0xab]), "00ab");
        assert_eq!(last_bytes::<2>(&[1, 2, 3]), [2, 3]);
    }

    #[test]
    fn legacy_header_type_maps_as_kong() {
        let p = Propagation::from_config(&json!({
            "header_type": "preserve",
            "propagation": {"default_format": "w3c"},
        }));
        assert_eq!(p.extract, LEGACY_EXTRACT.to_vec());
        assert_eq!(p.inject, vec![Injector::Preserve]);
        let p = Propagation::from_config(&json!({
            "header_type": "jaeger",
            "propagation": {"default_format": "b3"},
        }));
        assert_eq!(
            p.inject,
            vec![Injector::Preserve, Injector::Format(Format::Jaeger)]
        );
        assert_eq!(p.default_format, Format::B3);
        let p = Propagation::from_config(&json!({
            "header_type": "ignore",
            "propagation": {"default_format": "w3c"},
        }));
        assert!(p.extract.is_empty());
        assert_eq!(p.inject, vec![Injector::Format(Format::W3c)]);
        // Any propagation field set: header_type is not looked at.
        let p = Propagation::from_config(&json!({
            "header_type": "preserve",
            "propagation": {"default_format": "w3c", "extract": ["w3c"], "inject": ["b3-single"],
                            "clear": ["X-Foo"]},
        }));
        assert_eq!(p.extract, vec![Format::W3c]);
        assert_eq!(p.inject, vec![Injector::Format(Format::B3Single)]);
        assert_eq!(p.clear, vec!["x-foo".to_string()]);
    }
}
