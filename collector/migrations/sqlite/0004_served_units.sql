-- Which unit on which host answered a proxy's upstream target, as the collector saw
-- it across hosts (a proxy host's direct probe of the target succeeded while the
-- target's host had that unit listening on the target's port). It ties the unit to
-- the site's request chain after the target changes or the unit stops; see
-- src/incidents/served.rs. Times are Unix milliseconds.
CREATE TABLE served_units (
    host_id    TEXT NOT NULL,
    unit       TEXT NOT NULL,
    target     TEXT NOT NULL,
    proxy_host TEXT NOT NULL,
    seen_ms    INTEGER NOT NULL,
    PRIMARY KEY (host_id, unit, target, proxy_host)
);
