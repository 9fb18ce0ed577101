-- 0003: an index for the mirror calls the platform refused for good.
--
-- `delegation-admin stats` and `check` count them; without an index that count read the whole outbox
-- (three rows per delegation), which grows with the history rather than with the problem.

CREATE INDEX platform_outbox_dead ON platform_outbox (dead_at) WHERE dead_at IS NOT NULL;
