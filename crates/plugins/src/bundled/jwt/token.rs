//! Parsing and verifying a compact JWS the way Kong's `jwt_parser.lua` does: base64url parts
//! (padding optional), JSON header and claims, `alg` among Kong's algorithms.

use super::auth;
use ring::{hmac, signature};
use serde_json::{Map, Value};
use x509_parser::prelude::FromDer;

/// The algorithms this build verifies (Kong's list less ES512: `ring` has no P-521).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

/// Every `alg` Kong's parser accepts in a token header.
const KONG_ALGS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

impl Alg {
    pub(super) fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "HS256" => Alg::HS256,
            "HS384" => Alg::HS384,
            "HS512" => Alg::HS512,
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "EdDSA" => Alg::EdDSA,
            _ => return None,
        })
    }

    pub(super) fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }
}

#[derive(Debug)]
pub(super) struct Token<'a> {
    /// `header.claims`, what the signature covers.
    signed: &'a str,
    pub(super) alg: String,
    header: Map<String, Value>,
    pub(super) claims: Map<String, Value>,
    signature: Vec<u8>,
}

/// A token part's JSON object, keeping only the members named in `wanted`: the rest is
/// checked and skipped without building values (a token carries claims nobody here reads).
/// `Some(empty)` for JSON that is not an object, `None` for what is not JSON.
fn json_part(part: &str, wanted: &[&str]) -> Option<Map<String, Value>> {
    let bytes = auth::decode_base64url(part.as_bytes())?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let picked = serde::de::DeserializeSeed::deserialize(Pick(wanted), &mut de).ok()?;
    de.end().ok()?;
    Some(picked)
}

/// Picks members of a JSON object by name (see [`json_part`]).
struct Pick<'w>(&'w [&'w str]);

/// Which wanted name a member key is, without allocating the key.
struct Key<'w>(&'w [&'w str]);

impl<'de> serde::de::DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for Key<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|w| *w == v))
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Pick<'_> {
    type Value = Map<String, Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Pick<'_> {
    type Value = Map<String, Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(found) = a.next_key_seed(Key(self.0))? {
            match found.and_then(|i| self.0.get(i)) {
                Some(name) => {
                    out.insert((*name).to_string(), a.next_value()?);
                }
                None => {
                    a.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
    // Any other JSON value reads as an object without members, as before.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Map::new())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Map::new())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Map::new())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Map::new())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Map::new())
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Map::new())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Map::new())
    }
}

impl<'a> Token<'a> {
    /// Splits and decodes a token; the error is Kong's text after "Bad token; ".
    #[cfg(test)]
    pub(super) fn parse(token: &'a str) -> Result<Token<'a>, &'static str> {
        Token::parse_for(token, "iss")
    }

    /// As [`Token::parse`], reading only what the plugin looks at: `alg`, the key claim
    /// (claims, then header) and the time claims.
    pub(super) fn parse_for(token: &'a str, key_claim: &str) -> Result<Token<'a>, &'static str> {
        let mut parts = token.splitn(3, '.');
        let header_64 = parts.next().unwrap_or_default();
        let (Some(claims_64), Some(signature_64)) = (parts.next(), parts.next()) else {
            return Err("invalid JSON");
        };
        let (Some(header), Some(claims)) = (
            json_part(header_64, &["alg", key_claim]),
            json_part(claims_64, &[key_claim, "exp", "nbf"]),
        ) else {
            return Err("invalid JSON");
        };
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .filter(|a| KONG_ALGS.contains(a))
            .ok_or("invalid alg")?
            .to_string();
        let signature =
            auth::decode_base64url(signature_64.as_bytes()).ok_or("invalid signature")?;
        Ok(Token {
            signed: &token[..header_64.len() + 1 + claims_64.len()],
            alg,
            header,
            claims,
            signature,
        })
    }

    /// The claim naming the credential, from the claims or else the header (Lua's
    /// `claims[name] or header[name]`: a `false` claim counts as absent).
    pub(super) fn key_claim(&self, name: &str) -> Option<&Value> {
        let present = |v: &&Value| !matches!(v, Value::Bool(false));
        self.claims
            .get(name)
            .filter(present)
            .or_else(|| self.header.get(name).filter(present))
    }

    /// Whether the signature is `alg`'s over `header.claims` with this key (HMAC secret, or
    /// public key as [`public_key_der`] gives it).
    pub(super) fn verify(&self, alg: Alg, key: &[u8]) -> bool {
        let message = self.signed.as_bytes();
        if let Some(key) = hmac_key(alg, key) {
            return self.verify_hmac(&key);
        }
        let verifier: &dyn signature::VerificationAlgorithm = match alg {
            Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
            Alg::EdDSA => &signature::ED25519,
            Alg::HS256 | Alg::HS384 | Alg::HS512 => return false,
        };
        signature::UnparsedPublicKey::new(verifier, key)
            .verify(message, &self.signature)
            .is_ok()
    }
}

/// The HMAC key of an HS* algorithm (its key schedule is computed once per credential and
/// config, not per request).
pub(super) fn hmac_key(alg: Alg, secret: &[u8]) -> Option<hmac::Key> {
    let h = match alg {
        Alg::HS256 => hmac::HMAC_SHA256,
        Alg::HS384 => hmac::HMAC_SHA384,
        Alg::HS512 => hmac::HMAC_SHA512,
        _ => return None,
    };
    Some(hmac::Key::new(h, secret))
}

impl Token<'_> {
    /// Whether the HMAC signature is right; the comparison is constant-time.
    pub(super) fn verify_hmac(&self, key: &hmac::Key) -> bool {
        hmac::verify(key, self.signed.as_bytes(), &self.signature).is_ok()
    }
}

