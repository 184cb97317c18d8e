-- A search whose term is common walks the organization's sort index and tests each entry
-- until a page of matches is found (db::memberships, `walk_query`). With the searched
-- columns carried in the index, PostgreSQL tests the entry itself in an index-only scan;
-- before, it read the table row of every entry it passed, each on its own heap page. At a
-- million members `q=hopper` (no match among the first 11,719 emails) walked in 28 ms
-- with a heap fetch per entry and in 5 ms index-only. SQLite's indexes carry the same
-- columns since 2026-12-01-700001.
DROP INDEX memberships_org_email_idx;
CREATE INDEX memberships_org_email_idx ON memberships (org_id, email, user_id) INCLUDE (sort_name);
DROP INDEX memberships_org_name_idx;
CREATE INDEX memberships_org_name_idx ON memberships (org_id, sort_name, user_id) INCLUDE (email);
DROP INDEX memberships_org_status_email_idx;
CREATE INDEX memberships_org_status_email_idx ON memberships (org_id, status, email, user_id) INCLUDE (sort_name);
DROP INDEX memberships_org_status_name_idx;
CREATE INDEX memberships_org_status_name_idx ON memberships (org_id, status, sort_name, user_id) INCLUDE (email);
