//! Outgoing mail: queued in PostgreSQL, sent by a background task.
//!
//! A mail is inserted into `mail_queue` in the same transaction as the code or
//! token it carries, so it exists exactly when they do. The code or token is
//! not in the row's body: it is sealed ([`MailSeal`]) into its own column and
//! put into the text only while the mail is handed to SMTP, and the row is
//! deleted when the secret expires, sent or not. The sender claims one
//! due row at a time (`FOR UPDATE SKIP LOCKED`, so several replicas can send),
//! hands it to SMTP (or, in development, writes an `.eml` file) and deletes it;
//! on failure it schedules a retry with exponential back-off. A mail server
//! outage therefore delays mail without losing it, and no request ever waits
//! for SMTP.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::Email;
use crate::seal::Seal;
use crate::settings::MailTransportKind;

/// Where a mail's secret goes in its body; the queue never stores it there.
const SECRET_MARK: &str = "[[gatehouse-secret]]";

/// A code or token a mail carries, and how long it is good for.
#[derive(Clone)]
pub struct MailSecret {
    value: String,
    ttl: Duration,
}

impl std::fmt::Debug for MailSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSecret").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// A mail ready to queue.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Email,
    pub subject: String,
    /// The text, with [`SECRET_MARK`] where the secret goes.
    pub body: String,
    pub secret: Option<MailSecret>,
}

impl Mail {
    pub fn verification(to: &Email, code: &str, ttl: Duration) -> Self {
        Self {
            to: to.clone(),
            subject: "Your Gatehouse verification code".into(),
            body: format!(
                "Welcome to Gatehouse.\r\n\r\nEnter this code to verify your email address:\r\n\r\nCode: {SECRET_MARK}\r\n\r\nIt expires in {} minutes. If you did not sign up, ignore this mail.\r\n",
                ttl.as_secs() / 60
            ),
            secret: Some(MailSecret { value: code.to_owned(), ttl }),
        }
    }

    pub fn password_reset(to: &Email, token: &str, ttl: Duration) -> Self {
        Self {
            to: to.clone(),
            subject: "Reset your Gatehouse password".into(),
            body: format!(
                "Someone asked to reset the password of this account.\r\n\r\nToken: {SECRET_MARK}\r\n\r\nIt expires in {} minutes and works once. If it was not you, ignore this mail; your password is unchanged.\r\n",
                ttl.as_secs() / 60
            ),
            secret: Some(MailSecret { value: token.to_owned(), ttl }),
        }
    }

    /// Sent to an address someone tried to register with a username that
    /// another account has.
    pub fn username_taken(to: &Email, username: &str) -> Self {
        Self {
            to: to.clone(),
            subject: "Your Gatehouse sign-up needs another username".into(),
            body: format!(
                "Someone tried to create a Gatehouse account with this email address and the username \"{username}\", which another account has.\r\n\r\nIf it was you, sign up again with another username. If not, you can ignore this mail.\r\n"
            ),
            secret: None,
        }
    }

    /// Sent to the owner of an email someone tried to register again.
    pub fn sign_up_attempt(to: &Email) -> Self {
        Self {
            to: to.clone(),
            subject: "Someone tried to sign up with your email".into(),
            body: "Someone tried to create a Gatehouse account with this email address, which already has one.\r\n\r\nIf it was you, log in or reset your password. If not, you can ignore this mail.\r\n".into(),
            secret: None,
        }
    }
}

/// Seals the secrets of queued mail under a key derived from the refresh
/// secret, with the mail's id as associated data, so a sealed secret cannot
/// be moved to another row.
#[derive(Clone, Debug)]
pub struct MailSeal(Seal);

impl MailSeal {
    pub fn from_secret(secret: &secrecy::SecretString) -> Self {
        Self(Seal::derive(secret, "gatehouse mail queue secrets v1"))
    }

    fn seal(&self, id: Uuid, secret: &str) -> Vec<u8> {
        self.0.seal(id.as_bytes(), secret.as_bytes())
    }

    fn open(&self, id: Uuid, sealed: &[u8]) -> Option<String> {
        String::from_utf8(self.0.open(id.as_bytes(), sealed)?).ok()
    }
}

/// Queues a mail inside the caller's transaction; its secret, if any, sealed.
pub async fn enqueue(conn: &mut PgConnection, seal: &MailSeal, mail: &Mail) -> Result<(), sqlx::Error> {
    let id = Uuid::now_v7();
    let (sealed, ttl) = match &mail.secret {
        Some(secret) => (Some(seal.seal(id, &secret.value)), Some(secret.ttl.as_secs_f64())),
        None => (None, None),
    };
    sqlx::query(
        "INSERT INTO mail_queue (id, recipient, subject, body, sealed_secret, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
    )
    .bind(id)
    .bind(mail.to.as_str())
    .bind(&mail.subject)
    .bind(&mail.body)
    .bind(sealed)
    .bind(ttl)
    .execute(conn)
    .await?;
    Ok(())
}

