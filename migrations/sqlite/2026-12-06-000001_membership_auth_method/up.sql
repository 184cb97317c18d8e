-- The account's sign-in method on each of its memberships, for the Users tab's `auth=`
-- filter. Read through the account row, the filter walked the organization's sort index
-- and looked up each member's account: the whole organization where the method is rare
-- there (2.3–5 s at 200,000 members with nobody on two-factor). On the membership, the
-- method has an index per organization, as a role has, and its few holders are read by it.
-- A membership takes its account's method when it is added: `memberships::insert_many`
-- gives it, from the account its caller read, and a trigger corrects a stale one (an
-- account read before its transaction began). Every change of an account's method
-- reaches its memberships through the trigger on `users`. SQLite runs one writer at a
-- time, so nothing changes between the two.
ALTER TABLE memberships ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'password';
UPDATE memberships
SET auth_method = (SELECT users.auth_method FROM users WHERE users.id = memberships.user_id)
WHERE user_id IN (SELECT id FROM users WHERE auth_method <> 'password');
CREATE INDEX memberships_org_auth_idx ON memberships (org_id, auth_method, email, user_id);

CREATE TRIGGER users_auth_method_reaches_memberships AFTER UPDATE OF auth_method ON users
WHEN OLD.auth_method IS NOT NEW.auth_method
BEGIN
    UPDATE memberships SET auth_method = NEW.auth_method WHERE user_id = NEW.id;
END;

CREATE TRIGGER memberships_take_auth_method AFTER INSERT ON memberships
WHEN NEW.auth_method IS NOT (SELECT auth_method FROM users WHERE id = NEW.user_id)
BEGIN
    UPDATE memberships SET auth_method = (SELECT auth_method FROM users WHERE id = NEW.user_id)
    WHERE rid = NEW.rid;
END;
