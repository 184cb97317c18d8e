-- Back to the organization id as the search key (2026-11-24-000001).
DROP TRIGGER member_search_insert;
DROP TRIGGER member_search_delete;
DROP TRIGGER member_search_update;
DROP TABLE member_search;

CREATE VIRTUAL TABLE member_search USING fts5(
    text,
    org_id,
    tokenize = 'trigram'
);

CREATE TRIGGER member_search_insert AFTER INSERT ON memberships BEGIN
    INSERT INTO member_search (rowid, text, org_id)
    VALUES (new.rid, new.email || ' ' || new.sort_name, new.org_id);
END;

CREATE TRIGGER member_search_delete AFTER DELETE ON memberships BEGIN
    DELETE FROM member_search WHERE rowid = old.rid;
END;

CREATE TRIGGER member_search_update AFTER UPDATE OF email, sort_name ON memberships BEGIN
    UPDATE member_search SET text = new.email || ' ' || new.sort_name WHERE rowid = new.rid;
END;

INSERT INTO member_search (rowid, text, org_id)
SELECT rid, email || ' ' || sort_name, org_id FROM memberships;
