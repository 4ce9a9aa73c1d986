//! Projectors, rebuilds and read functions over real PostgreSQL and NATS JetStream.
//! One test binary, so the workspace links it once.

mod batching;
mod common;
mod lag;
mod reads;
mod rebuild;
mod recovery;
mod runtime;
