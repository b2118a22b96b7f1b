-- 0003_leases: named, expiring leases (im.LeaseStore), so that work one
-- node at a time must do (the scheduler's due pass, posting webhooks) has
-- one holder across every node on the database.

CREATE TABLE leases (
	name        TEXT PRIMARY KEY,
	owner       TEXT NOT NULL,
	lease_until BIGINT NOT NULL -- unix ms
);
