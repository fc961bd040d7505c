//! gRPC, as Kong serves it: routes of protocols grpc/grpcs only take gRPC over HTTP/2 (Kong's
//! 415 and 426 rules), services of protocol grpc/grpcs are reached over HTTP/2 with bodies and
//! trailers streamed both ways (`forward.rs`, over `upstream::h2`), and what the gateway
//! answers itself to a gRPC client takes the gRPC form: the HTTP status kept, an empty body,
//! and `grpc-status` / `grpc-message` in the head (a trailers-only response), with Kong's
//! mapping from HTTP statuses to gRPC codes.

mod forward;

pub(crate) use forward::send;

use crate::body::ResponseBody;
use crate::error::{ErrorSource, ProxyError};
use crate::http::Fields;
use crate::request::Reply;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName};
use http::{HeaderValue, StatusCode, Version};
use silverback_plugins::pdk::{Exit, ExitBody};

const APPLICATION_GRPC: &str = "application/grpc";
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// Whether a media type is gRPC's (`application/grpc`, `application/grpc+proto`, ...).
pub(crate) fn is_grpc_type(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.starts_with(APPLICATION_GRPC))
}

/// Kong's checks for a route of protocols grpc/grpcs, before any plugin runs: a non-gRPC
/// request gets 415, gRPC over HTTP/1 gets 426, and plain gRPC on a grpcs-only route gets a
/// gRPC `Canceled` (the reply returned).
pub(crate) fn route_rules(
    version: Version,
    fields: &Fields,
    allows_plain: bool,
    forwarded_https: bool,
) -> Result<Option<Reply>, ProxyError> {
    if !is_grpc_type(fields.get_str("content-type")) {
        return Err(ProxyError::NotGrpc);
    }
    if version != Version::HTTP_2 {
        return Err(ProxyError::Http2Required);
    }
    if !allows_plain && !forwarded_https {
        let mut reply = Reply {
            status: StatusCode::OK,
            fields: Fields::default(),
            body: ResponseBody::Empty,
        };
        set_status(&mut reply.fields, 1, "gRPC request matched gRPCs route");
        return Ok(Some(reply));
    }
    Ok(None)
}

/// Kong's `HTTP_TO_GRPC_STATUS`, with its fallbacks by status class.
fn grpc_code(status: StatusCode) -> u8 {
    match status.as_u16() {
        401 => 16,
        403 => 7,
        404 => 5,
        409 => 6,
        429 => 8,
        499 => 1,
        501 => 12,
        503 => 14,
        504 => 4,
        // 200, 400 and 500 are their class's codes.
        500..=599 => 13,
        400..=499 => 3,
        200..=299 => 0,
        _ => 2,
    }
}

/// The name Kong gives a gRPC code when it has no message of its own.
fn code_name(code: u8) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES.get(usize::from(code)).copied().unwrap_or("Unknown")
}

fn set_status(fields: &mut Fields, code: u8, message: &str) {
    fields.set(CONTENT_TYPE, HeaderValue::from_static(APPLICATION_GRPC));
    fields.set(GRPC_STATUS, HeaderValue::from(u16::from(code)));
    let message = HeaderValue::from_str(message)
        .unwrap_or_else(|_| HeaderValue::from_static(code_name(code)));
    fields.set(GRPC_MESSAGE, message);
    fields.set(CONTENT_LENGTH, HeaderValue::from_static("0"));
}

/// Gives a gateway error for a gRPC client the gRPC form. As in Kong, errors of the gateway's
/// own (no route, no service) carry the code's name, nginx's (upstream failures) their message;
/// the latter only when the client's Accept (or, without one, its Content-Type) is gRPC.
pub(crate) fn error_form(reply: &mut Reply, err: &ProxyError, fields: &Fields) {
    let content_type = fields.get_str("content-type");
    let (_, message, source) = err.response_parts();
    let (grpc, message) = match source {
        ErrorSource::Gateway => (is_grpc_type(content_type), None),
        ErrorSource::Nginx => (
            is_grpc_type(fields.get_str("accept").or(content_type)),
            Some(message),
        ),
    };
    if !grpc {
        return;
    }
    let code = grpc_code(reply.status);
    reply.fields.remove("content-type");
    set_status(&mut reply.fields, code, message.unwrap_or(code_name(code)));
    reply.body = ResponseBody::Empty;
}

/// A plugin's exit for a gRPC client, in the gRPC form as Kong's `kong.response.exit` and
/// `kong.response.error` make it: the message of a `{message = ...}` table or of a string body
/// goes into `grpc-message`, others give the code's name. An exit that sets a non-gRPC
/// Content-Type is left as it is.
pub(crate) fn exit_form(exit: Exit) -> Exit {
    let content_type = exit
        .headers
        .iter()
        .find(|(n, _)| *n == CONTENT_TYPE)
        .map(|(_, v)| v.to_str().unwrap_or_default());
    if content_type.is_some() && !is_grpc_type(content_type) {
        return exit;
    }
    let code = grpc_code(exit.status);
    let message = match &exit.body {
        ExitBody::Json(v) => v
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string),
        ExitBody::Raw { body, .. } => Some(String::from_utf8_lossy(body).into_owned()),
        ExitBody::Error(_) | ExitBody::Empty => None,
    };
    let mut fields = Fields::default();
    set_status(
        &mut fields,
        code,
        message.as_deref().unwrap_or(code_name(code)),
    );
    let mut headers: Vec<(HeaderName, HeaderValue)> = exit
        .headers
        .into_iter()
        .filter(|(n, _)| *n != CONTENT_TYPE)
        .collect();
    fields.for_each(|name, value| {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.push((n, v));
        }
    });
    Exit {
        status: exit.status,
        body: ExitBody::Empty,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kongs_status_mapping() {
        let code = |s: u16| grpc_code(StatusCode::from_u16(s).unwrap());
        assert_eq!(code(401), 16);
        assert_eq!(code(503), 14);
        assert_eq!(code(502), 13);
        assert_eq!(code(504), 4);
        assert_eq!(code(413), 3);
        assert_eq!(code(302), 2);
        assert_eq!(code_name(14), "Unavailable");
    }

    #[test]
    fn exits_take_the_grpc_form() {
        let e = exit_form(Exit::error(StatusCode::UNAUTHORIZED, "No API key found"));
        assert!(matches!(e.body, ExitBody::Empty));
        let get = |n: &str| {
            e.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(get("grpc-status").as_deref(), Some("16"));
        assert_eq!(get("grpc-message").as_deref(), Some("Unauthenticated"));
        assert_eq!(get("content-type").as_deref(), Some("application/grpc"));
        let json = Exit {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: ExitBody::Json(serde_json::json!({"message": "API rate limit exceeded"})),
            headers: Vec::new(),
        };
        let e = exit_form(json);
        assert!(
            e.headers
                .iter()
                .any(|(k, v)| k == "grpc-message" && v == "API rate limit exceeded")
        );
    }
}
