//! The monthly invoice run end to end on its side: the scheduler, due on the 1st at 02:00 IST,
//! issues last month's invoices from the log and mails each PDF to a loopback SMTP server; the
//! attachment read back by poppler's `pdftotext` shows the statement's figures.

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use lightspeed_adapters::mailer::loopback::{LoopbackSmtp, ReceivedMail};
use lightspeed_adapters::mailer::{Mailer, MailerConfig};
use lightspeed_domain::invoice::TaxRate;
use lightspeed_domain::wallet::{Wallet, WalletCommand};
use lightspeed_domain::{BasisPoints, MerchantId, Paise, PaymentId};
use lightspeed_eventstore::{CommandContext, stream_of};
use lightspeed_invoice::Seller;
use lightspeed_services::{Invoicing, StatementMonth};
use lightspeed_workers::invoice_schedule::{self, InvoiceMail, InvoiceSchedule};

use crate::common::World;

/// 1 December 2026, 02:00 IST.
fn december_first() -> DateTime<Utc> {
    "2026-11-30T20:30:00Z".parse().expect("instant")
}

async fn accrue(w: &World, merchant: MerchantId, amount: i64) {
    let fee = BasisPoints::DEFAULT_FEE;
    w.ledger
        .wallets()
        .execute(
            &stream_of::<Wallet>(merchant).expect("stream"),
            &WalletCommand::AccrueCommission {
                payment_id: PaymentId::new(),
                amount: Paise(amount),
                fee,
                commission: fee.of(Paise(amount)),
                at: w.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("accrued");
}

/// The bytes of the message's attachment named `name` (base64 in its MIME part).
fn attachment(mail: &ReceivedMail, name: &str) -> Vec<u8> {
    let (_, part) = mail
        .data
        .split_once(&format!("filename=\"{name}\""))
        .unwrap_or_else(|| panic!("no attachment {name} in:\n{}", mail.data));
    let body: String = part
        .split("\r\n\r\n")
        .nth(1)
        .expect("the part's body")
        .lines()
        .take_while(|line| !line.starts_with("--"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .expect("base64")
}

fn pdftotext(pdf: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("invoice-mail-{}.pdf", uuid::Uuid::now_v7()));
    std::fs::write(&path, pdf).expect("written");
    let out = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs (Debian's poppler-utils)");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_first_at_two_ist_last_months_invoice_is_mailed_with_its_pdf() {
    let w = World::new().await;
    let billed = w.merchant(None).await.id;
    let unmailed = w.merchant(None).await.id;
    let idle = w.merchant(None).await.id;
    // ₹12,345.67 and ₹1,000 of payments at 3.5 %: 43 209.845 → 43 210 and 3 500 paise.
    accrue(&w, billed, 1_234_567).await;
    accrue(&w, billed, 100_000).await;
    accrue(&w, unmailed, 50_000).await;
    let invoicing = Invoicing::new(
        w.ledger.clone(),
        TaxRate::parse_list("IGST:1800").expect("taxes"),
    );
    invoicing
        .set_email(
            billed,
            Some("billing@acme.example".into()),
            &CommandContext::default(),
        )
        .await
        .expect("address set");
    let statement = w
        .ledger
        .statement(
            billed,
            StatementMonth {
                year: 2026,
                month: 11,
            },
        )
        .await
        .expect("statement");
    assert_eq!(statement.commission_accrued, Paise(46_710));

    let mut smtp = LoopbackSmtp::start().await;
    let mail = InvoiceMail {
        mailer: Mailer::new(&MailerConfig {
            host: "127.0.0.1".into(),
            port: smtp.port(),
            username: None,
            password: None,
            from: "LightSpeed <billing@lightspeed.example>".into(),
            starttls: false,
        })
        .expect("mailer"),
        seller: Seller::default(),
    };
    let schedule = InvoiceSchedule {
        recheck: Duration::from_millis(20),
        ..InvoiceSchedule::default()
    };
    // A minute before the run nothing is issued; at 02:00 IST on the 1st the run goes.
    w.clock.set(december_first() - chrono::Duration::minutes(1));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(invoice_schedule::run(
        invoicing.clone(),
        Some(mail.clone()),
        schedule,
        async {
            let _ = stopped.await;
        },
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(smtp.try_next().is_none(), "nothing mailed before the run");
    let before = invoicing.of_merchant(billed).await.expect("invoices");
    assert_eq!(
        before.invoices().count(),
        0,
        "nothing issued before the run"
    );
    w.clock.set(december_first());
    let received = tokio::time::timeout(Duration::from_secs(30), smtp.next())
        .await
        .expect("the invoice is mailed");
    let _ = stop.send(());
    scheduler.await.expect("scheduler");

    assert_eq!(received.to, ["billing@acme.example"]);
    let books = invoicing.of_merchant(billed).await.expect("invoices");
    let invoice = books.invoices().next().expect("issued").clone();
    assert_eq!(invoice.figures.accrued, statement.commission_accrued);
    assert_eq!(invoice.figures.payments, 2);
    assert!(
        books.mailed_at(invoice.number).is_some(),
        "mailing recorded"
    );
    let subject = format!(
        "Subject: Invoice {} for November 2026 from LightSpeed Payments",
        invoice.number
    );
    assert!(received.data.contains(&subject), "{}", received.data);
    assert!(
        received.data.contains("Total due: ₹551.18")
            || received.data.contains("Total due: =E2=82=B9551.18"),
        "{}",
        received.data
    );
    let pdf = attachment(&received, &format!("{}.pdf", invoice.number));
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdftotext(&pdf);
    // 18 % of 46 710 = 8 407.8 → 8 408 paise; total 55 118.
    for expected in [
        format!("Invoice {}", invoice.number),
        "Acme Retail".to_owned(),
        format!("Merchant {billed}"),
        "Commission for November 2026".to_owned(),
        "Commission accrued on 2 payments".to_owned(),
        "₹467.10".to_owned(),
        "IGST @ 18.00%".to_owned(),
        "₹84.08".to_owned(),
        "₹551.18".to_owned(),
        "Date 2026-12-01 (IST)".to_owned(),
    ] {
        assert!(
            text.contains(&expected),
            "{expected:?} missing from:\n{text}"
        );
    }

    // The merchant without an address is invoiced, not mailed; the idle one is not invoiced.
    let other = invoicing.of_merchant(unmailed).await.expect("invoices");
    assert_eq!(other.invoices().count(), 1);
    assert_eq!(
        invoicing
            .of_merchant(idle)
            .await
            .expect("idle")
            .invoices()
            .count(),
        0
    );
    let numbers: Vec<u64> = [
        invoice.number.sequence,
        other.invoices().next().expect("one").number.sequence,
    ]
    .into_iter()
    .collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 2]);

    // Running the same month again (a restart, another replica) issues and mails nothing new.
    let again = invoice_schedule::run_once(&invoicing, Some(&mail), december_first())
        .await
        .expect("run");
    assert!(again.issued.is_empty(), "{again:?}");
    assert_eq!(
        (again.already_issued, again.nothing_to_invoice, again.mailed),
        (2, 1, 0)
    );
    assert!(again.failures.is_empty(), "{again:?}");
    assert!(smtp.try_next().is_none(), "mailed once");
}
