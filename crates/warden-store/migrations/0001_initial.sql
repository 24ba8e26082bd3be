-- Identities known to Warden: built-in token subjects and API key owners.
CREATE TABLE identities (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    groups      TEXT NOT NULL,           -- JSON array of group names
    created_at  INTEGER NOT NULL,        -- unix milliseconds
    updated_at  INTEGER NOT NULL
);

-- API keys: only the SHA-256 of the secret part is kept.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    identity     TEXT NOT NULL REFERENCES identities(name),
    groups       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER
);

-- Tokens issued by the built-in issuer, so they can be listed and revoked.
CREATE TABLE issued_tokens (
    jti         TEXT PRIMARY KEY,
    identity    TEXT NOT NULL REFERENCES identities(name),
    groups      TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- Every authentication attempt on every listener.
CREATE TABLE auth_audit (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    subject         TEXT,
    issuer          TEXT,
    credential_kind TEXT,
    connection      TEXT,
    client_addr     TEXT NOT NULL,
    result          TEXT NOT NULL,       -- 'allowed' | 'denied'
    reason          TEXT NOT NULL,
    session_id      TEXT
);
CREATE INDEX auth_audit_at ON auth_audit(at);
