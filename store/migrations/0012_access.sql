-- Issue 13: users, their sessions (bearer tokens), failed sign-ins (throttling) and the
-- per-station grade that overrides the default of the station's kind (access/grades.py).
CREATE TABLE users (
    name          text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    role          text NOT NULL
                  CHECK (role IN ('viewer', 'analyst', 'reviewer', 'operator', 'admin')),
    password_hash text NOT NULL,                -- Argon2id PHC string (salt included)
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_hash  text PRIMARY KEY,               -- SHA-256 of the bearer token (256-bit random)
    user_name   text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX sessions_user_idx ON sessions (user_name);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE login_failures (
    key  text NOT NULL,                         -- 'user:<name>' or 'address:<ip>'
    at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key_idx ON login_failures (key, at);

CREATE TABLE station_grades (
    station_id  text PRIMARY KEY REFERENCES stations (id) ON DELETE CASCADE,
    grade       text NOT NULL CHECK (grade IN ('public', 'internal', 'sensitive', 'restricted')),
    changed_at  timestamptz NOT NULL DEFAULT now()
);
