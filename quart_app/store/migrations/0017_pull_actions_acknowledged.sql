-- When Nextcloud confirmed it dropped an action's queue row (its DELETE answered). An applied action was forgotten two
-- days after its first receipt, but a row whose acknowledgement was lost twice, with a restart after each, comes back
-- after its second 24 h lock, or later if the app was down: forgotten by then, the old action was applied again over
-- newer ones. Now a row is acknowledged again until Nextcloud confirms it (also after a restart), and its record is
-- kept until two days after that. Rows from before this migration count as not confirmed: the next acknowledgement
-- names them (Nextcloud ignores ids it no longer has).
ALTER TABLE pull_actions ADD COLUMN acked_at timestamptz;
CREATE INDEX pull_actions_unacknowledged ON pull_actions (seq) WHERE acked_at IS NULL;
