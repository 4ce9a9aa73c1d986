//! The sandbox PSP served by the product, for demos and tests: its orders, its checkout page
//! and the signed webhooks it sends. The API mounts [`router`] under `/sandbox`; the wire format
//! it speaks, shared with the PSP adapter that calls it, is [`lightspeed_adapters::sandbox`].

mod server;

pub use server::{Sandbox, SandboxConfig, router};
