//! Server-Sent Events for axum: [`sse_response`] answers `text/event-stream` for one page's
//! [`LiveStream`], each item rendered by the caller's [`Renderer`] (HTML fragments for the
//! console, JSON for tests and tools) with its `id:`, keep-alives while nothing happens.
//!
//! Not axum's `Sse`: that formats every event again for every connection and writes each as its
//! own chunk. Here a renderer renders an item once for every page that shows it (the frame is
//! shared bytes), and the frames that arrive within [`SseOptions::batch_window`] go out in one
//! write. A page's task sleeps through the window instead of waking for each item, so a page
//! costs one wake-up and one write per window however many items arrive.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::hub::{Envelope, EventId, LiveStream, Waiting};
use crate::item::LiveItem;

/// One SSE event as a page receives it: its name (what htmx's `sse-swap` listens for) and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name.
    pub name: String,
    /// The `data:` (several lines become several `data:` lines).
    pub data: String,
}

impl SseEvent {
    /// An event named `name` carrying `data`.
    pub fn new(name: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            data: data.into(),
        }
    }
}

type Render = dyn Fn(&LiveItem) -> Option<SseEvent> + Send + Sync;

/// How a page shows items; make one per kind of page and clone it, since an item's rendering
/// is kept per renderer and shared by every page using the same one.
#[derive(Clone)]
pub struct Renderer {
    key: u64,
    render: Arc<Render>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").field("key", &self.key).finish()
    }
}

static RENDERERS: AtomicU64 = AtomicU64::new(1);

impl Renderer {
    /// A renderer showing an item as `render` says, or not at all when it answers `None`.
    /// A [`LiveItem::Reset`] it does not show is sent as an event named `reset`.
    pub fn new(render: impl Fn(&LiveItem) -> Option<SseEvent> + Send + Sync + 'static) -> Self {
        Self {
            key: RENDERERS.fetch_add(1, Ordering::Relaxed),
            render: Arc::new(render),
        }
    }

    /// Every item as JSON, the event named after its kind (`payment`, `alert`, `reset`, ...).
    pub fn json() -> Self {
        Self::new(|item| {
            let data = serde_json::to_string(item).ok()?;
            Some(SseEvent::new(item.kind(), data))
        })
    }

    /// The frame of `envelope`, rendered once per renderer.
    fn frame(&self, envelope: &Envelope) -> Option<Bytes> {
        envelope.rendered(self.key, || {
            let event = (self.render)(&envelope.item).or_else(|| {
                matches!(envelope.item, LiveItem::Reset).then(|| SseEvent::new("reset", "reset"))
            })?;
            Some(format_frame(envelope.id, &event))
        })
    }
}

/// How a stream is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseOptions {
    /// How long frames are gathered after the first before they are written together
    /// (default 50 ms: what it adds to an item's way to the page).
    pub batch_window: Duration,
    /// A comment is sent after this long without an item, so proxies keep the connection
    /// (default 15 s).
    pub keep_alive: Duration,
    /// The reconnection delay the browser is told (default 2 s).
    pub retry: Duration,
}

impl Default for SseOptions {
    fn default() -> Self {
        Self {
            batch_window: Duration::from_millis(50),
            keep_alive: Duration::from_secs(15),
            retry: Duration::from_secs(2),
        }
    }
}

/// Frames gathered into one write stop growing at this size.
const MAX_WRITE: usize = 64 * 1024;

/// The `Last-Event-ID` a reconnecting browser sends, else the `after` a page was rendered with
/// (see [`crate::Hub::head`]).
pub fn resume_point(headers: &HeaderMap, after: Option<&str>) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(after)
        .map(str::to_owned)
}

