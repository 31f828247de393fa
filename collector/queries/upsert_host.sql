-- Folds a batch's newly stored reports into their hosts' rows (appended to
-- `INSERT INTO hosts … VALUES …`, one row per host): seen times widen, the
-- descriptive fields follow the newest report by generated_at_ms (a replayed
-- old report does not overwrite them), and the report count grows by the
-- number of reports.
ON CONFLICT (host_id) DO UPDATE SET
    first_seen_ms = CASE WHEN excluded.first_seen_ms < hosts.first_seen_ms
        THEN excluded.first_seen_ms ELSE hosts.first_seen_ms END,
    last_seen_ms = CASE WHEN excluded.last_seen_ms > hosts.last_seen_ms
        THEN excluded.last_seen_ms ELSE hosts.last_seen_ms END,
    agent_version = CASE WHEN excluded.last_generated_at_ms >= hosts.last_generated_at_ms
        THEN excluded.agent_version ELSE hosts.agent_version END,
    agent_instance = CASE WHEN excluded.last_generated_at_ms >= hosts.last_generated_at_ms
        THEN excluded.agent_instance ELSE hosts.agent_instance END,
    interval_ms = CASE WHEN excluded.last_generated_at_ms >= hosts.last_generated_at_ms
        THEN excluded.interval_ms ELSE hosts.interval_ms END,
    addresses = CASE WHEN excluded.last_generated_at_ms >= hosts.last_generated_at_ms
        THEN excluded.addresses ELSE hosts.addresses END,
    spool_dropped = CASE WHEN excluded.last_generated_at_ms >= hosts.last_generated_at_ms
        THEN excluded.spool_dropped ELSE hosts.spool_dropped END,
    last_generated_at_ms = CASE WHEN excluded.last_generated_at_ms > hosts.last_generated_at_ms
        THEN excluded.last_generated_at_ms ELSE hosts.last_generated_at_ms END,
    report_count = hosts.report_count + excluded.report_count
