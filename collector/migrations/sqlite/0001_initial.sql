-- gw502 collector store, SQLite schema v1. Times are Unix milliseconds (INTEGER).
-- Kept column-for-column in step with migrations/postgres/0001_initial.sql: the
-- queries in src/store and queries/ run unchanged on both backends.

CREATE TABLE hosts (
    host_id              TEXT PRIMARY KEY NOT NULL,
    first_seen_ms        INTEGER NOT NULL,
    last_seen_ms         INTEGER NOT NULL,
    last_generated_at_ms INTEGER NOT NULL,
    agent_version        TEXT NOT NULL,
    agent_instance       TEXT NOT NULL,
    interval_ms          INTEGER NOT NULL,
    addresses            TEXT NOT NULL,
    spool_dropped        INTEGER NOT NULL,
    report_count         INTEGER NOT NULL
);

CREATE TABLE reports (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id         TEXT NOT NULL,
    agent_instance  TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    agent_version   TEXT NOT NULL,
    generated_at_ms INTEGER NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    replayed        INTEGER NOT NULL,
    full_snapshot   INTEGER NOT NULL,
    interval_ms     INTEGER NOT NULL,
    spool_dropped   INTEGER NOT NULL,
    addresses       TEXT NOT NULL,
    body            BLOB NOT NULL
);
-- Per host: an agent instance id only has to be unique on its own host.
CREATE UNIQUE INDEX reports_instance_seq ON reports (host_id, agent_instance, seq);
CREATE INDEX reports_host_generated ON reports (host_id, generated_at_ms, seq);
CREATE INDEX reports_host_full ON reports (host_id, full_snapshot, generated_at_ms, seq);
CREATE INDEX reports_generated ON reports (generated_at_ms);

CREATE TABLE sites (
    name   TEXT PRIMARY KEY NOT NULL,
    url    TEXT NOT NULL,
    origin TEXT NOT NULL,
    hosts  TEXT NOT NULL,
    labels TEXT NOT NULL
);

CREATE TABLE observations (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    site     TEXT NOT NULL,
    vantage  TEXT NOT NULL,
    target   TEXT NOT NULL,
    status   INTEGER NOT NULL,
    outcome  TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    body     BLOB NOT NULL
);
CREATE INDEX observations_site_at ON observations (site, at_ms);
CREATE INDEX observations_at ON observations (at_ms);

CREATE TABLE incidents (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    site              TEXT NOT NULL,
    host              TEXT NOT NULL,
    layer             TEXT NOT NULL,
    cause             TEXT NOT NULL,
    state             TEXT NOT NULL,
    status            INTEGER NOT NULL,
    emitted_by        TEXT NOT NULL,
    owner             TEXT NOT NULL,
    confidence        REAL NOT NULL,
    summary           TEXT NOT NULL,
    next_check        TEXT NOT NULL,
    verdict           BLOB NOT NULL,
    opened_at_ms      INTEGER NOT NULL,
    updated_at_ms     INTEGER NOT NULL,
    last_seen_at_ms   INTEGER NOT NULL,
    resolved_at_ms    INTEGER,
    good_observations INTEGER NOT NULL DEFAULT 0,
    bad_observations  INTEGER NOT NULL DEFAULT 0
);
-- At most one open incident per key; the target of ON CONFLICT in upserts.
CREATE UNIQUE INDEX incidents_open_key ON incidents (site, layer, cause, host) WHERE state = 'open';
-- list_incidents orders by (updated_at_ms DESC, id DESC): one index per filter shape.
CREATE INDEX incidents_state_updated ON incidents (state, updated_at_ms, id);
CREATE INDEX incidents_updated ON incidents (updated_at_ms, id);
CREATE INDEX incidents_site_state_updated ON incidents (site, state, updated_at_ms, id);
CREATE INDEX incidents_site_updated ON incidents (site, updated_at_ms, id);
CREATE INDEX incidents_state_resolved ON incidents (state, resolved_at_ms);

CREATE TABLE evidence (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id    INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    source         TEXT NOT NULL,
    host           TEXT NOT NULL,
    observed_at_ms INTEGER NOT NULL,
    detail         TEXT NOT NULL
);
CREATE INDEX evidence_incident ON evidence (incident_id);

CREATE TABLE incident_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at_ms       INTEGER NOT NULL,
    state       TEXT NOT NULL,
    status      INTEGER NOT NULL,
    summary     TEXT NOT NULL,
    verdict     BLOB NOT NULL
);
CREATE INDEX incident_history_incident ON incident_history (incident_id, id);

-- The change feed: one row per opened/updated/resolved, in commit order.
CREATE TABLE incident_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    at_ms       INTEGER NOT NULL
);
CREATE INDEX incident_changes_incident ON incident_changes (incident_id);

CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id   INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    receiver      TEXT NOT NULL,
    event         TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    error         TEXT NOT NULL,
    http_status   INTEGER NOT NULL
);
CREATE INDEX deliveries_incident ON deliveries (incident_id, id);

CREATE TABLE leases (
    name          TEXT PRIMARY KEY NOT NULL,
    holder        TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
