-- Emails compare byte by byte, as on SQLite: the platform's account search reads a
-- prefix as a range of the unique email index, and the account list's keyset cursor
-- means the same on both backends, whatever the database's default collation.
ALTER TABLE users ALTER COLUMN email TYPE TEXT COLLATE "C";
