DROP INDEX memberships_search_idx;
