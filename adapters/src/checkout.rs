//! The hosted checkout pages, rendered from a PSP order's [`CheckoutData`].
//!
//! Every interpolated value is escaped for where it lands ([`crate::html`]). Redirect targets
//! that PSPs hand back must be `http(s)` URLs, so a `javascript:` URL never reaches an `href`.

use serde_json::json;

use crate::amount::format_rupees;
use crate::html::{error_page, escape_html, page, script_literal};
use crate::psp::razorpay::REFERENCE_NOTE;
use crate::psp::{CashfreeMode, CheckoutData};

/// Razorpay's Standard Checkout script.
pub const RAZORPAY_CHECKOUT_JS: &str = "https://checkout.razorpay.com/v1/checkout.js";
/// Cashfree's JS SDK v3.
pub const CASHFREE_SDK_JS: &str = "https://sdk.cashfree.com/js/v3/cashfree.js";
/// How often the waiting page polls, in milliseconds.
pub const WAITING_POLL_INTERVAL_MS: u32 = 2_000;
/// How many polls the waiting page makes before it asks the payer to retry (two minutes).
pub const WAITING_MAX_POLLS: u32 = 60;

fn is_web_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

fn redirect_page(merchant_name: &str, url: &str) -> String {
    if !is_web_url(url) {
        return error_page("This payment link is not valid. Please go back and try again.");
    }
    let url = escape_html(url);
    page(
        &format!("Pay {merchant_name}"),
        &format!(
            "<p>Taking you to the payment page…</p><p><a href=\"{url}\">Continue to payment</a></p>"
        ),
        &format!("<meta http-equiv=\"refresh\" content=\"0;url={url}\">"),
    )
}

/// The hosted checkout page for one PSP order, titled with the merchant's name.
pub fn render_checkout(data: &CheckoutData, merchant_name: &str) -> String {
    match data {
        CheckoutData::Razorpay {
            key_id,
            order_id,
            amount,
            currency,
            description,
            reference,
            prefill,
            callback_url,
        } => {
            let options = json!({
                "key": key_id,
                "amount": amount.0,
                "currency": currency,
                "name": merchant_name,
                "description": description,
                "order_id": order_id,
                "callback_url": callback_url,
                "redirect": true,
                "prefill": {
                    "name": prefill.name.as_deref().unwrap_or_default(),
                    "email": prefill.email.as_deref().unwrap_or_default(),
                    "contact": prefill.phone.as_deref().unwrap_or_default(),
                },
                "notes": { REFERENCE_NOTE: reference },
            });
            let body = format!(
                "<h1>{}</h1><p>{} {}</p><p>{}</p>\
                 <button id=\"pay\" type=\"button\">Pay now</button>\
                 <script src=\"{RAZORPAY_CHECKOUT_JS}\"></script>\
                 <script>(function(){{var rzp=new Razorpay({});\
                 document.getElementById('pay').onclick=function(e){{e.preventDefault();rzp.open();}};\
                 rzp.open();}})();</script>",
                escape_html(merchant_name),
                escape_html(currency),
                escape_html(&format_rupees(*amount)),
                escape_html(description),
                script_literal(&options),
            );
            page(&format!("Pay {merchant_name}"), &body, "")
        }
        CheckoutData::Payu { action_url, fields } => payu_page(action_url, fields, merchant_name),
        CheckoutData::Cashfree {
            payment_session_id,
            mode,
        } => cashfree_page(payment_session_id, *mode, merchant_name),
        CheckoutData::Phonepe { redirect_url } => redirect_page(merchant_name, redirect_url),
        CheckoutData::Sandbox { checkout_url } => redirect_page(merchant_name, checkout_url),
    }
}

/// PayU's hosted checkout: a form of every signed field, posted at once.
fn payu_page(action_url: &str, fields: &[(String, String)], merchant_name: &str) -> String {
    if !is_web_url(action_url) {
        return error_page("This payment link is not valid. Please go back and try again.");
    }
    let inputs: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape_html(name),
                escape_html(value)
            )
        })
        .collect();
    let body = format!(
        "<p>Taking you to PayU…</p>\
         <form id=\"payu\" method=\"post\" action=\"{}\">{inputs}\
         <noscript><button type=\"submit\">Continue to payment</button></noscript></form>\
         <script>document.getElementById('payu').submit();</script>",
        escape_html(action_url)
    );
    page(&format!("Pay {merchant_name}"), &body, "")
}

/// Cashfree's JS SDK checkout of the order's payment session.
fn cashfree_page(payment_session_id: &str, mode: CashfreeMode, merchant_name: &str) -> String {
    let options = json!({ "paymentSessionId": payment_session_id, "redirectTarget": "_self" });
    let body = format!(
        "<p>Opening the payment page…</p>\
         <script src=\"{CASHFREE_SDK_JS}\"></script>\
         <script>Cashfree({}).checkout({});</script>",
        script_literal(&json!({ "mode": mode.as_str() })),
        script_literal(&options),
    );
    page(&format!("Pay {merchant_name}"), &body, "")
}

