-- The W3C trace context (`traceparent`) of the span that wrote an event, kept
-- when traces are exported, so the relay's publish span can link back to the
-- request that caused the event. NULL when traces are off.
ALTER TABLE outbox ADD COLUMN traceparent text;
