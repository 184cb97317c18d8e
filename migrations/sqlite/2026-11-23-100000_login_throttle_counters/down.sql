DROP TABLE login_attempts;
CREATE TABLE login_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX login_attempts_key_idx ON login_attempts (key, created_at);
CREATE INDEX login_attempts_time_idx ON login_attempts (created_at);
