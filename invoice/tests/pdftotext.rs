//! The rendered PDF read back by poppler's `pdftotext`, as a person's PDF reader would.

use std::process::Command;

use chrono::{DateTime, Utc};
use lightspeed_domain::calendar::IstMonth;
use lightspeed_domain::invoice::{
    CommissionFigures, FinancialYear, Invoice, InvoiceNumber, TaxRate, tax_lines,
};
use lightspeed_domain::{MerchantId, Paise};
use lightspeed_invoice::{Seller, file_name, render};
use uuid::Uuid;

fn invoice(taxes: &[TaxRate]) -> Invoice {
    let taxable = Paise(123_456_789 - 45_678);
    let lines = tax_lines(taxable, taxes);
    let total = lines
        .iter()
        .fold(taxable, |t, l| t.saturating_add(l.amount));
    Invoice {
        number: InvoiceNumber {
            year: FinancialYear { first_year: 2026 },
            sequence: 42,
        },
        merchant_id: MerchantId(Uuid::from_u128(0x1234)),
        company_name: "Asha Foods Private Limited".into(),
        month: IstMonth {
            year: 2026,
            month: 11,
        },
        figures: CommissionFigures {
            accrued: Paise(123_456_789),
            payments: 1_204,
            reversed: Paise(45_678),
        },
        taxable,
        taxes: lines,
        total,
        issued_at: "2026-11-30T20:30:00Z"
            .parse::<DateTime<Utc>>()
            .expect("instant"),
    }
}

/// The text `pdftotext` reads from `pdf`, one line per line of the page.
pub fn pdftotext(pdf: &[u8], name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("lightspeed-invoice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, pdf).expect("pdf written");
    let out = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs (Debian's poppler-utils)");
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 text")
}

#[test]
fn the_pdf_shows_the_statements_figures_in_rupees() {
    let invoice = invoice(&[]);
    let pdf = render(&invoice, &Seller::default()).expect("rendered");
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdftotext(&pdf, &file_name(&invoice));
    for expected in [
        "Invoice LS-2627-000042",
        "Date 2026-12-01 (IST)",
        "Financial year 2026-27",
        "Asha Foods Private Limited",
        "Merchant 00000000-0000-0000-0000-000000001234",
        "Commission for November 2026 (2026-11",
        "Commission accrued on 1204 payments",
        "₹12,34,567.89",
        "−₹456.78",
        "₹12,34,111.11",
        "Total due",
        "LightSpeed Payments",
        "less commission reversed by refunds in the month.",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(!text.contains("Tax invoice"), "{text}");
    // The same invoice renders to the same bytes, so it is never stored twice.
    assert_eq!(render(&invoice, &Seller::default()).expect("again"), pdf);
    // Only the glyphs used are embedded, not the whole 760 kB face.
    assert!(pdf.len() < 60_000, "{} bytes", pdf.len());
}

#[test]
fn tax_lines_show_with_their_rate_and_half_up_amount() {
    let taxes = TaxRate::parse_list("CGST:900,SGST:900").expect("taxes");
    let invoice = invoice(&taxes);
    // 9 % of ₹12,34,111.11 = 11 10 699.999 paise → ₹1,11,070.00 each, half-up.
    assert_eq!(invoice.taxes[0].amount, Paise(11_107_000));
    assert_eq!(invoice.total, Paise(123_411_111 + 2 * 11_107_000));
    let pdf = render(
        &invoice,
        &Seller {
            name: "LightSpeed Payments Pvt Ltd".into(),
            lines: vec!["GSTIN 27AAAAA0000A1Z5".into()],
        },
    )
    .expect("rendered");
    let text = pdftotext(&pdf, "taxed.pdf");
    for expected in [
        "Tax invoice",
        "CGST @ 9.00%",
        "SGST @ 9.00%",
        "₹1,11,070.00",
        "₹14,56,251.11",
        "GSTIN 27AAAAA0000A1Z5",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}
