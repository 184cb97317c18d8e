-- The organization leads the search index (btree_gin), so a search matches inside one
-- organization's rows: a small organization's search no longer pays for a large one's.
CREATE EXTENSION IF NOT EXISTS btree_gin;
DROP INDEX memberships_search_idx;
CREATE INDEX memberships_search_idx ON memberships
    USING gin (org_id, (email || ' ' || sort_name) gin_trgm_ops);
