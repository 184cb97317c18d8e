-- Nothing to undo: the deadline is what the link honoured anyway.
SELECT 1;
