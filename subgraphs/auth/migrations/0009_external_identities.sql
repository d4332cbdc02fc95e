-- Accounts signed in with an outside OpenID provider: one row per
-- (provider, subject), the provider's own id for the person. Created at the
-- first sign-in, or linked to an existing account only once its owner
-- proved it (never by a matching email alone).
CREATE TABLE external_identities (
    provider   text NOT NULL,
    subject    text NOT NULL,
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email      text,
    linked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
CREATE INDEX external_identities_account ON external_identities (account_id);

-- An account made by an outside sign-in has a random password nobody knows
-- until a reset sets one; it must keep one way in, so its last identity
-- cannot be unlinked before then.
ALTER TABLE accounts ADD COLUMN password_usable boolean NOT NULL DEFAULT true;
