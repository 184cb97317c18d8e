ALTER TABLE users DROP COLUMN signin_alerts;