/// A PEM public key as `ring` verifies with it: the key bits of a SubjectPublicKeyInfo
/// (`PUBLIC KEY`: PKCS#1 for RSA, the point for EC, the 32 bytes for Ed25519) or a PKCS#1
/// `RSA PUBLIC KEY` as is. Anything else (a private key included) is `None`.
pub(super) fn public_key_der(pem: &str) -> Option<Vec<u8>> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.trim_start().as_bytes()).ok()?;
    match block.label.as_str() {
        "PUBLIC KEY" => {
            let (_, spki) =
                x509_parser::x509::SubjectPublicKeyInfo::from_der(&block.contents).ok()?;
            Some(spki.subject_public_key.data.to_vec())
        }
        "RSA PUBLIC KEY" => Some(block.contents),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn parse_errors_are_kongs() {
        let h = b64(r#"{"alg":"HS256","typ":"JWT"}"#);
        let c = b64(r#"{"iss":"k"}"#);
        assert_eq!(Token::parse("abc").unwrap_err(), "invalid JSON");
        assert_eq!(
            Token::parse(&format!("{h}.{c}")).unwrap_err(),
            "invalid JSON"
        );
        assert_eq!(
            Token::parse(&format!("{h}.!!.x")).unwrap_err(),
            "invalid JSON"
        );
        let none = b64(r#"{"alg":"none"}"#);
        assert_eq!(
            Token::parse(&format!("{none}.{c}.")).unwrap_err(),
            "invalid alg"
        );
        assert_eq!(
            Token::parse(&format!("{h}.{c}.a*b")).unwrap_err(),
            "invalid signature"
        );
        let text = format!("{h}.{c}.");
        let t = Token::parse(&text).unwrap();
        assert_eq!(t.alg, "HS256");
        assert_eq!(t.key_claim("iss"), Some(&Value::from("k")));
        assert!(t.signature.is_empty());
        assert_eq!(t.signed, format!("{h}.{c}"));
        // A key claim missing from the claims is looked up in the header.
        let t = Token::parse_for(&text, "typ").unwrap();
        assert_eq!(t.key_claim("typ"), Some(&Value::from("JWT")));
        // Members nobody reads are skipped, but must still be JSON.
        let junk = b64(r#"{"iss":"k","x":{"deep":[1,2,{"a":null}]},"exp":5}"#);
        let text = format!("{h}.{junk}.");
        let t = Token::parse(&text).unwrap();
        assert_eq!(t.claims.len(), 2);
        let broken = b64(r#"{"iss":"k","x":[1,}"#);
        assert_eq!(
            Token::parse(&format!("{h}.{broken}.")).unwrap_err(),
            "invalid JSON"
        );
    }

    #[test]
    fn hmac_signatures_verify_only_with_their_key() {
        let signed = format!("{}.{}", b64(r#"{"alg":"HS256"}"#), b64(r#"{"iss":"k"}"#));
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"secret");
        let sig = hmac::sign(&key, signed.as_bytes());
        use base64::Engine;
        let token = format!(
            "{signed}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.as_ref())
        );
        let t = Token::parse(&token).unwrap();
        assert!(t.verify(Alg::HS256, b"secret"));
        assert!(!t.verify(Alg::HS256, b"other"));
        assert!(!t.verify(Alg::HS384, b"secret"));
        assert!(!t.verify(Alg::RS256, b"secret"));
    }
}
