//! Events decided for several streams, appended together or not at all.

use lightspeed_domain::Decider;
use lightspeed_eventstore::handler::new_events;
use lightspeed_eventstore::{
    AppendError, AppendResult, CommandContext, CommandHandler, EventStore, ExpectedVersion,
    InvalidInput, Loaded, PgEventStore, StreamAppend, StreamId,
};

/// One stream's share of a unit of work.
trait Part: Send {
    fn stream_append(&self, context: &CommandContext) -> Result<StreamAppend, InvalidInput>;
    fn remember(self: Box<Self>, version: u64);
    fn stream_id(&self) -> &StreamId;
    fn appends_nothing(&self) -> bool;
}

struct Decided<D: Decider> {
    handler: CommandHandler<D, PgEventStore>,
    stream_id: StreamId,
    /// The version the events were decided on.
    since: u64,
    /// The state they were decided on, kept for `Exact` parts only: those are appended right
    /// after it, so it gives the new state even when the cache forgot the stream.
    decided_on: Option<D::State>,
    events: Vec<D::Event>,
    expectation: Expectation,
}

/// How a part's decision depends on the stream it appends to.
#[derive(Debug, Clone, Copy)]
enum Expectation {
    /// On the exact version it was decided on.
    Exact,
    /// On nothing: appended whatever the stream holds.
    Any,
    /// On the version it was decided on, give or take events of these types.
    Unchanged(&'static [&'static str]),
}

impl<D: Decider> Part for Decided<D> {
    fn stream_append(&self, context: &CommandContext) -> Result<StreamAppend, InvalidInput> {
        Ok(StreamAppend {
            stream_id: self.stream_id.clone(),
            expected: match (self.expectation, self.since) {
                (Expectation::Any, _) => ExpectedVersion::Any,
                (Expectation::Unchanged(except), since) => {
                    ExpectedVersion::Unchanged { since, except }
                }
                (Expectation::Exact, 0) => ExpectedVersion::NoStream,
                (Expectation::Exact, v) => ExpectedVersion::Exact(v),
            },
            events: new_events(&self.stream_id, &self.events, context)?,
        })
    }

    fn remember(self: Box<Self>, version: u64) {
        match self.decided_on {
            Some(state) => {
                let state = self.events.iter().fold(state, |s, e| D::evolve(s, e));
                self.handler
                    .remember(&self.stream_id, Loaded { version, state });
            }
            // Others may have appended before these events (`Any`, `Unchanged`).
            None => self
                .handler
                .remember_appended(&self.stream_id, self.events, version),
        }
    }

    fn stream_id(&self) -> &StreamId {
        &self.stream_id
    }

    fn appends_nothing(&self) -> bool {
        self.events.is_empty()
    }
}

/// Collects decisions on several streams, each against the version it was decided on, and
/// appends them atomically; the handlers' caches learn the new states afterwards.
pub struct UnitOfWork {
    context: CommandContext,
    parts: Vec<Box<dyn Part>>,
}

impl std::fmt::Debug for UnitOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let streams: Vec<&StreamId> = self.parts.iter().map(|p| p.stream_id()).collect();
        f.debug_struct("UnitOfWork")
            .field("streams", &streams)
            .finish_non_exhaustive()
    }
}

impl UnitOfWork {
    /// An empty unit; its events carry `context`'s metadata (and ids derived from its command id).
    pub fn new(context: CommandContext) -> Self {
        Self {
            context,
            parts: Vec::new(),
        }
    }

    /// Decides `command` on `loaded` (the state of `stream_id` at its version) and keeps the
    /// events for the append. Answers the events decided.
    pub fn decide<D: Decider + 'static>(
        &mut self,
        handler: &CommandHandler<D, PgEventStore>,
        stream_id: &StreamId,
        loaded: &Loaded<D::State>,
        command: &D::Command,
    ) -> Result<Vec<D::Event>, D::Error> {
        self.push(handler, stream_id, loaded, command, Expectation::Exact)
    }

    /// Like [`UnitOfWork::decide`], for a decision that holds whatever else the stream
    /// recorded meanwhile (e.g. a commission accrual, which depends only on its payment): it is
    /// appended with expected version `Any`, so it never conflicts.
    pub fn decide_any_version<D: Decider + 'static>(
        &mut self,
        handler: &CommandHandler<D, PgEventStore>,
        stream_id: &StreamId,
        loaded: &Loaded<D::State>,
        command: &D::Command,
    ) -> Result<Vec<D::Event>, D::Error> {
        self.push(handler, stream_id, loaded, command, Expectation::Any)
    }

    /// Like [`UnitOfWork::decide`], for a decision that only events of the types in `except`
    /// may have been appended past without invalidating it (so concurrent writers of those
    /// events do not conflict with it).
    pub fn decide_unless_changed<D: Decider + 'static>(
        &mut self,
        handler: &CommandHandler<D, PgEventStore>,
        stream_id: &StreamId,
        loaded: &Loaded<D::State>,
        command: &D::Command,
        except: &'static [&'static str],
    ) -> Result<Vec<D::Event>, D::Error> {
        self.push(
            handler,
            stream_id,
            loaded,
            command,
            Expectation::Unchanged(except),
        )
    }

    fn push<D: Decider + 'static>(
        &mut self,
        handler: &CommandHandler<D, PgEventStore>,
        stream_id: &StreamId,
        loaded: &Loaded<D::State>,
        command: &D::Command,
        expectation: Expectation,
    ) -> Result<Vec<D::Event>, D::Error> {
        let events = D::decide(&loaded.state, command)?;
        if !events.is_empty() {
            self.parts.push(Box::new(Decided::<D> {
                handler: handler.clone(),
                stream_id: stream_id.clone(),
                since: loaded.version,
                decided_on: matches!(expectation, Expectation::Exact).then(|| loaded.state.clone()),
                events: events.clone(),
                expectation,
            }));
        }
        Ok(events)
    }

    /// Makes the append depend on `stream_id` still being at `loaded`'s version, without
    /// appending to it: for a decision taken on that state (e.g. the merchant's).
    pub fn require_unchanged<D: Decider + 'static>(
        &mut self,
        handler: &CommandHandler<D, PgEventStore>,
        stream_id: &StreamId,
        loaded: &Loaded<D::State>,
    ) {
        self.parts.push(Box::new(Decided::<D> {
            handler: handler.clone(),
            stream_id: stream_id.clone(),
            since: loaded.version,
            // Nothing to fold: the append only confirms the state the cache holds.
            decided_on: None,
            events: Vec::new(),
            expectation: Expectation::Exact,
        }));
    }

    /// True when nothing was decided.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|part| part.appends_nothing())
    }

    /// Appends everything decided, atomically.
    pub async fn commit(self, store: &PgEventStore) -> Result<AppendResult, AppendError> {
        let appends = self
            .parts
            .iter()
            .map(|part| part.stream_append(&self.context))
            .collect::<Result<Vec<_>, _>>()?;
        let result = store.append_many(appends).await?;
        if !result.idempotent_replay {
            for part in self.parts {
                // The store answers the version of every stream it was given; were one missing,
                // the cache keeps what it knew and the next load reads past it.
                let version = result.version_of(part.stream_id());
                debug_assert!(version.is_some(), "no version for {}", part.stream_id());
                if let Some(version) = version {
                    part.remember(version);
                }
            }
        }
        Ok(result)
    }
}
