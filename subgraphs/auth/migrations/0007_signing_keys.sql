-- The signing key ring, shared by every auth replica. The private key is
-- sealed (AES-256-GCM, key derived from AUTH_REFRESH_SECRET, the kid as
-- associated data) and erased when the key is retired; every published
-- public key is derived from it, so a row written without the secret cannot
-- put a key into the JWKS.
CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    alg text NOT NULL CHECK (alg IN ('RS256', 'ES256')),
    state text NOT NULL CHECK (state IN ('next', 'current', 'previous', 'retired')),
    sealed_private_key bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    demoted_at timestamptz,
    -- A previous key is published until the tokens it signed have expired.
    publish_until timestamptz,
    retired_at timestamptz,
    CHECK ((state = 'retired') = (sealed_private_key IS NULL)),
    CHECK (state <> 'previous' OR publish_until IS NOT NULL)
);

-- One current key and at most one next key.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';
