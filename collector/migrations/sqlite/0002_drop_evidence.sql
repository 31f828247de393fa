-- The evidence of an incident's verdict lives in the verdict itself
-- (incidents.verdict and incident_history.verdict); this copy was written on
-- every incident change and read by nothing.
DROP INDEX IF EXISTS evidence_incident;
DROP TABLE IF EXISTS evidence;
