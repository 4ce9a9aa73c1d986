//! PSP, WhatsApp and payout adapters against fake providers on loopback.
//! One test binary, so the workspace links it once.

mod doc_examples;
mod psp_adapters;
mod razorpay_refunds;
mod refunds_payu_cashfree_phonepe;
mod tls;
mod whatsapp_payouts;
