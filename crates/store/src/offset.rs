//! Page offsets in Kong's format: base64 (standard alphabet, no padding) of a JSON array holding
//! the last row's primary key, e.g. `["6f1c…"]`. Clients treat it as opaque; keeping Kong's shape
//! costs nothing and lets an offset taken from one Kong-compatible store page another.

use crate::StoreError;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, STANDARD_NO_PAD_INDIFFERENT};
use serde_json::Value;

/// The offset that resumes after a row with these key values.
pub(crate) fn encode(key: &[Value]) -> String {
    let json = Value::Array(key.to_vec()).to_string();
    STANDARD_NO_PAD.encode(json)
}

/// The key values an offset holds; `len` of them, each a string or integer as `encode` wrote.
/// Anything else is Kong's "not a valid offset" (code 7, HTTP 400).
pub(crate) fn decode(token: &str, len: usize) -> Result<Vec<Value>, StoreError> {
    let invalid = || StoreError::InvalidOffset(token.to_string());
    let bytes = STANDARD_NO_PAD_INDIFFERENT
        .decode(token)
        .map_err(|_| invalid())?;
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(invalid());
    };
    if items.len() != len || !items.iter().all(|v| v.is_string() || v.is_u64()) {
        return Err(invalid());
    }
    Ok(items)
}

/// The single string key of a one-column offset (entity pages: the id).
pub(crate) fn decode_id(token: &str) -> Result<String, StoreError> {
    match decode(token, 1)?.pop() {
        Some(Value::String(s)) => Ok(s),
        _ => Err(StoreError::InvalidOffset(token.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let t = encode(&[Value::from("abc")]);
        assert_eq!(decode_id(&t).ok().as_deref(), Some("abc"));
        // Kong's own token for the same key decodes too (padding accepted or not).
        assert_eq!(t, "WyJhYmMiXQ");
        assert!(decode_id("WyJhYmMiXQ==").is_ok());
        for bad in ["%%%", "bm90IGpzb24", "WzEsMl0", "e30"] {
            assert!(
                matches!(decode_id(bad), Err(StoreError::InvalidOffset(_))),
                "{bad}"
            );
        }
    }
}
