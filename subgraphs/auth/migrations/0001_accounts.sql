-- Accounts: the credentials side of a user. The users service keeps its own
-- copy of the fields it needs, fed by events from the outbox.
CREATE TABLE accounts (
    id             uuid PRIMARY KEY,
    email          text NOT NULL,
    username       text NOT NULL,
    password_hash  text NOT NULL,
    -- The highest role held; every role implies the ones below it.
    role           text NOT NULL DEFAULT 'USER'
                   CHECK (role IN ('GUEST', 'USER', 'ADMIN', 'SYS_ADMIN')),
    email_verified boolean NOT NULL DEFAULT false,
    active         boolean NOT NULL DEFAULT true,
    -- Bumped with every event written for this account (per-user event order).
    version        bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Emails are stored normalised (lower-case), usernames are lower-case by rule.
CREATE UNIQUE INDEX accounts_email_key ON accounts (email);
CREATE UNIQUE INDEX accounts_username_key ON accounts (username);
