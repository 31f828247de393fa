-- Replaces the verdict of the open incident with this key, but only when its
-- headline (status, emitted_by, owner, confidence, summary, next_check)
-- differs. On PostgreSQL a concurrent writer of the same verdict blocks on the
-- row lock, re-checks this condition against the new row and matches nothing,
-- so one change is recorded once.
UPDATE incidents SET
    status = $5,
    emitted_by = $6,
    owner = $7,
    confidence = $8,
    summary = $9,
    next_check = $10,
    verdict = $11,
    updated_at_ms = $12,
    last_seen_at_ms = CASE WHEN $12 > last_seen_at_ms THEN $12 ELSE last_seen_at_ms END
WHERE site = $1 AND host = $2 AND layer = $3 AND cause = $4 AND state = 'open'
    AND (status <> $5 OR emitted_by <> $6 OR owner <> $7 OR confidence <> $8
        OR summary <> $9 OR next_check <> $10)
RETURNING id, site, host, layer, cause, state, status, emitted_by, owner, confidence,
    summary, next_check, verdict, opened_at_ms, updated_at_ms, last_seen_at_ms,
    resolved_at_ms, good_observations, bad_observations
