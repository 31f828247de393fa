-- Deletes reports generated before the cutoff, except each host's newest full
-- snapshot (the baseline attribution needs even for a silent host).
DELETE FROM reports
WHERE generated_at_ms < $1
    AND id <> COALESCE((
        SELECT newest.id FROM reports newest
        WHERE newest.host_id = reports.host_id AND newest.full_snapshot = 1
        ORDER BY newest.generated_at_ms DESC, newest.seq DESC
        LIMIT 1
    ), -1)
