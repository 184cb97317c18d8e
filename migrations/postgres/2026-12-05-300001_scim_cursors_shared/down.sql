DROP TABLE scim_cursors;
