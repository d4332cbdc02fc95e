//! The projection: account events from JetStream applied to the users table.
//!
//! A durable pull consumer (`users-projection` by default, shared by every
//! replica) with explicit acks. Each event is applied in one transaction
//! whose idempotency record is the row's own `version` (and, once an account
//! is deleted, its tombstone):
//!
//! - `version <= current`: a duplicate or an older event; acked, nothing changes.
//! - `version == current + 1`: applied, `version` moves on, then acked.
//! - `version > current + 1`: its predecessor has not been applied yet (it was
//!   redelivered after this one). Nothing is lost: the event is negatively
//!   acknowledged with a delay and retried until the predecessor lands, or
//!   dead-lettered after `max_gap_deliveries` (the predecessor must itself have
//!   been dead-lettered, so the account needs an operator anyway).
//!
//! An event that cannot be decoded is dead-lettered at once; one that keeps
//! failing on its content (a constraint it breaks, an update for an account
//! that never registered) after `max_deliveries`. Database outages are not the
//! event's fault: those are retried without limit and never dead-lettered.
//! Dead letters go to `<prefix>.dlq.users` (stored in the `<stream>_DLQ`
//! stream) with the error in a header, and the original is terminated, so
//! one bad event never blocks the others.
//!
//! Throughput comes from lanes keyed by account id (one account's events stay
//! in delivery order within its lane, lanes run concurrently) and from each
//! lane applying the events waiting for it in one transaction: every event
//! is still atomic with its version update, nothing is acked before the
//! commit, and a batch that fails is redone one event per transaction.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, context::Publish, AckKind, Message};
use async_nats::HeaderMap;
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use gatehouse_common::events::{self, AccountChange, AccountEvent};
use gatehouse_common::settings::SharedSettings;

use crate::UsersConfig;

/// Header of a dead letter: why the event could not be applied.
pub const DEAD_LETTER_REASON_HEADER: &str = "Gatehouse-Dead-Letter-Reason";
/// Header of a dead letter: the subject the event was published on.
pub const DEAD_LETTER_SUBJECT_HEADER: &str = "Gatehouse-Original-Subject";
/// Header of a dead letter: the event's sequence in the events stream.
pub const DEAD_LETTER_SEQUENCE_HEADER: &str = "Gatehouse-Original-Sequence";

/// Most events a lane applies in one transaction.
const LANE_BATCH: usize = 64;

/// The longest redelivery delay.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// How the projection consumes, parsed from [`UsersConfig`].
#[derive(Debug, Clone)]
pub struct ProjectionOptions {
    pub consumer_name: String,
    pub max_deliveries: i64,
    pub max_gap_deliveries: i64,
    pub retry_base: Duration,
    pub concurrency: usize,
    pub ack_wait: Duration,
}

impl From<&UsersConfig> for ProjectionOptions {
    fn from(config: &UsersConfig) -> Self {
        Self {
            consumer_name: config.projection_consumer.clone(),
            max_deliveries: config.projection_max_deliveries.max(1),
            max_gap_deliveries: config.projection_max_gap_deliveries.max(1),
            retry_base: config.projection_retry(),
            concurrency: config.projection_concurrency.max(1),
            ack_wait: Duration::from_secs(config.projection_ack_wait_secs.max(1)),
        }
    }
}

/// What handling one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No message was waiting.
    Idle,
    /// The event changed the users table.
    Applied,
    /// A duplicate or older event: acked, nothing changed.
    Ignored,
    /// Negatively acknowledged for a later retry (predecessor missing, or a failure).
    Deferred,
    /// Sent to the dead-letter subject and terminated.
    DeadLettered,
}

/// Why an event was not applied this time.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    /// A newer version arrived before its predecessor was applied.
    #[error("version {version} arrived before version {expected}")]
    Gap { version: i64, expected: i64 },
    /// The event itself is wrong: retrying cannot help for long.
    #[error("{0}")]
    Invalid(String),
    /// The database refused the event's data (a constraint it breaks); the
    /// transaction it ran in is aborted.
    #[error("rejected by the database: {0}")]
    Rejected(String),
    /// The database failed; the event is fine.
    #[error("database error: {0}")]
    Transient(sqlx::Error),
}

