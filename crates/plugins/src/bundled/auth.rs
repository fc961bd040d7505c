//! What Kong's authentication plugins share: the logical AND / OR flow around `anonymous`,
//! nginx's lenient base64 decoding, header-name normalization and the clock.

use crate::handler::Phase;
use crate::pdk::{Ctx, Exit};
use hashbrown::HashMap;
use http::HeaderValue;
use serde_json::Value;
use silverback_model::Row;
use std::sync::Arc;
use uuid::Uuid;

/// Runs an authentication the way every Kong auth plugin does. Without `anonymous` (logical
/// AND) a failure answers the client with the plugin's exit. With it (logical OR) a request an
/// earlier auth plugin already identified with a credential passes untouched, and a failure
/// falls back to the anonymous consumer (500 when that consumer does not exist).
pub(crate) fn run<'a>(
    ctx: &mut Ctx,
    anonymous: Option<&str>,
    authenticate: impl FnOnce(&mut Ctx) -> Result<(), Exit>,
) -> Phase<'a> {
    let Some(anonymous) = anonymous else {
        return match authenticate(ctx) {
            Ok(()) => Phase::CONTINUE,
            Err(exit) => exit.into(),
        };
    };
    if ctx.has_credential() || authenticate(ctx).is_ok() {
        return Phase::CONTINUE;
    }
    match ctx.authenticate_anonymous(anonymous) {
        Ok(()) => Phase::CONTINUE,
        Err(exit) => exit.into(),
    }
}

/// Each byte's 6-bit value in an alphabet, or `INVALID`: one table lookup per input byte.
const INVALID: u8 = 0xff;

const fn table(alphabet: &[u8; 64]) -> [u8; 256] {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
}

const STD: [u8; 256] = table(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
const URL: [u8; 256] = table(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

/// nginx's `ngx_decode_base64` (`ngx.decode_base64`): reads up to the first `=`, padding
/// optional, leftover bits ignored; any other character, or a length of 4n+1, is an error.
pub(crate) fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    decode(input, &STD)
}

/// nginx's `ngx_decode_base64url` (the `-_` alphabet), as Kong's jwt parser uses it.
pub(crate) fn decode_base64url(input: &[u8]) -> Option<Vec<u8>> {
    decode(input, &URL)
}

fn decode(input: &[u8], values: &[u8; 256]) -> Option<Vec<u8>> {
    let end = input.iter().position(|&b| b == b'=').unwrap_or(input.len());
    let data = &input[..end];
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in data {
        let v = values[usize::from(c)];
        if v == INVALID {
            return None;
        }
        let v = u32::from(v);
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The consumer a credential row belongs to.
pub(crate) fn consumer_of(row: &Row) -> Option<Uuid> {
    row.get("consumer")
        .and_then(|c| c.get("id"))
        .and_then(Value::as_str)
        .and_then(|c| c.parse().ok())
}

/// A username-and-secret credential (basic-auth, hmac-auth) as the plugin's index keeps it.
pub(crate) struct UserCredential {
    pub id: Uuid,
    pub consumer: Uuid,
    /// The stored secret field's value (basic-auth: the password hash, never the password).
    pub secret: String,
    /// `X-Credential-Identifier`: the username, as Kong sends it.
    pub identifier: HeaderValue,
}

/// Credential rows by `username`, with their `secret_field`; rows missing a field are left out.
pub(crate) fn by_username(
    rows: &[Arc<Row>],
    secret_field: &str,
) -> HashMap<String, UserCredential> {
    let mut creds = HashMap::with_capacity(rows.len());
    for row in rows {
        let text = |f: &str| row.get(f).and_then(Value::as_str);
        let (Some(id), Some(username), Some(secret), Some(consumer)) = (
            row.id(),
            text("username"),
            text(secret_field),
            consumer_of(row),
        ) else {
            continue;
        };
        let Ok(identifier) = HeaderValue::from_str(username) else {
            continue;
        };
        let secret = secret.to_string();
        creds.insert(
            username.to_string(),
            UserCredential {
                id,
                consumer,
                secret,
                identifier,
            },
        );
    }
    creds
}

/// `Key realm="x"`-style challenges: `scheme` alone without a realm.
pub(crate) fn challenge(scheme: &str, realm: Option<&str>) -> String {
    match realm {
        Some(realm) => format!("{scheme} realm=\"{realm}\""),
        None => scheme.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_like_nginx() {
        assert_eq!(decode_base64(b"YWxpY2U6cHc=").unwrap(), b"alice:pw");
        assert_eq!(decode_base64(b"YWxpY2U6cHc").unwrap(), b"alice:pw");
        assert_eq!(decode_base64(b"YWxpY2U6cHc=junk").unwrap(), b"alice:pw");
        assert_eq!(decode_base64(b"").unwrap(), b"");
        assert!(decode_base64(b"YWxpY").is_none());
        assert!(decode_base64(b"YW*p").is_none());
        assert!(decode_base64(b"-_-_").is_none());
        assert_eq!(decode_base64url(b"-_-_").unwrap(), [0xfb, 0xff, 0xbf]);
        assert!(decode_base64url(b"+/+/").is_none());
    }
}
