-- 0009_push_limits: the per-app push limits (im.TaskLimits) are checked in
-- the task's own transaction, as on PostgreSQL. One row per app and task
-- kind (kind 0: the app's revokes) holds when the last one was accepted
-- and how many were accepted in the current UTC day; the one writer reads
-- and updates it in the job that creates the task or revokes it.

CREATE TABLE push_limits (
	app       INTEGER NOT NULL,
	kind      INTEGER NOT NULL,
	last_ms   INTEGER NOT NULL DEFAULT 0, -- unix ms
	day       INTEGER NOT NULL DEFAULT 0, -- unix s of the UTC day's 00:00
	day_count INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (app, kind)
) WITHOUT ROWID;
