-- Nothing to undo: the earlier expiry of each link is not kept, and the shorter one is
-- what the link honoured anyway.
SELECT 1;
