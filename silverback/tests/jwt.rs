//! jwt against the real binary, with keys and tokens made by Python (`hmac`/`hashlib` and the
//! `cryptography` package): every algorithm family, Kong's messages and challenges, `alg: none`
//! and algorithm confusion, exp / nbf / maximum_expiration, where tokens are found, and
//! anonymous.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod python;

use common::*;
use serde_json::{Value, json};

/// Makes the keys and every token the tests send; prints them as JSON.
const FIXTURE: &str = r#"
import base64, hashlib, hmac, json, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

now = int(time.time())
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def part(o): return b64(json.dumps(o, separators=(",", ":")).encode())
HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}

def sign(alg, key, claims, header=None):
    head = header if header is not None else {"typ": "JWT", "alg": alg}
    si = (part(head) + "." + part(claims)).encode()
    if alg.startswith("HS"):
        sig = hmac.new(key, si, getattr(hashlib, "sha" + alg[2:])).digest()
    elif alg.startswith("RS"):
        sig = key.sign(si, padding.PKCS1v15(), HASH[alg[2:]]())
    elif alg.startswith("PS"):
        h = HASH[alg[2:]]()
        sig = key.sign(si, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    elif alg.startswith("ES"):
        size = {"256": 32, "384": 48}[alg[2:]]
        r, s = decode_dss_signature(key.sign(si, ec.ECDSA(HASH[alg[2:]]())))
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    elif alg == "EdDSA":
        sig = key.sign(si)
    else:
        sig = b""
    return si.decode() + "." + b64(sig)

def spki(k):
    return k.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
p256 = ec.generate_private_key(ec.SECP256R1())
p384 = ec.generate_private_key(ec.SECP384R1())
ed = ed25519.Ed25519PrivateKey.generate()
rsa_pem = spki(rsa_key)
later = {"exp": now + 600}

def claims(iss, **more):
    c = {"iss": iss}
    c.update(more)
    return c

out = {
  "keys": {
    "rsa": rsa_pem,
    "rsa_pkcs1": rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode(),
    "p256": spki(p256), "p384": spki(p384), "ed": spki(ed),
  },
  "tokens": {
    "hs256": sign("HS256", b"hs-secret", claims("hs-key", exp=now + 600)),
    "hs256_b": sign("HS256", b"hs-secret", claims("hs-key", sub="b")),
    "hs512": sign("HS512", b"hs512-secret", claims("hs512-key")),
    "hs256_wrong_secret": sign("HS256", b"not-the-secret", claims("hs-key")),
    "hs384_for_hs256": sign("HS384", b"hs-secret", claims("hs-key")),
    "rs256": sign("RS256", rsa_key, claims("rs-key")),
    "rs512": sign("RS512", rsa_key, claims("rs512-key")),
    "rs256_pkcs1": sign("RS256", rsa_key, claims("rs-pkcs1-key")),
    "rs256_other_key": sign("RS256", other_rsa, claims("rs-key")),
    "ps256": sign("PS256", rsa_key, claims("ps-key")),
    "ps384": sign("PS384", rsa_key, claims("ps384-key")),
    "es256": sign("ES256", p256, claims("es-key")),
    "es384": sign("ES384", p384, claims("es384-key")),
    "es256_wrong_curve": sign("ES256", ec.generate_private_key(ec.SECP256R1()), claims("es-key")),
    "eddsa": sign("EdDSA", ed, claims("ed-key")),
    "eddsa_other_key": sign("EdDSA", ed25519.Ed25519PrivateKey.generate(), claims("ed-key")),
    # alg none, and the HS256-with-the-public-key confusion attack.
    "none": sign("none", None, claims("hs-key"), {"typ": "JWT", "alg": "none"}),
    "none_for_rs": sign("none", None, claims("rs-key"), {"alg": "none"}),
    "confusion": sign("HS256", rsa_pem.encode(), claims("rs-key")),
    "rs_token_for_hs_key": sign("RS256", rsa_key, claims("hs-key")),
    "expired": sign("HS256", b"hs-secret", claims("hs-key", exp=now - 10, nbf=now - 700)),
    "in_window": sign("HS256", b"hs-secret", claims("hs-key", exp=now + 600, nbf=now - 10)),
    "not_yet": sign("HS256", b"hs-secret", claims("hs-key", exp=now + 600, nbf=now + 600)),
    "expired_not_yet": sign("HS256", b"hs-secret", claims("hs-key", exp=now - 10, nbf=now + 600)),
    "exp_text": sign("HS256", b"hs-secret", claims("hs-key", exp="tomorrow")),
    "no_exp": sign("HS256", b"hs-secret", claims("hs-key")),
    "short_exp": sign("HS256", b"hs-secret", claims("hs-key", exp=now + 100)),
    "no_iss": sign("HS256", b"hs-secret", {"sub": "x"}),
    "empty_iss": sign("HS256", b"hs-secret", claims("")),
    "unknown_iss": sign("HS256", b"hs-secret", claims("nobody")),
    "iss_in_header": sign("HS256", b"hs-secret", {"sub": "x"},
                          {"alg": "HS256", "iss": "hs-key"}),
    "kid": sign("HS256", b"hs-secret", {"sub": "x"}, {"alg": "HS256", "kid": "hs-key"}),
    "base64_secret": sign("HS256", b"raw\xffsecret", claims("b64-key")),
  },
}
print(json.dumps(out))
"#;

struct Fixture {
    keys: Value,
    tokens: Value,
}

impl Fixture {
    fn make() -> Fixture {
        let v: Value = serde_json::from_str(&python::run(FIXTURE, &[])).unwrap();
        Fixture {
            keys: v["keys"].clone(),
            tokens: v["tokens"].clone(),
        }
    }

    fn token(&self, name: &str) -> String {
        self.tokens[name].as_str().unwrap().to_string()
    }

    fn config(&self, up: &Upstream) -> String {
        // PEMs as JSON strings: YAML reads them as double-quoted scalars.
        let key = |k: &str| self.keys[k].to_string();
        let asym = [
            ("rs-key", "RS256", "rsa"),
            ("rs512-key", "RS512", "rsa"),
            ("rs-pkcs1-key", "RS256", "rsa_pkcs1"),
            ("ps-key", "PS256", "rsa"),
            ("ps384-key", "PS384", "rsa"),
            ("es-key", "ES256", "p256"),
            ("es384-key", "ES384", "p384"),
            ("ed-key", "EdDSA", "ed"),
        ]
        .iter()
        .map(|(k, alg, pem)| {
            format!(
                "  - {{key: {k}, algorithm: {alg}, rsa_public_key: {}}}\n",
                key(pem)
            )
        })
        .collect::<String>();
        let b64_secret = python::run(
            "import base64; print(base64.urlsafe_b64encode(b'raw\\xffsecret').decode())",
            &[],
        );
        format!(
            r#"_format_version: "3.0"
consumers:
- username: alice
  custom_id: a-1
  jwt_secrets:
  - {{key: hs-key, secret: hs-secret}}
  - {{key: hs512-key, algorithm: HS512, secret: hs512-secret}}
  - {{key: b64-key, secret: "{b64_secret}"}}
- username: bob
  jwt_secrets:
{asym}- username: anon
services:
- name: s
  url: http://{addr}
  routes:
  - name: plain
    paths: [/plain]
    plugins:
    - name: jwt
  - name: claims
    paths: [/claims]
    plugins:
    - name: jwt
      config: {{claims_to_verify: [exp, nbf], realm: kong}}
  - name: max
    paths: [/max]
    plugins:
    - name: jwt
      config: {{claims_to_verify: [exp], maximum_expiration: 300}}
  - name: b64
    paths: [/b64]
    plugins:
    - name: jwt
      config: {{secret_is_base64: true}}
  - name: kid
    paths: [/kid]
    plugins:
    - name: jwt
      config: {{key_claim_name: kid}}
  - name: places
    paths: [/places]
    plugins:
    - name: jwt
      config: {{uri_param_names: [token], cookie_names: [auth_cookie], header_names: [x-jwt], run_on_preflight: false}}
  - name: anon
    paths: [/anon]
    plugins:
    - name: jwt
      config: {{anonymous: anon}}
"#,
            addr = up.addr
        )
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Kong's jwt answers with `kong.response.exit`: the JSON as is, no request id.
fn assert_401(r: &Reply, body: Value, challenge: Option<&str>) {
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json(), body);
    assert_eq!(r.header("www-authenticate"), challenge);
}

const INVALID: Option<&str> = Some("Bearer error=\"invalid_token\"");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_verifies_and_kongs_messages() {
    let fx = Fixture::make();
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&fx.config(&up)).start();
    let c = client();
    let url = gw.url("/plain");
    let msg = |m: &str| json!({ "message": m });

    let r = get(&c, &url, &[]).await;
    assert_401(&r, msg("Unauthorized"), Some("Bearer"));

    for (name, user, key) in [
        ("hs256", "alice", "hs-key"),
        ("hs512", "alice", "hs512-key"),
        ("rs256", "bob", "rs-key"),
        ("rs512", "bob", "rs512-key"),
        ("rs256_pkcs1", "bob", "rs-pkcs1-key"),
        ("ps256", "bob", "ps-key"),
        ("ps384", "bob", "ps384-key"),
        ("es256", "bob", "es-key"),
        ("es384", "bob", "es384-key"),
        ("eddsa", "bob", "ed-key"),
    ] {
        let r = get(&c, &url, &[("authorization", &bearer(&fx.token(name)))]).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let e = echo(&r);
        assert_eq!(e.headers["x-consumer-username"], user, "{name}");
        assert_eq!(e.headers["x-credential-identifier"], key, "{name}");
        assert!(!e.headers.contains_key("x-anonymous-consumer"));
    }
    // The query argument `jwt` is read by default; the token goes on to the upstream.
    let r = get(&c, &format!("{url}?jwt={}", fx.token("hs256")), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());

    for (name, message) in [
        ("hs256_wrong_secret", "Invalid signature"),
        ("rs256_other_key", "Invalid signature"),
        ("es256_wrong_curve", "Invalid signature"),
        ("eddsa_other_key", "Invalid signature"),
        ("none", "Bad token; invalid alg"),
        ("none_for_rs", "Bad token; invalid alg"),
        // Algorithm confusion: the credential's algorithm decides.
        ("confusion", "Invalid algorithm"),
        ("rs_token_for_hs_key", "Invalid algorithm"),
        ("hs384_for_hs256", "Invalid algorithm"),
        ("no_iss", "No mandatory 'iss' in claims"),
        ("empty_iss", "Invalid 'iss' in claims"),
        ("unknown_iss", "No credentials found for given 'iss'"),
    ] {
        let r = get(&c, &url, &[("authorization", &bearer(&fx.token(name)))]).await;
        assert_401(&r, msg(message), INVALID);
    }
    // `iss` may be in the header instead.
    let r = get(
        &c,
        &url,
        &[("authorization", &bearer(&fx.token("iss_in_header")))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Malformed tokens: 401, never a server error.
    let hs = fx.token("hs256");
    let (head, rest) = hs.split_once('.').unwrap();
    let claims = rest.split_once('.').unwrap().0;
    for (token, message) in [
        ("abc".to_string(), "Bad token; invalid JSON"),
        ("a.b.c".to_string(), "Bad token; invalid JSON"),
        (format!("{head}.{claims}"), "Bad token; invalid JSON"),
        (
            format!("{head}.{claims}.**"),
            "Bad token; invalid signature",
        ),
        (format!("{head}.{claims}."), "Invalid signature"),
        (format!("{hs}.extra"), "Bad token; invalid signature"),
        ("x".repeat(7000), "Bad token; invalid JSON"),
    ] {
        let r = get(&c, &url, &[("authorization", &bearer(&token))]).await;
        assert_401(&r, msg(message), INVALID);
    }
    // Not a bearer token at all: no token.
    let r = get(&c, &url, &[("authorization", &format!("Basic {hs}"))]).await;
    assert_401(&r, msg("Unauthorized"), Some("Bearer"));

    // Two different tokens, or a bare `?jwt`.
    let r = get(
        &c,
        &format!("{url}?jwt={}", fx.token("hs256_b")),
        &[("authorization", &bearer(&hs))],
    )
    .await;
    assert_401(&r, msg("Multiple tokens provided"), INVALID);
    let r = get(
        &c,
        &format!("{url}?jwt={hs}"),
        &[("authorization", &bearer(&hs))],
    )
    .await;
    assert_eq!(r.status, 200, "the same token twice is one token");
    let r = get(&c, &format!("{url}?jwt"), &[]).await;
    assert_401(&r, msg("Unrecognizable token"), INVALID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_claims_and_maximum_expiration() {
    let fx = Fixture::make();
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&fx.config(&up)).start();
    let c = client();
    let challenge = Some("Bearer realm=\"kong\", error=\"invalid_token\"");
    let send = |path: &'static str, name: &'static str| {
        let url = gw.url(path);
        let c = c.clone();
        let token = fx.token(name);
        async move { get(&c, &url, &[("authorization", &bearer(&token))]).await }
    };

    // Not verified unless asked.
    assert_eq!(send("/plain", "expired").await.status, 200);
    assert_eq!(send("/plain", "not_yet").await.status, 200);

    assert_eq!(send("/claims", "in_window").await.status, 200);
    // Every claim to verify must be there.
    assert_401(
        &send("/claims", "hs256").await,
        json!({"nbf": "must be a number"}),
        challenge,
    );
    assert_401(
        &send("/claims", "expired").await,
        json!({"exp": "token expired"}),
        challenge,
    );
    assert_401(
        &send("/claims", "not_yet").await,
        json!({"nbf": "token not valid yet"}),
        challenge,
    );
    assert_401(
        &send("/claims", "expired_not_yet").await,
        json!({"exp": "token expired", "nbf": "token not valid yet"}),
        challenge,
    );
    assert_401(
        &send("/claims", "exp_text").await,
        json!({"exp": "must be a number", "nbf": "must be a number"}),
        challenge,
    );
    let r = get(&c, &gw.url("/claims"), &[]).await;
    assert_401(
        &r,
        json!({"message": "Unauthorized"}),
        Some("Bearer realm=\"kong\""),
    );

    assert_eq!(send("/max", "short_exp").await.status, 200);
    assert_401(
        &send("/max", "hs256").await,
        json!({"exp": "exceeds maximum allowed expiration"}),
        INVALID,
    );
    assert_401(
        &send("/max", "no_exp").await,
        json!({"exp": "must be a number"}),
        INVALID,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_places_secrets_and_anonymous() {
    let fx = Fixture::make();
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&fx.config(&up)).start();
    let c = client();
    let hs = fx.token("hs256");

    // secret_is_base64: the stored secret is base64url of the signing key.
    let r = get(
        &c,
        &gw.url("/b64"),
        &[("authorization", &bearer(&fx.token("base64_secret")))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(
        &c,
        &gw.url("/plain"),
        &[("authorization", &bearer(&fx.token("base64_secret")))],
    )
    .await;
    assert_401(&r, json!({"message": "Invalid signature"}), INVALID);

    // key_claim_name: kid, read from the header.
    let r = get(
        &c,
        &gw.url("/kid"),
        &[("authorization", &bearer(&fx.token("kid")))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(&c, &gw.url("/kid"), &[("authorization", &bearer(&hs))]).await;
    assert_401(
        &r,
        json!({"message": "No mandatory 'kid' in claims"}),
        INVALID,
    );

    // Configured places: query `token`, cookie `auth_cookie`, header `x-jwt`; not the
    // defaults.
    let places = gw.url("/places");
    let r = get(&c, &format!("{places}?token={hs}"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = format!("other=1; Auth_Cookie={hs}");
    let r = get(&c, &places, &[("cookie", &cookie)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(&c, &places, &[("x-jwt", &format!("bearer {hs}"))]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        get(&c, &places, &[("authorization", &bearer(&hs))])
            .await
            .status,
        401
    );
    assert_eq!(
        get(&c, &format!("{places}?jwt={hs}"), &[]).await.status,
        401
    );
    // run_on_preflight = false.
    assert_eq!(send(&c, "OPTIONS", &places, &[], "").await.status, 200);

    // anonymous: failures fall back, spoofed headers are replaced.
    let anon = gw.url("/anon");
    let e = echo(&get(&c, &anon, &[("x-consumer-username", "root")]).await);
    assert_eq!(e.headers["x-consumer-username"], "anon");
    assert_eq!(e.headers["x-anonymous-consumer"], "true");
    let e = echo(
        &get(
            &c,
            &anon,
            &[("authorization", &bearer(&fx.token("confusion")))],
        )
        .await,
    );
    assert_eq!(e.headers["x-consumer-username"], "anon");
    let e = echo(&get(&c, &anon, &[("authorization", &bearer(&fx.token("rs256")))]).await);
    assert_eq!(e.headers["x-consumer-username"], "bob");
    assert_eq!(e.headers["x-credential-identifier"], "rs-key");
    assert!(!e.headers.contains_key("x-anonymous-consumer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_defaults_and_checks_through_the_admin_api() {
    let gw = Gateway::with_database().start();
    let r = gw.admin("POST", "/plugins", json!({"name": "jwt"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["config"],
        json!({"uri_param_names": ["jwt"], "cookie_names": [], "key_claim_name": "iss",
               "secret_is_base64": false, "claims_to_verify": null, "anonymous": null,
               "run_on_preflight": true, "maximum_expiration": 0,
               "header_names": ["authorization"], "realm": null})
    );
    // maximum_expiration needs exp among the claims to verify.
    let r = gw
        .admin(
            "POST",
            "/schemas/plugins/validate",
            json!({"name": "jwt", "config": {"maximum_expiration": 60}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = gw
        .admin(
            "POST",
            "/schemas/plugins/validate",
            json!({"name": "jwt",
                   "config": {"maximum_expiration": 60, "claims_to_verify": ["exp"]}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = gw
        .admin(
            "POST",
            "/schemas/plugins/validate",
            json!({"name": "jwt", "config": {"claims_to_verify": ["iat"]}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}
