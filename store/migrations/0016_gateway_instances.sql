-- Many gateway instances on one database (issue 15): an HJ 212 command posted to any instance
-- reaches the field unit through the instance that holds its connection (store/instances.py).
--
-- Each `ecosense up` is an instance with a random id; it beats heartbeat_at every second, and an
-- instance silent for a few seconds is dead (its rows are ignored at once, deleted later by any
-- live instance). The tables hold only what lives as long as the instances' connections:
-- UNLOGGED (no WAL; emptied by a crash of the server, after which every instance re-announces
-- itself and its units on its next heartbeat).
CREATE UNLOGGED TABLE gateway_instances (
    id            text PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

-- Which instance holds each connected field unit (by MN): upserted when the unit logs in
-- (a unit that reconnects to another instance moves its row), deleted when it disconnects.
CREATE UNLOGGED TABLE hj212_links (
    mn        text PRIMARY KEY,
    instance  text NOT NULL REFERENCES gateway_instances (id) ON DELETE CASCADE,
    since     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hj212_links_instance_idx ON hj212_links (instance);

-- A command routed from the instance that received it (sender) to the holder of the unit's
-- connection, and the holder's answer. NOTIFY on channel ecosense_hj212 only wakes the other
-- side with the row's id: the command (a 1072 carries a new password) and the answer stay in
-- this table, which only the gateway role may read or write (any role may LISTEN or NOTIFY).
CREATE UNLOGGED TABLE hj212_commands (
    id               text PRIMARY KEY,
    sender           text NOT NULL,
    holder           text NOT NULL,
    mn               text NOT NULL,
    cn               text NOT NULL,
    cp               text NOT NULL,
    timeout_seconds  double precision NOT NULL CHECK (timeout_seconds > 0 AND timeout_seconds <= 600),
    state            text NOT NULL DEFAULT 'sent'
                     CHECK (state IN ('sent', 'accepted', 'answered', 'not_connected', 'timeout',
                                      'invalid', 'failed')),
    result           jsonb,
    message          text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
