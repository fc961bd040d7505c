-- 002_credentials: the consumer credentials of Kong's authentication plugins (key-auth,
-- basic-auth, jwt, hmac-auth, acl, oauth2) and the oauth2 plugin's codes and tokens.
--
-- Same layout as 001: `data` holds the row as the Admin API returns it (secrets hashed where
-- the schema says so), the other columns copy unique fields and references. Every credential
-- goes with its consumer (CASCADE), codes and tokens with their credential, service and plugin.

CREATE TABLE keyauth_credentials (
  id           TEXT    PRIMARY KEY,
  data         TEXT    NOT NULL,
  created_at   INTEGER,
  consumer_id  TEXT    REFERENCES consumers (id) ON DELETE CASCADE,
  "key"        TEXT    UNIQUE
);
CREATE INDEX keyauth_credentials_consumer_id_idx ON keyauth_credentials (consumer_id, id);

CREATE TABLE basicauth_credentials (
  id           TEXT    PRIMARY KEY,
  data         TEXT    NOT NULL,
  created_at   INTEGER,
  consumer_id  TEXT    REFERENCES consumers (id) ON DELETE CASCADE,
  username     TEXT    UNIQUE
);
CREATE INDEX basicauth_credentials_consumer_id_idx ON basicauth_credentials (consumer_id, id);

CREATE TABLE jwt_secrets (
  id           TEXT    PRIMARY KEY,
  data         TEXT    NOT NULL,
  created_at   INTEGER,
  consumer_id  TEXT    REFERENCES consumers (id) ON DELETE CASCADE,
  "key"        TEXT    UNIQUE
);
CREATE INDEX jwt_secrets_consumer_id_idx ON jwt_secrets (consumer_id, id);

CREATE TABLE hmacauth_credentials (
  id           TEXT    PRIMARY KEY,
  data         TEXT    NOT NULL,
  created_at   INTEGER,
  consumer_id  TEXT    REFERENCES consumers (id) ON DELETE CASCADE,
  username     TEXT    UNIQUE
);
CREATE INDEX hmacauth_credentials_consumer_id_idx ON hmacauth_credentials (consumer_id, id);

-- Kong's cache key for acls: a group once per consumer.
CREATE TABLE acls (
  id           TEXT    PRIMARY KEY,
  data         TEXT    NOT NULL,
  created_at   INTEGER,
  consumer_id  TEXT    REFERENCES consumers (id) ON DELETE CASCADE,
  "group"      TEXT,
  UNIQUE (consumer_id, "group")
);
CREATE INDEX acls_consumer_id_idx ON acls (consumer_id, id);

CREATE TABLE oauth2_credentials (
  id           TEXT    PRIMARY KEY,
  data         TEXT    NOT NULL,
  created_at   INTEGER,
  consumer_id  TEXT    REFERENCES consumers (id) ON DELETE CASCADE,
  client_id    TEXT    UNIQUE
);
CREATE INDEX oauth2_credentials_consumer_id_idx ON oauth2_credentials (consumer_id, id);

CREATE TABLE oauth2_authorization_codes (
  id             TEXT    PRIMARY KEY,
  data           TEXT    NOT NULL,
  created_at     INTEGER,
  service_id     TEXT    REFERENCES services (id) ON DELETE CASCADE,
  credential_id  TEXT    REFERENCES oauth2_credentials (id) ON DELETE CASCADE,
  code           TEXT    UNIQUE,
  plugin_id      TEXT    REFERENCES plugins (id) ON DELETE CASCADE
);
CREATE INDEX oauth2_authorization_codes_service_id_idx ON oauth2_authorization_codes (service_id, id);
CREATE INDEX oauth2_authorization_codes_credential_id_idx ON oauth2_authorization_codes (credential_id, id);
CREATE INDEX oauth2_authorization_codes_plugin_id_idx ON oauth2_authorization_codes (plugin_id, id);

CREATE TABLE oauth2_tokens (
  id             TEXT    PRIMARY KEY,
  data           TEXT    NOT NULL,
  created_at     INTEGER,
  service_id     TEXT    REFERENCES services (id) ON DELETE CASCADE,
  credential_id  TEXT    REFERENCES oauth2_credentials (id) ON DELETE CASCADE,
  access_token   TEXT    UNIQUE,
  refresh_token  TEXT    UNIQUE
);
CREATE INDEX oauth2_tokens_service_id_idx ON oauth2_tokens (service_id, id);
CREATE INDEX oauth2_tokens_credential_id_idx ON oauth2_tokens (credential_id, id);
