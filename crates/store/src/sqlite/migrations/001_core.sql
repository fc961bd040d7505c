-- 001_core: Kong's core entities.
--
-- One table per entity type. `data` is the validated row as JSON exactly as the Admin API
-- returns it; the other columns copy the fields the database must enforce or search on:
-- unique fields (UNIQUE), references (`<field>_id`, a real foreign key: CASCADE where Kong's
-- schema cascades, otherwise RESTRICT) and the parts of composite cache keys.
-- Ids are canonical lower-case UUID text, so `ORDER BY id` is Kong's page order.
-- Kept to SQL that PostgreSQL also accepts (the Postgres store ports this file).

CREATE TABLE certificates (
  id          TEXT    PRIMARY KEY,
  data        TEXT    NOT NULL,
  created_at  INTEGER
);

CREATE TABLE ca_certificates (
  id           TEXT    PRIMARY KEY,
  data         TEXT    NOT NULL,
  created_at   INTEGER,
  cert_digest  TEXT    UNIQUE
);

CREATE TABLE snis (
  id              TEXT    PRIMARY KEY,
  data            TEXT    NOT NULL,
  created_at      INTEGER,
  name            TEXT    UNIQUE,
  certificate_id  TEXT    REFERENCES certificates (id) ON DELETE RESTRICT
);
CREATE INDEX snis_certificate_id_idx ON snis (certificate_id, id);

CREATE TABLE services (
  id                     TEXT    PRIMARY KEY,
  data                   TEXT    NOT NULL,
  created_at             INTEGER,
  name                   TEXT    UNIQUE,
  client_certificate_id  TEXT    REFERENCES certificates (id) ON DELETE RESTRICT
);
CREATE INDEX services_client_certificate_id_idx ON services (client_certificate_id, id);

CREATE TABLE routes (
  id          TEXT    PRIMARY KEY,
  data        TEXT    NOT NULL,
  created_at  INTEGER,
  name        TEXT    UNIQUE,
  service_id  TEXT    REFERENCES services (id) ON DELETE RESTRICT
);
CREATE INDEX routes_service_id_idx ON routes (service_id, id);

CREATE TABLE consumers (
  id          TEXT    PRIMARY KEY,
  data        TEXT    NOT NULL,
  created_at  INTEGER,
  username    TEXT    UNIQUE,
  custom_id   TEXT    UNIQUE
);

CREATE TABLE upstreams (
  id                     TEXT    PRIMARY KEY,
  data                   TEXT    NOT NULL,
  created_at             INTEGER,
  name                   TEXT    UNIQUE,
  client_certificate_id  TEXT    REFERENCES certificates (id) ON DELETE RESTRICT
);
CREATE INDEX upstreams_client_certificate_id_idx ON upstreams (client_certificate_id, id);

-- Kong's cache key for targets: one target address per upstream.
CREATE TABLE targets (
  id           TEXT    PRIMARY KEY,
  data         TEXT    NOT NULL,
  created_at   INTEGER,
  upstream_id  TEXT    REFERENCES upstreams (id) ON DELETE CASCADE,
  target       TEXT,
  UNIQUE (upstream_id, target)
);
CREATE INDEX targets_upstream_id_idx ON targets (upstream_id, id);

-- Kong's cache key for plugins: one instance of a plugin per (route, service, consumer) scope,
-- a missing scope counting as one value (NULLs compare equal here, unlike in UNIQUE).
CREATE TABLE plugins (
  id             TEXT    PRIMARY KEY,
  data           TEXT    NOT NULL,
  created_at     INTEGER,
  name           TEXT    NOT NULL,
  instance_name  TEXT    UNIQUE,
  route_id       TEXT    REFERENCES routes (id) ON DELETE CASCADE,
  service_id     TEXT    REFERENCES services (id) ON DELETE CASCADE,
  consumer_id    TEXT    REFERENCES consumers (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX plugins_cache_key_idx ON plugins (
  name, COALESCE(route_id, ''), COALESCE(service_id, ''), COALESCE(consumer_id, '')
);
CREATE INDEX plugins_route_id_idx ON plugins (route_id, id);
CREATE INDEX plugins_service_id_idx ON plugins (service_id, id);
CREATE INDEX plugins_consumer_id_idx ON plugins (consumer_id, id);

-- Every tag of every entity, for `?tags=` filters and `GET /tags`. Rows go with their entity
-- (written and deleted by the store in the same transaction).
CREATE TABLE tags (
  entity_name  TEXT     NOT NULL,
  entity_id    TEXT     NOT NULL,
  position     INTEGER  NOT NULL,
  tag          TEXT     NOT NULL,
  PRIMARY KEY (entity_name, entity_id, position)
);
CREATE INDEX tags_tag_idx ON tags (tag, entity_name, entity_id);
CREATE INDEX tags_entity_id_idx ON tags (entity_id, position);
