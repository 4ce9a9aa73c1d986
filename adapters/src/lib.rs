//! Adapters between the LightSpeed ledger and the outside world.
//!
//! Everything that talks to a third party, or holds a secret in clear, lives here:
//!
//! - [`secrets`]: the [`Keyring`](secrets::Keyring) that seals and opens secrets at rest, and the
//!   generators for client keys, salts and webhook secrets;
//! - [`merchant_auth`]: the signature on merchant API requests;
//! - [`merchant_webhook`]: Standard Webhooks signing of the webhooks we send merchants;
//! - [`webhook_target`]: which merchant endpoint addresses a webhook may reach (SSRF checks);
//! - [`psp`]: one adapter per payment service provider behind [`PspClient`](psp::PspClient);
//! - [`checkout`]: the hosted checkout pages rendered from a PSP order;
//! - [`html`]: escaping and the page frame shared by the checkout and the sandbox's pages;
//! - [`sandbox`]: the wire format of the sandbox PSP built into the product (its server is the
//!   `lightspeed-sandbox` crate);
//! - [`whatsapp`]: WhatsApp template messages through Meta's Cloud API or a BSP;
//! - [`payouts`]: RazorpayX payouts and their webhooks;
//! - [`mailer`]: email over SMTP with STARTTLS (sign-in links, alerts, invoices), and a
//!   loopback SMTP server for tests (feature `testing`).
//!
//! Architecture invariant: nothing here decides business outcomes. Adapters translate between
//! provider formats and the domain's types (`Paise`, ids, [`Provider`](lightspeed_domain::Provider))
//! and classify failures so callers can decide.

pub mod amount;
pub mod checkout;
mod crypto;
pub mod html;
pub mod http;
pub mod mailer;
pub mod merchant_auth;
pub mod merchant_webhook;
pub mod payouts;
pub mod psp;
pub mod sandbox;
pub mod secrets;
pub mod webhook_target;
pub mod whatsapp;
