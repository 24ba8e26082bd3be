-- Session index: one row per PostgreSQL session; the events themselves are in the
-- session's recording file.
CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    connection       TEXT NOT NULL,
    subject          TEXT NOT NULL,
    actor            TEXT,
    credential_kind  TEXT NOT NULL,
    token_id         TEXT,
    client_addr      TEXT NOT NULL,
    target_role      TEXT NOT NULL,
    started_at       INTEGER NOT NULL,      -- unix milliseconds
    ended_at         INTEGER,
    status           TEXT NOT NULL,         -- live | complete | incomplete | purged
    end_reason       TEXT,
    statements       INTEGER NOT NULL DEFAULT 0,
    final_hash       TEXT
);
CREATE INDEX sessions_started_at ON sessions (started_at);
CREATE INDEX sessions_subject ON sessions (subject);

-- Hash chain over session ends, sessions found incomplete at start-up, and purges: each
-- row's hash = sha256(prev || item), so a dropped or edited row breaks every later one.
CREATE TABLE session_chain (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,              -- end | incomplete | purge
    session_id  TEXT NOT NULL,
    final_hash  TEXT,
    prev        TEXT NOT NULL,
    hash        TEXT NOT NULL
);

-- `warden sessions kill` (another process) asks; the gateway acts within a second.
CREATE TABLE session_kills (
    session_id    TEXT PRIMARY KEY,
    requested_at  INTEGER NOT NULL,
    requested_by  TEXT NOT NULL,
    handled_at    INTEGER
);

-- The authentication audit is chained the same way.
ALTER TABLE auth_audit ADD COLUMN prev_hash TEXT;
ALTER TABLE auth_audit ADD COLUMN hash TEXT;
