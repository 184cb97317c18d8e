DROP INDEX memberships_search_idx;
CREATE INDEX memberships_search_idx ON memberships
    USING gin ((email || ' ' || sort_name) gin_trgm_ops);
