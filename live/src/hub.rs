//! The [`Hub`]: one per API process. Feeds publish [`LiveItem`]s into it; each topic keeps a
//! bounded replay buffer; each subscriber (one per open page) gets a bounded channel and is
//! dropped, its stream ended, when it falls behind.
//!
//! Ids are `<hub>-<sequence>`: one sequence across every topic of the hub, so a page following
//! several topics resumes from one `Last-Event-ID`, and a random hub part, so an id from another
//! process (a restart, another replica) is recognised and answered with a reset.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::item::{LiveItem, Topic};

/// How much the hub keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubConfig {
    /// Items kept per topic for pages that reconnect (default 1 024).
    pub replay: usize,
    /// Items a subscriber may have waiting before it is dropped (default 1 024: a page is
    /// written once per batch window, so it holds what arrives within one).
    pub subscriber_buffer: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            replay: 1_024,
            subscriber_buffer: 1_024,
        }
    }
}

/// An item's id: the hub that numbered it and its place in that hub's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId {
    hub: u32,
    sequence: u64,
}

impl EventId {
    /// Its place in the hub's sequence (1 for the first item).
    pub fn sequence(self) -> u64 {
        self.sequence
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}-{}", self.hub, self.sequence)
    }
}

impl std::str::FromStr for EventId {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (hub, sequence) = text.trim().split_once('-').ok_or(())?;
        Ok(EventId {
            hub: u32::from_str_radix(hub, 16).map_err(|_| ())?,
            sequence: sequence.parse().map_err(|_| ())?,
        })
    }
}

/// The most renderings of one item kept (one per renderer that showed it); more renderers than
/// this render without keeping theirs.
const MAX_RENDERINGS: usize = 8;

/// An item with its id, shared by every subscriber that receives it.
#[derive(Debug)]
pub struct Envelope {
    /// Its id.
    pub id: EventId,
    /// The item.
    pub item: LiveItem,
    /// SSE frames already rendered, by renderer key, so each renderer renders an item once
    /// however many pages show it.
    renderings: Mutex<Vec<(u64, Option<Bytes>)>>,
}

impl Envelope {
    fn new(id: EventId, item: LiveItem) -> Self {
        Self {
            id,
            item,
            renderings: Mutex::new(Vec::new()),
        }
    }

    /// The frame `renderer` made of this item, rendering it with `render` the first time.
    pub(crate) fn rendered(
        &self,
        renderer: u64,
        render: impl FnOnce() -> Option<Bytes>,
    ) -> Option<Bytes> {
        if let Some((_, frame)) = lock(&self.renderings)
            .iter()
            .find(|(key, _)| *key == renderer)
        {
            return frame.clone();
        }
        // Rendered outside the lock: two pages racing render twice, which is harmless.
        let frame = render();
        let mut renderings = lock(&self.renderings);
        if renderings.len() < MAX_RENDERINGS {
            renderings.push((renderer, frame.clone()));
        }
        frame
    }
}

/// The topics a subscriber follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct TopicSet(u8);

impl TopicSet {
    fn of(topics: &[Topic]) -> Self {
        TopicSet(topics.iter().fold(0, |set, t| set | (1 << t.index())))
    }

    fn contains(self, topic: Topic) -> bool {
        self.0 & (1 << topic.index()) != 0
    }
}

/// One topic's replay buffer.
#[derive(Debug, Default)]
struct TopicLog {
    items: VecDeque<Arc<Envelope>>,
    /// The sequence of the newest item evicted (0 when none was).
    evicted_through: u64,
}

impl TopicLog {
    fn push(&mut self, envelope: Arc<Envelope>, capacity: usize) {
        self.items.push_back(envelope);
        while self.items.len() > capacity {
            if let Some(evicted) = self.items.pop_front() {
                self.evicted_through = evicted.id.sequence;
            }
        }
    }
}

