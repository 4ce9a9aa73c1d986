use futures::{FutureExt, StreamExt};

use super::*;
use crate::item::{AlertItem, LiveItem, Topic};

fn alert(n: u32) -> LiveItem {
    LiveItem::Alert(AlertItem {
        key: format!("alert-{n}"),
        alert_kind: Some("payment_failed".into()),
        firing: true,
        summary: format!("payment {n} failed"),
        at: chrono::DateTime::UNIX_EPOCH,
    })
}

/// The items a stream holds now, without waiting.
fn ready(stream: &mut LiveStream) -> Vec<Arc<Envelope>> {
    let mut items = Vec::new();
    while let Some(Some(item)) = stream.next().now_or_never() {
        items.push(item);
    }
    items
}

#[test]
fn ids_read_back_and_foreign_text_is_no_id() {
    let id = EventId {
        hub: 0xdead_beef,
        sequence: 17,
    };
    assert_eq!(id.to_string(), "deadbeef-17");
    assert_eq!("deadbeef-17".parse(), Ok(id));
    assert_eq!("17".parse::<EventId>(), Err(()));
    assert_eq!("zz-17".parse::<EventId>(), Err(()));
}

#[test]
fn a_topic_keeps_at_most_its_replay_buffer() {
    let hub = Hub::new(HubConfig {
        replay: 3,
        subscriber_buffer: 8,
    });
    for n in 0..10 {
        hub.publish(alert(n));
    }
    assert_eq!(hub.retained(Topic::Alerts), 3);
    assert_eq!(hub.retained(Topic::Transactions), 0);
    assert_eq!(hub.head().sequence(), 10);
}

#[test]
fn a_resumed_stream_gets_exactly_what_followed_its_id() {
    let hub = Hub::new(HubConfig::default());
    let ids: Vec<EventId> = (0..5).filter_map(|n| hub.publish(alert(n))).collect();
    let mut stream = hub.subscribe(&[Topic::Alerts], Some(&ids[1].to_string()));
    let replayed: Vec<EventId> = ready(&mut stream).iter().map(|e| e.id).collect();
    assert_eq!(replayed, ids[2..]);
}

#[test]
fn an_id_older_than_the_buffer_from_another_hub_or_unreadable_resets() {
    let hub = Hub::new(HubConfig {
        replay: 2,
        subscriber_buffer: 8,
    });
    let ids: Vec<EventId> = (0..5).filter_map(|n| hub.publish(alert(n))).collect();
    let other = Hub::new(HubConfig::default()).head();
    for after in [ids[0].to_string(), other.to_string(), "nonsense".into()] {
        let mut stream = hub.subscribe(&[Topic::Alerts], Some(&after));
        let items = ready(&mut stream);
        assert_eq!(items.len(), 1, "{after}");
        assert_eq!(items[0].item, LiveItem::Reset);
    }
    let mut kept = hub.subscribe(&[Topic::Alerts], Some(&ids[2].to_string()));
    assert_eq!(ready(&mut kept).len(), 2);
}

#[test]
fn a_subscriber_that_falls_behind_is_dropped_and_the_others_keep_receiving() {
    let hub = Hub::new(HubConfig {
        replay: 16,
        subscriber_buffer: 2,
    });
    let mut slow = hub.subscribe(&[Topic::Alerts], None);
    let mut quick = hub.subscribe(&[Topic::Alerts], None);
    for n in 0..5 {
        hub.publish(alert(n));
        assert_eq!(ready(&mut quick).len(), 1);
    }
    assert_eq!(hub.subscribers(), 1);
    // The slow page gets what it had been handed, then its stream ends.
    assert_eq!(ready(&mut slow).len(), 2);
    assert!(matches!(slow.next().now_or_never(), Some(None)));
}

#[test]
fn a_page_gone_leaves_the_hub() {
    let hub = Hub::new(HubConfig::default());
    let stream = hub.subscribe(&[Topic::QueueStats], None);
    assert_eq!(hub.subscribers(), 1);
    drop(stream);
    assert_eq!(hub.subscribers(), 0);
}
