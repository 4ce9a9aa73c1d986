//! The ledger's services over a real PostgreSQL event log.
//! One test binary, so the workspace links it once.

mod admin;
mod invoices;
mod payments;
mod races;
