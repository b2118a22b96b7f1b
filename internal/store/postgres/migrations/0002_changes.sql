-- 0002_changes: the per-app change position and change log (im.ChangeLog).
-- Every committed change of an app's accounts gets the next Seq of that
-- app, 1, 2, 3, ... without gaps, in the same transaction as the change
-- (which holds the app's app_counters row lock, so Seqs follow commit
-- order across nodes). change_log keeps one row per change: which ordinal
-- it touched.

CREATE TABLE change_seq (
	app     BIGINT PRIMARY KEY,
	seq     BIGINT NOT NULL,           -- Seq of the app's last committed change
	trimmed BIGINT NOT NULL DEFAULT 0  -- change_log no longer covers Seqs up to here
);

CREATE TABLE change_log (
	app     BIGINT NOT NULL,
	seq     BIGINT NOT NULL,
	ordinal BIGINT NOT NULL,
	PRIMARY KEY (app, seq)
);

-- store_meta names this database, so that an index snapshot taken from
-- another database is never loaded into it.
CREATE TABLE store_meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

INSERT INTO store_meta (key, value) VALUES ('store_id', md5(random()::text || clock_timestamp()::text));
