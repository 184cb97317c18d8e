-- The account's sign-in method on each of its memberships, for the Users tab's `auth=`
-- filter. Read through the account row, the filter walked the organization's sort index
-- and looked up each member's account: the whole organization where the method is rare
-- there (2.3–5 s at 200,000 members with nobody on two-factor). On the membership, the
-- method has an index per organization, as a role has, and its few holders are read by it.
-- No account changes its method between the copy below and the triggers that keep it
-- (an older instance still running while this one migrates).
LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE;
ALTER TABLE memberships ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'password';
UPDATE memberships SET auth_method = users.auth_method
FROM users
WHERE users.id = memberships.user_id AND users.auth_method <> 'password';
CREATE INDEX memberships_org_auth_idx ON memberships (org_id, auth_method, email, user_id);

-- A membership takes its account's method as it is added, whatever the statement gave.
-- The account row is locked as an update of it would be: a change of method either
-- commits before, and is read here, or waits for this transaction, and its trigger below
-- then finds the new membership. Without the lock, a membership added while its account
-- turned two-factor on elsewhere kept the old method. Not `FOR SHARE`: two transactions
-- each sharing the row and then updating it (adding a membership, then setting the
-- account's name) would deadlock; the callers lock the account this way already.
CREATE FUNCTION memberships_take_auth_method() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT auth_method INTO NEW.auth_method FROM users WHERE id = NEW.user_id
    FOR NO KEY UPDATE;
    RETURN NEW;
END;
$$;

CREATE TRIGGER memberships_take_auth_method BEFORE INSERT ON memberships
    FOR EACH ROW EXECUTE FUNCTION memberships_take_auth_method();

CREATE FUNCTION users_auth_method_reaches_memberships() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE memberships SET auth_method = NEW.auth_method WHERE user_id = NEW.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_auth_method_reaches_memberships AFTER UPDATE OF auth_method ON users
    FOR EACH ROW WHEN (OLD.auth_method IS DISTINCT FROM NEW.auth_method)
    EXECUTE FUNCTION users_auth_method_reaches_memberships();
