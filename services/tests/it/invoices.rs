//! Monthly invoices over a real PostgreSQL log: gapless numbers under two racing issuers (two
//! instances, as two replicas run them), one invoice per merchant-month, the statement's
//! figures with the configured tax lines, numbering by the invoice date's financial year.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lightspeed_domain::calendar::IstMonth;
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::invoice::{
    FinancialYear, InvoiceNumber, InvoiceSeries, InvoiceSeriesEvent, TaxRate,
};
use lightspeed_domain::wallet::{Wallet, WalletCommand};
use lightspeed_domain::{BasisPoints, MerchantId, Paise, PaymentId};
use lightspeed_eventstore::{CommandContext, EventStore, stream_of};
use lightspeed_services::{Invoicing, IssueOutcome, StatementMonth};

use crate::payments::{World, world};

const NOVEMBER: IstMonth = IstMonth {
    year: 2026,
    month: 11,
};

/// 1 December 2026, 02:00 IST: when November's invoices are issued.
fn december_first() -> DateTime<Utc> {
    "2026-11-30T20:30:00Z".parse().expect("instant")
}

/// Records a payment's commission on the merchant's wallet, as a settled payment does.
async fn accrue(w: &World, merchant: MerchantId, amount: i64) {
    let fee = BasisPoints::DEFAULT_FEE;
    let command = WalletCommand::AccrueCommission {
        payment_id: PaymentId::new(),
        amount: Paise(amount),
        fee,
        commission: fee.of(Paise(amount)),
        at: w.ledger.now(),
    };
    w.ledger
        .wallets()
        .execute(
            &stream_of::<Wallet>(merchant).expect("stream"),
            &command,
            &CommandContext::default(),
        )
        .await
        .expect("accrued");
}

/// Every number the year's series gave, in log order, with whom it went to.
async fn series(w: &World, year: FinancialYear) -> Vec<(u64, MerchantId)> {
    let stream = stream_of::<InvoiceSeries>(year).expect("stream");
    let recorded = w
        .ledger
        .store()
        .read_stream(&stream, 0, 100_000)
        .await
        .expect("read");
    recorded
        .iter()
        .map(|r| {
            let InvoiceSeriesEvent::InvoiceNumberAssigned {
                number,
                merchant_id,
                ..
            } = r.decode().expect("decode");
            assert_eq!(number.year, year);
            assert_eq!(number.sequence, r.stream_version, "number = series version");
            (number.sequence, merchant_id)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_issuers_racing_over_many_merchants_give_numbers_one_to_n_each_once() {
    let w = world().await;
    let mut billed = Vec::new();
    for n in 0..24 {
        let merchant = w.merchant(CheckoutSettings::default()).await;
        accrue(&w, merchant, 10_000 + n).await;
        billed.push(merchant);
    }
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(w.merchant(CheckoutSettings::default()).await);
    }
    let everyone: Vec<MerchantId> = billed.iter().chain(&idle).copied().collect();
    let issuers = [
        Arc::new(Invoicing::new(w.ledger.clone(), Vec::new())),
        Arc::new(Invoicing::new(w.another_instance().await, Vec::new())),
    ];
    let tasks: Vec<_> = issuers
        .iter()
        .enumerate()
        .map(|(i, issuer)| {
            let issuer = Arc::clone(issuer);
            let mut order = everyone.clone();
            if i == 1 {
                order.reverse();
            }
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for merchant in order {
                    let outcome = issuer
                        .issue(
                            merchant,
                            NOVEMBER,
                            december_first(),
                            &CommandContext::default(),
                        )
                        .await
                        .expect("issued");
                    outcomes.push((merchant, outcome));
                }
                outcomes
            })
        })
        .collect();
    let mut issued = BTreeMap::<MerchantId, InvoiceNumber>::new();
    let mut repeats = 0;
    let mut nothing = 0;
    let mut by_issuer = [0; 2];
    for (i, task) in tasks.into_iter().enumerate() {
        for (merchant, outcome) in task.await.expect("task") {
            match outcome {
                IssueOutcome::Issued(invoice) => {
                    by_issuer[i] += 1;
                    assert_eq!(invoice.merchant_id, merchant);
                    assert!(
                        issued.insert(merchant, invoice.number).is_none(),
                        "{merchant} issued twice"
                    );
                }
                IssueOutcome::AlreadyIssued(_) => repeats += 1,
                IssueOutcome::NothingToInvoice => nothing += 1,
            }
        }
    }
    assert_eq!(
        issued.len(),
        billed.len(),
        "each billed merchant issued once"
    );
    assert_eq!(
        repeats,
        billed.len(),
        "the other issuer found each one issued"
    );
    assert_eq!(nothing, 2 * idle.len(), "no invoice without commission");
    let fy = FinancialYear { first_year: 2026 };
    let given = series(&w, fy).await;
    let numbers: Vec<u64> = given.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=billed.len() as u64).collect::<Vec<_>>());
    for (sequence, merchant) in &given {
        assert_eq!(issued.get(merchant).map(|n| n.sequence), Some(*sequence));
        let invoices = issuers[0].of_merchant(*merchant).await.expect("invoices");
        assert_eq!(invoices.invoices().count(), 1, "one invoice for {merchant}");
    }
    for merchant in &idle {
        let invoices = issuers[1].of_merchant(*merchant).await.expect("invoices");
        assert_eq!(invoices.invoices().count(), 0);
    }
    // A restarted issuer (no cache) continues the series where the log left it.
    let late = w.merchant(CheckoutSettings::default()).await;
    accrue(&w, late, 5_000).await;
    let restarted = Invoicing::new(w.another_instance().await, Vec::new());
    let outcome = restarted
        .issue(late, NOVEMBER, december_first(), &CommandContext::default())
        .await
        .expect("issued");
    assert_eq!(
        outcome.invoice().map(|i| i.number.sequence),
        Some(billed.len() as u64 + 1)
    );
}

