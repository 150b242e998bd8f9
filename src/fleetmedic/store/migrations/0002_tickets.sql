-- Schema v2: ticket triage (docs/tickets.md). The v1 `tickets` table gains what triage and the
-- ticket KPIs need; `ticket_terms` is the inverted index that similar-ticket search reads (BM25 in
-- SQL), kept in the same transaction as the ticket so it can never drift from it.
ALTER TABLE tickets ADD COLUMN title VARCHAR;
ALTER TABLE tickets ADD COLUMN source VARCHAR;            -- cli, jira, csv, jsonl
ALTER TABLE tickets ADD COLUMN signature VARCHAR;         -- root cause: category + signature
ALTER TABLE tickets ADD COLUMN owner VARCHAR;
ALTER TABLE tickets ADD COLUMN team VARCHAR;
ALTER TABLE tickets ADD COLUMN severity VARCHAR;          -- sev1..sev4
ALTER TABLE tickets ADD COLUMN confidence DOUBLE;
ALTER TABLE tickets ADD COLUMN incident_id VARCHAR;
ALTER TABLE tickets ADD COLUMN duplicate_of VARCHAR;
ALTER TABLE tickets ADD COLUMN nodes JSON;
ALTER TABLE tickets ADD COLUMN auto_answered BOOLEAN;
ALTER TABLE tickets ADD COLUMN first_answer_at TIMESTAMP;
ALTER TABLE tickets ADD COLUMN resolved_at TIMESTAMP;
ALTER TABLE tickets ADD COLUMN triaged_at TIMESTAMP;
ALTER TABLE tickets ADD COLUMN terms INTEGER;             -- indexed length in tokens (BM25)

CREATE TABLE IF NOT EXISTS ticket_terms (
    ticket_id  VARCHAR NOT NULL,
    term       VARCHAR NOT NULL,
    tf         INTEGER NOT NULL
);
