-- The documents batch a replica has in hand is written to pull_file_retries when it is claimed, with that replica in
-- `in_batch_of` (its host and storage), and cleared when the batch is done: after a kill -9 or an OOM kill the batch
-- would otherwise stay locked in the PHP app's queue for 24 h; the restarted replica takes its own batch again at once
-- (another replica takes it once its lease ends).
ALTER TABLE pull_file_retries ADD COLUMN in_batch_of text;
