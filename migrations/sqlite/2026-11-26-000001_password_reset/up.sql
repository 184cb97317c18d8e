-- Password reset links (issue 14, item 1): only the SHA-256 of each token is kept; a link
-- is consumed by one conditional UPDATE of used_at, and dies at expires_at.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX password_resets_by_user ON password_resets (user_id, used_at);
