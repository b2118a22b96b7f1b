-- 0004_changes: the per-app change position and the change log
-- (im.ChangeLog). Every committed change of an app's accounts gets the next
-- Seq of that app, 1, 2, 3, ... without gaps, in the same transaction as the
-- change. change_log remembers which ordinals each group of changes
-- touched, so that an audience index snapshot taken at position N is made
-- current by re-reading only the accounts changed after N.

CREATE TABLE change_seq (
	app     INTEGER PRIMARY KEY,
	seq     INTEGER NOT NULL,           -- Seq of the app's last committed change
	trimmed INTEGER NOT NULL DEFAULT 0  -- change_log no longer covers Seqs up to here
);

CREATE TABLE change_log (
	app      INTEGER NOT NULL,
	last     INTEGER NOT NULL, -- Seq of the row's last change
	first    INTEGER NOT NULL, -- Seq of its first
	ordinals BLOB    NOT NULL, -- portable Roaring bitmap of the ordinals changed
	PRIMARY KEY (app, last)
) WITHOUT ROWID;

-- store_meta names this database (store_id), so that a snapshot taken from
-- another database is never loaded into it.
CREATE TABLE store_meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO store_meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))));
