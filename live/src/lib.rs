//! Live updates for the ops console: one [`Hub`] per API process, fed from the log's JetStream
//! copy ([`Hub::follow_log`]: payments, gateway health, ops alerts) and from one [`Sampler`]
//! ([`Hub::sample`]: queue depths and pauses, projection and relay lag, published when they
//! change), never by each open page polling PostgreSQL.
//!
//! - Each [`Topic`] keeps a bounded replay buffer; ids are one sequence across the hub, so a
//!   page that reconnects with `Last-Event-ID` gets exactly what it missed, or a
//!   [`LiveItem::Reset`] when the hub no longer holds it (or the id is another process's).
//! - Each page ([`Hub::subscribe`], one stream per page) has a bounded buffer; a page that falls
//!   behind is dropped (its stream ends, the browser reconnects and resumes), so a slow browser
//!   never grows the server's memory.
//! - [`sse_response`] writes a page's stream as Server-Sent Events with the caller's
//!   [`Renderer`] (HTML fragments for the console; [`Renderer::json`] for tools and tests);
//!   [`routes`] serves JSON streams at `/live/{topics}` behind the caller's guard.

mod from_log;
mod hub;
mod item;
mod log_feed;
mod routes;
mod sampler;
mod sse;

pub use hub::{Envelope, EventId, Hub, HubConfig, LiveStream};
pub use item::{
    AlertItem, GatewayChange, GatewayItem, LiveItem, PaymentChange, PaymentItem, ProjectionLag,
    ProjectionLagItem, QueueStat, QueueStatsItem, Topic,
};
pub use routes::{Guard, parse_topics, routes};
pub use sampler::Sampler;
pub use sse::{Renderer, SseEvent, SseOptions, resume_point, sse_response};
