-- A member's removal cancels the open invitations they sent, and the removal page counts
-- them: found by sender, not by reading every open invitation of the organization.
CREATE INDEX invitations_org_sender_idx ON invitations (org_id, invited_by, status);
