DROP INDEX pools_sibling_name_idx;
