//! Keeps the live snapshot in step with the config store.
//!
//! Every committed change (an Admin API write, a reload, later a control-plane push) is sent
//! here. One task folds all pending changes into the current config, compiles the next
//! snapshot off the proxy workers (reusing what did not change) and swaps it in. A burst of
//! writes costs one rebuild, not one per write, and no request ever waits for a rebuild.

use crate::snapshot::Snapshot;
use crate::state::Shared;
use silverback_model::{Change, Config};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// What changed in the store.
#[derive(Debug)]
pub enum Update {
    /// Rows written or deleted, in commit order.
    Changes(Vec<Change>),
    /// The whole config was replaced (reload, `POST /config`).
    Replace(Arc<Config>),
}

/// Why an update is not live.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReconfigureError {
    #[error("{0}")]
    Compile(String),
    #[error("config updates are no longer applied (the update task has ended)")]
    Stopped,
}

struct Envelope {
    update: Update,
    /// Told the outcome of the rebuild that included this update.
    done: Option<oneshot::Sender<Result<(), ReconfigureError>>>,
}

/// The sending side; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct Reconfigurer {
    updates: mpsc::UnboundedSender<Envelope>,
}

impl Reconfigurer {
    /// Starts the task on `runtime`. The snapshot installed in `shared` when it starts is the
    /// base every update applies to.
    pub fn spawn(shared: Arc<Shared>, runtime: &tokio::runtime::Handle) -> Self {
        let (updates, rx) = mpsc::unbounded_channel();
        runtime.spawn(run(shared, rx));
        Reconfigurer { updates }
    }

    /// Queues an update without waiting for it (the Admin API's writes: the response does not
    /// wait for the rebuild).
    pub fn send(&self, update: Update) {
        if self.updates.send(Envelope { update, done: None }).is_err() {
            tracing::error!("{}", ReconfigureError::Stopped);
        }
    }

    /// Queues an update and waits until it is live, or could not be compiled.
    pub async fn apply(&self, update: Update) -> Result<(), ReconfigureError> {
        let (tx, rx) = oneshot::channel();
        self.updates
            .send(Envelope {
                update,
                done: Some(tx),
            })
            .map_err(|_| ReconfigureError::Stopped)?;
        rx.await.map_err(|_| ReconfigureError::Stopped)?
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("update", &self.update)
            .finish()
    }
}

/// Replaced snapshots, kept until no request uses them so that they are freed here: freeing a
/// large snapshot takes milliseconds, which must not land on a proxy worker finishing its
/// last request on it.
#[derive(Default)]
struct Retired(Vec<Arc<Snapshot>>);

impl Retired {
    fn push(&mut self, old: Arc<Snapshot>) {
        self.0.push(old);
        self.free_unused();
    }

    /// Frees those only held here; whether any are left.
    fn free_unused(&mut self) -> bool {
        self.0.retain(|s| Arc::strong_count(s) > 1);
        !self.0.is_empty()
    }
}

/// How often retired snapshots still in use are checked.
const RETIRED_CHECK: Duration = Duration::from_millis(100);

async fn run(shared: Arc<Shared>, mut updates: mpsc::UnboundedReceiver<Envelope>) {
    // The store's config as of the last update, whether or not it compiled.
    let mut config = shared.snapshot().config.clone();
    let mut retired = Retired::default();
    loop {
        let first = if retired.free_unused() {
            match tokio::time::timeout(RETIRED_CHECK, updates.recv()).await {
                Ok(Some(first)) => first,
                Ok(None) => return,
                Err(_) => continue,
            }
        } else {
            match updates.recv().await {
                Some(first) => first,
                None => return,
            }
        };
        let started = Instant::now();
        let mut batch = vec![first];
        while let Ok(more) = updates.try_recv() {
            batch.push(more);
        }
        let n = batch.len();
        let mut waiting = Vec::new();
        let mut changes = Vec::new();
        for envelope in batch {
            waiting.extend(envelope.done);
            changes.push(envelope.update);
        }
        config = fold(config, changes);
        let previous = shared.snapshot();
        let next = config.clone();
        let outcome = match tokio::task::spawn_blocking(move || previous.rebuild(next)).await {
            Ok(Ok(snap)) => {
                let hash = snap.config.hash().to_string();
                retired.push(shared.install(snap));
                tracing::debug!(
                    hash,
                    updates = n,
                    elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "config updated"
                );
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::error!(
                    hash = config.hash(),
                    "config change cannot be compiled, keeping the current snapshot: {e}"
                );
                Err(ReconfigureError::Compile(e.to_string()))
            }
            Err(e) => {
                tracing::error!("config rebuild failed: {e}");
                Err(ReconfigureError::Compile(e.to_string()))
            }
        };
        for done in waiting {
            let _ = done.send(outcome.clone());
        }
    }
}
/// Applies a batch of updates: runs of changes become one [`Config::apply`], a replacement
/// discards everything before it.
fn fold(mut config: Arc<Config>, batch: Vec<Update>) -> Arc<Config> {
    let mut changes: Vec<Change> = Vec::new();
    for update in batch {
        match update {
            Update::Changes(c) => changes.extend(c),
            Update::Replace(c) => {
                changes.clear();
                config = c;
            }
        }
    }
    if !changes.is_empty() {
        config = Arc::new(config.apply(&changes));
    }
    config
}
