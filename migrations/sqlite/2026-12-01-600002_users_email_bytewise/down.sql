-- SQLite already compares emails byte by byte (BINARY); PostgreSQL's migration of the
-- same version makes it do the same.
SELECT 1;
