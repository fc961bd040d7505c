//! Responses: the one on its way to the client (`header_filter`), and the ones plugins make
//! instead of proxying (Kong's `kong.response.exit` / `kong.response.error`).

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use silverback_http::Fields;

/// Who made the response (Kong's `kong.response.get_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseSource {
    #[default]
    Service,
    /// A plugin's exit.
    Exit,
    /// A gateway error (no route, upstream failure ...).
    Error,
}

impl ResponseSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseSource::Service => "service",
            ResponseSource::Exit => "exit",
            ResponseSource::Error => "error",
        }
    }
}

/// The response head plugins see and change in `header_filter`.
#[derive(Debug, Default)]
pub struct Response {
    pub status: StatusCode,
    pub headers: Fields,
    pub source: ResponseSource,
}

/// The body of a plugin's own response.
#[derive(Debug, Clone)]
pub enum ExitBody {
    /// Kong's `kong.response.error`: the message in the format the client's Accept asks for,
    /// with the request id.
    Error(String),
    /// Kong's `kong.response.exit(status, table)`: the JSON as is.
    Json(Value),
    Raw {
        body: Bytes,
        content_type: Option<HeaderValue>,
    },
    Empty,
}

/// A response a plugin makes instead of proxying.
#[derive(Debug, Clone)]
pub struct Exit {
    pub status: StatusCode,
    pub body: ExitBody,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Exit {
    /// Kong's `kong.response.error(status, message)`.
    pub fn error(status: StatusCode, message: impl Into<String>) -> Self {
        Exit {
            status,
            body: ExitBody::Error(message.into()),
            headers: Vec::new(),
        }
    }

    /// Kong's `kong.response.exit(status, { message = message })`.
    pub fn message(status: StatusCode, message: impl Into<String>) -> Self {
        Exit::json(status, serde_json::json!({ "message": message.into() }))
    }

    pub fn json(status: StatusCode, body: Value) -> Self {
        Exit {
            status,
            body: ExitBody::Json(body),
            headers: Vec::new(),
        }
    }

    pub fn empty(status: StatusCode) -> Self {
        Exit {
            status,
            body: ExitBody::Empty,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}