impl ApplyError {
    /// Whether the transaction the event ran in can no longer be used.
    fn aborts_transaction(&self) -> bool {
        matches!(self, ApplyError::Transient(_) | ApplyError::Rejected(_))
    }
}

impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            // Class 22 (data exception) and 23 (integrity constraint violation):
            // the event's data, not the database, is at fault.
            sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")) => {
                ApplyError::Rejected(db.message().to_owned())
            }
            _ => ApplyError::Transient(error),
        }
    }
}

/// The users projection: one durable consumer, applying events to `pool`.
#[derive(Clone)]
pub struct Projection {
    pool: PgPool,
    /// Kept to flush the last acknowledgements on shutdown.
    client: async_nats::Client,
    jetstream: jetstream::Context,
    consumer: jetstream::consumer::Consumer<pull::Config>,
    /// Kept to re-create the consumer if it disappears (deleted by an operator,
    /// or lost with a broker's store).
    config: pull::Config,
    dead_letter_subject: String,
    options: ProjectionOptions,
    settings: SharedSettings,
    /// Checks every event is ours: an unsigned or wrongly signed one is
    /// dead-lettered, never applied.
    signer: gatehouse_common::signing::MessageSigner,
}

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection").field("options", &self.options).finish_non_exhaustive()
    }
}

/// The events stream, with it and the dead-letter stream created or updated
/// first (a broker that restarted without its store has neither).
async fn events_stream(
    jetstream: &jetstream::Context,
    settings: &SharedSettings,
) -> anyhow::Result<jetstream::stream::Stream> {
    events::ensure_stream(jetstream, settings).await?;
    events::ensure_dead_letter_stream(jetstream, settings).await?;
    Ok(jetstream.get_stream(&settings.events_stream).await?)
}

/// How long start-up waits for JetStream to accept the streams and the consumer.
const STARTUP_PATIENCE: Duration = Duration::from_secs(60);

