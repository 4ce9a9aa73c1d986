//! The generic command handler: optimistic concurrency with cached state, refusals decided on
//! fresh state, idempotent commands.

use crate::common;

use common::{Counter, CounterEvent, LIMIT, event, store};
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_eventstore::{
    CommandContext, CommandError, CommandHandler, EventStore, ExpectedVersion, PgEventStore,
    StreamId, stream_of,
};
use uuid::Uuid;

/// How often a caller tries a command again after an answer of "contended".
const CALLER_RETRIES: usize = 100;

/// Commands from two replicas racing on one stream are each applied exactly once. A command's
/// attempts are bounded, and while the other replica keeps the stream busy with a queue of its
/// own commands (each decided on its cache, without a read) a command can use them all: it is
/// then answered "contended" with nothing stored, and its caller tries again, as the API's
/// clients and the job queues do. How often that happens depends on the machine's load, so it
/// is counted as a retry, never as a failure.
#[tokio::test]
async fn commands_from_two_replicas_racing_on_one_stream_are_all_applied_once() {
    let db = TestDatabase::new().await;
    let stream = stream_of::<Counter>("race").expect("stream id");
    // Two handlers with separate caches, like two API replicas.
    let replicas = [
        CommandHandler::<Counter, _>::new(store(&db)),
        CommandHandler::new(store(&db)),
    ];
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let handler = replicas[i % 2].clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for _ in 0..10 {
                    versions.push(execute_until_applied(&handler, &stream).await);
                }
                versions
            })
        })
        .collect();
    let mut applied_as = Vec::new();
    for task in tasks {
        applied_as.extend(task.await.expect("task"));
    }
    applied_as.sort_unstable();
    assert_eq!(
        applied_as,
        (1..=80).collect::<Vec<_>>(),
        "each applied once"
    );
    let loaded = replicas[0].load(&stream).await.expect("load");
    assert_eq!(loaded.state, 80);
    assert_eq!(loaded.version, 80);
    let versions: Vec<u64> = replicas[0]
        .store()
        .read_stream(&stream, 0, 1000)
        .await
        .expect("read")
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, (1..=80).collect::<Vec<_>>());
}

/// Adds one to the counter as a caller does, trying again after "contended"; answers the
/// version the command's event took.
async fn execute_until_applied(
    handler: &CommandHandler<Counter, PgEventStore>,
    stream: &StreamId,
) -> u64 {
    for _ in 0..CALLER_RETRIES {
        match handler
            .execute(stream, &1, &CommandContext::default())
            .await
        {
            Ok(executed) => {
                assert!(!executed.idempotent_replay);
                return executed.version;
            }
            Err(CommandError::Contended { .. }) => continue,
            Err(other) => panic!("execute: {other:?}"),
        }
    }
    panic!("a command stayed contended {CALLER_RETRIES} times");
}

#[tokio::test]
async fn a_refusal_is_decided_on_the_current_state_not_a_stale_cache() {
    let db = TestDatabase::new().await;
    let stream = stream_of::<Counter>("stale").expect("stream id");
    let a = CommandHandler::<Counter, _>::new(store(&db));
    let b = CommandHandler::<Counter, _>::new(store(&db));
    a.execute(&stream, &10, &CommandContext::default())
        .await
        .expect("a");
    // B moves the counter to 20 below the limit; A's cache still says 10.
    b.execute(&stream, &(LIMIT - 30), &CommandContext::default())
        .await
        .expect("b");
    assert_eq!(a.cached(&stream).state, 10);

    let refused = a.execute(&stream, &30, &CommandContext::default()).await;
    assert!(
        matches!(refused, Err(CommandError::Rejected(_))),
        "{refused:?}"
    );
    // And an acceptable command decided on the stale cache is retried on fresh state.
    let done = a
        .execute(&stream, &20, &CommandContext::default())
        .await
        .expect("fits");
    assert_eq!(done.state, LIMIT);
    assert_eq!(done.version, 3);
}

