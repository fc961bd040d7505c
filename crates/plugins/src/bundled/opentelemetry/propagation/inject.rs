//! Kong's injectors: the outgoing context as each format's headers, with the trace id in the
//! size the format takes (the incoming size when the format allows it).

use super::{Format, Injector, Outgoing, Propagation, last_bytes, to_hex};
use crate::pdk::Request;
use http::{HeaderName, HeaderValue};

/// Clears `propagation.clear` and sets the headers of every configured injector on the
/// upstream request. `from` is the format the context was extracted from.
pub(crate) fn inject(req: &mut Request, prop: &Propagation, from: Option<Format>, out: &Outgoing) {
    for name in &prop.clear {
        req.clear_header(name);
    }
    for injector in &prop.inject {
        let format = match *injector {
            Injector::Format(f) => f,
            // B3 has one extractor and two injectors: the single header stays single.
            Injector::Preserve => match from.unwrap_or(prop.default_format) {
                Format::B3 if out.single_header => Format::B3Single,
                f => f,
            },
        };
        for (name, value) in headers(format, out) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                req.set_header(HeaderName::from_static(name), value);
            }
        }
    }
}

/// The trace id in `sizes[0]` bytes, or in its incoming size when that is one of `sizes`.
fn trace_hex(out: &Outgoing, sizes: &[usize]) -> String {
    let size = out
        .trace_id_size
        .filter(|s| sizes.contains(s))
        .or(sizes.first().copied())
        .unwrap_or(16);
    match size {
        8 => to_hex(&last_bytes::<8>(&out.trace_id)),
        _ => to_hex(&out.trace_id),
    }
}

fn flag(sampled: bool) -> &'static str {
    if sampled { "1" } else { "0" }
}

/// The headers `format` sends for `out`.
pub(crate) fn headers(format: Format, out: &Outgoing) -> Vec<(&'static str, String)> {
    let span = to_hex(&out.span_id);
    let parent = out.parent_id.map(|p| to_hex(&p));
    let sampled = flag(out.should_sample);
    match format {
        Format::W3c => vec![(
            "traceparent",
            format!(
                "00-{}-{span}-{}",
                trace_hex(out, &[16]),
                if out.should_sample { "01" } else { "00" }
            ),
        )],
        Format::B3 => {
            let mut h = vec![
                ("x-b3-traceid", trace_hex(out, &[16, 8])),
                ("x-b3-spanid", span),
            ];
            if let Some(p) = parent {
                h.push(("x-b3-parentspanid", p));
            }
            match &out.flags {
                Some(f) => h.push(("x-b3-flags", f.clone())),
                None => h.push(("x-b3-sampled", sampled.to_string())),
            }
            h
        }
        Format::B3Single => {
            let state = if out.flags.as_deref() == Some("1") {
                "d"
            } else {
                sampled
            };
            let mut v = format!("{}-{span}-{state}", trace_hex(out, &[16, 8]));
            if let Some(p) = parent {
                v.push('-');
                v.push_str(&p);
            }
            vec![("b3", v)]
        }
        Format::Jaeger => vec![(
            "uber-trace-id",
            format!(
                "{}:{span}:{}:{}",
                trace_hex(out, &[16, 8]),
                parent.as_deref().unwrap_or("0"),
                if out.should_sample { "01" } else { "00" }
            ),
        )],
        Format::Ot => vec![
            ("ot-tracer-traceid", trace_hex(out, &[8, 16])),
            ("ot-tracer-spanid", span),
            ("ot-tracer-sampled", sampled.to_string()),
        ],
        // 64-bit ids in decimal.
        Format::Datadog => vec![
            (
                "x-datadog-trace-id",
                u64::from_be_bytes(last_bytes(&out.trace_id)).to_string(),
            ),
            (
                "x-datadog-parent-id",
                u64::from_be_bytes(out.span_id).to_string(),
            ),
            ("x-datadog-sampling-priority", sampled.to_string()),
        ],
        Format::Aws => {
            let trace = trace_hex(out, &[16]);
            let (time, unique) = trace.split_at(8);
            vec![(
                "x-amzn-trace-id",
                format!("Root=1-{time}-{unique};Parent={span};Sampled={sampled}"),
            )]
        }
        Format::Gcp => vec![(
            "x-cloud-trace-context",
            format!(
                "{}/{};o={sampled}",
                trace_hex(out, &[16]),
                u64::from_be_bytes(out.span_id)
            ),
        )],
        Format::Instana => vec![
            ("x-instana-t", trace_hex(out, &[16, 8])),
            ("x-instana-s", span),
            ("x-instana-l", sampled.to_string()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundled::opentelemetry::propagation::id_from_hex;

    fn out(size: Option<usize>) -> Outgoing {
        Outgoing {
            trace_id: id_from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            trace_id_size: size,
            span_id: id_from_hex("b7ad6b7169203331").unwrap(),
            parent_id: Some(id_from_hex("00f067aa0ba902b7").unwrap()),
            should_sample: true,
            flags: None,
            single_header: false,
        }
    }

    fn one(format: Format, o: &Outgoing) -> Vec<(&'static str, String)> {
        headers(format, o)
    }

    #[test]
    fn every_format() {
        let o = out(None);
        assert_eq!(
            one(Format::W3c, &o),
            [(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()
            )]
        );
        assert_eq!(
            one(Format::B3, &o),
            [
                ("x-b3-traceid", "0af7651916cd43dd8448eb211c80319c".into()),
                ("x-b3-spanid", "b7ad6b7169203331".into()),
                ("x-b3-parentspanid", "00f067aa0ba902b7".into()),
                ("x-b3-sampled", "1".into()),
            ]
        );
        assert_eq!(
            one(Format::B3Single, &o),
            [(
                "b3",
                "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1-00f067aa0ba902b7".into()
            )]
        );
        assert_eq!(
            one(Format::Jaeger, &o),
            [(
                "uber-trace-id",
                "0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331:00f067aa0ba902b7:01".into()
            )]
        );
        // OT prefers 64-bit trace ids.
        assert_eq!(one(Format::Ot, &o)[0].1, "8448eb211c80319c");
        assert_eq!(
            one(Format::Datadog, &o),
            [
                ("x-datadog-trace-id", "9532127138774266268".into()),
                ("x-datadog-parent-id", "13235353014750950193".into()),
                ("x-datadog-sampling-priority", "1".into()),
            ]
        );
        assert_eq!(
            one(Format::Aws, &o),
            [(
                "x-amzn-trace-id",
                "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=1".into()
            )]
        );
        assert_eq!(
            one(Format::Gcp, &o),
            [(
                "x-cloud-trace-context",
                "0af7651916cd43dd8448eb211c80319c/13235353014750950193;o=1".into()
            )]
        );
        assert_eq!(one(Format::Instana, &o)[2], ("x-instana-l", "1".into()));
    }

    #[test]
    fn sizes_and_flags_follow_the_incoming_context() {
        let mut o = out(Some(8));
        assert_eq!(one(Format::B3, &o)[0].1, "8448eb211c80319c");
        assert_eq!(one(Format::W3c, &o)[0].1.len(), 55);
        o.flags = Some("1".into());
        o.should_sample = false;
        assert_eq!(one(Format::B3, &o)[3], ("x-b3-flags", "1".into()));
        assert!(one(Format::B3Single, &o)[0].1.contains("-d-"));
        assert!(one(Format::W3c, &o)[0].1.ends_with("-00"));
    }
}
