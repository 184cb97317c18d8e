UPDATE roles SET permissions = REPLACE(permissions, ',pools.operate', '')
WHERE builtin = true AND key IN ('engineer', 'manager');
