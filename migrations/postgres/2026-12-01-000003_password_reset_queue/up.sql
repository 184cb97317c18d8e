-- "I forgot my password" requests wait here until a background worker handles them, so
-- the request page does the same work (one insert) whether or not the address has an
-- account: looking the account up, making the link, the email and the audit event
-- happen after the answer has gone (OWASP Forgot Password: uniform response time).
CREATE TABLE password_reset_requests (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    ip TEXT,
    request_id TEXT,
    requested_at TIMESTAMP NOT NULL
);
CREATE INDEX password_reset_requests_in_order ON password_reset_requests (requested_at, id);
