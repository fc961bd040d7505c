#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::entities::plugins_for_tests::TestPlugins;
use crate::entities::{Context, schema};
use crate::schema::Validator;
use serde_json::json;

pub(crate) const RSA_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC5Lt9Nmx+ciVq1dLGTruGccAqh
aAp5znvAmnb0csCHsDsejJbL6b9GzN/FN6ZrMt83SDd+C1+Au4UyrRCiqvQQv1dO
XbqwG6xanztgiocU2WvSRPH2qMxYbuL/AOherCed8jZvkWvGvFrzkITfjLz2ahda
hIBCBsT5zlOZd7qvoQIDAQAB
-----END PUBLIC KEY-----
";
const ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA7/NzaNdBypAYGKOu2JufMqp4JlMsWF0B2FUqBiMqzFg=
-----END PUBLIC KEY-----
";
const CONSUMER: &str = "6e8a1d4c-1b36-4e35-9f3c-3f3e1f7d6a10";

fn validate(entity: &str, v: serde_json::Value) -> Result<Map, serde_json::Value> {
    let mut map = v.as_object().unwrap().clone();
    let ctx = Context {
        plugins: &TestPlugins,
    };
    let s = schema(entity).unwrap();
    s.validate(&Validator::new(1_700_000_000), &ctx, &mut map)
        .and_then(|()| s.transform(&mut map, &|_| true))
        .map(|()| map)
        .map_err(|e| e.to_json())
}

fn consumer() -> serde_json::Value {
    json!({ "id": CONSUMER })
}

#[test]
fn keys_and_secrets_are_generated_long_and_distinct() {
    let a = validate("keyauth_credentials", json!({"consumer": consumer()})).unwrap();
    let b = validate("keyauth_credentials", json!({"consumer": consumer()})).unwrap();
    let (ka, kb) = (a["key"].as_str().unwrap(), b["key"].as_str().unwrap());
    assert_eq!(ka.len(), 32);
    assert!(ka.bytes().all(|c| c.is_ascii_alphanumeric()), "{ka}");
    assert_ne!(ka, kb);
    assert_eq!(a["ttl"], json!(null));
    let j = validate("jwt_secrets", json!({"consumer": consumer()})).unwrap();
    assert_eq!(j["algorithm"], "HS256");
    assert_eq!(j["key"].as_str().unwrap().len(), 32);
    assert_eq!(j["secret"].as_str().unwrap().len(), 32);
    assert_ne!(j["key"], j["secret"]);
    let h = validate(
        "hmacauth_credentials",
        json!({"consumer": consumer(), "username": "u"}),
    )
    .unwrap();
    assert_eq!(h["secret"].as_str().unwrap().len(), 32);
    let o = validate(
        "oauth2_credentials",
        json!({"consumer": consumer(), "name": "app"}),
    )
    .unwrap();
    assert_eq!(o["client_id"].as_str().unwrap().len(), 32);
    assert_eq!(o["client_secret"].as_str().unwrap().len(), 32);
    assert_eq!(o["hash_secret"], false);
    assert_eq!(o["client_type"], "confidential");
    // A given key is kept.
    let k = validate(
        "keyauth_credentials",
        json!({"consumer": consumer(), "key": "mine", "ttl": 60}),
    )
    .unwrap();
    assert_eq!(k["key"], "mine");
    assert_eq!(k["ttl"], 60);
}

#[test]
fn secrets_are_sensitive() {
    let sensitive = |e: &str| schema(e).unwrap().sensitive_fields().collect::<Vec<_>>();
    assert_eq!(sensitive("keyauth_credentials"), ["key"]);
    assert_eq!(sensitive("basicauth_credentials"), ["password"]);
    assert_eq!(sensitive("jwt_secrets"), ["secret"]);
    assert_eq!(sensitive("hmacauth_credentials"), ["secret"]);
    assert_eq!(sensitive("oauth2_credentials"), ["client_secret"]);
    assert_eq!(
        sensitive("oauth2_tokens"),
        ["access_token", "refresh_token"]
    );
}

#[test]
fn required_fields_and_choices() {
    let e = validate("basicauth_credentials", json!({})).unwrap_err();
    assert_eq!(e["consumer"], "required field missing");
    assert_eq!(e["username"], "required field missing");
    assert_eq!(e["password"], "required field missing");
    let e = validate("acls", json!({"consumer": consumer()})).unwrap_err();
    assert_eq!(e["group"], "required field missing");
    let e = validate(
        "jwt_secrets",
        json!({"consumer": consumer(), "algorithm": "none"}),
    )
    .unwrap_err();
    assert_eq!(
        e["algorithm"],
        "expected one of: HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA"
    );
    let e = validate(
        "oauth2_credentials",
        json!({"consumer": consumer(), "name": "a", "client_type": "x"}),
    )
    .unwrap_err();
    assert_eq!(e["client_type"], "expected one of: confidential, public");
    let e = validate(
        "keyauth_credentials",
        json!({"consumer": consumer(), "ttl": -1}),
    )
    .unwrap_err();
    assert_eq!(e["ttl"], "value must be greater than or equal to 0");
    let e = validate("oauth2_tokens", json!({"credential": {"id": CONSUMER}})).unwrap_err();
    assert_eq!(e["expires_in"], "required field missing");
    let t = validate(
        "oauth2_tokens",
        json!({"credential": {"id": CONSUMER}, "expires_in": 7200}),
    )
    .unwrap();
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["access_token"].as_str().unwrap().len(), 32);
    assert_eq!(t["service"], json!(null));
}

