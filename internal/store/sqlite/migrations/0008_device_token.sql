-- 0008_device_token: a registration takes its token or Web Push endpoint
-- from any other device of the app that held it (PutPushDevice). Without
-- these indexes that check read every device of the app, so registration
-- cost grew with the number of devices (13 ms of CPU at 50,000). Partial:
-- most devices have only one of the two.

CREATE INDEX push_devices_token ON push_devices (app, token) WHERE token <> '';
CREATE INDEX push_devices_endpoint ON push_devices (app, endpoint) WHERE endpoint <> '';
