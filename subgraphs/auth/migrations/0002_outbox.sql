-- Outbox: account events written in the same transaction as the change and
-- published to JetStream by the relay (gatehouse_common::outbox::Relay).
--
-- Invariants the relay relies on:
-- * (user_id, version) is unique and versions of one account are contiguous
--   from 1 (the registration), assigned under the account's row lock, so a
--   higher version always commits after the lower one.
-- * Only the lowest unpublished version of an account is eligible to be
--   published; the next one waits until it is acknowledged by JetStream and
--   marked here. That keeps per-account order across any number of relays.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL,
    version      bigint NOT NULL,
    event_type   text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    UNIQUE (user_id, version)
);

-- Pending rows in arrival order: what the relay scans when it claims a batch.
CREATE INDEX outbox_pending ON outbox (created_at) WHERE published_at IS NULL;
-- "Is there a lower pending version of this account?": the per-account order check.
CREATE INDEX outbox_pending_by_user ON outbox (user_id, version) WHERE published_at IS NULL;
-- Pruning published rows after the retention period.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Wake sleeping relays when events are committed. NOTIFY is delivered at
-- commit, once per statement, so a burst of inserts costs one notification;
-- relays also poll, so a lost notification only delays, never loses, an event.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gatehouse_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify
    AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
