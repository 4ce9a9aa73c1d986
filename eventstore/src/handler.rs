//! The generic command handler: load the stream, fold, decide, append with the expected
//! version, and retry a bounded number of times when another writer got there first.
//!
//! Recent stream states are kept in memory, so a command on a hot stream reads only what is
//! new, and only when its optimistic append was refused: the expected-version check in the
//! database is what keeps a stale cache from ever deciding on old facts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lightspeed_domain::{Decider, UpcastError};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::cache::BoundedCache;
use crate::error::{AppendError, InvalidInput, ReadError};
use crate::limits::MAX_READ_BATCH;
use crate::model::{AppendResult, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StreamId};
use crate::snapshots::{self, Snapshot};
use crate::store::EventStore;

/// How many times one command is decided again after losing a race.
pub const MAX_COMMAND_ATTEMPTS: usize = 12;
/// Commands on one stream queue behind each other within a process, on one of this many locks,
/// so only other processes can make an append lose its race.
const STREAM_LOCK_STRIPES: usize = 1_024;
/// Longest pause before retrying a command that lost a race to another process.
const MAX_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);
/// Most events one command may append to one stream (bounds the idempotent-replay lookup).
pub const MAX_EVENTS_PER_COMMAND: usize = 32;
/// How many stream states one handler keeps (about twice this, at most).
pub const STATE_CACHE_CAPACITY: usize = 8_192;
/// How many of this process's appends a remembered state holds beyond its version, waiting for
/// the events in between (the appends of one group commit complete in any order).
const MAX_APPENDS_AHEAD: usize = 256;

/// A stream's state as of a version.
#[derive(Debug, Clone)]
pub struct Loaded<S> {
    /// How many events were folded.
    pub version: u64,
    /// The folded state.
    pub state: S,
}

impl<S: Default> Default for Loaded<S> {
    fn default() -> Self {
        Self {
            version: 0,
            state: S::default(),
        }
    }
}

/// Who asks and why, carried into every event's metadata.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    /// Makes the command idempotent: its events get ids derived from it, so a retry stores
    /// nothing new. Without it, events get fresh ids.
    pub command_id: Option<Uuid>,
    /// Correlation, causation, actor, request id.
    pub metadata: Metadata,
}

/// What a command did.
pub struct Executed<D: Decider> {
    /// The events the command recorded (or had recorded, for a retry).
    pub events: Vec<D::Event>,
    /// The stream's state after them.
    pub state: D::State,
    /// The stream's version after them.
    pub version: u64,
    /// True when the command had already been applied and nothing new was stored.
    pub idempotent_replay: bool,
}

impl<D: Decider> Clone for Executed<D> {
    fn clone(&self) -> Self {
        Self {
            events: self.events.clone(),
            state: self.state.clone(),
            version: self.version,
            idempotent_replay: self.idempotent_replay,
        }
    }
}

impl<D: Decider> std::fmt::Debug for Executed<D>
where
    D::State: std::fmt::Debug,
    D::Event: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executed")
            .field("events", &self.events)
            .field("state", &self.state)
            .field("version", &self.version)
            .field("idempotent_replay", &self.idempotent_replay)
            .finish()
    }
}

/// Why a command recorded nothing.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The business rules refused it, on the stream's current state.
    #[error(transparent)]
    Rejected(E),
    /// Other writers kept winning the race for the stream.
    #[error("stream {stream_id} stayed contended after {attempts} attempts")]
    Contended {
        /// The stream.
        stream_id: StreamId,
        /// How many times the command was decided.
        attempts: usize,
    },
    /// The log refused the append.
    #[error(transparent)]
    Append(AppendError),
    /// The log could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A stored event does not decode into the current event type.
    #[error(transparent)]
    Decode(#[from] UpcastError),
}

/// Id of the `index`-th event a command appends to a stream: the same inputs give the same id.
pub fn derived_event_id(command_id: Uuid, stream_id: &StreamId, index: usize) -> Uuid {
    let digest = Sha256::new()
        .chain_update(command_id.as_bytes())
        .chain_update(stream_id.as_str().as_bytes())
        .chain_update((index as u64).to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Whether `event_id` is one of those the context's command id derives on this stream.
fn derives(context: &CommandContext, stream_id: &StreamId, event_id: Uuid) -> bool {
    context.command_id.is_some_and(|command_id| {
        (0..MAX_EVENTS_PER_COMMAND)
            .any(|index| derived_event_id(command_id, stream_id, index) == event_id)
    })
}

/// Encodes domain events for one stream with ids derived from the command (or fresh ones).
pub fn new_events<E: lightspeed_domain::DomainEvent>(
    stream_id: &StreamId,
    events: &[E],
    context: &CommandContext,
) -> Result<Vec<NewEvent>, InvalidInput> {
    events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let event_id = match context.command_id {
                Some(command_id) => derived_event_id(command_id, stream_id, index),
                None => Uuid::now_v7(),
            };
            NewEvent::from_domain(event_id, event, context.metadata.clone())
        })
        .collect()
}