/// A row of `mail_queue` as the sender reads it.
#[derive(sqlx::FromRow)]
struct QueuedMail {
    id: Uuid,
    recipient: String,
    subject: String,
    body: String,
    sealed_secret: Option<Vec<u8>>,
    attempts: i32,
}

/// What one step of the sender did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Sending failed; the mail is kept and retried later.
    Deferred,
    /// Nothing is due.
    Empty,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(AsyncFileTransport<Tokio1Executor>),
}

/// Sends queued mail.
#[derive(Clone)]
pub struct MailSender {
    pool: PgPool,
    seal: MailSeal,
    transport: Arc<Transport>,
    from: Mailbox,
    /// Poked after a commit that queued mail, so it goes out at once.
    pub wake: Arc<Notify>,
    poll: Duration,
}

impl MailSender {
    pub fn new(
        pool: PgPool,
        seal: MailSeal,
        kind: &MailTransportKind,
        from: &str,
        poll: Duration,
    ) -> anyhow::Result<Self> {
        let transport = match kind {
            MailTransportKind::Smtp(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("SMTP_URL is not usable: {e}"))?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            ),
            MailTransportKind::Folder(dir) => {
                std::fs::create_dir_all(dir)?;
                Transport::Folder(AsyncFileTransport::<Tokio1Executor>::new(dir))
            }
        };
        let from: Mailbox = from.parse().map_err(|e| anyhow::anyhow!("AUTH_MAIL_FROM is not a mailbox: {e}"))?;
        Ok(Self { pool, seal, transport: Arc::new(transport), from, wake: Arc::new(Notify::new()), poll })
    }

    /// Sends the oldest due mail, if any.
    #[tracing::instrument(skip(self))]
    pub async fn try_send_next(&self) -> anyhow::Result<Outcome> {
        // A code or token that expired while its mail waited is worth nothing
        // to anyone: the mail goes with it.
        let expired = sqlx::query("DELETE FROM mail_queue WHERE expires_at <= now()").execute(&self.pool).await?;
        if expired.rows_affected() > 0 {
            metrics::counter!("gatehouse_auth_mail_expired_total").increment(expired.rows_affected());
            tracing::warn!(mails = expired.rows_affected(), "dropped queued mail whose code or token expired unsent");
        }
        let mut tx = self.pool.begin().await?;
        let row: Option<QueuedMail> = sqlx::query_as(
            "SELECT id, recipient, subject, body, sealed_secret, attempts FROM mail_queue
             WHERE next_attempt_at <= now()
             ORDER BY next_attempt_at, id
             LIMIT 1
             FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(QueuedMail { id, recipient, subject, body, sealed_secret: sealed, attempts }) = row else {
            return Ok(Outcome::Empty);
        };
        let body = match sealed {
            None => body,
            Some(sealed) => match self.seal.open(id, &sealed) {
                Some(secret) => body.replace(SECRET_MARK, &secret),
                None => {
                    // Sealed under another refresh secret: nobody can read it.
                    tracing::warn!(%id, "dropping queued mail whose secret cannot be opened");
                    sqlx::query("DELETE FROM mail_queue WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    tx.commit().await?;
                    return Ok(Outcome::Sent);
                }
            },
        };
        match self.send(&recipient, &subject, body).await {
            Ok(()) => {
                sqlx::query("DELETE FROM mail_queue WHERE id = $1").bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                metrics::counter!("gatehouse_auth_mail_sent_total").increment(1);
                Ok(Outcome::Sent)
            }
            Err(error) => {
                // 2^attempts seconds, at most ten minutes.
                let backoff = 2_i64.pow(attempts.clamp(0, 9) as u32).min(600);
                tracing::warn!(%id, attempts = attempts + 1, error = %format!("{error:#}"), "mail not sent, will retry");
                sqlx::query(
                    "UPDATE mail_queue SET attempts = attempts + 1, last_error = $2,
                            next_attempt_at = now() + make_interval(secs => $3)
                     WHERE id = $1",
                )
                .bind(id)
                .bind(format!("{error:#}"))
                .bind(backoff as f64)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                metrics::counter!("gatehouse_auth_mail_deferred_total").increment(1);
                Ok(Outcome::Deferred)
            }
        }
    }

    async fn send(&self, recipient: &str, subject: &str, body: String) -> anyhow::Result<()> {
        let to: Mailbox = recipient.parse()?;
        let message = Message::builder().from(self.from.clone()).to(to).subject(subject).body(body)?;
        match self.transport.as_ref() {
            Transport::Smtp(smtp) => {
                smtp.send(message).await?;
            }
            Transport::Folder(folder) => {
                folder.send(message).await?;
            }
        }
        Ok(())
    }

    /// Sends until the queue is empty, then waits for a wake-up or the poll interval.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let outcome = tokio::select! {
                outcome = self.try_send_next() => outcome,
                () = shutdown.cancelled() => return,
            };
            match outcome {
                // A deferred mail is rescheduled, so the next step looks at another one.
                Ok(Outcome::Sent | Outcome::Deferred) => continue,
                Ok(Outcome::Empty) => {}
                Err(error) => tracing::error!(error = %format!("{error:#}"), "mail sender step failed"),
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.poll) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}
