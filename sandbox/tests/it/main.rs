//! The sandbox PSP over real HTTP on loopback, called by its PSP adapter.
//! One test binary, so the workspace links it once.

mod common;
mod durability;
mod flow;
mod refunds;
