-- 0007_push_limits: the per-app push limits (im.TaskLimits) are checked in
-- the task's own transaction. One row per app and task kind (kind 0: the
-- app's revokes) holds when the last one was accepted and how many were
-- accepted in the current UTC day. CreateTask reaches it under the app's
-- task_counters lock and RevokeTask locks the kind 0 row, so two nodes
-- never both pass one interval and the daily count never goes over.

CREATE TABLE push_limits (
	app       BIGINT   NOT NULL,
	kind      SMALLINT NOT NULL,
	last_ms   BIGINT   NOT NULL DEFAULT 0, -- unix ms
	day       BIGINT   NOT NULL DEFAULT 0, -- unix s of the UTC day's 00:00
	day_count BIGINT   NOT NULL DEFAULT 0,
	PRIMARY KEY (app, kind)
);