#[derive(Debug)]
struct Subscriber {
    topics: TopicSet,
    sender: mpsc::Sender<Arc<Envelope>>,
}

#[derive(Debug, Default)]
struct State {
    sequence: u64,
    topics: [TopicLog; Topic::ALL.len()],
    subscribers: HashMap<u64, Subscriber>,
    next_subscriber: u64,
}

/// What the hub's feeds and subscribers share.
#[derive(Debug)]
pub(crate) struct Inner {
    hub: u32,
    config: HubConfig,
    state: Mutex<State>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing holding these locks can leave the data half-changed, so a panic elsewhere while
    // holding one leaves it usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    /// Numbers `item`, keeps it in its topic's buffer and hands it to that topic's subscribers,
    /// dropping those whose buffer is full or whose page is gone.
    pub(crate) fn publish(&self, item: LiveItem) -> Option<EventId> {
        let topic = item.topic()?;
        let mut state = lock(&self.state);
        state.sequence += 1;
        let id = EventId {
            hub: self.hub,
            sequence: state.sequence,
        };
        let envelope = Arc::new(Envelope::new(id, item));
        state.topics[topic.index()].push(Arc::clone(&envelope), self.config.replay);
        let before = state.subscribers.len();
        state
            .subscribers
            .retain(|_, s| !s.topics.contains(topic) || deliver(s, &envelope));
        let after = state.subscribers.len();
        if after < before {
            metrics::gauge!("live_subscribers").set(after as f64);
        }
        Some(id)
    }
}

/// Hands `envelope` to `subscriber`; false when it must be dropped.
fn deliver(subscriber: &Subscriber, envelope: &Arc<Envelope>) -> bool {
    match subscriber.sender.try_send(Arc::clone(envelope)) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics::counter!("live_subscribers_dropped_total").increment(1);
            tracing::debug!("live subscriber fell behind; dropped");
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// The tasks feeding a hub, stopped when the last clone of the hub goes.
#[derive(Debug, Default)]
struct Feeds(Mutex<Vec<JoinHandle<()>>>);

impl Drop for Feeds {
    fn drop(&mut self) {
        for task in lock(&self.0).drain(..) {
            task.abort();
        }
    }
}

/// The live hub of one process; cheap to clone. Its feeds stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
    feeds: Arc<Feeds>,
}

