-- Duty officer's comments on the alert life cycle (issue 14, item 5): the comment given when
-- an alert is acknowledged, and who closed it by hand with what comment (a closing by the
-- jobs, when the condition no longer holds, leaves both NULL).
ALTER TABLE alerts
    ADD COLUMN acknowledge_comment text,
    ADD COLUMN closed_by text,
    ADD COLUMN close_comment text;
