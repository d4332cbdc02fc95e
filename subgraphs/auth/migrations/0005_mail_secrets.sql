-- Mail that carries a verification code or a reset token keeps the secret
-- sealed (AES-256-GCM, key derived from AUTH_REFRESH_SECRET, the row id as
-- associated data) instead of in the body, and is deleted when the secret
-- expires, sent or not: no row outlives the secret it carries.
ALTER TABLE mail_queue
    ADD COLUMN sealed_secret bytea,
    ADD COLUMN expires_at timestamptz;

CREATE INDEX mail_queue_expiry ON mail_queue (expires_at) WHERE expires_at IS NOT NULL;
