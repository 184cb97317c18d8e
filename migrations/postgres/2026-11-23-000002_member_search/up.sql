-- Substring search over members' email and name without a full scan.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX memberships_search_idx ON memberships
    USING gin ((email || ' ' || sort_name) gin_trgm_ops);
