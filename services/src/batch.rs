//! Several commands on one stream, decided in order on the state each one leaves, and appended
//! together or not at all (an admin edit that changes fee and thresholds at once).

use lightspeed_domain::Decider;
use lightspeed_eventstore::handler::new_events;
use lightspeed_eventstore::{
    AppendError, CommandContext, CommandHandler, EventStore, ExpectedVersion, Loaded, PgEventStore,
    StreamId,
};

use crate::error::ServiceError;
use crate::ledger::{Ledger, MAX_ATTEMPTS};

impl Ledger {
    /// Decides `commands` in order on the stream's current state and appends every event they
    /// decide in one append; a refusal of any command appends nothing. Answers the state after.
    pub(crate) async fn execute_all<D>(
        &self,
        handler: &CommandHandler<D, PgEventStore>,
        stream_id: &StreamId,
        commands: &[D::Command],
        context: &CommandContext,
    ) -> Result<Loaded<D::State>, ServiceError>
    where
        D: Decider + 'static,
        D::Error: Into<ServiceError>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let loaded = handler.load(stream_id).await?;
            let mut state = loaded.state.clone();
            let mut events = Vec::new();
            for command in commands {
                let decided = D::decide(&state, command).map_err(Into::into)?;
                state = decided.iter().fold(state, |s, e| D::evolve(s, e));
                events.extend(decided);
            }
            if events.is_empty() {
                return Ok(loaded);
            }
            let expected = match loaded.version {
                0 => ExpectedVersion::NoStream,
                v => ExpectedVersion::Exact(v),
            };
            let encoded = new_events(stream_id, &events, context)?;
            match self
                .store
                .append(stream_id.clone(), expected, encoded)
                .await
            {
                Ok(result) if result.idempotent_replay => {
                    return Ok(handler.load(stream_id).await?);
                }
                Ok(result) => {
                    // The store answers the version of the stream it appended to.
                    let version = result.version_of(stream_id);
                    debug_assert!(version.is_some(), "no version for {stream_id}");
                    let Some(version) = version else {
                        return Ok(handler.load(stream_id).await?);
                    };
                    let after = Loaded { version, state };
                    handler.remember(stream_id, after.clone());
                    return Ok(after);
                }
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
    }
}
