-- Where an identity provider paging through Users left off, kept in the database so
-- that every instance behind a load balancer continues from it (it was kept in each
-- process's memory: a page served by another instance started from an OFFSET, which
-- skips a member for each one removed since the import began).
CREATE TABLE scim_cursors (
    token_id TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    after_created_at TIMESTAMP NOT NULL,
    after_user_id TEXT NOT NULL,
    kept_at TIMESTAMP NOT NULL,
    PRIMARY KEY (token_id, position)
);
CREATE INDEX scim_cursors_kept_idx ON scim_cursors (kept_at);