/// The stream of the aggregate of decider `D` with this id: `<D::CATEGORY>-<id>`.
pub fn stream_of<D: Decider>(id: impl std::fmt::Display) -> Result<StreamId, InvalidInput> {
    StreamId::of(D::CATEGORY, id)
}

/// A remembered state, when the log last confirmed it current (never, for a state restored from
/// a snapshot), and this process's appends beyond it (by first version), folded in once the
/// state reaches them.
struct Remembered<D: Decider> {
    loaded: Loaded<D::State>,
    confirmed_at: Option<Instant>,
    ahead: BTreeMap<u64, Vec<D::Event>>,
}

impl<D: Decider> Remembered<D> {
    fn new(loaded: Loaded<D::State>, confirmed_at: Option<Instant>) -> Self {
        Self {
            loaded,
            confirmed_at,
            ahead: BTreeMap::new(),
        }
    }

    /// Folds the appends that follow the state directly and forgets those it already holds;
    /// true if the state moved on.
    fn fold_ahead(&mut self) -> bool {
        let mut moved = false;
        while let Some(events) = self.ahead.remove(&(self.loaded.version + 1)) {
            let state = std::mem::take(&mut self.loaded.state);
            self.loaded.state = events.iter().fold(state, |s, e| D::evolve(s, e));
            self.loaded.version += events.len() as u64;
            moved = true;
        }
        let version = self.loaded.version;
        self.ahead.retain(|&first, _| first > version);
        moved
    }
}

/// Where appending a decision left a command.
enum Recorded<D: Decider> {
    /// Recorded (or found already recorded): the command is done.
    Done(Executed<D>),
    /// The stream had moved on: the state it was decided on, to catch up from.
    Stale(Loaded<D::State>),
}

/// Runs commands of one decider against the log.
pub struct CommandHandler<D: Decider, S: EventStore> {
    store: S,
    cache: Arc<Mutex<BoundedCache<StreamId, Remembered<D>>>>,
    stream_locks: Arc<[tokio::sync::Mutex<()>]>,
}

impl<D: Decider, S: EventStore> Clone for CommandHandler<D, S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            cache: Arc::clone(&self.cache),
            stream_locks: Arc::clone(&self.stream_locks),
        }
    }
}

impl<D: Decider, S: EventStore> std::fmt::Debug for CommandHandler<D, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandHandler")
            .field("category", &D::CATEGORY)
            .finish_non_exhaustive()
    }
}

