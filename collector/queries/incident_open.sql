-- Opens an incident unless one with the same key is already open (the partial
-- unique index incidents_open_key). No row back: the key is open, update it.
-- $12 is the verdict time: opened, updated and last seen all start there.
INSERT INTO incidents (
    site, host, layer, cause, state, status, emitted_by, owner, confidence,
    summary, next_check, verdict, opened_at_ms, updated_at_ms, last_seen_at_ms,
    good_observations, bad_observations
)
VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $10, $11, $12, $12, $12, 0, 0)
ON CONFLICT (site, layer, cause, host) WHERE state = 'open' DO NOTHING
RETURNING id, site, host, layer, cause, state, status, emitted_by, owner, confidence,
    summary, next_check, verdict, opened_at_ms, updated_at_ms, last_seen_at_ms,
    resolved_at_ms, good_observations, bad_observations