#[tokio::test]
async fn the_same_command_twice_is_stored_once_and_answers_the_first_result() {
    let db = TestDatabase::new().await;
    let stream = stream_of::<Counter>("idem").expect("stream id");
    let context = CommandContext {
        command_id: Some(Uuid::now_v7()),
        ..CommandContext::default()
    };
    let first = CommandHandler::<Counter, _>::new(store(&db));
    let done = first.execute(&stream, &5, &context).await.expect("first");
    assert!(!done.idempotent_replay);

    // Retried on the same replica, and on another one with a cold cache.
    let again = first.execute(&stream, &5, &context).await.expect("retry");
    let cold = CommandHandler::<Counter, _>::new(store(&db));
    let elsewhere = cold
        .execute(&stream, &5, &context)
        .await
        .expect("retry elsewhere");
    for retry in [&again, &elsewhere] {
        assert!(retry.idempotent_replay);
        assert_eq!(retry.events, vec![CounterEvent::Counted { by: 5 }]);
        assert_eq!(retry.state, 5);
        assert_eq!(retry.version, 1);
    }
    assert_eq!(
        first
            .store()
            .read_stream(&stream, 0, 10)
            .await
            .expect("read")
            .len(),
        1
    );

    // A retry that the rules would now refuse still answers the first result.
    first
        .execute(&stream, &(LIMIT - 5), &CommandContext::default())
        .await
        .expect("fill");
    let late = cold
        .execute(&stream, &5, &context)
        .await
        .expect("late retry");
    assert!(late.idempotent_replay);
    assert_eq!(late.events, vec![CounterEvent::Counted { by: 5 }]);
}

#[tokio::test]
async fn a_state_counts_as_recent_only_for_a_while_after_the_log_confirmed_it() {
    let db = TestDatabase::new().await;
    let handler = CommandHandler::<Counter, _>::new(store(&db));
    let within = std::time::Duration::from_millis(50);
    let counted = stream_of::<Counter>("counted").expect("stream id");
    let never = stream_of::<Counter>("never").expect("stream id");

    assert!(!handler.cached_within(&counted, within).1, "unknown");
    handler
        .execute(&counted, &5, &CommandContext::default())
        .await
        .expect("execute");
    let (loaded, recent) = handler.cached_within(&counted, within);
    assert_eq!((loaded.version, loaded.state, recent), (1, 5, true));
    tokio::time::sleep(within).await;
    assert!(!handler.cached_within(&counted, within).1, "too old");
    // A read that finds nothing new confirms the state again.
    handler.load(&counted).await.expect("load");
    assert!(handler.cached_within(&counted, within).1, "read again");

    // A stream that does not exist is known not to once read.
    handler.load(&never).await.expect("load");
    let (loaded, recent) = handler.cached_within(&never, within);
    assert_eq!((loaded.version, recent), (0, true));
}

/// Appends `Counted { by }` to `stream` whatever it holds, as another part of the process
/// would; answers the stream's version after it.
async fn append_any(store: &PgEventStore, stream: &StreamId, by: i64) -> u64 {
    store
        .append(stream.clone(), ExpectedVersion::Any, vec![event(by)])
        .await
        .expect("append")
        .version_of(stream)
        .expect("version")
}

#[tokio::test]
async fn appends_learnt_of_out_of_order_are_folded_in_version_order() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let handler = CommandHandler::<Counter, _>::new(store.clone());
    let stream = stream_of::<Counter>("ahead").expect("stream id");
    handler
        .execute(&stream, &1, &CommandContext::default())
        .await
        .expect("execute");
    // Three appends of this process (versions 2, 3, 4), learnt of in the order 4, 2, 3, as
    // the requests of one group commit may finish.
    let mut appended = Vec::new();
    for by in [10, 100, 1_000] {
        let version = append_any(&store, &stream, by).await;
        appended.push((CounterEvent::Counted { by }, version));
    }
    let learn = |i: usize| {
        let (event, version) = &appended[i];
        handler.remember_appended(&stream, vec![event.clone()], *version);
    };
    learn(2);
    assert_eq!(
        handler.cached(&stream).version,
        1,
        "waits for versions 2 and 3"
    );
    learn(0);
    let cached = handler.cached(&stream);
    assert_eq!((cached.version, cached.state), (2, 11));
    learn(1);
    let (cached, recent) = handler.cached_within(&stream, std::time::Duration::from_secs(60));
    assert_eq!((cached.version, cached.state, recent), (4, 1_111, true));

    // Another process appends version 5: this one's append at 6 waits until a read brings 5.
    append_any(&store, &stream, 10_000).await;
    let version = append_any(&store, &stream, 100_000).await;
    handler.remember_appended(
        &stream,
        vec![CounterEvent::Counted { by: 100_000 }],
        version,
    );
    assert_eq!(handler.cached(&stream).version, 4);
    let loaded = handler.load(&stream).await.expect("load");
    assert_eq!((loaded.version, loaded.state), (6, 111_111));
    let version = append_any(&store, &stream, 1_000_000).await;
    handler.remember_appended(
        &stream,
        vec![CounterEvent::Counted { by: 1_000_000 }],
        version,
    );
    let cached = handler.cached(&stream);
    assert_eq!((cached.version, cached.state), (7, 1_111_111));
}
