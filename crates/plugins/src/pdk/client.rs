//! Who the client is: the route and service it reached, the consumer an authentication plugin
//! identified, and the headers that tell the upstream (Kong's `kong.client.authenticate` plus
//! the `set_consumer` step every Kong authentication plugin repeats).

use super::Ctx;
use http::HeaderValue;
use silverback_model::Row;
use std::sync::Arc;
use uuid::Uuid;

/// Header names Kong sets on authenticated requests.
pub mod headers {
    use http::HeaderName;

    pub const CONSUMER_ID: HeaderName = HeaderName::from_static("x-consumer-id");
    pub const CONSUMER_CUSTOM_ID: HeaderName = HeaderName::from_static("x-consumer-custom-id");
    pub const CONSUMER_USERNAME: HeaderName = HeaderName::from_static("x-consumer-username");
    pub const CREDENTIAL_IDENTIFIER: HeaderName =
        HeaderName::from_static("x-credential-identifier");
    pub const ANONYMOUS: HeaderName = HeaderName::from_static("x-anonymous-consumer");
    pub const CONSUMER_GROUPS: HeaderName = HeaderName::from_static("x-consumer-groups");
    pub const AUTHENTICATED_GROUPS: HeaderName = HeaderName::from_static("x-authenticated-groups");
}

/// A route or service, for plugins and logs.
#[derive(Debug)]
pub struct EntityRef {
    pub id: Uuid,
    pub name: Option<String>,
    pub row: Arc<Row>,
}

/// A consumer, with its header values made once per config.
#[derive(Debug)]
pub struct ConsumerRef {
    pub id: Uuid,
    pub username: Option<String>,
    pub custom_id: Option<String>,
    pub row: Arc<Row>,
    id_value: HeaderValue,
    username_value: Option<HeaderValue>,
    custom_id_value: Option<HeaderValue>,
}

impl ConsumerRef {
    pub fn new(
        id: Uuid,
        username: Option<String>,
        custom_id: Option<String>,
        row: Arc<Row>,
    ) -> Self {
        let value = |s: &Option<String>| s.as_deref().and_then(|s| HeaderValue::from_str(s).ok());
        ConsumerRef {
            id_value: HeaderValue::from_str(&id.to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            username_value: value(&username),
            custom_id_value: value(&custom_id),
            id,
            username,
            custom_id,
            row,
        }
    }

    /// The id as text, made once per config (a rate-limit key, a log field).
    pub fn id_str(&self) -> &str {
        self.id_value.to_str().unwrap_or_default()
    }
}

/// The credential a request authenticated with.
#[derive(Debug, Clone)]
pub struct CredentialRef {
    pub id: Uuid,
    pub consumer_id: Option<Uuid>,
    /// What `X-Credential-Identifier` carries for this credential type (key-auth: the
    /// credential id; basic-auth: the username; jwt: the key ...).
    pub identifier: HeaderValue,
}

impl Ctx {
    /// Marks the request authenticated and tells the upstream who it is: `X-Consumer-*` and
    /// `X-Credential-Identifier` set or cleared, `X-Anonymous-Consumer: true` when there is no
    /// credential (the anonymous consumer).
    pub fn authenticate(
        &mut self,
        consumer: Option<Arc<ConsumerRef>>,
        credential: Option<CredentialRef>,
    ) {
        // What the client sent under these names never reaches the service: one pass drops it.
        let h = &mut self.request.headers;
        h.remove_many(&[
            headers::CONSUMER_ID.as_str(),
            headers::CONSUMER_CUSTOM_ID.as_str(),
            headers::CONSUMER_USERNAME.as_str(),
            headers::CREDENTIAL_IDENTIFIER.as_str(),
            headers::ANONYMOUS.as_str(),
        ]);
        if let Some(c) = consumer.as_deref() {
            h.set_new(headers::CONSUMER_ID, c.id_value.clone());
            if let Some(v) = &c.custom_id_value {
                h.set_new(headers::CONSUMER_CUSTOM_ID, v.clone());
            }
            if let Some(v) = &c.username_value {
                h.set_new(headers::CONSUMER_USERNAME, v.clone());
            }
        }
        match &credential {
            Some(c) => h.set_new(headers::CREDENTIAL_IDENTIFIER, c.identifier.clone()),
            None => h.set_new(headers::ANONYMOUS, HeaderValue::from_static("true")),
        }
        self.consumer = consumer;
        self.credential = credential;
    }

    /// Whether an earlier authentication plugin already identified the client with a credential
    /// (Kong's "logical OR" of several authentication plugins with `anonymous`).
    pub fn has_credential(&self) -> bool {
        self.credential.is_some()
    }
}

impl Ctx {
    /// Falls back to the `anonymous` consumer (by id or username) after a failed
    /// authentication; Kong answers 500 when that consumer does not exist.
    pub fn authenticate_anonymous(&mut self, anonymous: &str) -> Result<(), super::Exit> {
        match self
            .directory
            .consumer_by_id_or_username(anonymous)
            .cloned()
        {
            Some(c) => {
                self.authenticate(Some(c), None);
                Ok(())
            }
            None => {
                let message =
                    format!("anonymous consumer {anonymous} is configured but doesn't exist");
                tracing::error!(request_id = self.request_id(), "{message}");
                Err(super::Exit::error(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    message,
                ))
            }
        }
    }
}

impl Ctx {
    /// Authenticates with a credential, as the consumer it belongs to; `false` (nothing
    /// changed) when that consumer is not in this config.
    pub fn authenticate_credential(&mut self, credential: CredentialRef) -> bool {
        let consumer = credential
            .consumer_id
            .and_then(|id| self.directory.consumer(&id).cloned());
        match consumer {
            Some(c) => {
                self.authenticate(Some(c), Some(credential));
                true
            }
            None => false,
        }
    }
}
