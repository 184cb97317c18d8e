DROP TRIGGER member_search_update;
DROP TRIGGER member_search_delete;
DROP TRIGGER member_search_insert;
DROP TABLE member_search;