impl Projection {
    /// Creates (or updates) the events and dead-letter streams and the durable
    /// consumer, and returns a projection ready to consume.
    pub async fn connect(
        pool: PgPool,
        client: async_nats::Client,
        settings: &SharedSettings,
        options: ProjectionOptions,
    ) -> anyhow::Result<Self> {
        let jetstream = jetstream::new(client.clone());
        let config = pull::Config {
            durable_name: Some(options.consumer_name.clone()),
            description: Some("users service projection of account events".into()),
            filter_subject: format!("{}.user.>", settings.events_subject_prefix),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: options.ack_wait,
            // Redelivery is bounded by the projection itself (dead letters), so
            // the server never silently drops an event.
            max_deliver: -1,
            max_ack_pending: 20_000,
            ..Default::default()
        };
        // A JetStream cluster that is electing a leader (just started, or
        // just lost a server) times requests out for a few seconds: start-up
        // waits that out instead of failing.
        let mut delay = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let consumer = loop {
            let attempt = async {
                // Created, or updated to this configuration (its ack wait, say).
                anyhow::Ok(events_stream(&jetstream, settings).await?.create_consumer(config.clone()).await?)
            };
            match attempt.await {
                Ok(consumer) => break consumer,
                Err(error) if started.elapsed() < STARTUP_PATIENCE => {
                    tracing::warn!(error = %format!("{error:#}"), "JetStream not ready for the projection; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(error) => return Err(error.context("JetStream never became ready for the projection")),
            }
        };
        let dead_letter_subject = events::dead_letter_subject(&settings.events_subject_prefix, "users");
        let signer = settings.message_signer();
        Ok(Self {
            pool,
            client,
            jetstream,
            consumer,
            config,
            dead_letter_subject,
            options,
            settings: settings.clone(),
            signer,
        })
    }

    /// Fetches at most one waiting message and handles it.
    pub async fn try_process_next(&self) -> anyhow::Result<Outcome> {
        let mut batch = self.consumer.fetch().max_messages(1).messages().await?;
        match batch.next().await {
            Some(Ok(message)) => {
                let event = self.decode(&message);
                Ok(self.handle(message, event).await)
            }
            Some(Err(error)) => Err(anyhow::anyhow!(error)),
            None => Ok(Outcome::Idle),
        }
    }

    /// The durable consumer as it is now, made again if it is gone, with its
    /// streams (a broker that restarted without its store has neither).
    async fn recreate_consumer(&self) -> Option<jetstream::consumer::Consumer<pull::Config>> {
        let recreated = async {
            let stream = events_stream(&self.jetstream, &self.settings).await?;
            anyhow::Ok(stream.get_or_create_consumer(&self.options.consumer_name, self.config.clone()).await?)
        };
        match recreated.await {
            Ok(consumer) => Some(consumer),
            Err(error) => {
                tracing::warn!(%error, "cannot re-create the projection's consumer");
                None
            }
        }
    }

    /// Fetches up to `max` waiting messages and applies them as one batch,
    /// the way a lane of [`Self::run`] does; returns each message's outcome.
    pub async fn try_process_batch(&self, max: usize) -> anyhow::Result<Vec<Outcome>> {
        let mut fetched = self.consumer.fetch().max_messages(max).messages().await?;
        let mut batch = Vec::new();
        while let Some(message) = fetched.next().await {
            let message = message.map_err(|e| anyhow::anyhow!(e))?;
            let event = self.decode(&message);
            batch.push((message, event));
        }
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.handle_batch(batch).await.0)
    }

    /// Consumes until `shutdown` is cancelled, then finishes the events
    /// already handed to a lane and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let lag_task = tokio::spawn(self.clone().report_lag(shutdown.clone()));
        let mut lanes = Vec::with_capacity(self.options.concurrency);
        let mut workers = Vec::with_capacity(self.options.concurrency);
        for _ in 0..self.options.concurrency {
            let (sender, receiver) = mpsc::channel::<(Message, Result<AccountEvent, String>)>(256);
            lanes.push(sender);
            workers.push(tokio::spawn(self.clone().lane(receiver)));
        }
        tracing::info!(consumer = %self.options.consumer_name, "users projection started");
        let mut backoff = Duration::from_millis(100);
        let mut consumer = self.consumer.clone();
        'outer: while !shutdown.is_cancelled() {
            let stream = consumer.stream().max_messages_per_batch(1000).heartbeat(Duration::from_secs(5)).messages();
            let mut messages = match stream.await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(%error, "cannot pull from JetStream; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_RETRY_DELAY);
                    consumer = self.recreate_consumer().await.unwrap_or(consumer);
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => {
                        // Apply what this pull holds and what is already on
                        // its way, until the broker has been quiet a moment:
                        // left unacknowledged, it would wait out the ack wait
                        // before another replica (or this one, restarted) could
                        // have it.
                        let quiet = Duration::from_millis(250);
                        // Events published meanwhile keep arriving: bounded.
                        let until = tokio::time::Instant::now() + Duration::from_secs(2);
                        let mut taken = 0u64;
                        while let Ok(Some(Ok(message))) =
                            tokio::time::timeout(quiet.min(until.saturating_duration_since(tokio::time::Instant::now())), messages.next()).await
                        {
                            let event = self.decode(&message);
                            let lane = event.as_ref().map_or(0, |event| lane_of(event.user_id, lanes.len()));
                            if lanes[lane].send((message, event)).await.is_err() {
                                break;
                            }
                            taken += 1;
                        }
                        if taken > 0 {
                            tracing::info!(taken, "applied the events already delivered before stopping");
                        }
                        break 'outer;
                    }
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        let event = self.decode(&message);
                        let lane = match &event {
                            Ok(event) => lane_of(event.user_id, lanes.len()),
                            Err(_) => 0,
                        };
                        if lanes[lane].send((message, event)).await.is_err() {
                            break 'outer;
                        }
                    }
                    // A deleted consumer does not always announce itself: when no
                    // pull is pending at the moment of deletion, the next pulls
                    // find no responder, or simply go unanswered until a
                    // heartbeat is missed. Each of these ends this pull stream;
                    // get-or-create then brings the consumer back if it is gone
                    // and returns it unchanged if it is not.
                    Some(Err(error))
                        if matches!(
                            error.kind(),
                            pull::MessagesErrorKind::ConsumerDeleted
                                | pull::MessagesErrorKind::NoResponders
                                | pull::MessagesErrorKind::MissingHeartbeat
                        ) =>
                    {
                        tracing::warn!(%error, "the projection's pull stream ended; re-attaching its consumer");
                        consumer = self.recreate_consumer().await.unwrap_or(consumer);
                        break;
                    }
                    Some(Err(error)) => tracing::debug!(%error, "JetStream pull interrupted"),
                    None => break,
                }
            }
        }
        drop(lanes);
        for worker in workers {
            let _ = worker.await;
        }
        // Acknowledgements are sent without waiting; the last ones must leave
        // before the connection goes, or the server waits out their ack wait.
        if let Err(error) = self.client.flush().await {
            tracing::warn!(%error, "could not flush the last acknowledgements");
        }
        let _ = lag_task.await;
        tracing::info!("users projection stopped");
    }

    async fn lane(self, mut receiver: mpsc::Receiver<(Message, Result<AccountEvent, String>)>) {
        let mut pause = self.options.retry_base;
        let mut batch = Vec::with_capacity(LANE_BATCH);
        while receiver.recv_many(&mut batch, LANE_BATCH).await > 0 {
            let (_, database_trouble) = self.handle_batch(std::mem::take(&mut batch)).await;
            if database_trouble {
                // Give a struggling database a moment before the next batch.
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RETRY_DELAY);
            } else {
                pause = self.options.retry_base;
            }
        }
    }

    /// Applies a lane's waiting events in one transaction (one commit instead
    /// of one per event), then settles each. Each event is still atomic with
    /// its version update; nothing is acked before the commit. If the
    /// transaction fails, every event is handled on its own instead, so one
    /// bad event costs its neighbours only a retry. Returns each message's
    /// outcome and whether the database failed.
    async fn handle_batch(&self, batch: Vec<(Message, Result<AccountEvent, String>)>) -> (Vec<Outcome>, bool) {
        if batch.len() == 1 {
            let (message, event) = batch.into_iter().next().expect("one item");
            let (outcome, trouble) = self.handle_one(message, event).await;
            return (vec![outcome], trouble);
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut failed = false;
        match self.pool.begin().await {
            Ok(mut tx) => {
                for (_, event) in &batch {
                    let Ok(event) = event else { continue };
                    let result = self.apply_in(&mut tx, event).await;
                    if result.as_ref().is_err_and(ApplyError::aborts_transaction) {
                        failed = true;
                        break;
                    }
                    results.push(result);
                }
                if !failed && tx.commit().await.is_err() {
                    failed = true;
                }
            }
            Err(_) => failed = true,
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut database_trouble = false;
        if failed {
            for (message, event) in batch {
                let (outcome, trouble) = self.handle_one(message, event).await;
                outcomes.push(outcome);
                database_trouble |= trouble;
            }
            return (outcomes, database_trouble);
        }
        let mut results = results.into_iter();
        for (message, event) in batch {
            let outcome = match event {
                Ok(event) => {
                    let result = results.next().expect("one result per decoded event");
                    self.settle_result(message, &event, result).await
                }
                Err(reason) => self.handle_one(message, Err(reason)).await.0,
            };
            outcomes.push(outcome);
        }
        (outcomes, false)
    }

    /// Applies one delivered event in its own transaction and acks, naks or
    /// dead-letters it.
    pub async fn handle(&self, message: Message, event: Result<AccountEvent, String>) -> Outcome {
        self.handle_one(message, event).await.0
    }

    /// [`Self::handle`], also saying whether the database failed.
    async fn handle_one(&self, message: Message, event: Result<AccountEvent, String>) -> (Outcome, bool) {
        let event = match event {
            Ok(event) => event,
            Err(reason) => {
                let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
                let outcome = self.dead_letter(message, sequence, &reason).await;
                count(outcome);
                return (outcome, false);
            }
        };
        let result = self.apply(&event).await;
        let transient = matches!(result, Err(ApplyError::Transient(_)));
        (self.settle_result(message, &event, result).await, transient)
    }

    /// Acks, naks or dead-letters a message according to what applying it did.
    #[tracing::instrument(skip_all, fields(subject = %message.subject, event_id = %event.event_id))]
    async fn settle_result(&self, message: Message, event: &AccountEvent, result: Result<bool, ApplyError>) -> Outcome {
        let (delivered, pending, sequence) = match message.info() {
            Ok(info) => (info.delivered, info.pending, info.stream_sequence),
            Err(_) => (1, 0, 0),
        };
        self.record_lag(pending);
        let outcome = match result {
            Ok(changed) => {
                self.settle(&message, AckKind::Ack).await;
                if changed {
                    let delay = (chrono::Utc::now() - event.occurred_at).to_std().unwrap_or_default();
                    metrics::histogram!("gatehouse_users_projection_delay_seconds").record(delay.as_secs_f64());
                    Outcome::Applied
                } else {
                    Outcome::Ignored
                }
            }
            Err(error @ ApplyError::Gap { .. }) if delivered >= self.options.max_gap_deliveries => {
                self.dead_letter(message, sequence, &error.to_string()).await
            }
            Err(error @ (ApplyError::Invalid(_) | ApplyError::Rejected(_)))
                if delivered >= self.options.max_deliveries =>
            {
                self.dead_letter(message, sequence, &error.to_string()).await
            }
            Err(error) => {
                match &error {
                    ApplyError::Transient(_) => tracing::warn!(%error, "applying event failed; will retry"),
                    _ => tracing::debug!(%error, delivered, "event deferred"),
                }
                self.settle(&message, AckKind::Nak(Some(self.retry_delay(delivered)))).await;
                Outcome::Deferred
            }
        };
        count(outcome);
        outcome
    }

    /// Applies `event` in its own transaction. `Ok(false)`: already applied (or older).
    async fn apply(&self, event: &AccountEvent) -> Result<bool, ApplyError> {
        let mut tx = self.pool.begin().await.map_err(ApplyError::Transient)?;
        let changed = self.apply_in(&mut tx, event).await?;
        if changed {
            tx.commit().await.map_err(ApplyError::Transient)?;
        }
        Ok(changed)
    }

    /// Applies `event` inside the caller's transaction: the change and the
    /// version that makes it idempotent are written together.
    async fn apply_in(&self, tx: &mut PgConnection, event: &AccountEvent) -> Result<bool, ApplyError> {
        let current: Option<i64> = sqlx::query_scalar("SELECT version FROM users WHERE id = $1 FOR UPDATE")
            .bind(event.user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            return self.apply_to_missing(tx, event).await;
        };
        if event.version <= current {
            return Ok(false);
        }
        if event.version > current + 1 {
            return Err(ApplyError::Gap { version: event.version, expected: current + 1 });
        }
        let (id, version) = (event.user_id, event.version);
        match &event.change {
            AccountChange::Registered { .. } => {
                return Err(ApplyError::Invalid(format!("registration of an existing account at version {version}")));
            }
            AccountChange::EmailVerified => {
                sqlx::query("UPDATE users SET email_verified = true, version = $2, updated_at = now() WHERE id = $1")
                    .bind(id)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
            }
            AccountChange::RoleChanged { role } => {
                sqlx::query("UPDATE users SET role = $3, version = $2, updated_at = now() WHERE id = $1")
                    .bind(id)
                    .bind(version)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
            }
            AccountChange::ActiveChanged { active } => {
                sqlx::query("UPDATE users SET active = $3, version = $2, updated_at = now() WHERE id = $1")
                    .bind(id)
                    .bind(version)
                    .bind(active)
                    .execute(&mut *tx)
                    .await?;
            }
            AccountChange::Deleted => {
                sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO user_tombstones (user_id, version) VALUES ($1, $2)
                     ON CONFLICT (user_id) DO UPDATE SET version = GREATEST(user_tombstones.version, EXCLUDED.version)",
                )
                .bind(id)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(true)
    }

    /// An event for an account without a record: a registration, or a
    /// duplicate for a deleted account, or an event ahead of its registration.
    async fn apply_to_missing(&self, tx: &mut PgConnection, event: &AccountEvent) -> Result<bool, ApplyError> {
        let tombstone: Option<i64> = sqlx::query_scalar("SELECT version FROM user_tombstones WHERE user_id = $1")
            .bind(event.user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(deleted_at_version) = tombstone {
            if event.version > deleted_at_version {
                tracing::warn!(event_id = %event.event_id, "event for a deleted account ignored");
            }
            return Ok(false);
        }
        match (&event.change, event.version) {
            (AccountChange::Registered { username, email, role, display_name, email_verified, active }, 1) => {
                // A replica applying the same registration concurrently makes
                // this a no-op (the primary key), never a second row.
                let inserted = sqlx::query(
                    "INSERT INTO users (id, username, email, role, active, email_verified, display_name, version,
                                        created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, now())
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(event.user_id)
                .bind(username)
                .bind(email)
                .bind(role)
                .bind(active)
                .bind(email_verified)
                .bind(display_name)
                .bind(event.occurred_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                Ok(inserted == 1)
            }
            (_, 1) => {
                Err(ApplyError::Invalid(format!("version 1 must be a registration, got {}", event.change.type_name())))
            }
            (_, version) => Err(ApplyError::Gap { version, expected: 1 }),
        }
    }

    async fn settle(&self, message: &Message, kind: AckKind) {
        // A lost ack means a redelivery, which the version check absorbs.
        if let Err(error) = message.ack_with(kind).await {
            tracing::debug!(%error, "acknowledgement not sent");
        }
    }

    /// Publishes the event with its error to the dead-letter subject, then
    /// terminates it. If the dead letter cannot be stored, the event is
    /// retried later instead, so it is never dropped silently.
    async fn dead_letter(&self, message: Message, sequence: u64, reason: &str) -> Outcome {
        tracing::error!(subject = %message.subject, sequence, reason, "dead-lettering event");
        // Header values must be one line; keep the reason readable and bounded.
        let reason: String =
            reason.chars().map(|c| if c.is_control() { ' ' } else { c }).take(1_000).collect::<String>();
        let mut headers = HeaderMap::new();
        headers.insert(DEAD_LETTER_REASON_HEADER, reason.as_str());
        headers.insert(DEAD_LETTER_SUBJECT_HEADER, message.subject.as_str());
        headers.insert(DEAD_LETTER_SEQUENCE_HEADER, sequence.to_string().as_str());
        // One dead letter per original, even if this is retried.
        let publish = Publish::build()
            .payload(message.payload.clone())
            .headers(headers)
            .message_id(format!("{}:{sequence}", self.options.consumer_name));
        let stored = match self.jetstream.send_publish(self.dead_letter_subject.clone(), publish).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match stored {
            Ok(()) => {
                self.settle(&message, AckKind::Term).await;
                Outcome::DeadLettered
            }
            Err(error) => {
                tracing::warn!(%error, "cannot store dead letter; will retry the event");
                self.settle(&message, AckKind::Nak(Some(MAX_RETRY_DELAY))).await;
                Outcome::Deferred
            }
        }
    }

    /// A message's event, once its signature proves the auth service wrote
    /// it; the error is kept as text for the dead letter.
    fn decode(&self, message: &Message) -> Result<AccountEvent, String> {
        if let Err(error) = self.signer.verify_message(message) {
            metrics::counter!("gatehouse_users_projection_forged_events_total").increment(1);
            return Err(format!("not from the auth service: {error}"));
        }
        serde_json::from_slice(&message.payload).map_err(|e| format!("undecodable event: {e}"))
    }

    fn retry_delay(&self, delivered: i64) -> Duration {
        let exponent = u32::try_from(delivered.saturating_sub(1)).unwrap_or(u32::MAX).min(16);
        (self.options.retry_base * 2u32.pow(exponent)).min(MAX_RETRY_DELAY)
    }

    fn record_lag(&self, pending: u64) {
        metrics::gauge!("gatehouse_users_projection_lag_events", "consumer" => self.options.consumer_name.clone())
            .set(pending as f64);
    }

    /// Refreshes the lag gauge from the consumer's own counters while idle,
    /// when no delivery reports it.
    async fn report_lag(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            if let Ok(info) = self.consumer.info().await {
                let lag = info.num_pending + info.num_ack_pending as u64;
                self.record_lag(lag);
            }
        }
    }
}

fn count(outcome: Outcome) {
    let label = match outcome {
        Outcome::Applied => "applied",
        Outcome::Ignored => "ignored",
        Outcome::Deferred => "deferred",
        Outcome::DeadLettered => "dead_lettered",
        Outcome::Idle => "idle",
    };
    metrics::counter!("gatehouse_users_projection_events_total", "outcome" => label).increment(1);
}

/// The lane an account's events go to: always the same one.
fn lane_of(user_id: Uuid, lanes: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    user_id.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}
