//! The relay as an operator runs it: `lightspeed relay` processes killed with SIGKILL while they
//! publish, round after round, leave JetStream an exact copy of the log; of two relays one leads
//! (it holds the relay's advisory lock, so only it publishes) and the other takes over when the
//! leader dies.

mod support;

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::StreamExt;
use lightspeed_eventstore::nats::decode;
use lightspeed_eventstore::testing::settled;
use lightspeed_eventstore::{
    EventStore, ExpectedVersion, LogPosition, Metadata, NewEvent, StreamId,
};
use uuid::Uuid;

use support::processes::kill;
use support::{World, bare_world, wait_for};

/// Events appended per transaction when the test fills the log.
const PER_APPEND: usize = 500;

/// Appends `appends` transactions of [`PER_APPEND`] events, each to a stream of its own.
async fn fill_log(world: &World, appends: usize) {
    let store = world.app.ledger.store();
    for _ in 0..appends {
        let stream = StreamId::parse(format!("backlog-{}", Uuid::now_v7().simple())).expect("id");
        let events = (0..PER_APPEND)
            .map(|n| NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "Counted".into(),
                schema_version: 1,
                payload: serde_json::json!({ "n": n }),
                metadata: Metadata::default(),
            })
            .collect();
        store
            .append(stream, ExpectedVersion::NoStream, events)
            .await
            .expect("append");
    }
}

/// How many events the log holds.
async fn log_len(world: &World) -> u64 {
    settled(&world.app.db.pool).await;
    let count = world.app.count("SELECT count(*) FROM ledger.events").await;
    u64::try_from(count).expect("a count")
}

/// How many messages the world's JetStream copy of the log holds.
async fn published(world: &World) -> u64 {
    let nats = &world.app.nats;
    match nats.jetstream.get_stream(&nats.config.stream_name).await {
        Ok(stream) => stream
            .get_info()
            .await
            .map_or(0, |info| info.state.messages),
        Err(_) => 0,
    }
}

/// Which relay sessions hold the relay's leader lock (by `application_name`).
async fn leaders(world: &World) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((l.classid::bigint << 32) | l.objid::bigint)
                = hashtextextended('lightspeed-relay:' || $1, 0)",
    )
    .bind(&world.app.nats.config.stream_name)
    .fetch_all(&world.app.db.pool)
    .await
    .expect("leaders")
}

/// Whether a session named `name` is connected to the world's database.
async fn connected(world: &World, name: &str) -> bool {
    sqlx::query_scalar(
        "SELECT count(*) > 0 FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = $1",
    )
    .bind(name)
    .fetch_one(&world.app.db.pool)
    .await
    .expect("sessions")
}

/// The log in read order: (event id, position).
async fn log(world: &World) -> Vec<(Uuid, LogPosition)> {
    let store = world.app.ledger.store();
    settled(store.pool()).await;
    let mut out = Vec::new();
    let mut after = LogPosition::START;
    loop {
        let batch = store.read_log(after, None, 1000).await.expect("read");
        let Some(last) = batch.last() else { return out };
        after = last.log_position;
        out.extend(batch.iter().map(|e| (e.event_id, e.log_position)));
    }
}

/// Every message of the JetStream copy, in stream order: (event id, position).
async fn copy(world: &World) -> Vec<(Uuid, LogPosition)> {
    let nats = &world.app.nats;
    let count = published(world).await;
    let consumer = nats
        .jetstream
        .get_stream(&nats.config.stream_name)
        .await
        .expect("stream")
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::new();
    while (out.len() as u64) < count {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("a message in time")
            .expect("some")
            .expect("ok");
        let event = decode(0, &message.payload).expect("an event");
        out.push((event.event_id, event.log_position));
    }
    out
}

/// Waits until the copy holds the whole log, then checks it is the log, in order, once each.
async fn assert_exact_copy(world: &World) {
    let head = log_len(world).await;
    wait_for("the copy to hold the whole log", || async {
        (published(world).await == head).then_some(())
    })
    .await;
    assert_eq!(copy(world).await, log(world).await, "the copy is the log");
}

#[tokio::test]
async fn a_relay_process_killed_again_and_again_while_publishing_leaves_an_exact_copy() {
    let world = bare_world().await;
    fill_log(&world, 20).await;
    let head = log_len(&world).await;
    let mut before = published(&world).await;
    for round in 0..5 {
        let mut relay = world.process(&format!("relay-{round}"), &["relay"]);
        wait_for("the relay to publish", || async {
            (published(&world).await > before).then_some(())
        })
        .await;
        kill(&mut relay).await;
        let after = published(&world).await;
        println!("round {round}: {before} → {after} of {head} published when killed");
        assert!(after > before, "round {round} published nothing");
        assert!(
            after < head,
            "round {round} was killed after it had published the whole log, not mid-work"
        );
        before = after;
    }
    let _last = world.process("relay-last", &["relay"]);
    assert_exact_copy(&world).await;
}

#[tokio::test]
async fn only_one_relay_process_leads_and_a_standby_takes_over_when_it_is_killed() {
    let world = bare_world().await;
    fill_log(&world, 4).await;
    let mut first = world.process("relay-a", &["relay"]);
    wait_for("relay-a to lead", || async {
        (leaders(&world).await == ["relay-a"]).then_some(())
    })
    .await;
    let _second = world.process("relay-b", &["relay"]);
    wait_for("relay-b to stand by", || async {
        connected(&world, "relay-b").await.then_some(())
    })
    .await;

    // While both run, relay-a alone holds the lock, whatever the log does.
    fill_log(&world, 4).await;
    let head = log_len(&world).await;
    wait_for("the copy to hold the whole log", || async {
        assert_eq!(leaders(&world).await, ["relay-a"], "one leader, the first");
        (published(&world).await == head).then_some(())
    })
    .await;
    assert_eq!(leaders(&world).await, ["relay-a"]);

    kill(&mut first).await;
    wait_for("relay-b to take over", || async {
        (leaders(&world).await == ["relay-b"]).then_some(())
    })
    .await;
    fill_log(&world, 4).await;
    assert_exact_copy(&world).await;
    assert_eq!(leaders(&world).await, ["relay-b"]);
}
