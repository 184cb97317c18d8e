-- Engineers act on the pools they belong to (`pools.operate`); Managers already manage
-- every pool, and hold the narrower permission too so they may hand it on in a custom role.
UPDATE roles SET permissions = permissions || ',pools.operate'
WHERE builtin = 1 AND key IN ('engineer', 'manager')
  AND (',' || permissions || ',') NOT LIKE '%,pools.operate,%';
