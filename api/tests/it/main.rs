//! The HTTP API end to end: real PostgreSQL, real NATS JetStream, fake PSPs and merchant
//! endpoints on loopback. One test binary, so the workspace links it once.

mod admin_auth;
mod admin_gateways;
mod admin_merchants;
mod admin_people;
mod admin_queues;
mod admin_reads;
mod admin_refunds;
mod admin_roles;
mod alert_rules;
mod alerts;
mod clients;
mod common;
mod contract;
mod gateway_setup;
mod invoices;
mod merchant_api;
mod merchant_self_service;
mod openapi;
mod ops;
mod payouts;
mod protection;
mod psp_webhook_keys;
mod psp_webhooks;
mod quotas;
mod readiness;
mod refund_callbacks;
mod refund_flow;
mod refund_races;
mod refunds;
mod router_errors;
mod secrets;
mod status_checks;
mod unstorable_input;
mod webhook_endpoints;
mod whatsapp;
