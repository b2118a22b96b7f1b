-- 0004_offline: vendor delivery. push_devices is how a RegistrationID is
-- reached while it has no live connection (its vendor and token or Web
-- Push subscription, and the hash of the device credential of a device
-- nobody owns); target is the ordinal of the account whose pushes it
-- receives. push_outbox is the durable send queue, one row per task and
-- device until the send is finished; push_sends keeps each finished
-- send's result (statistics, trace, loss), and its existence keeps a
-- resumed fan-out from queueing the same send twice.

CREATE TABLE push_devices (
	app        BIGINT NOT NULL,
	reg_id     TEXT   NOT NULL,
	target     BIGINT NOT NULL,
	owner      TEXT   NOT NULL DEFAULT '',
	platform   TEXT   NOT NULL DEFAULT '',
	vendor     TEXT   NOT NULL DEFAULT '',
	token      TEXT   NOT NULL DEFAULT '',
	bundle     TEXT   NOT NULL DEFAULT '',
	endpoint   TEXT   NOT NULL DEFAULT '',
	p256dh     TEXT   NOT NULL DEFAULT '',
	auth       TEXT   NOT NULL DEFAULT '',
	cred_hash  BYTEA,
	updated_at BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (app, reg_id)
);

CREATE INDEX push_devices_target ON push_devices (app, target);

CREATE TABLE push_outbox (
	app         BIGINT NOT NULL,
	task_id     TEXT   NOT NULL,
	reg_id      TEXT   NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	due_at      BIGINT NOT NULL,
	owner       TEXT   NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (app, task_id, reg_id)
);

CREATE INDEX push_outbox_due ON push_outbox (due_at, lease_until);

CREATE TABLE push_sends (
	app      BIGINT  NOT NULL,
	task_id  TEXT    NOT NULL,
	reg_id   TEXT    NOT NULL,
	account  TEXT    NOT NULL DEFAULT '',
	vendor   TEXT    NOT NULL DEFAULT '',
	platform TEXT    NOT NULL DEFAULT '',
	status   INTEGER NOT NULL DEFAULT 0,
	err_code TEXT    NOT NULL DEFAULT '',
	at       BIGINT  NOT NULL,
	posted   INTEGER NOT NULL DEFAULT 0, -- 1 once its webhook event was posted
	PRIMARY KEY (app, task_id, reg_id)
);

CREATE INDEX push_sends_unposted ON push_sends (at) WHERE posted = 0;

-- vendor_until: until when (unix s) a task may be sent through vendors;
-- 0 never (OnlineOnlyFlag 1, OfflinePushInfo.PushFlag 1, or older tasks).
ALTER TABLE push_tasks ADD COLUMN vendor_until BIGINT NOT NULL DEFAULT 0;
