//! Shared fixtures for the event store's tests: a toy decider and event builders.

#![allow(dead_code, missing_docs)]

use std::sync::Arc;

use lightspeed_domain::{Decider, DomainEvent, SystemClock};
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_eventstore::{Metadata, NewEvent, PgEventStore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn store(db: &TestDatabase) -> PgEventStore {
    PgEventStore::new(db.pool.clone(), Arc::new(SystemClock))
}

pub fn event(n: i64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "Counted".into(),
        schema_version: 1,
        payload: serde_json::json!({ "by": n }),
        metadata: Metadata {
            actor: Some("test".into()),
            ..Metadata::default()
        },
    }
}

/// A counter that refuses to go above its limit: enough rules to exercise the handler.
pub struct Counter;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CounterEvent {
    Counted { by: i64 },
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> &'static str {
        "Counted"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the counter would pass {limit}")]
pub struct OverLimit {
    pub limit: i64,
}

pub const LIMIT: i64 = 1_000;

impl Decider for Counter {
    const CATEGORY: &'static str = "counter";
    type State = i64;
    type Command = i64;
    type Event = CounterEvent;
    type Error = OverLimit;

    fn decide(state: &i64, by: &i64) -> Result<Vec<CounterEvent>, OverLimit> {
        if state + by > LIMIT {
            return Err(OverLimit { limit: LIMIT });
        }
        Ok(vec![CounterEvent::Counted { by: *by }])
    }

    fn evolve(state: i64, event: &CounterEvent) -> i64 {
        match event {
            CounterEvent::Counted { by } => state + by,
        }
    }
}
