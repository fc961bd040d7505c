//! Building responses the way Kong's Admin API sends them.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;

/// Kong's content type for every JSON answer.
pub const JSON_TYPE: &str = "application/json; charset=utf-8";

/// A JSON response. Serializing a `Value` cannot fail; an empty object is sent if it ever did.
pub fn json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = Response::new(Body::from(bytes));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_TYPE));
    res
}

/// A response without a body (204, 304, 415).
pub fn empty(status: StatusCode) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    res
}

pub fn ok(body: &Value) -> Response {
    json(StatusCode::OK, body)
}

pub fn created(body: &Value) -> Response {
    json(StatusCode::CREATED, body)
}

pub fn no_content() -> Response {
    empty(StatusCode::NO_CONTENT)
}
