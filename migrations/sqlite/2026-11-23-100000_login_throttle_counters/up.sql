-- Sign-in throttling moves from one row per failure (checked before the hash, written
-- after it: parallel requests all passed the check) to one counter row per key that is
-- reserved atomically before any hash. `attempts` counts checked attempts in the window
-- that started at `window_started_at`; `refused` counts the attempts turned away in it
-- (the audit trail records only the first refusal of a window).
DROP TABLE login_attempts;
CREATE TABLE login_attempts (
    key TEXT PRIMARY KEY NOT NULL,
    window_started_at TIMESTAMP NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    refused BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX login_attempts_window_idx ON login_attempts (window_started_at);
