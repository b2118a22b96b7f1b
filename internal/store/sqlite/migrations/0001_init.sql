-- 0001_init: apps, accounts with their attributes and tags, attribute
-- slots, and the per-app tag registry.

CREATE TABLE apps (
	sdkappid     INTEGER PRIMARY KEY,
	secret_key   TEXT    NOT NULL,
	admins       TEXT    NOT NULL,            -- JSON array of UserIDs
	callback_url TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL DEFAULT 0
);

-- app_seq hands out ordinals: next_ordinal only grows, so an ordinal is
-- never reused, even after its account is deleted.
CREATE TABLE app_seq (
	app          INTEGER PRIMARY KEY,
	next_ordinal INTEGER NOT NULL
);

-- accounts holds UserIDs (type 0) and RegistrationIDs (type 1). attrs is a
-- JSON array of slot values with trailing empty slots trimmed, tags a JSON
-- array in insertion order; NULL means none. attrs and tags may lag behind
-- account_log (see there). key is never reused (AUTOINCREMENT), so a log
-- image addressed to a deleted account can never touch another one.
CREATE TABLE accounts (
	key       INTEGER PRIMARY KEY AUTOINCREMENT,
	app       INTEGER NOT NULL,
	ordinal   INTEGER NOT NULL,
	id        TEXT    NOT NULL,
	type      INTEGER NOT NULL CHECK (type IN (0, 1)),
	nick      TEXT    NOT NULL DEFAULT '',
	face_url  TEXT    NOT NULL DEFAULT '',
	kicked_at INTEGER NOT NULL DEFAULT 0,
	owner     TEXT    NOT NULL DEFAULT '',
	platform  TEXT    NOT NULL DEFAULT '',
	token     TEXT    NOT NULL DEFAULT '',
	attrs     TEXT,
	tags      TEXT,
	UNIQUE (app, ordinal),
	UNIQUE (app, id, type)
);

CREATE TABLE attr_schema (
	app  INTEGER NOT NULL,
	slot INTEGER NOT NULL CHECK (slot BETWEEN 0 AND 9),
	name TEXT    NOT NULL,
	type INTEGER NOT NULL CHECK (type IN (0, 1)),
	PRIMARY KEY (app, slot)
) WITHOUT ROWID;

-- tags is the per-app registry of distinct tags: the account type a tag is
-- bound to and how many accounts carry it. A row is deleted when refcount
-- reaches 0, which releases the binding.
CREATE TABLE tags (
	app      INTEGER NOT NULL,
	name     TEXT    NOT NULL,
	type     INTEGER NOT NULL CHECK (type IN (0, 1)),
	refcount INTEGER NOT NULL CHECK (refcount > 0),
	PRIMARY KEY (app, name)
) WITHOUT ROWID;

-- account_log makes attribute and tag edits durable cheaply: each group
-- commit appends one row holding the after-images (key, attrs, tags) of
-- the accounts it changed, instead of rewriting one accounts page per
-- account. The store folds images into accounts in the background and
-- deletes the rows it has folded; at open it replays what is left.
CREATE TABLE account_log (
	seq    INTEGER PRIMARY KEY,
	images BLOB    NOT NULL
);
