-- Email verification codes: one live code per account, stored as a keyed hash.
CREATE TABLE email_verifications (
    account_id      uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    code_hash       text NOT NULL,
    failed_attempts integer NOT NULL DEFAULT 0,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Password-reset tokens, stored as SHA-256; a row is deleted when redeemed.
CREATE TABLE password_resets (
    token_hash  text PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX password_resets_account ON password_resets (account_id);

-- Mail waiting to be sent (deleted once the SMTP server accepted it).
CREATE TABLE mail_queue (
    id              uuid PRIMARY KEY,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX mail_queue_due ON mail_queue (next_attempt_at);
