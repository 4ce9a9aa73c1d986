//! The event log on real PostgreSQL and the relay to real NATS JetStream.
//! One test binary, so the workspace links it once.

mod append;
mod common;
mod fixtures;
mod gap_safe;
mod group_commit;
mod handler;
mod reads;
mod relay;
mod seal;
mod snapshots;
mod subscription;
