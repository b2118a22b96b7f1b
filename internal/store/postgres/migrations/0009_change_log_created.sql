-- 0009_change_log_created: when each change_log row was written, so that
-- the scheduled trim (Store.TrimChangesOlder, `--change-retention`) can
-- forget the changes older than a window. now() is the writing
-- transaction's start. Rows written before this migration get the time
-- it ran (now() is stable, so PostgreSQL 11+ adds the column without
-- rewriting the table).

ALTER TABLE change_log ADD COLUMN created TIMESTAMPTZ NOT NULL DEFAULT now();
