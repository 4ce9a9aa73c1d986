//! Auditor tooling over real logs: export, verify, tamper detection and the commission replay.
//! One test binary, so the workspace links it once.

mod commission;
mod common;
mod database;
mod verify;
