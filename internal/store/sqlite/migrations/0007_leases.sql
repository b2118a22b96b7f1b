-- 0005_leases: named, expiring leases (im.LeaseStore). A SQLite store is
-- one process's, so they always go to it; the table keeps the backends
-- alike.

CREATE TABLE leases (
	name        TEXT PRIMARY KEY,
	owner       TEXT NOT NULL,
	lease_until INTEGER NOT NULL -- unix ms
);
