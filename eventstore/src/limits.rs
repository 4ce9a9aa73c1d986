//! Every input the log accepts has a named bound.

/// Largest canonical payload of one event, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Largest canonical metadata of one event, in bytes.
pub const MAX_METADATA_BYTES: usize = 4 * 1024;
/// Most events one append (over all its streams) may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 1_000;
/// Most streams one atomic append may touch.
pub const MAX_STREAMS_PER_APPEND: usize = 16;
/// Longest stream id, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 200;
/// Longest category, in bytes.
pub const MAX_CATEGORY_LEN: usize = 40;
/// Longest event type name, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 100;
/// Most events one read returns.
pub const MAX_READ_BATCH: usize = 10_000;
