//! Outgoing mail: queued in PostgreSQL, sent by a background task.
//!
//! A mail is inserted into `mail_queue` in the same transaction as the code or
//! token it carries, so it exists exactly when they do. The sender claims one
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
use crate::settings::MailTransportKind;

/// A mail ready to queue.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Email,
    pub subject: String,
    pub body: String,
}

impl Mail {
    pub fn verification(to: &Email, code: &str, ttl: Duration) -> Self {
        Self {
            to: to.clone(),
            subject: "Your Gatehouse verification code".into(),
            body: format!(
                "Welcome to Gatehouse.\r\n\r\nEnter this code to verify your email address:\r\n\r\nCode: {code}\r\n\r\nIt expires in {} minutes. If you did not sign up, ignore this mail.\r\n",
                ttl.as_secs() / 60
            ),
        }
    }

    pub fn password_reset(to: &Email, token: &str, ttl: Duration) -> Self {
        Self {
            to: to.clone(),
            subject: "Reset your Gatehouse password".into(),
            body: format!(
                "Someone asked to reset the password of this account.\r\n\r\nToken: {token}\r\n\r\nIt expires in {} minutes and works once. If it was not you, ignore this mail; your password is unchanged.\r\n",
                ttl.as_secs() / 60
            ),
        }
    }

    /// Sent to the owner of an email someone tried to register again.
    pub fn sign_up_attempt(to: &Email) -> Self {
        Self {
            to: to.clone(),
            subject: "Someone tried to sign up with your email".into(),
            body: "Someone tried to create a Gatehouse account with this email address, which already has one.\r\n\r\nIf it was you, log in or reset your password. If not, you can ignore this mail.\r\n".into(),
        }
    }
}

/// Queues a mail inside the caller's transaction.
pub async fn enqueue(conn: &mut PgConnection, mail: &Mail) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO mail_queue (id, recipient, subject, body) VALUES ($1, $2, $3, $4)")
        .bind(Uuid::now_v7())
        .bind(mail.to.as_str())
        .bind(&mail.subject)
        .bind(&mail.body)
        .execute(conn)
        .await?;
    Ok(())
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
    transport: Arc<Transport>,
    from: Mailbox,
    /// Poked after a commit that queued mail, so it goes out at once.
    pub wake: Arc<Notify>,
    poll: Duration,
}

impl MailSender {
    pub fn new(pool: PgPool, kind: &MailTransportKind, from: &str, poll: Duration) -> anyhow::Result<Self> {
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
        Ok(Self { pool, transport: Arc::new(transport), from, wake: Arc::new(Notify::new()), poll })
    }

    /// Sends the oldest due mail, if any.
    #[tracing::instrument(skip(self))]
    pub async fn try_send_next(&self) -> anyhow::Result<Outcome> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(Uuid, String, String, String, i32)> = sqlx::query_as(
            "SELECT id, recipient, subject, body, attempts FROM mail_queue
             WHERE next_attempt_at <= now()
             ORDER BY next_attempt_at, id
             LIMIT 1
             FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, recipient, subject, body, attempts)) = row else {
            return Ok(Outcome::Empty);
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
