-- Issue 16, item 5: API keys of open-data consumers (`ecosense keys add NAME [--rate N]`),
-- sent as the header X-API-Key. A key reads what anonymous callers read (grade public) but is
-- rate-limited on its own, at rate_per_minute requests a minute per gateway process, instead
-- of per address. Only the SHA-256 of the key is kept (keys are 256-bit random, like device
-- tokens: store.postgres.hash_secret). A revoked key is refused at once and keeps its row, so
-- its name is not reused and its usage stays on record.
-- requests / refused / last_used_at: usage, added up in each gateway's memory and flushed here
-- every few seconds and at shutdown (store.keys.KeyUsage), never one write per request.
CREATE TABLE api_keys (
    id               integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    key_hash         text NOT NULL UNIQUE,      -- SHA-256 hex of the key, never the key
    rate_per_minute  integer NOT NULL CHECK (rate_per_minute >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz,
    requests         bigint NOT NULL DEFAULT 0, -- requests served within the key's rate
    refused          bigint NOT NULL DEFAULT 0, -- requests answered 429 beyond it
    last_used_at     timestamptz
);