#[test]
fn jwt_public_keys_for_asymmetric_algorithms() {
    let e = validate(
        "jwt_secrets",
        json!({"consumer": consumer(), "algorithm": "RS256"}),
    )
    .unwrap_err();
    assert_eq!(e["rsa_public_key"], "required field missing");
    assert_eq!(
        e["@entity"],
        json!(["failed conditional validation given value of field 'algorithm'"])
    );
    let e = validate(
        "jwt_secrets",
        json!({"consumer": consumer(), "algorithm": "PS384", "rsa_public_key": "nope"}),
    )
    .unwrap_err();
    assert_eq!(e["rsa_public_key"], "invalid key");
    for (alg, key) in [("RS256", RSA_PUBLIC), ("EdDSA", ED25519_PUBLIC)] {
        let ok = validate(
            "jwt_secrets",
            json!({"consumer": consumer(), "algorithm": alg, "rsa_public_key": key}),
        );
        assert!(ok.is_ok(), "{alg}: {ok:?}");
    }
    // Kong leaves the ES family and the HMAC algorithms alone.
    assert!(
        validate(
            "jwt_secrets",
            json!({"consumer": consumer(), "algorithm": "ES256"})
        )
        .is_ok()
    );
}

#[test]
fn redirect_uris_as_kong_parses_them() {
    for ok in [
        "http://example.test/cb",
        "https://u:p@example.test:8443/cb?x=1",
        "myapp://callback",
        "http://[::1]:8080/",
    ] {
        assert_eq!(oauth2::check_redirect_uri(&json!(ok)), Ok(()), "{ok}");
    }
    assert_eq!(
        oauth2::check_redirect_uri(&json!("not-valid")),
        Err("cannot parse 'not-valid'".into())
    );
    assert_eq!(
        oauth2::check_redirect_uri(&json!("http:///path")),
        Err("cannot parse 'http:///path'".into())
    );
    assert_eq!(
        oauth2::check_redirect_uri(&json!("http://a.test/#frag")),
        Err("fragment not allowed in 'http://a.test/#frag'".into())
    );
}

#[test]
fn passwords_are_hashed_with_argon2_and_verify() {
    let row = validate(
        "basicauth_credentials",
        json!({"consumer": consumer(), "username": "u", "password": "s3cret"}),
    )
    .unwrap();
    let stored = row["password"].as_str().unwrap();
    assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
    let id = Uuid::parse_str(CONSUMER).unwrap();
    assert!(verify_password(stored, "s3cret", id));
    assert!(!verify_password(stored, "s3cret!", id));
    // Writing the hash back (a dump) keeps it.
    let again = validate(
        "basicauth_credentials",
        json!({"consumer": consumer(), "username": "u", "password": stored}),
    )
    .unwrap();
    assert_eq!(again["password"], stored);
    // Not given in the write (a PATCH of the username): not hashed again.
    let mut map = json!({"password": "plain"}).as_object().unwrap().clone();
    schema("basicauth_credentials")
        .unwrap()
        .transform(&mut map, &|f| f == "username")
        .unwrap();
    assert_eq!(map["password"], "plain");
}

#[test]
fn kong_sha1_passwords_verify() {
    let id = Uuid::parse_str(CONSUMER).unwrap();
    let kong = kong_sha1("hunter2", id);
    assert_eq!(kong.len(), 40);
    assert!(verify_password(&kong, "hunter2", id));
    assert!(verify_password(&kong.to_ascii_uppercase(), "hunter2", id));
    assert!(!verify_password(&kong, "hunter3", id));
    assert!(!verify_password(&kong, "hunter2", Uuid::nil()));
    // Plain text stored values never match.
    assert!(!verify_password("hunter2", "hunter2", id));
}

#[test]
fn oauth2_client_secrets() {
    let o = validate(
        "oauth2_credentials",
        json!({"consumer": consumer(), "name": "a", "client_secret": "cs", "hash_secret": true}),
    )
    .unwrap();
    let stored = o["client_secret"].as_str().unwrap();
    assert!(is_argon2_hash(stored));
    assert!(verify_client_secret(stored, true, "cs"));
    assert!(!verify_client_secret(stored, true, "cx"));
    assert!(verify_client_secret("plain", false, "plain"));
    assert!(!verify_client_secret("plain", true, "plain"));
    // An update carrying only one of the two is refused, as Kong does.
    let mut map = o.clone();
    let e = schema("oauth2_credentials")
        .unwrap()
        .transform(&mut map, &|f| f == "client_secret")
        .unwrap_err();
    assert_eq!(
        e.to_json()["@entity"],
        json!(["all or none of these fields must be set: 'hash_secret', 'client_secret'"])
    );
}

#[test]
fn expiry() {
    assert_eq!(expires_at(Some(100), None), None);
    assert_eq!(expires_at(Some(100), Some(0)), None);
    assert_eq!(expires_at(Some(100), Some(60)), Some(160));
    assert_eq!(
        expires_at(Some(100), Some(1_800_000_000)),
        Some(1_800_000_000)
    );
}

#[test]
fn schema_descriptions_match_kong() {
    let d = schema("basicauth_credentials").unwrap().record.describe();
    assert_eq!(
        d["fields"][4],
        json!({"password": {"type": "string", "required": true, "encrypted": true}})
    );
    let d = schema("keyauth_credentials").unwrap().record.describe();
    assert_eq!(
        d["fields"][3],
        json!({"key": {"type": "string", "unique": true, "auto": true}})
    );
    assert_eq!(
        d["fields"][2],
        json!({"consumer": {"type": "foreign", "reference": "consumers", "on_delete": "cascade", "required": true}})
    );
}
