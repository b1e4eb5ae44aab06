ALTER TABLE submissions ADD COLUMN fingerprint TEXT;
