-- A second factor per account: a TOTP secret, sealed (AES-256-GCM under a
-- key derived from AUTH_REFRESH_SECRET for this purpose only, the account id
-- as associated data), pending until a first code confirms it.
-- `last_used_step` makes every code single-use: a code is accepted only for
-- a time step after the last one accepted.
CREATE TABLE mfa_totp (
    account_id     uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    sealed_secret  bytea NOT NULL,
    confirmed_at   timestamptz,
    last_used_step bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Single-use recovery codes, only as keyed hashes (HMAC-SHA-256).
CREATE TABLE mfa_recovery_codes (
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    code_hash  text NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (account_id, code_hash)
);
