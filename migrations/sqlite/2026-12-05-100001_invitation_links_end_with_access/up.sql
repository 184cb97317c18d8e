-- An invitation's link now dies when the access it offers ends, if that comes first.
-- Links sent before then are brought in line, so the Invited tab shows them expired
-- when they are (the link itself already refuses them).
UPDATE invitations
SET expires_at = access_until
WHERE status = 'pending'
  AND access_until IS NOT NULL
  AND access_until < expires_at;
