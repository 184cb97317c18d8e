-- Whether a sign-in from a browser the account has not used before sends the person a
-- "new sign-in" email (issue 14, item 3). On unless the person turns it off on /account.
ALTER TABLE users ADD COLUMN signin_alerts BOOLEAN NOT NULL DEFAULT 1;
