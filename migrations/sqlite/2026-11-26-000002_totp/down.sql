DROP TABLE totp_recovery_codes;
DROP TABLE totp_credentials;
UPDATE users SET auth_method = 'password' WHERE auth_method = 'password+totp';
