-- The events stream the outbox relays publish to, as last seen: its name and
-- when JetStream created it. A stream created again since (a broker that
-- restarted without its store, or an operator who deleted it) holds none of
-- the events published before, so the relay that notices puts every retained
-- outbox row back into the queue; consumers drop what they already applied.
CREATE TABLE outbox_stream (
    name    text PRIMARY KEY,
    created text NOT NULL
);
