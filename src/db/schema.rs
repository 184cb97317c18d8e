// Written by hand: the same portable SQL types serve both backends.

diesel::table! {
    organizations (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        created_at -> Timestamp,
        lock_version -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        first_name -> Text,
        last_name -> Text,
        password_hash -> Nullable<Text>,
        platform_role -> Text,
        status -> Text,
        auth_method -> Text,
        created_at -> Timestamp,
        last_active_at -> Nullable<Timestamp>,
        signin_alerts -> Bool,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        org_id -> Text,
        key -> Text,
        name -> Text,
        permissions -> Text,
        rank -> BigInt,
        builtin -> Bool,
        created_at -> Timestamp,
        member_count -> BigInt,
    }
}

diesel::table! {
    memberships (org_id, user_id) {
        org_id -> Text,
        user_id -> Text,
        role_id -> Text,
        status -> Text,
        email -> Text,
        sort_name -> Text,
        created_at -> Timestamp,
        last_active_at -> Timestamp,
        access_until -> Nullable<Timestamp>,
        external_id -> Nullable<Text>,
        updated_at -> Nullable<Timestamp>,
        user_name -> Nullable<Text>,
        scim_profile -> Nullable<Text>,
        auth_method -> Text,
    }
}

diesel::table! {
    groups (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        description -> Text,
        role_id -> Nullable<Text>,
        owner_id -> Nullable<Text>,
        created_at -> Timestamp,
        external_id -> Nullable<Text>,
        updated_at -> Nullable<Timestamp>,
        member_count -> BigInt,
        members_version -> BigInt,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> Text,
        user_id -> Text,
        org_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    pools (id) {
        id -> Text,
        org_id -> Text,
        parent_id -> Nullable<Text>,
        name -> Text,
        owner_id -> Nullable<Text>,
        created_at -> Timestamp,
        member_count -> BigInt,
    }
}

diesel::table! {
    pool_members (pool_id, user_id) {
        pool_id -> Text,
        user_id -> Text,
        org_id -> Text,
        role_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        org_id -> Text,
        email -> Text,
        first_name -> Text,
        last_name -> Text,
        role_id -> Text,
        token_hash -> Text,
        status -> Text,
        invited_by -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        last_sent_at -> Timestamp,
        send_count -> BigInt,
        accepted_at -> Nullable<Timestamp>,
        accepted_user_id -> Nullable<Text>,
        access_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    invitation_groups (invitation_id, group_id) {
        invitation_id -> Text,
        group_id -> Text,
    }
}

diesel::table! {
    invitation_pools (invitation_id, pool_id) {
        invitation_id -> Text,
        pool_id -> Text,
        role_id -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        data -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    email_outbox (id) {
        id -> Text,
        to_addr -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        created_at -> Timestamp,
        attempts -> BigInt,
        next_attempt_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        ref_id -> Nullable<Text>,
        failed_at -> Nullable<Timestamp>,
        claimed_by -> Nullable<Text>,
        send_before -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        org_id -> Nullable<Text>,
        actor_id -> Nullable<Text>,
        actor_email -> Nullable<Text>,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        target_label -> Nullable<Text>,
        details -> Text,
        ip -> Nullable<Text>,
        request_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    login_attempts (key) {
        key -> Text,
        window_started_at -> Timestamp,
        attempts -> BigInt,
        refused -> BigInt,
    }
}

diesel::table! {
    setup_tokens (token_hash) {
        token_hash -> Text,
        purpose -> Text,
        user_id -> Nullable<Text>,
        org_id -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    totp_credentials (user_id) {
        user_id -> Text,
        secret -> Text,
        enabled_at -> Timestamp,
        last_used_step -> Nullable<BigInt>,
    }
}

diesel::table! {
    totp_recovery_codes (id) {
        id -> Text,
        user_id -> Text,
        code_hash -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    password_resets (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    password_reset_requests (id) {
        id -> Text,
        email -> Text,
        ip -> Nullable<Text>,
        request_id -> Nullable<Text>,
        requested_at -> Timestamp,
        owners_browser -> Nullable<Text>,
    }
}

diesel::table! {
    org_two_factor_policies (org_id) {
        org_id -> Text,
        required -> Text,
        grace_days -> BigInt,
        effective_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        scopes -> Text,
        role_id -> Text,
        token_hash -> Text,
        created_by -> Nullable<Text>,
        created_by_email -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    member_counts (org_id, status) {
        org_id -> Text,
        status -> Text,
        n -> BigInt,
    }
}

diesel::table! {
    scim_cursors (token_id, position) {
        token_id -> Text,
        position -> BigInt,
        after_created_at -> Timestamp,
        after_user_id -> Text,
        kept_at -> Timestamp,
    }
}

diesel::joinable!(roles -> organizations (org_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(memberships -> organizations (org_id));
diesel::joinable!(memberships -> roles (role_id));
diesel::joinable!(member_counts -> organizations (org_id));
diesel::joinable!(group_members -> groups (group_id));
diesel::joinable!(groups -> roles (role_id));
diesel::joinable!(pool_members -> pools (pool_id));
diesel::joinable!(pool_members -> roles (role_id));
diesel::joinable!(invitations -> roles (role_id));
diesel::joinable!(api_tokens -> roles (role_id));
diesel::joinable!(api_tokens -> organizations (org_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    users,
    roles,
    memberships,
    member_counts,
    groups,
    group_members,
    pools,
    pool_members,
    invitations,
    invitation_groups,
    invitation_pools,
    sessions,
    email_outbox,
    audit_events,
    login_attempts,
    setup_tokens,
    totp_credentials,
    org_two_factor_policies,
    password_reset_requests,
    api_tokens,
    scim_cursors,
);
