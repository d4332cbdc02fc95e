//! The transactional outbox: events written with the change, relayed to JetStream.
//!
//! The auth service calls [`enqueue`] inside the transaction that changes an
//! account, so the event exists if and only if the change was committed. A
//! [`Relay`] (one per auth replica, any number of them) then publishes pending
//! rows to JetStream and marks them:
//!
//! 1. claim a batch with `FOR UPDATE SKIP LOCKED`, taking only the lowest
//!    unpublished version of each account, so one account's events leave in
//!    order even with several relays;
//! 2. publish each with `Nats-Msg-Id` = event id and wait for JetStream's
//!    acknowledgement (JetStream drops a re-published id inside its duplicate
//!    window, the users projection drops it after that);
//! 3. mark the acknowledged rows and commit.
//!
//! A relay killed between 2 and 3 leaves the rows pending: the next relay
//! publishes them again, which is harmless. A relay whose broker is down backs
//! off without holding rows. Published rows are pruned after a retention
//! period; until then they are what a stream lost with its broker's store is
//! rebuilt from ([`Relay::reconcile_stream`]).

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::Publish};
use futures::future::join_all;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use gatehouse_common::events::{self, AccountChange, AccountEvent};
use gatehouse_common::settings::SharedSettings;
use gatehouse_common::telemetry::{self, Service};

/// The `LISTEN/NOTIFY` channel the outbox trigger notifies on every insert.
pub const NOTIFY_CHANNEL: &str = "gatehouse_outbox";

/// How often a running relay refreshes its backlog gauges.
const LAG_GAUGE_INTERVAL: Duration = Duration::from_secs(5);

/// Records an event in the outbox inside the caller's transaction, so the event
/// exists if and only if the change it describes was committed. `version` is
/// the account's new version, bumped by the caller in the same transaction:
/// versions of one account start at 1 (the registration) and have no gaps,
/// because the users projection applies version `n` only after `n - 1`.
///
/// With traces exported, the row keeps the W3C context of the span that
/// wrote it (`traceparent`), and the span that publishes it links to it.
#[tracing::instrument(
    name = "outbox.enqueue",
    skip_all,
    fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "INSERT", db.collection.name = "outbox")
)]
pub async fn enqueue(
    conn: &mut PgConnection,
    user_id: Uuid,
    version: i64,
    change: AccountChange,
) -> Result<AccountEvent, sqlx::Error> {
    let event = AccountEvent { event_id: Uuid::now_v7(), user_id, version, occurred_at: chrono::Utc::now(), change };
    let payload = serde_json::to_value(&event).expect("events serialise");
    sqlx::query(
        "INSERT INTO outbox (id, user_id, version, event_type, payload, traceparent) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event.event_id)
    .bind(event.user_id)
    .bind(event.version)
    .bind(event.change.type_name())
    .bind(payload)
    .bind(telemetry::traceparent(&tracing::Span::current()))
    .execute(conn)
    .await?;
    Ok(event)
}

/// How a [`Relay`] paces itself. [`RelayOptions::default`] suits production.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Most events claimed, published and marked in one step. Default: 500.
    pub batch_size: i64,
    /// How often an idle relay looks for work when no notification arrives
    /// (notifications can be lost while the listener reconnects). Default: 1 s.
    pub poll_interval: Duration,
    /// How long to wait for JetStream to acknowledge a publish. Default: 5 s.
    pub publish_timeout: Duration,
    /// First pause after a failure; doubled on each further failure. Default: 100 ms.
    pub backoff_min: Duration,
    /// Longest pause between attempts while the broker is down. Default: 5 s.
    pub backoff_max: Duration,
    /// Published rows older than this are deleted. Default: 7 days.
    pub retention: Duration,
    /// How often published rows are pruned. Default: 10 minutes.
    pub prune_interval: Duration,
    /// How often a running relay checks that the events stream is the one it
    /// published to ([`Relay::reconcile_stream`]). Default: 15 s.
    pub stream_check_interval: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_secs(1),
            publish_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            retention: Duration::from_secs(7 * 24 * 60 * 60),
            prune_interval: Duration::from_secs(10 * 60),
            stream_check_interval: Duration::from_secs(15),
        }
    }
}

/// What one [`Relay::try_process_next`] step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No event was eligible.
    Empty,
    /// Events were published. `published` were acknowledged and marked
    /// (`duplicates` of them JetStream already had: an earlier relay published
    /// them and died before marking); `failed` stay pending for a later step.
    Published { published: usize, duplicates: usize, failed: usize },
}

/// Why a relay step did nothing.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("JetStream is unavailable: {0}")]
    Broker(String),
}

