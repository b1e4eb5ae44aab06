ALTER TABLE submissions ADD COLUMN fingerprint text;