impl<D: Decider, S: EventStore> CommandHandler<D, S> {
    /// A handler appending to `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            cache: Arc::new(Mutex::new(BoundedCache::new(STATE_CACHE_CAPACITY))),
            stream_locks: (0..STREAM_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The store it appends to.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The remembered state of a stream, which may be behind the log; the default when unknown.
    pub fn cached(&self, stream_id: &StreamId) -> Loaded<D::State> {
        self.lock_cache()
            .get(stream_id)
            .map(|remembered| remembered.loaded.clone())
            .unwrap_or_default()
    }

    /// The remembered state of a stream (the default when unknown), and whether a read or an
    /// append of this handler found it current less than `within` ago (a stream that does not
    /// exist counts once read).
    pub fn cached_within(
        &self,
        stream_id: &StreamId,
        within: Duration,
    ) -> (Loaded<D::State>, bool) {
        match self.lock_cache().get(stream_id) {
            Some(remembered) => (
                remembered.loaded.clone(),
                remembered
                    .confirmed_at
                    .is_some_and(|at| at.elapsed() < within),
            ),
            None => (Loaded::default(), false),
        }
    }

    /// Remembers a stream's state after an append made outside this handler.
    pub fn remember(&self, stream_id: &StreamId, loaded: Loaded<D::State>) {
        self.confirm(stream_id, loaded.version, || loaded);
    }

    /// Remembers that this process appended `events` to the stream, the last of them at
    /// `version`, whatever else was appended before them: they are folded into the remembered
    /// state once it reaches the version just before them (so a hot stream's state keeps up
    /// with the appends of its own process without reading them back).
    pub fn remember_appended(&self, stream_id: &StreamId, events: Vec<D::Event>, version: u64) {
        let Some(before) = version.checked_sub(events.len() as u64) else {
            return;
        };
        let mut cache = self.lock_cache();
        // Unknown streams are left to the next read.
        let Some(known) = cache.get_mut(stream_id) else {
            return;
        };
        if known.loaded.version >= version {
            if known.loaded.version == version {
                known.confirmed_at = Some(Instant::now());
            }
            return;
        }
        if !events.is_empty() && known.ahead.len() < MAX_APPENDS_AHEAD {
            known.ahead.insert(before + 1, events);
        }
        let was = known.loaded.version;
        if known.fold_ahead() {
            known.confirmed_at = Some(Instant::now());
            self.snapshot_if_due(stream_id, was, &known.loaded);
        }
    }

    /// Records that the log holds `version` events of the stream now; `state` (called only if
    /// the cache is behind) is the state at that version.
    fn confirm(
        &self,
        stream_id: &StreamId,
        version: u64,
        state: impl FnOnce() -> Loaded<D::State>,
    ) {
        let confirmed_at = Some(Instant::now());
        let mut cache = self.lock_cache();
        match cache.get_mut(stream_id) {
            Some(known) if known.loaded.version > version => {}
            // Only the time: cloning a hot gateway's state (its rate window) is costly.
            Some(known) if known.loaded.version == version => known.confirmed_at = confirmed_at,
            Some(known) => {
                let was = known.loaded.version;
                known.loaded = state();
                known.confirmed_at = confirmed_at;
                known.fold_ahead();
                self.snapshot_if_due(stream_id, was, &known.loaded);
            }
            None => {
                let loaded = state();
                self.snapshot_if_due(stream_id, 0, &loaded);
                cache.insert(stream_id.clone(), Remembered::new(loaded, confirmed_at));
            }
        }
    }

    /// Keeps a snapshot of a state that has just passed a multiple of [`snapshots::SNAPSHOT_EVERY`] events
    /// since `was`, written in the background: a lost one only makes a cold load longer.
    fn snapshot_if_due(&self, stream_id: &StreamId, was: u64, loaded: &Loaded<D::State>) {
        let Some(shape) = D::SNAPSHOT_VERSION else {
            return;
        };
        if !snapshots::due(was, loaded.version) {
            return;
        }
        let (Some(state), Ok(runtime)) = (
            D::snapshot(&loaded.state),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        let snapshot = Snapshot {
            version: loaded.version,
            state,
        };
        let (store, stream_id) = (self.store.clone(), stream_id.clone());
        runtime.spawn(async move {
            if let Err(error) = store.write_snapshot(&stream_id, shape, &snapshot).await {
                tracing::warn!(stream_id = %stream_id, %error, "snapshot not kept");
            }
        });
    }

    /// The stream's last snapshot as a state, for deciders that take snapshots.
    async fn restored(&self, stream_id: &StreamId) -> Result<Option<Loaded<D::State>>, ReadError> {
        let Some(shape) = D::SNAPSHOT_VERSION else {
            return Ok(None);
        };
        let Some(snapshot) = self.store.read_snapshot(stream_id, shape).await? else {
            return Ok(None);
        };
        Ok(D::restore(snapshot.state).map(|state| Loaded {
            version: snapshot.version,
            state,
        }))
    }

    /// Remembers, for those of these streams the cache does not know, their last snapshots (as
    /// never confirmed current), so reading them cold starts there instead of at their first
    /// event.
    pub async fn warm(&self, stream_ids: &[StreamId]) -> Result<(), ReadError> {
        if D::SNAPSHOT_VERSION.is_none() {
            return Ok(());
        }
        for stream_id in stream_ids {
            if self.lock_cache().get(stream_id).is_some() {
                continue;
            }
            if let Some(loaded) = self.restored(stream_id).await? {
                let mut cache = self.lock_cache();
                if cache.get(stream_id).is_none() {
                    cache.insert(stream_id.clone(), Remembered::new(loaded, None));
                }
            }
        }
        Ok(())
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, BoundedCache<StreamId, Remembered<D>>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Brings a state up to date with the log, folding only the events it has not seen (from
    /// the stream's last snapshot, for a state of no events).
    pub async fn catch_up(
        &self,
        stream_id: &StreamId,
        mut loaded: Loaded<D::State>,
    ) -> Result<Loaded<D::State>, CommandError<D::Error>> {
        if loaded.version == 0
            && let Some(restored) = self.restored(stream_id).await?
        {
            loaded = restored;
        }
        loop {
            let batch = self
                .store
                .read_stream(stream_id, loaded.version, MAX_READ_BATCH)
                .await?;
            let full = batch.len() == MAX_READ_BATCH;
            for recorded in &batch {
                let event: D::Event = recorded.decode()?;
                loaded.state = D::evolve(loaded.state, &event);
                loaded.version = recorded.stream_version;
            }
            if !full {
                self.confirm(stream_id, loaded.version, || loaded.clone());
                return Ok(loaded);
            }
        }
    }

    /// The current states of several streams, reading only what the cache has not seen, in one
    /// query; in the order asked.
    pub async fn load_many(
        &self,
        stream_ids: &[StreamId],
    ) -> Result<Vec<Loaded<D::State>>, CommandError<D::Error>> {
        self.warm(stream_ids).await?;
        let loaded: Vec<Loaded<D::State>> = stream_ids.iter().map(|id| self.cached(id)).collect();
        let after: Vec<(StreamId, u64)> = stream_ids
            .iter()
            .cloned()
            .zip(loaded.iter().map(|l| l.version))
            .collect();
        let events = self.store.read_streams(&after).await?;
        stream_ids
            .iter()
            .zip(loaded)
            .map(|(id, cached)| {
                let own = events.iter().filter(|e| e.stream_id == *id);
                Ok(self.absorb(id, cached, own)?)
            })
            .collect()
    }

    /// Folds events read elsewhere (e.g. with other handlers' streams in one query) into a
    /// state, skipping any it already holds, and remembers the result if it moved on.
    pub fn absorb<'e>(
        &self,
        stream_id: &StreamId,
        mut loaded: Loaded<D::State>,
        events: impl IntoIterator<Item = &'e RecordedEvent>,
    ) -> Result<Loaded<D::State>, UpcastError> {
        for recorded in events {
            if recorded.stream_version <= loaded.version {
                continue;
            }
            let event: D::Event = recorded.decode()?;
            loaded.state = D::evolve(loaded.state, &event);
            loaded.version = recorded.stream_version;
        }
        self.confirm(stream_id, loaded.version, || loaded.clone());
        Ok(loaded)
    }

    /// The current state of a stream, read from the log where the cache is behind.
    pub async fn load(
        &self,
        stream_id: &StreamId,
    ) -> Result<Loaded<D::State>, CommandError<D::Error>> {
        self.catch_up(stream_id, self.cached(stream_id)).await
    }

    /// Decides `command` on the stream's state and appends the events.
    ///
    /// Starts from the remembered state and lets the database's expected-version check catch a
    /// stale one; a refusal is only final once decided on state just read from the log.
    pub async fn execute(
        &self,
        stream_id: &StreamId,
        command: &D::Command,
        context: &CommandContext,
    ) -> Result<Executed<D>, CommandError<D::Error>> {
        let _queued = self.stream_lock(stream_id).lock().await;
        let mut loaded = self.cached(stream_id);
        let mut fresh = false;
        let mut lost_race = false;
        for _ in 0..MAX_COMMAND_ATTEMPTS {
            if lost_race {
                // Another process appended between our read and our write: step aside a random
                // moment so the two stop colliding.
                tokio::time::sleep(rand::random_range(Duration::ZERO..=MAX_RETRY_PAUSE)).await;
            }
            let events = match D::decide(&loaded.state, command) {
                Ok(events) => events,
                Err(_) if !fresh => {
                    loaded = self.catch_up(stream_id, loaded).await?;
                    fresh = true;
                    continue;
                }
                Err(rejection) => return self.rejected(stream_id, context, rejection).await,
            };
            match self.record(stream_id, loaded, events, context).await? {
                Recorded::Done(executed) => return Ok(executed),
                Recorded::Stale(stale) => {
                    // On a remembered state the conflict only means it was stale; on a state just
                    // read, another writer is racing us right now.
                    lost_race = fresh;
                    loaded = self.catch_up(stream_id, stale).await?;
                    fresh = true;
                }
            }
        }
        Err(CommandError::Contended {
            stream_id: stream_id.clone(),
            attempts: MAX_COMMAND_ATTEMPTS,
        })
    }

    /// Decides and appends like [`Self::execute`] a command whose events carry what its
    /// execution observed (an outside service's answer, the instant of an attempt), so a retry of
    /// it may decide other content than its first try. Events already stored under the ids its
    /// command id derives are that first try's: they are the command's result, answered instead
    /// of a conflict, and nothing new is stored.
    pub async fn execute_observed(
        &self,
        stream_id: &StreamId,
        command: &D::Command,
        context: &CommandContext,
    ) -> Result<Executed<D>, CommandError<D::Error>> {
        let conflict = match self.execute(stream_id, command, context).await {
            Err(CommandError::Append(AppendError::IdempotencyConflict { event_id })) => event_id,
            other => return other,
        };
        if derives(context, stream_id, conflict)
            && let Some(first_try) = self.replay_of(stream_id, context).await?
        {
            return Ok(first_try);
        }
        Err(CommandError::Append(AppendError::IdempotencyConflict {
            event_id: conflict,
        }))
    }

    /// A refusal decided on state just read: final, unless the command was already applied.
    async fn rejected(
        &self,
        stream_id: &StreamId,
        context: &CommandContext,
        rejection: D::Error,
    ) -> Result<Executed<D>, CommandError<D::Error>> {
        match self.replay_of(stream_id, context).await? {
            Some(executed) => Ok(executed),
            None => Err(CommandError::Rejected(rejection)),
        }
    }

    /// Appends the events decided on `loaded`, expecting the stream at its version; hands
    /// `loaded` back when the stream had moved on.
    async fn record(
        &self,
        stream_id: &StreamId,
        loaded: Loaded<D::State>,
        events: Vec<D::Event>,
        context: &CommandContext,
    ) -> Result<Recorded<D>, CommandError<D::Error>> {
        if events.len() > MAX_EVENTS_PER_COMMAND {
            return Err(CommandError::Append(AppendError::Invalid(
                InvalidInput::TooManyEvents {
                    count: events.len(),
                    limit: MAX_EVENTS_PER_COMMAND,
                },
            )));
        }
        if events.is_empty() {
            return Ok(Recorded::Done(Executed {
                events,
                state: loaded.state,
                version: loaded.version,
                idempotent_replay: false,
            }));
        }
        let expected = match loaded.version {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v),
        };
        let encoded = new_events(stream_id, &events, context).map_err(AppendError::from);
        let appended = match encoded {
            Ok(encoded) => {
                self.store
                    .append(stream_id.clone(), expected, encoded)
                    .await
            }
            Err(e) => Err(e),
        };
        match appended {
            Ok(result) if result.idempotent_replay => {
                let loaded = self.load(stream_id).await?;
                Ok(Recorded::Done(Executed {
                    events,
                    state: loaded.state,
                    version: loaded.version,
                    idempotent_replay: true,
                }))
            }
            Ok(result) => Ok(Recorded::Done(
                self.appended(stream_id, loaded, events, &result),
            )),
            Err(AppendError::WrongExpectedVersion { .. }) => Ok(Recorded::Stale(loaded)),
            Err(e) => Err(CommandError::Append(e)),
        }
    }

    /// Folds freshly appended events into the state they were decided on and remembers it.
    fn appended(
        &self,
        stream_id: &StreamId,
        loaded: Loaded<D::State>,
        events: Vec<D::Event>,
        result: &AppendResult,
    ) -> Executed<D> {
        let version = result
            .version_of(stream_id)
            .expect("an append answers the version of every stream it appended to");
        let state = events.iter().fold(loaded.state, |s, e| D::evolve(s, e));
        self.remember(
            stream_id,
            Loaded {
                version,
                state: state.clone(),
            },
        );
        Executed {
            events,
            state,
            version,
            idempotent_replay: false,
        }
    }

    fn stream_lock(&self, stream_id: &StreamId) -> &tokio::sync::Mutex<()> {
        &self.stream_locks[stream_id.slot(self.stream_locks.len())]
    }

    /// The events an idempotent command already appended to this stream, if any.
    async fn replay_of(
        &self,
        stream_id: &StreamId,
        context: &CommandContext,
    ) -> Result<Option<Executed<D>>, CommandError<D::Error>> {
        let Some(command_id) = context.command_id else {
            return Ok(None);
        };
        let ids: Vec<Uuid> = (0..MAX_EVENTS_PER_COMMAND)
            .map(|index| derived_event_id(command_id, stream_id, index))
            .collect();
        let stored = self.store.read_events(&ids).await?;
        let mut events = Vec::new();
        for id in &ids {
            match stored
                .iter()
                .find(|e| e.event_id == *id && e.stream_id == *stream_id)
            {
                Some(recorded) => events.push(recorded.decode()?),
                None => break,
            }
        }
        if events.is_empty() {
            return Ok(None);
        }
        let loaded = self.load(stream_id).await?;
        Ok(Some(Executed {
            events,
            state: loaded.state,
            version: loaded.version,
            idempotent_replay: true,
        }))
    }
}
