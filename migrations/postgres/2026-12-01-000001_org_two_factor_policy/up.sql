-- An organization's two-factor requirement (issue 14, item 2, "Organization policy").
-- No row means nothing is required. `required` is `none`, `admins` or `all`; the
-- deadline is `effective_at` + `grace_days` days, computed, not stored, so that changing
-- the grace period moves it without a second column to keep in step.
CREATE TABLE org_two_factor_policies (
    org_id TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    required TEXT NOT NULL,
    grace_days BIGINT NOT NULL,
    effective_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