/// The page shown while the PSP order is still being created. It polls `status_url` every
/// [`WAITING_POLL_INTERVAL_MS`] and reloads itself once that answers JSON `{"ready": true}`;
/// after [`WAITING_MAX_POLLS`] polls it stops and offers a manual retry. Without JavaScript it
/// refreshes itself every few seconds instead.
pub fn render_waiting_page(merchant_name: &str, status_url: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p id=\"msg\">Preparing your payment…</p>\
         <p><a href=\"\">Refresh</a></p>\
         <script>(function(){{var url={},left={WAITING_MAX_POLLS};\
         function poll(){{if(left--<=0){{document.getElementById('msg').textContent=\
         'This is taking longer than usual. Please refresh in a moment.';return;}}\
         fetch(url,{{headers:{{'accept':'application/json'}},cache:'no-store'}})\
         .then(function(r){{return r.ok?r.json():{{}};}})\
         .then(function(s){{if(s&&s.ready){{location.reload();}}else{{setTimeout(poll,{WAITING_POLL_INTERVAL_MS});}}}})\
         .catch(function(){{setTimeout(poll,{WAITING_POLL_INTERVAL_MS});}});}}\
         setTimeout(poll,{WAITING_POLL_INTERVAL_MS});}})();</script>",
        escape_html(merchant_name),
        script_literal(&json!(status_url)),
    );
    page(
        &format!("Pay {merchant_name}"),
        &body,
        "<noscript><meta http-equiv=\"refresh\" content=\"3\"></noscript>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psp::Customer;
    use lightspeed_domain::Paise;

    const EVIL: &str = "</script><script>alert(1)</script>\"'&<b>\u{2028}";

    fn razorpay(evil: &str) -> CheckoutData {
        CheckoutData::Razorpay {
            key_id: "rzp_test_1".into(),
            order_id: "order_1".into(),
            amount: Paise(49900),
            currency: "INR".into(),
            description: evil.into(),
            reference: "ref".into(),
            prefill: Customer {
                name: Some(evil.into()),
                email: None,
                phone: None,
            },
            callback_url: "https://api.example/return".into(),
        }
    }

    fn assert_contained(html: &str) {
        assert!(!html.contains("</script><script>alert"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        // A raw line separator is harmless in HTML text but ends a JavaScript string literal.
        for script in html.split("<script").skip(1) {
            let inside = script.split("</script>").next().unwrap_or_default();
            assert!(!inside.contains('\u{2028}'), "{html}");
        }
    }

    #[test]
    fn razorpay_page_carries_the_order_and_escapes_everything() {
        let html = render_checkout(&razorpay(EVIL), EVIL);
        assert_contained(&html);
        assert!(html.contains(RAZORPAY_CHECKOUT_JS));
        assert!(html.contains(r#""order_id":"order_1""#));
        assert!(html.contains(r#""key":"rzp_test_1""#));
        assert!(html.contains(r#""lightspeed_reference":"ref""#));
        assert!(html.contains("499.00"));
    }

    #[test]
    fn payu_page_posts_every_field() {
        let data = CheckoutData::Payu {
            action_url: "https://test.payu.in/_payment".into(),
            fields: vec![
                ("hash".into(), "abc".into()),
                ("productinfo".into(), EVIL.into()),
            ],
        };
        let html = render_checkout(&data, "Shop");
        assert_contained(&html);
        assert!(html.contains(r#"action="https://test.payu.in/_payment""#));
        assert!(html.contains(r#"<input type="hidden" name="hash" value="abc">"#));
    }

    #[test]
    fn cashfree_page_uses_the_session() {
        let data = CheckoutData::Cashfree {
            payment_session_id: EVIL.into(),
            mode: CashfreeMode::Sandbox,
        };
        let html = render_checkout(&data, "Shop");
        assert_contained(&html);
        assert!(html.contains(CASHFREE_SDK_JS));
        assert!(html.contains(r#"Cashfree({"mode":"sandbox"})"#));
    }

    #[test]
    fn redirects_only_to_web_urls() {
        let ok = render_checkout(
            &CheckoutData::Phonepe {
                redirect_url: "https://mercury.example/t?a=1&b=2".into(),
            },
            "Shop",
        );
        assert!(ok.contains("https://mercury.example/t?a=1&amp;b=2"));
        let evil = render_checkout(
            &CheckoutData::Sandbox {
                checkout_url: "javascript:alert(1)".into(),
            },
            "Shop",
        );
        assert!(!evil.contains("javascript:"));
    }

    #[test]
    fn waiting_page_polls_the_status_url() {
        let html = render_waiting_page(EVIL, "/pay/abc/status?x=</script>");
        assert_contained(&html);
        assert!(html.contains(r#""/pay/abc/status?x=\u003c/script\u003e""#));
    }
}
