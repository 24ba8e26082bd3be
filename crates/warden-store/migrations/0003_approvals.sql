-- Approval requests: statements held for review (`statement`) and time-bound requests to
-- use a connection (`access`). A request is decided once: every change of status is an
-- `UPDATE ... WHERE status = 'pending'`, so two deciders cannot both win.
CREATE TABLE approval_requests (
    id                  TEXT PRIMARY KEY,      -- rv-<hex> | ar-<hex>, chosen by the caller
    kind                TEXT NOT NULL CHECK (kind IN ('statement', 'access')),
    status              TEXT NOT NULL CHECK (status IN
                            ('pending', 'approved', 'rejected', 'expired', 'withdrawn')),
    connection          TEXT NOT NULL,
    requester           TEXT NOT NULL,         -- subject
    requester_groups    TEXT NOT NULL,         -- JSON array of group names
    session_id          TEXT,                  -- statement reviews: the session holding it
    statement           TEXT,                  -- the (already redacted) SQL approvers see
    params              TEXT,                  -- JSON array of strings and nulls
    statement_hash      TEXT,                  -- hex sha256 binding approval to text+params
    rule_message        TEXT,
    reason              TEXT,                  -- the requester's reason (access requests)
    approver_groups     TEXT NOT NULL,         -- JSON array of group names
    approvals_required  INTEGER NOT NULL CHECK (approvals_required >= 1),
    duration_ms         INTEGER,               -- access: length of the grant
    created_at          INTEGER NOT NULL,      -- unix milliseconds
    expires_at          INTEGER NOT NULL,      -- a pending request expires at this time
    decided_at          INTEGER,
    decided_by          TEXT,                  -- the last approver, or who closed it
    decision_reason     TEXT,
    grant_expires_at    INTEGER,               -- access: decided_at + duration_ms once approved
    -- An access request without a positive duration could never grant anything.
    CHECK (kind = 'statement' OR (duration_ms IS NOT NULL AND duration_ms > 0))
);
CREATE INDEX approval_requests_status ON approval_requests (status, expires_at);
CREATE INDEX approval_requests_requester ON approval_requests (requester, connection, kind, status);
CREATE INDEX approval_requests_session ON approval_requests (session_id);
CREATE INDEX approval_requests_created_at ON approval_requests (created_at);

-- One row per distinct approver of a request; a second vote by the same approver is a no-op.
CREATE TABLE approval_votes (
    request_id  TEXT NOT NULL REFERENCES approval_requests(id) ON DELETE CASCADE,
    approver    TEXT NOT NULL,
    at          INTEGER NOT NULL,              -- unix milliseconds
    reason      TEXT,
    PRIMARY KEY (request_id, approver)
);
