//! The test fixtures leave nothing behind on the shared servers.

use futures::StreamExt;
use lightspeed_eventstore::testing::TestNats;

async fn stream_names(jetstream: &async_nats::jetstream::Context) -> Vec<String> {
    jetstream
        .stream_names()
        .filter_map(|name| async move { name.ok() })
        .collect()
        .await
}

#[tokio::test]
async fn test_nats_removes_the_streams_named_after_its_log_when_dropped() {
    let nats = TestNats::new().await;
    let jetstream = nats.jetstream.clone();
    let log = nats.config.stream_name.clone();
    let prefix = nats.config.subject_prefix.clone();
    // What the relay and the workers create for a log stream (a KV bucket is a stream too), and
    // one whose name merely starts alike.
    for (name, subject) in [
        (log.clone(), format!("{prefix}.>")),
        (format!("{log}_JOBS"), format!("{prefix}_jobs.>")),
        (format!("{log}_FAILED"), format!("{prefix}_failed.>")),
        (
            format!("KV_{log}_webhook_endpoints"),
            format!("$KV.{log}_webhook_endpoints.>"),
        ),
        (format!("{log}X"), format!("{prefix}_other.>")),
    ] {
        jetstream
            .create_stream(async_nats::jetstream::stream::Config {
                name,
                subjects: vec![subject],
                ..Default::default()
            })
            .await
            .expect("create stream");
    }

    drop(nats);

    let left: Vec<String> = stream_names(&jetstream)
        .await
        .into_iter()
        .filter(|name| name.contains(log.as_str()))
        .collect();
    assert_eq!(
        left,
        vec![format!("{log}X")],
        "only the unrelated stream is left"
    );
    jetstream
        .delete_stream(format!("{log}X"))
        .await
        .expect("clean up");
}
