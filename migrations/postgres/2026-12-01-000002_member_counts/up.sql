-- Exact member counts per organization and membership status, read by the Users tab
-- header in O(1) (issue 12, item 1). Every insert, delete and status change of a
-- membership adjusts them in its own transaction through src/db/memberships.rs, with a
-- relative upsert (n = n + delta), so concurrent changes never lose one.
CREATE TABLE member_counts (
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    n BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, status)
);

INSERT INTO member_counts (org_id, status, n)
SELECT org_id, status, COUNT(*) FROM memberships GROUP BY org_id, status;
