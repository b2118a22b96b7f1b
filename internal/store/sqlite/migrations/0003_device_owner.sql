-- 0003_device_owner: find a user's devices without a scan, to bound how
-- many one user registers and to delete them with the user.

CREATE INDEX accounts_device_owner ON accounts (app, owner) WHERE type = 1;
