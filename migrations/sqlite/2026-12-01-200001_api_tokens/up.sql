-- Per-organization API tokens (issue 15, item 1): the bearer credential of the SCIM
-- server. Only the SHA-256 of the token is kept. `scopes` is a comma list (`scim`,
-- `read`); `role_id` is the role SCIM gives the members it creates, and bounds the rank
-- the token acts with. `created_by` is null for a token minted on the command line.
-- `expires_at` null means the token never expires.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    role_id TEXT NOT NULL REFERENCES roles (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_by_email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_tokens_org_created_idx ON api_tokens (org_id, created_at, id);
