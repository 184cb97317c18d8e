-- The organization is already a key of the search index here (the btree_gin column of
-- memberships_search_idx, 2026-11-24-000001), and EXPLAIN shows it in the index
-- condition. What kept the planner off the index was GIN's pending list: new members'
-- trigrams wait there, unsorted, until a vacuum, every search reads all of it, and the
-- planner, counting its pages, preferred walking the organization's primary key and
-- testing each row's LIKE. Entries now go into the index itself as members are added
-- (a little more work per insert, none per search).
ALTER INDEX memberships_search_idx SET (fastupdate = off);
SELECT gin_clean_pending_list('memberships_search_idx'::regclass);
