-- 0001_init: apps, accounts, the audience (attribute slots, tag registry),
-- push tasks with per-ordinal acknowledgements, and scheduled pushes.

CREATE TABLE apps (
	sdkappid     BIGINT PRIMARY KEY,
	secret_key   TEXT   NOT NULL,
	admins       TEXT[] NOT NULL,
	callback_url TEXT   NOT NULL DEFAULT '',
	created_at   BIGINT NOT NULL DEFAULT 0
);

-- app_counters is one row per app. Every account or audience write locks
-- it first (row lock held to commit), which serializes an app's writes
-- across nodes; next_ordinal only grows, so ordinals are never reused.
-- task_seq is the last push task Seq: it is incremented in the task's own
-- transaction under the same kind of lock (task_counters), so Seqs follow
-- commit order per app.
CREATE TABLE app_counters (
	app          BIGINT PRIMARY KEY,
	next_ordinal BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE task_counters (
	app      BIGINT PRIMARY KEY,
	last_seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE accounts (
	app       BIGINT   NOT NULL,
	ordinal   BIGINT   NOT NULL,
	id        TEXT     NOT NULL,
	type      SMALLINT NOT NULL CHECK (type IN (0, 1)),
	nick      TEXT     NOT NULL DEFAULT '',
	face_url  TEXT     NOT NULL DEFAULT '',
	kicked_at BIGINT   NOT NULL DEFAULT 0,
	owner     TEXT     NOT NULL DEFAULT '',
	platform  TEXT     NOT NULL DEFAULT '',
	token     TEXT     NOT NULL DEFAULT '',
	attrs     TEXT[]   NOT NULL DEFAULT '{}', -- slot values, trailing empties trimmed
	tags      TEXT[]   NOT NULL DEFAULT '{}', -- insertion order
	PRIMARY KEY (app, ordinal),
	UNIQUE (app, id, type)
);

CREATE INDEX accounts_device_owner ON accounts (app, owner) WHERE type = 1;

CREATE TABLE attr_schema (
	app  BIGINT   NOT NULL,
	slot SMALLINT NOT NULL CHECK (slot BETWEEN 0 AND 9),
	name TEXT     NOT NULL,
	type SMALLINT NOT NULL CHECK (type IN (0, 1)),
	PRIMARY KEY (app, slot)
);

-- tags is the per-app registry of distinct tags; a row goes when its
-- refcount reaches 0, which releases the type binding.
CREATE TABLE tags (
	app      BIGINT   NOT NULL,
	name     TEXT     NOT NULL,
	type     SMALLINT NOT NULL CHECK (type IN (0, 1)),
	refcount BIGINT   NOT NULL CHECK (refcount > 0),
	PRIMARY KEY (app, name)
);

CREATE TABLE push_tasks (
	app          BIGINT   NOT NULL,
	id           TEXT     NOT NULL,
	seq          BIGINT   NOT NULL,
	kind         SMALLINT NOT NULL,
	msg_random   BIGINT   NOT NULL,
	body_hash    TEXT     NOT NULL DEFAULT '',
	from_account TEXT     NOT NULL DEFAULT '',
	condition    TEXT,
	msg_body     TEXT,
	offline      TEXT,
	data_id      TEXT     NOT NULL DEFAULT '',
	online_only  BOOLEAN  NOT NULL,
	expires_at   BIGINT   NOT NULL,
	created_at   BIGINT   NOT NULL,
	total        BIGINT   NOT NULL,
	state        SMALLINT NOT NULL,
	cursor       BIGINT   NOT NULL DEFAULT 0,
	sent         BIGINT   NOT NULL DEFAULT 0,
	online_count BIGINT   NOT NULL DEFAULT 0,
	delivered    BIGINT   NOT NULL DEFAULT 0,
	clicked      BIGINT   NOT NULL DEFAULT 0,
	revoked_at   BIGINT   NOT NULL DEFAULT 0,
	revoke_info  TEXT,
	owner        TEXT     NOT NULL DEFAULT '',
	lease_until  BIGINT   NOT NULL DEFAULT 0,
	hook_cursor  BIGINT   NOT NULL DEFAULT 0,
	hook_state   SMALLINT NOT NULL DEFAULT 0,
	hook_lost    BIGINT   NOT NULL DEFAULT 0,
	online       BYTEA,
	audience     BYTEA    NOT NULL,
	PRIMARY KEY (app, id),
	UNIQUE (app, seq)
);

CREATE INDEX push_tasks_random  ON push_tasks (app, kind, msg_random, created_at);
CREATE INDEX push_tasks_created ON push_tasks (app, created_at);
CREATE INDEX push_tasks_open    ON push_tasks (state) WHERE state IN (1, 2);
CREATE INDEX push_tasks_hooks   ON push_tasks (hook_state, state) WHERE hook_state = 0;

-- push_acks holds one row per acknowledged (task, set, ordinal): concurrent
-- writers on any node insert with ON CONFLICT DO NOTHING and count what
-- they inserted, so no ack is lost to a read-modify-write race.
CREATE TABLE push_acks (
	app     BIGINT   NOT NULL,
	task    TEXT     NOT NULL,
	clicked BOOLEAN  NOT NULL,
	ordinal BIGINT   NOT NULL,
	PRIMARY KEY (app, task, clicked, ordinal),
	FOREIGN KEY (app, task) REFERENCES push_tasks (app, id) ON DELETE CASCADE
);

CREATE TABLE sched_tasks (
	id               BIGSERIAL PRIMARY KEY,
	app              BIGINT   NOT NULL,
	type             TEXT     NOT NULL,
	sched_at         BIGINT   NOT NULL,
	created_at       BIGINT   NOT NULL,
	updated_at       BIGINT   NOT NULL,
	content          TEXT     NOT NULL,
	title            TEXT     NOT NULL DEFAULT '',
	descr            TEXT     NOT NULL DEFAULT '',
	status           TEXT     NOT NULL,
	dispatch_success INTEGER  NOT NULL DEFAULT 0,
	dispatch_err     TEXT     NOT NULL DEFAULT '',
	push_task_id     TEXT     NOT NULL DEFAULT ''
);

CREATE INDEX sched_tasks_due ON sched_tasks (status, sched_at);
CREATE INDEX sched_tasks_app ON sched_tasks (app, created_at);
