UPDATE roles SET permissions = REPLACE(permissions, ',pools.operate', '')
WHERE builtin = 1 AND key IN ('engineer', 'manager');
