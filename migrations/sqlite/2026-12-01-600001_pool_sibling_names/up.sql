-- Sibling pools have distinct names, whatever their case. A top-level pool's parent is
-- NULL, and NULLs never collide in a unique index, so the index compares '' instead.
-- Pools that already share a name keep it, the later ones with their id appended, so
-- the index can be built.
UPDATE pools SET name = name || ' (' || id || ')'
WHERE EXISTS (
    SELECT 1 FROM pools AS earlier
    WHERE earlier.org_id = pools.org_id
      AND COALESCE(earlier.parent_id, '') = COALESCE(pools.parent_id, '')
      AND lower(earlier.name) = lower(pools.name)
      AND earlier.id < pools.id
);
CREATE UNIQUE INDEX pools_sibling_name_idx ON pools (org_id, (COALESCE(parent_id, '')), (lower(name)));
