-- The users service's records: fields copied from account events plus the
-- profile this service owns. Written only by the projection (copied fields)
-- and by updateProfile (profile fields).
CREATE TABLE users (
    -- The auth account id.
    id             uuid PRIMARY KEY,
    username       text NOT NULL,
    email          text NOT NULL,
    -- The highest role held; every role implies the ones below it.
    role           text NOT NULL CHECK (role IN ('GUEST', 'USER', 'ADMIN', 'SYS_ADMIN')),
    active         boolean NOT NULL,
    email_verified boolean NOT NULL,
    display_name   text NOT NULL,
    bio            text,
    avatar_url     text,
    -- The last account event version applied. An event applies only when it
    -- is exactly this plus one, so duplicates and older events change nothing
    -- and a newer one waits for its predecessor.
    version        bigint NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A deleted account's record is removed, but its last version is kept here so
-- a late duplicate (its registration, say) can never bring it back.
CREATE TABLE user_tombstones (
    user_id    uuid PRIMARY KEY,
    version    bigint NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

-- Pagination walks the primary key (ids are UUIDv7, so roughly sign-up order).
-- Admin search is a case-insensitive substring scan over username, email and
-- display name; at the sizes this service targets a scan is fine, and it keeps
-- the projection's inserts cheap (trigram indexes are the upgrade path).
