//! Ending subscriptions whose session ended.
//!
//! Every live subscription of an authenticated caller is registered under its
//! session id. One task per gateway looks at the registered sessions whenever
//! a revocation is heard (a signed notice, or a Redis lookup that found one)
//! and at least every [`SWEEP`]; a revoked session's subscriptions are
//! cancelled at once. The Redis lookups behind a sweep are the revocation
//! cache's own: at most one per session per recheck interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_access::revocation::Revocations;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The longest a revocation found only in Redis waits for a sweep.
pub(crate) const SWEEP: Duration = Duration::from_millis(250);

/// Sessions with live subscriptions, each with the token that ends them.
#[derive(Default)]
pub(crate) struct SessionWatch {
    sessions: Mutex<HashMap<Uuid, Watched>>,
}

struct Watched {
    ended: CancellationToken,
    subscriptions: usize,
}

/// A subscription's registration; unregisters when dropped.
pub(crate) struct Registration {
    watch: Arc<SessionWatch>,
    sid: Uuid,
    pub ended: CancellationToken,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut sessions = self.watch.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(watched) = sessions.get_mut(&self.sid) {
            watched.subscriptions -= 1;
            if watched.subscriptions == 0 {
                sessions.remove(&self.sid);
            }
        }
    }
}

impl SessionWatch {
    /// Registers one subscription of session `sid`.
    pub fn register(self: &Arc<Self>, sid: Uuid) -> Registration {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let watched =
            sessions.entry(sid).or_insert_with(|| Watched { ended: CancellationToken::new(), subscriptions: 0 });
        watched.subscriptions += 1;
        Registration { watch: self.clone(), sid, ended: watched.ended.clone() }
    }

    /// Looks at every watched session now and then until `shutdown`.
    pub async fn run(self: Arc<Self>, revocations: Revocations, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = revocations.heard() => {}
                () = tokio::time::sleep(SWEEP) => {}
            }
            let watched: Vec<(Uuid, CancellationToken)> = {
                let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
                sessions.iter().map(|(sid, watched)| (*sid, watched.ended.clone())).collect()
            };
            for batch in watched.chunks(256) {
                let verdicts =
                    futures::future::join_all(batch.iter().map(|(sid, _)| revocations.is_revoked(*sid))).await;
                for ((sid, ended), verdict) in batch.iter().zip(verdicts) {
                    // Redis unreachable is not a revocation: live
                    // subscriptions go on, and notices still arrive.
                    if let Ok(true) = verdict {
                        tracing::info!(%sid, "ending the subscriptions of a revoked session");
                        ended.cancel();
                    }
                }
            }
        }
    }

    /// How many sessions have live subscriptions.
    pub fn len(&self) -> usize {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
