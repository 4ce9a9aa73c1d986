//! The workers end to end on their side: real PostgreSQL, real NATS JetStream, a real relay
//! publishing the log, fake PSPs and merchant endpoints on loopback. One test binary, so the
//! workspace links it once.

mod common;
mod invoices;
mod merchant_messages;
mod merchant_webhooks;
mod outcomes;
mod payouts;
mod progress;
mod queue_control;
mod reconciliation;
mod refunds;
mod status_checks;
mod transactions;
mod whatsapp;