/// Answers `text/event-stream` with the items of `stream` as `renderer` shows them.
pub fn sse_response(stream: LiveStream, renderer: Renderer, options: SseOptions) -> Response {
    let retry = Bytes::from(format!("retry: {}\n\n", options.retry.as_millis()));
    let writes = futures::stream::unfold(
        Writer {
            stream,
            renderer,
            options,
            ended: false,
            behind: false,
        },
        |mut writer| async move { writer.next_write().await.map(|write| (write, writer)) },
    );
    let body = futures::stream::once(async { retry })
        .chain(writes)
        .map(Ok::<_, Infallible>);
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx would otherwise hold the stream back in their buffers.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Turns a page's items into writes.
struct Writer {
    stream: LiveStream,
    renderer: Renderer,
    options: SseOptions,
    ended: bool,
    /// The last write stopped at [`MAX_WRITE`] with items still waiting.
    behind: bool,
}

impl Writer {
    /// The next write: the frames of the items arriving within a batch window of the first (at
    /// once when the last write left items waiting), or a keep-alive; `None` once the stream
    /// ended and everything was written.
    async fn next_write(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        let first = match tokio::time::timeout(self.options.keep_alive, self.stream.next()).await {
            Err(_) => return Some(Bytes::from_static(b": keep-alive\n\n")),
            Ok(None) => return None,
            Ok(Some(first)) => first,
        };
        if !self.behind {
            tokio::time::sleep(self.options.batch_window).await;
        }
        let mut write = Write::default();
        write.add(&first, &self.renderer);
        self.behind = false;
        loop {
            if write.frames.len() >= MAX_WRITE {
                self.behind = true;
                break;
            }
            match self.stream.waiting() {
                Waiting::Item(envelope) => write.add(&envelope, &self.renderer),
                Waiting::Nothing => break,
                Waiting::Ended => {
                    self.ended = true;
                    break;
                }
            }
        }
        Some(write.finish())
    }
}

/// Frames gathered for one write.
#[derive(Default)]
struct Write {
    frames: BytesMut,
    /// The last item's id, when the renderer did not show it: sent alone so the browser's
    /// `Last-Event-ID` moves past it.
    unshown: Option<EventId>,
}

impl Write {
    fn add(&mut self, envelope: &Envelope, renderer: &Renderer) {
        match renderer.frame(envelope) {
            Some(frame) => {
                self.frames.extend_from_slice(&frame);
                self.unshown = None;
            }
            None => self.unshown = Some(envelope.id),
        }
    }

    fn finish(mut self) -> Bytes {
        if let Some(id) = self.unshown {
            // A block with an id and no data sets the browser's last event id, dispatching
            // nothing (HTML Living Standard, server-sent events, "dispatch the event").
            self.frames
                .extend_from_slice(format!("id: {id}\n\n").as_bytes());
        }
        self.frames.freeze()
    }
}

/// One event's SSE frame: `id:`, `event:`, a `data:` line per line of data, a blank line.
fn format_frame(id: EventId, event: &SseEvent) -> Bytes {
    let mut frame = String::with_capacity(event.data.len() + 64);
    // Line breaks would end the field early; a name has no business holding one.
    let name: String = event
        .name
        .chars()
        .filter(|c| *c != '\n' && *c != '\r')
        .collect();
    let _ = write!(frame, "id: {id}\nevent: {name}\n");
    for line in event.data.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let _ = writeln!(frame, "data: {line}");
    }
    frame.push('\n');
    Bytes::from(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_carries_its_id_name_and_each_line_of_data() {
        let id: EventId = "0000abcd-42".parse().expect("id");
        let frame = format_frame(id, &SseEvent::new("pay\nment", "<tr>\r\n<td>1</td></tr>"));
        assert_eq!(
            frame,
            "id: 0000abcd-42\nevent: payment\ndata: <tr>\ndata: <td>1</td></tr>\n\n"
        );
    }

    #[test]
    fn the_header_wins_over_the_rendered_page_s_point() {
        let mut headers = HeaderMap::new();
        assert_eq!(resume_point(&headers, Some("a-1")), Some("a-1".into()));
        headers.insert("last-event-id", HeaderValue::from_static("a-7"));
        assert_eq!(resume_point(&headers, Some("a-1")), Some("a-7".into()));
    }
}
