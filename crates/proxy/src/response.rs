//! Responses the gateway makes itself (errors, redirects), in the body type the client asked for.

use crate::body::ResponseBody;
use crate::error::{ErrorSource, ProxyError};
use crate::http::Fields;
use crate::request::Reply;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};

pub(crate) const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const XML: &str = "application/xml; charset=utf-8";
const PLAIN: &str = "text/plain; charset=utf-8";

/// Kong's MIME choice for a media range; `None` when the range names nothing Kong renders.
fn mime_for(range: &str) -> Option<&'static str> {
    let media = range
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let (kind, sub) = media.split_once('/')?;
    Some(match (kind, sub) {
        ("*", "*") => JSON,
        ("application", "json") | ("application", "*") => JSON,
        ("text", "html") => HTML,
        ("application", "xml") => XML,
        ("text", "plain") | ("text", "*") => PLAIN,
        _ => return None,
    })
}

fn quality(range: &str) -> f32 {
    range
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().strip_prefix("q="))
        .filter_map(|q| q.trim().parse().ok())
        .next()
        .unwrap_or(1.0)
}

/// Kong's `get_response_type`: the highest-quality range in Accept that Kong can render, JSON
/// otherwise.
pub fn negotiate(accept: Option<&str>) -> &'static str {
    let Some(accept) = accept else { return JSON };
    let mut best = (0.0f32, JSON);
    for range in accept.split(',') {
        let q = quality(range);
        if q > best.0 {
            best = (q, mime_for(range).unwrap_or(best.1));
        }
    }
    best.1
}

/// The error body in the chosen type, carrying the request id as Kong's templates do.
pub fn error_body(mime: &'static str, message: &str, request_id: &str) -> String {
    match mime {
        HTML => format!(
            "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>{}.</p>\n    <p>request_id: {request_id}</p>\n  </body>\n</html>\n",
            html_escape(message)
        ),
        XML => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>{}</message>\n  <requestid>{request_id}</requestid>\n</error>\n",
            html_escape(message)
        ),
        PLAIN => format!("{message}\nrequest_id: {request_id}\n"),
        _ => serde_json::json!({ "message": message, "request_id": request_id }).to_string(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Builds the reply for a proxy error. `default_type` is `error_default_type` (mime).
pub(crate) fn for_error(
    err: &ProxyError,
    request: &Fields,
    request_id: &str,
    default_type: &'static str,
) -> Reply {
    let (status, message, source) = err.response_parts();
    let accept = request.get_str("accept");
    let content_type = request.get_str("content-type");
    let mime = match source {
        ErrorSource::Gateway => negotiate(accept),
        ErrorSource::Nginx => match accept.or(content_type) {
            Some(a) => negotiate(Some(a)),
            None => default_type,
        },
    };
    let mut reply = text(status, mime, error_body(mime, message, request_id));
    let upgrade = match err {
        ProxyError::HttpsRequired => Some("TLS/1.2, HTTP/1.1"),
        ProxyError::Http2Required => Some("HTTP/2"),
        _ => None,
    };
    if let Some(upgrade) = upgrade {
        reply.fields.set_new(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        );
        reply
            .fields
            .set_new(http::header::UPGRADE, HeaderValue::from_static(upgrade));
    }
    reply
}

/// `error_default_type` as the MIME type we send.
pub fn default_type(setting: &str) -> &'static str {
    match setting {
        "application/json" => JSON,
        "text/html" => HTML,
        "application/xml" => XML,
        _ => PLAIN,
    }
}

/// A reply with a text body (the length is written by the server from the body).
pub fn text(status: StatusCode, mime: &'static str, body: String) -> Reply {
    let mut fields = Fields::default();
    fields.set_new(CONTENT_TYPE, HeaderValue::from_static(mime));
    Reply {
        status,
        fields,
        body: ResponseBody::full(body),
    }
}

/// A redirect to https (routes with `https_redirect_status_code` 301/302/307/308).
pub fn redirect(status: StatusCode, location: &str) -> Reply {
    let mut fields = Fields::default();
    if let Ok(v) = HeaderValue::from_str(location) {
        fields.set_new(http::header::LOCATION, v);
    }
    Reply {
        status,
        fields,
        body: ResponseBody::Empty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_like_kong() {
        assert_eq!(negotiate(None), JSON);
        assert_eq!(negotiate(Some("*/*")), JSON);
        assert_eq!(negotiate(Some("text/html")), HTML);
        assert_eq!(negotiate(Some("text/html;q=0.5, application/xml")), XML);
        assert_eq!(negotiate(Some("text/*")), PLAIN);
        assert_eq!(negotiate(Some("image/png")), JSON);
    }

    #[test]
    fn bodies_carry_request_id() {
        let j: serde_json::Value = serde_json::from_str(&error_body(
            JSON,
            "no Route matched with those values",
            "abc",
        ))
        .unwrap();
        assert_eq!(j["message"], "no Route matched with those values");
        assert_eq!(j["request_id"], "abc");
        assert_eq!(error_body(PLAIN, "m", "r"), "m\nrequest_id: r\n");
        assert!(error_body(HTML, "m", "r").contains("<p>m.</p>"));
    }
}
