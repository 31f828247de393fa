-- Stores one agent report unless its (host_id, agent_instance, seq) is already stored;
-- no row back means a duplicate delivery.
INSERT INTO reports (
    host_id, agent_instance, seq, agent_version, generated_at_ms, received_at_ms,
    replayed, full_snapshot, interval_ms, spool_dropped, addresses, body
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (host_id, agent_instance, seq) DO NOTHING
RETURNING id
