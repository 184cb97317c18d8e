-- TOTP two-factor (issue 14, item 2). A row exists only once enrolment is confirmed by a
-- code; the secret of an enrolment in progress lives in the signed-in session.
-- `secret` is the base32 shared key: it must be readable to compute codes (see
-- src/db/two_factor.rs for why it is not hashed or encrypted). `last_used_step` is the
-- RFC 6238 time step of the last code accepted; a code is accepted only for a later step,
-- so one code never works twice.
CREATE TABLE totp_credentials (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    enabled_at TIMESTAMP NOT NULL,
    last_used_step BIGINT
);
-- Single-use recovery codes: only the SHA-256 of each is kept.
CREATE TABLE totp_recovery_codes (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE UNIQUE INDEX totp_recovery_codes_user_code_idx ON totp_recovery_codes (user_id, code_hash);