#[tokio::test]
async fn an_invoice_bills_the_statements_commission_with_the_configured_taxes() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    accrue(&w, merchant, 1_234_500).await;
    accrue(&w, merchant, 700).await;
    let statement = w
        .ledger
        .statement(
            merchant,
            StatementMonth {
                year: 2026,
                month: 11,
            },
        )
        .await
        .expect("statement");
    let taxes = TaxRate::parse_list("IGST:1800").expect("taxes");
    let invoicing = Invoicing::new(w.ledger.clone(), taxes);
    let outcome = invoicing
        .issue(
            merchant,
            NOVEMBER,
            december_first(),
            &CommandContext::default(),
        )
        .await
        .expect("issued");
    let IssueOutcome::Issued(invoice) = outcome else {
        panic!("expected an issue, got {outcome:?}");
    };
    // 3.5 % of 12 345.00 = 432.0750 → 43 208 paise; of 7.00 = 24.5 → 25 paise.
    assert_eq!(statement.commission_accrued, Paise(43_208 + 25));
    assert_eq!(invoice.figures.accrued, statement.commission_accrued);
    assert_eq!(invoice.figures.payments, statement.commissions);
    assert_eq!(invoice.taxable, Paise(43_233));
    // 18 % of 43 233 = 7 781.94 → 7 782 paise.
    assert_eq!(invoice.taxes[0].amount, Paise(7_782));
    assert_eq!(invoice.total, Paise(51_015));
    assert_eq!(invoice.company_name, "Acme Retail");
    assert_eq!(invoice.number.to_string(), "LS-2627-000001");
    assert_eq!(
        invoicing.by_number(invoice.number).await.expect("read"),
        Some(invoice.clone())
    );
    let unknown = InvoiceNumber {
        sequence: 2,
        ..invoice.number
    };
    assert_eq!(invoicing.by_number(unknown).await.expect("read"), None);
    // Issuing the month again answers the same invoice and takes no number.
    let again = invoicing
        .issue(
            merchant,
            NOVEMBER,
            december_first(),
            &CommandContext::default(),
        )
        .await
        .expect("again");
    assert_eq!(again, IssueOutcome::AlreadyIssued(invoice));
    assert_eq!(series(&w, invoice_year()).await.len(), 1);
}

fn invoice_year() -> FinancialYear {
    FinancialYear { first_year: 2026 }
}

#[tokio::test]
async fn march_is_invoiced_on_the_first_of_april_in_the_next_years_series() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    // The world's clock is in November 2026; March 2027's commission accrues in March.
    w.clock
        .set("2027-03-15T06:00:00Z".parse().expect("instant"));
    accrue(&w, merchant, 10_000).await;
    let invoicing = Invoicing::new(w.ledger.clone(), Vec::new());
    let april_first: DateTime<Utc> = "2027-03-31T20:30:00Z".parse().expect("instant");
    let outcome = invoicing
        .issue(
            merchant,
            IstMonth {
                year: 2027,
                month: 3,
            },
            april_first,
            &CommandContext::default(),
        )
        .await
        .expect("issued");
    assert_eq!(
        outcome.invoice().map(|i| i.number.to_string()),
        Some("LS-2728-000001".to_owned())
    );
}
