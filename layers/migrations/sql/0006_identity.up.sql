-- Identity (issue 4): users, browser sessions, API tokens, login throttling.
--
-- Secrets are never stored: passwords as argon2id hashes (PHC strings), session ids and API
-- tokens as SHA-256 digests of the random values that only the client holds.
--
-- The CLI (owner) manages users and tokens. The web service (pingan_service) gets only what a
-- login needs: it reads users and tokens, notes last use, keeps sessions and the failure
-- counters; it can never change a password, a role, an area or a token's validity.

-- A user's role and jurisdiction: town users name one town (9 digits), grid users one or more
-- grids (15 digits), everyone else none (district-wide, or no individual data at all).
CREATE TABLE pingan.users (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'),
    role           text NOT NULL CHECK (role IN ('admin', 'command', 'town', 'grid', 'analyst', 'public')),
    areas          text[] NOT NULL DEFAULT '{}',
    password_hash  text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz,
    CONSTRAINT users_areas_match_role CHECK (
        CASE role
            WHEN 'town' THEN cardinality(areas) = 1 AND areas[1] ~ '^[0-9]{9}$'
            WHEN 'grid' THEN cardinality(areas) >= 1
                 AND array_to_string(areas, ',') ~ '^[0-9]{15}(,[0-9]{15})*$'
            ELSE cardinality(areas) = 0
        END
    )
);

-- Browser sessions: the cookie holds a random id; the table only its SHA-256. Logout deletes
-- the row; `pingan users disable` and `reset-password` delete the user's rows.
CREATE TABLE pingan.sessions (
    id_hash       bytea PRIMARY KEY CHECK (octet_length(id_hash) = 32),
    user_id       bigint NOT NULL REFERENCES pingan.users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    client_addr   inet,
    user_agent    text CHECK (length(user_agent) <= 256),
    CHECK (expires_at > created_at)
);
CREATE INDEX sessions_user_idx ON pingan.sessions (user_id);
CREATE INDEX sessions_expires_idx ON pingan.sessions (expires_at);

-- API tokens for scripts, GDAL and QGIS: shown once at creation, stored as SHA-256; revoked
-- tokens stay (revoked_at) so that the audit trail can name them.
CREATE TABLE pingan.api_tokens (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES pingan.users (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (name ~ '^[^[:cntrl:]]{1,100}$'),
    token_hash    bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX api_tokens_user_idx ON pingan.api_tokens (user_id);

-- Failed logins per user name and per client address, shared by every worker process.
-- scope 'user': key is the name tried (existing or not, so that answers do not reveal which
-- names exist); scope 'addr': the client address. A key is locked when locked_until is in the
-- future; lockouts counts the locks in a row, for the back-off.
CREATE TABLE pingan.login_throttle (
    scope          text NOT NULL CHECK (scope IN ('user', 'addr')),
    key            text NOT NULL CHECK (length(key) BETWEEN 1 AND 256),
    failures       integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    window_start   timestamptz NOT NULL DEFAULT now(),
    locked_until   timestamptz,
    lockouts       integer NOT NULL DEFAULT 0 CHECK (lockouts >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX login_throttle_updated_idx ON pingan.login_throttle (updated_at);

-- --------------------------------------------------------------------------------------------
-- Privileges of the service role (least privilege; the owner keeps everything else).
GRANT SELECT ON pingan.users TO pingan_service;
GRANT UPDATE (last_login_at) ON pingan.users TO pingan_service;
GRANT SELECT, INSERT, DELETE ON pingan.sessions TO pingan_service;
GRANT UPDATE (last_seen_at) ON pingan.sessions TO pingan_service;
GRANT SELECT ON pingan.api_tokens TO pingan_service;
GRANT UPDATE (last_used_at) ON pingan.api_tokens TO pingan_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON pingan.login_throttle TO pingan_service;