impl Hub {
    /// A hub with no feed yet (see [`Hub::follow_log`] and [`Hub::sample`]).
    pub fn new(config: HubConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                hub: rand::random(),
                config,
                state: Mutex::new(State::default()),
            }),
            feeds: Arc::new(Feeds::default()),
        }
    }

    /// What the hub keeps.
    pub fn config(&self) -> HubConfig {
        self.inner.config
    }

    /// Publishes an item on its topic (a [`LiveItem::Reset`] is not published); answers its id.
    pub fn publish(&self, item: LiveItem) -> Option<EventId> {
        self.inner.publish(item)
    }

    /// The id of the newest item (sequence 0 before the first): a page rendered now resumes
    /// from it (`?after=`), so nothing published between its render and its stream is lost.
    pub fn head(&self) -> EventId {
        EventId {
            hub: self.inner.hub,
            sequence: lock(&self.inner.state).sequence,
        }
    }

    /// Items of `topic` kept for replay.
    pub fn retained(&self, topic: Topic) -> usize {
        lock(&self.inner.state).topics[topic.index()].items.len()
    }

    /// Pages subscribed now.
    pub fn subscribers(&self) -> usize {
        lock(&self.inner.state).subscribers.len()
    }

    /// Follows `topics`: after the item `after` names (a `Last-Event-ID`), the items of these
    /// topics the hub still holds, then each new one. When `after` is unknown (another process),
    /// in the future, or older than what a topic still holds, the stream starts with one
    /// [`LiveItem::Reset`] instead. Without `after`, only new items.
    pub fn subscribe(&self, topics: &[Topic], after: Option<&str>) -> LiveStream {
        let set = TopicSet::of(topics);
        let (sender, receiver) = mpsc::channel(self.inner.config.subscriber_buffer.max(1));
        let mut state = lock(&self.inner.state);
        let replay = match after {
            None => VecDeque::new(),
            Some(after) => self.replay(&state, set, after),
        };
        let id = state.next_subscriber;
        state.next_subscriber += 1;
        state.subscribers.insert(
            id,
            Subscriber {
                topics: set,
                sender,
            },
        );
        metrics::gauge!("live_subscribers").set(state.subscribers.len() as f64);
        LiveStream {
            replay,
            receiver,
            hub: Arc::downgrade(&self.inner),
            id,
        }
    }

    /// What a subscriber resuming after `after` is owed, in id order.
    fn replay(&self, state: &State, set: TopicSet, after: &str) -> VecDeque<Arc<Envelope>> {
        let reset = || {
            let head = EventId {
                hub: self.inner.hub,
                sequence: state.sequence,
            };
            VecDeque::from([Arc::new(Envelope::new(head, LiveItem::Reset))])
        };
        let Ok(after) = after.parse::<EventId>() else {
            return reset();
        };
        let topics: Vec<&TopicLog> = Topic::ALL
            .into_iter()
            .filter(|t| set.contains(*t))
            .map(|t| &state.topics[t.index()])
            .collect();
        if after.hub != self.inner.hub
            || after.sequence > state.sequence
            || topics.iter().any(|t| t.evicted_through > after.sequence)
        {
            return reset();
        }
        let mut owed: Vec<Arc<Envelope>> = topics
            .iter()
            .flat_map(|t| t.items.iter().filter(|e| e.id.sequence > after.sequence))
            .cloned()
            .collect();
        owed.sort_by_key(|e| e.id.sequence);
        owed.into()
    }

    /// The publishing side, for the feeds.
    pub(crate) fn inner(&self) -> Arc<Inner> {
        Arc::clone(&self.inner)
    }

    /// Keeps a feed's task, aborted when the hub goes.
    pub(crate) fn keep(&self, task: JoinHandle<()>) {
        lock(&self.feeds.0).push(task);
    }
}

/// One page's items: the replay owed, then each new item; ends when the hub dropped the page
/// for falling behind (after the items it had been handed).
#[derive(Debug)]
pub struct LiveStream {
    replay: VecDeque<Arc<Envelope>>,
    receiver: mpsc::Receiver<Arc<Envelope>>,
    hub: Weak<Inner>,
    id: u64,
}

/// What a [`LiveStream`] holds now, without waiting for it.
#[derive(Debug)]
pub(crate) enum Waiting {
    /// The next item.
    Item(Arc<Envelope>),
    /// Nothing yet.
    Nothing,
    /// The stream ended.
    Ended,
}

impl LiveStream {
    /// The next item if it is here already; never waits, so it never asks to be woken.
    pub(crate) fn waiting(&mut self) -> Waiting {
        if let Some(envelope) = self.replay.pop_front() {
            return Waiting::Item(envelope);
        }
        match self.receiver.try_recv() {
            Ok(envelope) => Waiting::Item(envelope),
            Err(mpsc::error::TryRecvError::Empty) => Waiting::Nothing,
            Err(mpsc::error::TryRecvError::Disconnected) => Waiting::Ended,
        }
    }
}

impl Stream for LiveStream {
    type Item = Arc<Envelope>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(envelope) = self.replay.pop_front() {
            return Poll::Ready(Some(envelope));
        }
        self.receiver.poll_recv(cx)
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        if let Some(inner) = self.hub.upgrade() {
            let mut state = lock(&inner.state);
            state.subscribers.remove(&self.id);
            metrics::gauge!("live_subscribers").set(state.subscribers.len() as f64);
        }
    }
}

#[cfg(test)]
mod tests;
