-- Device credentials that can be revoked and rotated, HJ 212 passwords as salted Argon2id, and
-- the break-glass admin token kept here so that a rotation reaches every running process.
--
-- devices.pw_hash now holds an Argon2id PHC string ($argon2id$…, salt included). Rows written
-- before hold the legacy unsalted SHA-256 hex of MN:PW: the gateway rehashes one to Argon2id at
-- the unit's next successful login (store.postgres.PostgresStore.device_for_mn); a unit that
-- never logs in again keeps its legacy hash until `ecosense devices rotate ID --password-stdin`.
-- credential_version grows with every change of a device's credentials (re-registration,
-- rotation, revocation): a running gateway compares it to close the HJ 212 connections of a
-- changed device even when it missed the notification on channel ecosense_credentials.
ALTER TABLE devices
    ADD COLUMN revoked_at          timestamptz,
    ADD COLUMN rotated_at          timestamptz,
    ADD COLUMN credential_version  integer NOT NULL DEFAULT 1;

-- The current break-glass admin token (SHA-256 of a 256-bit random token): one row.
CREATE TABLE admin_token (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    token_hash  text NOT NULL,
    rotated_at  timestamptz NOT NULL DEFAULT now()
);

-- Admin tokens rotated away: never accepted again, even when ECOSENSE_ADMIN_TOKEN still holds one.
CREATE TABLE admin_token_retired (
    token_hash  text PRIMARY KEY,
    retired_at  timestamptz NOT NULL DEFAULT now()
);
