-- 003_ratelimiting_metrics: the counters of the rate-limiting and response-ratelimiting
-- plugins' `cluster` policy (Kong's `ratelimiting_metrics` and
-- `response_ratelimiting_metrics`). Runtime state, not config: never exported or imported.
--
-- One row per window: `period` is Kong's period name (response-ratelimiting:
-- `<limit name>_<period>`), `period_date` the window start in seconds, a missing route or
-- service the nil UUID, `ttl` the second after which the row can go.

CREATE TABLE ratelimiting_metrics (
  identifier   TEXT    NOT NULL,
  period       TEXT    NOT NULL,
  period_date  INTEGER NOT NULL,
  service_id   TEXT    NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
  route_id     TEXT    NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
  value        INTEGER NOT NULL DEFAULT 0,
  ttl          INTEGER,
  PRIMARY KEY (identifier, period, period_date, service_id, route_id)
);
CREATE INDEX ratelimiting_metrics_ttl_idx ON ratelimiting_metrics (ttl);

CREATE TABLE response_ratelimiting_metrics (
  identifier   TEXT    NOT NULL,
  period       TEXT    NOT NULL,
  period_date  INTEGER NOT NULL,
  service_id   TEXT    NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
  route_id     TEXT    NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
  value        INTEGER NOT NULL DEFAULT 0,
  ttl          INTEGER,
  PRIMARY KEY (identifier, period, period_date, service_id, route_id)
);
CREATE INDEX response_ratelimiting_metrics_ttl_idx ON response_ratelimiting_metrics (ttl);
