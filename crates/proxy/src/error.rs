//! Every way a proxied request can fail, and the one place each becomes Kong's response.

use http::StatusCode;

/// Why the gateway answers itself instead of relaying the upstream's response.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no Route matched with those values")]
    NoRoute,
    #[error("no Service found with those values")]
    NoService,
    #[error("Please use HTTPS protocol")]
    HttpsRequired,
    /// gRPC over HTTP/1 on a grpc/grpcs route.
    #[error("Please use HTTP2 protocol")]
    Http2Required,
    #[error("Non-gRPC request matched gRPC route")]
    NotGrpc,
    #[error("name resolution failed")]
    NameResolution(String),
    #[error("failure to get a peer from the ring-balancer")]
    NoPeer,
    #[error("upstream connection failed: {0}")]
    Connect(String),
    #[error("upstream timed out ({0})")]
    Timeout(&'static str),
    #[error("invalid upstream response: {0}")]
    Upstream(String),
    #[error("request body too large")]
    BodyTooLarge,
    /// Over the limit a plugin set; answered with that plugin's response.
    #[error("request body over a plugin's limit")]
    BodyOverLimit,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("client closed the request body: {0}")]
    ClientBody(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// How the error body is chosen, as in Kong: errors raised in Kong's Lua code (PDK) default to
/// JSON; errors nginx raises (upstream failures, bad requests) fall back to `error_default_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    Gateway,
    Nginx,
}

impl ProxyError {
    /// Status, message and source of the response; exhaustive so a new error forces a choice.
    pub fn response_parts(&self) -> (StatusCode, &'static str, ErrorSource) {
        use ErrorSource::*;
        match self {
            ProxyError::NoRoute => (
                StatusCode::NOT_FOUND,
                "no Route matched with those values",
                Gateway,
            ),
            ProxyError::NoService => (
                StatusCode::SERVICE_UNAVAILABLE,
                "no Service found with those values",
                Gateway,
            ),
            ProxyError::HttpsRequired => (
                StatusCode::UPGRADE_REQUIRED,
                "Please use HTTPS protocol",
                Gateway,
            ),
            ProxyError::Http2Required => (
                StatusCode::UPGRADE_REQUIRED,
                "Please use HTTP2 protocol",
                Gateway,
            ),
            ProxyError::NotGrpc => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Non-gRPC request matched gRPC route",
                Gateway,
            ),
            ProxyError::NameResolution(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "name resolution failed",
                Gateway,
            ),
            ProxyError::NoPeer => (
                StatusCode::SERVICE_UNAVAILABLE,
                "failure to get a peer from the ring-balancer",
                Gateway,
            ),
            ProxyError::Connect(_) | ProxyError::Upstream(_) => (
                StatusCode::BAD_GATEWAY,
                "An invalid response was received from the upstream server",
                Nginx,
            ),
            ProxyError::Timeout(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                "The upstream server is timing out",
                Nginx,
            ),
            ProxyError::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Payload too large", Nginx),
            ProxyError::BodyOverLimit => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request size limit exceeded",
                Gateway,
            ),
            ProxyError::BadRequest(_) | ProxyError::ClientBody(_) => {
                (StatusCode::BAD_REQUEST, "Bad request", Nginx)
            }
            ProxyError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred",
                Nginx,
            ),
        }
    }

    /// Failures worth a log line (the client-side ones are not).
    pub fn is_upstream_failure(&self) -> bool {
        matches!(
            self,
            ProxyError::NameResolution(_)
                | ProxyError::NoPeer
                | ProxyError::Connect(_)
                | ProxyError::Timeout(_)
                | ProxyError::Upstream(_)
                | ProxyError::Internal(_)
        )
    }
}
