-- 0002_push: push tasks (each one row, its audience a serialized Roaring
-- bitmap), their acknowledgement sets, and scheduled pushes.

-- push_tasks holds every accepted push. The row is also every recipient's
-- stored copy: nothing is written per recipient. The audience and online
-- blobs come last so that scans that do not read them skip their overflow
-- pages.
CREATE TABLE push_tasks (
	key          INTEGER PRIMARY KEY AUTOINCREMENT,
	app          INTEGER NOT NULL,
	id           TEXT    NOT NULL,
	seq          INTEGER NOT NULL,
	kind         INTEGER NOT NULL,
	msg_random   INTEGER NOT NULL,
	body_hash    TEXT    NOT NULL DEFAULT '',
	from_account TEXT    NOT NULL DEFAULT '',
	condition    TEXT,                        -- JSON, NULL for everyone
	msg_body     TEXT,                        -- JSON array, NULL for a notification
	offline      TEXT,                        -- OfflinePushInfo JSON
	data_id      TEXT    NOT NULL DEFAULT '',
	online_only  INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,            -- 0: never
	created_at   INTEGER NOT NULL,
	total        INTEGER NOT NULL,
	state        INTEGER NOT NULL,
	cursor       INTEGER NOT NULL DEFAULT 0,
	sent         INTEGER NOT NULL DEFAULT 0,
	online_count INTEGER NOT NULL DEFAULT 0,
	delivered    INTEGER NOT NULL DEFAULT 0,
	clicked      INTEGER NOT NULL DEFAULT 0,
	revoked_at   INTEGER NOT NULL DEFAULT 0,
	revoke_info  TEXT,
	owner        TEXT    NOT NULL DEFAULT '',
	lease_until  INTEGER NOT NULL DEFAULT 0,  -- unix ms
	hook_cursor  INTEGER NOT NULL DEFAULT 0,
	hook_state   INTEGER NOT NULL DEFAULT 0,
	hook_lost    INTEGER NOT NULL DEFAULT 0,
	online       BLOB,
	audience     BLOB    NOT NULL,
	UNIQUE (app, id),
	UNIQUE (app, seq)
);

CREATE INDEX push_tasks_random  ON push_tasks (app, kind, msg_random, created_at);
CREATE INDEX push_tasks_created ON push_tasks (app, created_at);
CREATE INDEX push_tasks_kind    ON push_tasks (app, kind, created_at);
CREATE INDEX push_tasks_open    ON push_tasks (state) WHERE state IN (1, 2);
CREATE INDEX push_tasks_hooks   ON push_tasks (hook_state, state) WHERE hook_state = 0;

-- push_acks holds a task's delivered and clicked sets, rewritten as the
-- delivery hub reports acknowledgements; kept apart so that those rewrites
-- do not touch the task row's audience.
CREATE TABLE push_acks (
	task      INTEGER PRIMARY KEY REFERENCES push_tasks (key) ON DELETE CASCADE,
	delivered BLOB,
	clicked   BLOB
);

-- sched_tasks holds scheduled pushes (spec §7.4). id is the public TaskID.
CREATE TABLE sched_tasks (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	app              INTEGER NOT NULL,
	type             TEXT    NOT NULL,
	sched_at         INTEGER NOT NULL,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	content          TEXT    NOT NULL,
	title            TEXT    NOT NULL DEFAULT '',
	descr            TEXT    NOT NULL DEFAULT '',
	status           TEXT    NOT NULL,
	dispatch_success INTEGER NOT NULL DEFAULT 0,
	dispatch_err     TEXT    NOT NULL DEFAULT '',
	push_task_id     TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX sched_tasks_due ON sched_tasks (status, sched_at);
CREATE INDEX sched_tasks_app ON sched_tasks (app, created_at);
