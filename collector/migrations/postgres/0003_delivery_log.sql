-- The delivery log becomes the source of truth for notifications: one row per
-- incident change and receiver (unique), written in the transaction of the
-- change, claimed by a sender with a lease, marked done after the receiver
-- answered. Kept column-for-column in step with migrations/sqlite/0003.
ALTER TABLE deliveries ADD COLUMN change_id BIGINT;
ALTER TABLE deliveries ADD COLUMN owner_override TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN incident BYTEA NOT NULL DEFAULT '\x'::bytea;
ALTER TABLE deliveries ADD COLUMN next_attempt_at_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN claim_expires_at_ms BIGINT NOT NULL DEFAULT 0;
-- One delivery per change and receiver. Rows written before this migration
-- have no change_id (NULLs are distinct) and are never claimed.
CREATE UNIQUE INDEX deliveries_change_receiver ON deliveries (change_id, receiver);
-- What a sender claims: pending rows of one receiver in order.
CREATE INDEX deliveries_pending ON deliveries (receiver, state, id);
-- Deliveries queued in memory by an older version are gone with it.
UPDATE deliveries SET state = 'failed', error = 'abandoned by an upgrade' WHERE state = 'pending';
