CREATE TABLE organizations (
    id TEXT PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    lock_version BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    platform_role TEXT NOT NULL DEFAULT 'none' CHECK (platform_role IN ('none', 'operator', 'admin')),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    auth_method TEXT NOT NULL DEFAULT 'password',
    created_at TIMESTAMP NOT NULL,
    last_active_at TIMESTAMP
);
CREATE INDEX users_created_idx ON users (created_at, id);

CREATE TABLE roles (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL DEFAULT '',
    rank BIGINT NOT NULL,
    builtin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, key)
);

-- email and sort_name are copies (byte-ordered, as on SQLite, so keyset cursors mean the
-- same on both backends) of the user's, so each sort of the Users tab is served
-- by an index that starts with org_id.
CREATE TABLE memberships (
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    email TEXT COLLATE "C" NOT NULL,
    sort_name TEXT COLLATE "C" NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_active_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_org_email_idx ON memberships (org_id, email, user_id);
CREATE INDEX memberships_org_status_email_idx ON memberships (org_id, status, email, user_id);
CREATE INDEX memberships_org_name_idx ON memberships (org_id, sort_name, user_id);
CREATE INDEX memberships_org_status_name_idx ON memberships (org_id, status, sort_name, user_id);
CREATE INDEX memberships_org_created_idx ON memberships (org_id, created_at, user_id);
CREATE INDEX memberships_org_status_created_idx ON memberships (org_id, status, created_at, user_id);
CREATE INDEX memberships_org_active_idx ON memberships (org_id, last_active_at, user_id);
CREATE INDEX memberships_org_status_active_idx ON memberships (org_id, status, last_active_at, user_id);
CREATE INDEX memberships_org_role_idx ON memberships (org_id, role_id, email, user_id);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE groups (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    role_id TEXT REFERENCES roles (id),
    owner_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, name)
);
CREATE INDEX groups_owner_idx ON groups (org_id, owner_id);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON group_members (org_id, user_id);

CREATE TABLE pools (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    parent_id TEXT REFERENCES pools (id),
    name TEXT NOT NULL,
    owner_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX pools_org_parent_idx ON pools (org_id, parent_id, name);
CREATE INDEX pools_owner_idx ON pools (org_id, owner_id);

CREATE TABLE pool_members (
    pool_id TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (pool_id, user_id)
);
CREATE INDEX pool_members_user_idx ON pool_members (org_id, user_id);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    role_id TEXT NOT NULL REFERENCES roles (id),
    token_hash TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'cancelled')),
    invited_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    last_sent_at TIMESTAMP NOT NULL,
    send_count BIGINT NOT NULL DEFAULT 1,
    accepted_at TIMESTAMP,
    accepted_user_id TEXT REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX invitations_one_pending_idx ON invitations (org_id, email) WHERE status = 'pending';
CREATE INDEX invitations_org_status_idx ON invitations (org_id, status, created_at, id);
CREATE INDEX invitations_org_created_idx ON invitations (org_id, created_at, id);

CREATE TABLE invitation_groups (
    invitation_id TEXT NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (invitation_id, group_id)
);

CREATE TABLE invitation_pools (
    invitation_id TEXT NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    pool_id TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    role_id TEXT REFERENCES roles (id),
    PRIMARY KEY (invitation_id, pool_id)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    data TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE email_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    last_error TEXT
);
CREATE INDEX email_outbox_due_idx ON email_outbox (next_attempt_at) WHERE sent_at IS NULL;

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT,
    actor_id TEXT,
    actor_email TEXT,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    target_label TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    ip TEXT,
    request_id TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_org_time_idx ON audit_events (org_id, created_at, id);
CREATE INDEX audit_org_actor_idx ON audit_events (org_id, actor_email, created_at, id);
CREATE INDEX audit_org_target_idx ON audit_events (org_id, target_id, created_at, id);
CREATE INDEX audit_org_action_idx ON audit_events (org_id, action, created_at, id);
CREATE INDEX audit_time_idx ON audit_events (created_at, id);

CREATE TABLE login_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX login_attempts_key_idx ON login_attempts (key, created_at);
CREATE INDEX login_attempts_time_idx ON login_attempts (created_at);

CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('first_admin', 'account')),
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    org_id TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
