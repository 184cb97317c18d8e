ALTER INDEX memberships_search_idx RESET (fastupdate);
