//! The payer's checkout page.

use lightspeed_adapters::amount::format_rupees;
use lightspeed_adapters::html::escape_html;
use lightspeed_adapters::sandbox::OrderStatus;
use lightspeed_domain::Paise;

use crate::orders::status;
use crate::store::StoredOrder;

/// The page of `order`: Pay and Fail buttons while it waits for the payer, its outcome after.
/// `public_url` is where browsers reach the sandbox.
pub(crate) fn checkout_page(order: &StoredOrder, public_url: &str) -> String {
    let id_attr = escape_html(&order.id);
    let amount = format!(
        "{} {}",
        escape_html(&order.currency),
        escape_html(&format_rupees(Paise(order.amount_paise)))
    );
    let actions = match status(order) {
        OrderStatus::Created => format!(
            "<form method=\"post\" action=\"{id_attr}/pay\" style=\"display:inline\"><button type=\"submit\">Pay</button></form>\
             <form method=\"post\" action=\"{id_attr}/fail\" style=\"display:inline\"><button type=\"submit\">Fail</button></form>"
        ),
        OrderStatus::Paid => "<p>This order is paid.</p>".to_owned(),
        OrderStatus::Failed => "<p>This payment failed.</p>".to_owned(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sandbox checkout</title>\
         <base href=\"{base}/checkout/\"></head><body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto\">\
         <p><strong>Sandbox PSP</strong>: no money moves.</p><h1>{amount}</h1><p>{description}</p>\
         <p>Reference <code>{reference}</code></p>{actions}</body></html>\n",
        base = escape_html(public_url.trim_end_matches('/')),
        description = escape_html(&order.description),
        reference = escape_html(&order.reference),
    )
}
