-- The change feed after a cursor, oldest first, each change with the
-- incident's current row. Ids are assigned in commit order (see store.rs).
SELECT c.id AS change_id, c.kind AS change_kind,
    i.id, i.site, i.host, i.layer, i.cause, i.state, i.status, i.emitted_by, i.owner,
    i.confidence, i.summary, i.next_check, i.verdict, i.opened_at_ms, i.updated_at_ms,
    i.last_seen_at_ms, i.resolved_at_ms, i.good_observations, i.bad_observations
FROM incident_changes c
JOIN incidents i ON i.id = c.incident_id
WHERE c.id > $1
ORDER BY c.id
LIMIT $2
