-- The reports a host's current state folds, oldest first: from its newest
-- full snapshot on, or from the window start ($2) when that is earlier.
SELECT body FROM reports
WHERE host_id = $1
  AND generated_at_ms >= COALESCE(
      (SELECT CASE WHEN generated_at_ms < $2 THEN generated_at_ms ELSE $2 END
       FROM reports
       WHERE host_id = $1 AND full_snapshot = 1
       ORDER BY generated_at_ms DESC, seq DESC
       LIMIT 1),
      $2)
ORDER BY generated_at_ms, seq
LIMIT $3