/// Publishes outbox rows to JetStream. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    settings: SharedSettings,
    options: RelayOptions,
    /// Signs every event, so consumers can tell ours from a stranger's.
    signer: gatehouse_common::signing::MessageSigner,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("stream", &self.settings.events_stream).field("options", &self.options).finish()
    }
}

/// One claimed outbox row.
struct Pending {
    id: Uuid,
    event_type: String,
    payload: String,
    /// The W3C context of the span that wrote it, when traces were exported.
    traceparent: Option<String>,
}

impl Relay {
    /// A relay over the auth database `pool` publishing through `client` to
    /// the stream and subjects named in `settings`, with default options.
    pub fn new(pool: PgPool, client: async_nats::Client, settings: &SharedSettings) -> Self {
        Self::with_options(pool, client, settings, RelayOptions::default())
    }

    pub fn with_options(
        pool: PgPool,
        client: async_nats::Client,
        settings: &SharedSettings,
        options: RelayOptions,
    ) -> Self {
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(options.publish_timeout);
        let signer = settings.message_signer();
        Self { pool, client, jetstream, settings: settings.clone(), options, signer }
    }

    /// Claims, publishes and marks one batch.
    #[tracing::instrument(name = "outbox_relay_step", skip(self), level = "debug")]
    pub async fn try_process_next(&self) -> Result<Outcome, RelayError> {
        self.ensure_connected()?;
        let mut tx = self.pool.begin().await?;
        let rows = self.claim(&mut tx).await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Outcome::Empty);
        }
        // One trace per batch (the relay is the auth service's), linked to
        // the traces that wrote its events.
        let span = tracing::info_span!(
            "outbox.publish",
            otel.kind = "producer",
            messaging.system = "nats",
            messaging.destination.name = %self.settings.events_stream,
            messaging.batch.message_count = rows.len(),
        );
        telemetry::start_trace(&span, Service::Auth);
        for traceparent in rows.iter().filter_map(|row| row.traceparent.as_deref()) {
            telemetry::link(&span, traceparent);
        }
        self.publish_and_mark(tx, &rows).instrument(span).await
    }

    /// Publishes the claimed `rows` and marks those acknowledged, in `tx`.
    async fn publish_and_mark(
        &self,
        mut tx: Transaction<'_, Postgres>,
        rows: &[Pending],
    ) -> Result<Outcome, RelayError> {
        let (acked, duplicates, failure) = self.publish(rows).await;
        let failed = rows.len() - acked.len();
        if acked.is_empty() {
            // Nothing to mark; the rows stay pending and the locks go with the transaction.
            drop(tx);
            metrics::counter!("gatehouse_outbox_publish_failures_total").increment(failed as u64);
            return Err(RelayError::Broker(failure.unwrap_or_else(|| "no acknowledgement".into())));
        }
        sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)").bind(&acked).execute(&mut *tx).await?;
        tx.commit().await?;
        metrics::counter!("gatehouse_outbox_published_total").increment(acked.len() as u64);
        metrics::counter!("gatehouse_outbox_duplicates_total").increment(duplicates as u64);
        if failed > 0 {
            metrics::counter!("gatehouse_outbox_publish_failures_total").increment(failed as u64);
            tracing::warn!(
                failed,
                error = failure.as_deref().unwrap_or(""),
                "some outbox events were not acknowledged"
            );
        }
        Ok(Outcome::Published { published: acked.len(), duplicates, failed })
    }

    /// Does what a relay killed between JetStream's acknowledgement and the
    /// mark leaves behind: claims and publishes a batch, then rolls back, so
    /// the rows stay pending. For fault-injection tests only.
    #[doc(hidden)]
    pub async fn publish_without_marking(&self) -> Result<usize, RelayError> {
        self.ensure_connected()?;
        let mut tx = self.pool.begin().await?;
        let rows = self.claim(&mut tx).await?;
        let (acked, _, _) = self.publish(&rows).await;
        tx.rollback().await?;
        Ok(acked.len())
    }

    /// Makes sure the events stream exists and is the one this outbox
    /// published to. A stream created again since (a broker that restarted
    /// without its store, an operator who deleted it; perhaps re-created by
    /// the users projection) holds none of the events published before: every
    /// retained row is queued again, to be published in each account's order,
    /// and consumers drop what they had already applied. Returns how many rows
    /// were queued again.
    pub async fn reconcile_stream(&self) -> anyhow::Result<u64> {
        let info = events::ensure_stream(&self.jetstream, &self.settings).await?;
        let created = info.created.to_string();
        let mut tx = self.pool.begin().await?;
        let recorded: Option<String> =
            sqlx::query_scalar("SELECT created FROM outbox_stream WHERE name = $1 FOR UPDATE")
                .bind(&self.settings.events_stream)
                .fetch_optional(&mut *tx)
                .await?;
        let requeued = match recorded {
            Some(recorded) if recorded == created => 0,
            Some(recorded) => {
                let requeued = sqlx::query("UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL")
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tracing::warn!(
                    stream = %self.settings.events_stream,
                    was_created = %recorded,
                    now_created = %created,
                    requeued,
                    "the events stream was created again; publishing the retained events once more"
                );
                metrics::counter!("gatehouse_outbox_stream_recreated_total").increment(1);
                requeued
            }
            // The first look at this stream: it holds what was published.
            None => 0,
        };
        sqlx::query(
            "INSERT INTO outbox_stream (name, created) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET created = EXCLUDED.created",
        )
        .bind(&self.settings.events_stream)
        .bind(&created)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(requeued)
    }

    /// Deletes published rows older than the retention period; returns how many.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        let mut total = 0;
        loop {
            // Bounded batches keep each delete's locks and WAL small.
            let deleted = sqlx::query(
                "DELETE FROM outbox WHERE id IN (
                     SELECT id FROM outbox
                     WHERE published_at IS NOT NULL AND published_at < now() - make_interval(secs => $1)
                     LIMIT 5000)",
            )
            .bind(self.options.retention.as_secs_f64())
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += deleted;
            if deleted < 5000 {
                return Ok(total);
            }
        }
    }

    /// Relays until `shutdown` is cancelled: wakes on `LISTEN/NOTIFY`, polls
    /// as a fallback, backs off while the broker or database fails, prunes
    /// now and then. Creates or updates the stream first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(self.options.backoff_min, self.options.backoff_max);
        // The stream must exist before publishing; keep trying while NATS is down.
        loop {
            match self.reconcile_stream().await {
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "cannot create the events stream yet; retrying");
                    if sleep_or_cancel(backoff.next(), &shutdown).await {
                        return;
                    }
                }
            }
        }
        backoff.reset();
        let mut listener = self.listen().await;
        let mut last_prune: Option<Instant> = None;
        let mut last_gauge: Option<Instant> = None;
        let mut last_stream_check = Instant::now();
        tracing::info!(stream = %self.settings.events_stream, "outbox relay started");
        while !shutdown.is_cancelled() {
            if last_prune.is_none_or(|at| at.elapsed() >= self.options.prune_interval) {
                last_prune = Some(Instant::now());
                match self.prune().await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "pruned published outbox rows"),
                    Err(error) => tracing::warn!(%error, "pruning the outbox failed"),
                }
            }
            if last_gauge.is_none_or(|at| at.elapsed() >= LAG_GAUGE_INTERVAL) {
                last_gauge = Some(Instant::now());
                self.record_backlog().await;
            }
            // Publishing into a stream another service created again succeeds
            // without a hint that the older events are gone: look now and then.
            if last_stream_check.elapsed() >= self.options.stream_check_interval {
                last_stream_check = Instant::now();
                if let Err(error) = self.reconcile_stream().await {
                    tracing::debug!(error = %format!("{error:#}"), "the events stream cannot be checked now");
                }
            }
            match self.try_process_next().await {
                Ok(Outcome::Published { failed: 0, .. }) => backoff.reset(),
                Ok(Outcome::Published { .. }) => {
                    let _ = sleep_or_cancel(backoff.next(), &shutdown).await;
                }
                Ok(Outcome::Empty) => {
                    backoff.reset();
                    self.wait_for_work(&mut listener, &shutdown).await;
                }
                Err(error) => {
                    let pause = backoff.next();
                    tracing::warn!(%error, pause_ms = pause.as_millis() as u64, "outbox relay backing off");
                    let _ = sleep_or_cancel(pause, &shutdown).await;
                    if matches!(error, RelayError::Broker(_)) {
                        // A broker that restarted without its store has no
                        // stream: publishes find no one to store them.
                        // Creating it again (or finding it unchanged) lets the
                        // pending events out.
                        last_stream_check = Instant::now();
                        if let Err(error) = self.reconcile_stream().await {
                            tracing::debug!(error = %format!("{error:#}"), "the events stream cannot be ensured yet");
                        }
                    }
                }
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// Sets the backlog gauges: pending events and the age of the oldest.
    async fn record_backlog(&self) {
        let backlog: Result<(i64, Option<f64>), _> = sqlx::query_as(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await;
        if let Ok((pending, oldest)) = backlog {
            metrics::gauge!("gatehouse_outbox_pending_events").set(pending as f64);
            metrics::gauge!("gatehouse_outbox_oldest_pending_seconds").set(oldest.unwrap_or(0.0));
        }
    }

    fn ensure_connected(&self) -> Result<(), RelayError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(RelayError::Broker(format!("NATS connection is {state}"))),
        }
    }

    /// Locks up to a batch of eligible rows: pending, and the lowest pending
    /// version of their account. Rows locked by another relay are skipped, and
    /// so are their successors (their predecessor is still pending).
    ///
    /// The order check is a correlated `min()` rather than `NOT EXISTS` on
    /// purpose: PostgreSQL cannot turn it into a join over every pending row,
    /// so the plan stays "walk the pending index in arrival order, probe each
    /// account's index, stop at the batch size", however large the backlog.
    async fn claim(&self, tx: &mut Transaction<'_, Postgres>) -> Result<Vec<Pending>, sqlx::Error> {
        // A queue table's statistics are usually stale (taken when it was
        // nearly empty), and then the planner sorts every pending row to take
        // the first few hundred: a claim costs O(backlog) and a backlog drains
        // in O(n²). Without sorting it must walk the pending index in order.
        // The same stale estimates can price the query high enough for JIT
        // compilation, which costs more than the whole claim.
        sqlx::query("SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true)")
            .execute(&mut **tx)
            .await?;
        let rows: Vec<(Uuid, String, String, Option<String>)> = sqlx::query_as(
            "SELECT o.id, o.event_type, o.payload::text, o.traceparent
             FROM outbox o
             WHERE o.published_at IS NULL
               AND o.version = (
                   SELECT min(p.version) FROM outbox p
                   WHERE p.user_id = o.user_id AND p.published_at IS NULL)
             ORDER BY o.created_at
             LIMIT $1
             FOR UPDATE OF o SKIP LOCKED",
        )
        .bind(self.options.batch_size)
        .fetch_all(&mut **tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, event_type, payload, traceparent)| Pending { id, event_type, payload, traceparent })
            .collect())
    }

    /// Publishes every row (pipelined) and returns the ids JetStream
    /// acknowledged, how many of those were duplicates, and one failure reason.
    async fn publish(&self, rows: &[Pending]) -> (Vec<Uuid>, usize, Option<String>) {
        let mut pending_acks = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in rows {
            let subject = events::event_subject(&self.settings.events_subject_prefix, &row.event_type);
            // `expected_stream`: an acknowledgement from any other stream that
            // happens to capture the subject is refused, not taken as stored.
            let payload = row.payload.clone().into_bytes();
            let publish = Publish::build()
                .headers(self.signer.headers(&subject, &payload))
                .payload(payload.into())
                .message_id(row.id.to_string())
                .expected_stream(&self.settings.events_stream);
            match self.jetstream.send_publish(subject, publish).await {
                Ok(ack) => pending_acks.push((row.id, ack)),
                Err(error) => {
                    failure = Some(error.to_string());
                    break;
                }
            }
        }
        let results = join_all(pending_acks.into_iter().map(|(id, ack)| async move { (id, ack.await) })).await;
        let mut acked = Vec::with_capacity(results.len());
        let mut duplicates = 0;
        for (id, result) in results {
            match result {
                Ok(ack) => {
                    duplicates += usize::from(ack.duplicate);
                    acked.push(id);
                }
                Err(error) => failure = Some(error.to_string()),
            }
        }
        (acked, duplicates, failure)
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for outbox notifications; polling only");
                return None;
            }
        };
        match listener.listen(NOTIFY_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for outbox notifications; polling only");
                None
            }
        }
    }

    /// Sleeps until a notification, the poll interval or shutdown, whichever comes first.
    async fn wait_for_work(&self, listener: &mut Option<PgListener>, shutdown: &CancellationToken) {
        let poll = tokio::time::sleep(self.options.poll_interval);
        match listener {
            Some(l) => {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = poll => {}
                    received = l.recv() => {
                        if let Err(error) = received {
                            // The listener reconnects on its next call; until then, poll.
                            tracing::debug!(%error, "outbox listener interrupted");
                        }
                        // One step handles every event committed so far; drop the
                        // notifications already queued for them.
                        while l.next_buffered().is_some() {}
                    }
                }
            }
            None => {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = poll => {}
                }
            }
        }
    }
}

/// Exponential back-off between `min` and `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self { min, max, current: min }
    }

    pub(crate) fn next(&mut self) -> Duration {
        let pause = self.current;
        self.current = (self.current * 2).min(self.max);
        pause
    }

    pub(crate) fn reset(&mut self) {
        self.current = self.min;
    }
}

/// Sleeps for `pause`; returns true if `shutdown` fired first.
pub(crate) async fn sleep_or_cancel(pause: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(pause) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let pauses: Vec<u128> = (0..4).map(|_| b.next().as_millis()).collect();
        assert_eq!(pauses, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(100));
    }
}
