-- 0008_send_account: all_member_push_trace reads one recipient's results
-- of a task (AccountSends); without this index it read every result of
-- the task, 100,000 rows for a 100,000-device push.

CREATE INDEX push_sends_account ON push_sends (app, task_id, account);
