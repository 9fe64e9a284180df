-- EcoSense schema, version 11: a webhook event given up on is marked, not just left behind.
-- A notification the webhook refused max-attempts times is "abandoned": no longer retried,
-- listed for an operator (GET /api/v1/alerts/webhooks?state=abandoned).
ALTER TABLE alert_notifications ADD COLUMN abandoned_at timestamptz;
-- events that ran out of attempts before this version (20 then)
UPDATE alert_notifications SET abandoned_at = now()
    WHERE delivered_at IS NULL AND attempts >= 20;
DROP INDEX alert_notifications_due_idx;
CREATE INDEX alert_notifications_due_idx ON alert_notifications (next_attempt)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;
CREATE INDEX alert_notifications_abandoned_idx ON alert_notifications (abandoned_at)
    WHERE abandoned_at IS NOT NULL;
