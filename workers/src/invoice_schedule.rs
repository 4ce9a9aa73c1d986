//! The monthly invoice run: on the 1st of each month at 02:00 IST it issues every merchant's
//! commission invoice for the month before ([`Invoicing::issue`]) and mails each one, as a PDF
//! attachment, to the merchant's invoice address when it has one.
//!
//! A run is labelled by the month it bills and dated at its due instant, so the invoice date
//! and its financial year come from the schedule, never from when the run happened to go. An
//! issue is idempotent per merchant-month and numbers are decided on the year's series stream,
//! so several replicas of the scheduler, a restart or a re-run issue each invoice once and never
//! skip or repeat a number. Mailing is at least once: an invoice is mailed, then the mailing is
//! recorded on the merchant's invoices stream; a run finds the unrecorded ones and mails them
//! (a crash between the two, or two replicas at once, can send one twice, never none).
//! On start, a month's run whose time has passed is made at once; a run with failures (database
//! or SMTP down) is made again at the next look at the clock.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use lightspeed_adapters::mailer::{Attachment, Mail, Mailer};
use lightspeed_domain::MerchantId;
use lightspeed_domain::calendar::IstMonth;
use lightspeed_domain::invoice::{Invoice, previous_month};
use lightspeed_eventstore::{CommandContext, Metadata};
use lightspeed_invoice::{Seller, file_name, month_name, render, rupees};
use lightspeed_services::{Invoicing, InvoicingError, IssueOutcome, ServiceError, ist};

/// The actor of scheduled runs.
pub const ACTOR: &str = "system:invoice-scheduler";
/// The default time of the run on the 1st, in IST: 02:00.
const DEFAULT_RUN_TIME: NaiveTime = match NaiveTime::from_hms_opt(2, 0, 0) {
    Some(time) => time,
    None => panic!("02:00:00 is a time of day"),
};
/// Why the run times around the ledger's clock exist: chrono's dates span ±262 000 years.
const IN_RANGE: &str = "the ledger's clock is far inside chrono's date range";

/// When the monthly run happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvoiceSchedule {
    /// Time of day on the 1st, in IST (default 02:00).
    pub at: NaiveTime,
    /// How often, at least, the clock is looked at again (default one minute).
    pub recheck: Duration,
}

impl Default for InvoiceSchedule {
    fn default() -> Self {
        Self {
            at: DEFAULT_RUN_TIME,
            recheck: Duration::from_secs(60),
        }
    }
}

impl InvoiceSchedule {
    /// The latest run time at or before `now`.
    pub fn last_due(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let this_month = self.on(IstMonth::of(now));
        if this_month <= now {
            this_month
        } else {
            self.on(previous_month(IstMonth::of(now)))
        }
    }

    /// The first run time after `due`.
    pub fn next_after(&self, due: DateTime<Utc>) -> DateTime<Utc> {
        let month = IstMonth::of(due);
        let next = if month.month == 12 {
            IstMonth {
                year: month.year + 1,
                month: 1,
            }
        } else {
            IstMonth {
                year: month.year,
                month: month.month + 1,
            }
        };
        match self.on(month) {
            at if at > due => at,
            _ => self.on(next),
        }
    }

    /// The run time on the 1st of `month`.
    fn on(&self, month: IstMonth) -> DateTime<Utc> {
        let day = NaiveDate::from_ymd_opt(month.year, month.month, 1).expect(IN_RANGE);
        ist()
            .from_local_datetime(&day.and_time(self.at))
            .single()
            .expect(IN_RANGE)
            .with_timezone(&Utc)
    }
}

/// The month a run due at `due` bills: the IST month before the one it is in.
pub fn billed_month(due: DateTime<Utc>) -> IstMonth {
    previous_month(IstMonth::of(due))
}

/// Where invoices are mailed from, and who they say issued them.
#[derive(Debug, Clone)]
pub struct InvoiceMail {
    /// The SMTP mailer.
    pub mailer: Mailer,
    /// The seller printed on every invoice.
    pub seller: Seller,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceRunReport {
    /// The month billed.
    pub month: Option<IstMonth>,
    /// Invoices this run issued.
    pub issued: Vec<Invoice>,
    /// Merchants whose month was already invoiced.
    pub already_issued: usize,
    /// Merchants with no commission to invoice.
    pub nothing_to_invoice: usize,
    /// Invoices mailed by this run.
    pub mailed: usize,
    /// Merchants whose invoice could not be issued or mailed, and why.
    pub failures: Vec<(MerchantId, String)>,
}

/// Makes the run due at `due`: issues every merchant's invoice for the month before and mails
/// the ones not yet mailed (when `mail` is set).
pub async fn run_once(
    invoicing: &Invoicing,
    mail: Option<&InvoiceMail>,
    due: DateTime<Utc>,
) -> Result<InvoiceRunReport, ServiceError> {
    let context = CommandContext {
        command_id: None,
        metadata: Metadata {
            actor: Some(ACTOR.to_owned()),
            ..Metadata::default()
        },
    };
    let month = billed_month(due);
    let mut report = InvoiceRunReport {
        month: Some(month),
        ..InvoiceRunReport::default()
    };
    for merchant_id in invoicing.merchants().await? {
        let invoice = match invoicing.issue(merchant_id, month, due, &context).await {
            Ok(IssueOutcome::Issued(invoice)) => {
                report.issued.push(invoice.clone());
                invoice
            }
            Ok(IssueOutcome::AlreadyIssued(invoice)) => {
                report.already_issued += 1;
                invoice
            }
            Ok(IssueOutcome::NothingToInvoice) => {
                report.nothing_to_invoice += 1;
                continue;
            }
            Err(error) => {
                report.failures.push((merchant_id, error.to_string()));
                continue;
            }
        };
        if let Some(mail) = mail {
            match mail_invoice(invoicing, mail, &invoice, &context).await {
                Ok(true) => report.mailed += 1,
                Ok(false) => {}
                Err(error) => report.failures.push((merchant_id, error)),
            }
        }
    }
    tracing::info!(month = %month, issued = report.issued.len(), already_issued = report.already_issued, nothing_to_invoice = report.nothing_to_invoice, mailed = report.mailed, failures = report.failures.len(), "invoice run");
    for (merchant_id, reason) in &report.failures {
        tracing::warn!(month = %month, %merchant_id, %reason, "invoice not issued or not mailed");
    }
    Ok(report)
}

/// Mails `invoice` to its merchant's invoice address unless it was mailed already or there is
/// no address; `true` when it was mailed now.
pub async fn mail_invoice(
    invoicing: &Invoicing,
    mail: &InvoiceMail,
    invoice: &Invoice,
    context: &CommandContext,
) -> Result<bool, String> {
    let books = invoicing
        .of_merchant(invoice.merchant_id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(to) = books.email() else {
        return Ok(false);
    };
    if books.mailed_at(invoice.number).is_some() {
        return Ok(false);
    }
    let pdf = render(invoice, &mail.seller).map_err(|e| e.to_string())?;
    let message = Mail {
        to: to.to_owned(),
        subject: format!(
            "Invoice {} for {} from {}",
            invoice.number,
            month_name(invoice.month),
            mail.seller.name
        ),
        text: invoice_text(invoice),
    };
    let attachment = Attachment {
        file_name: file_name(invoice),
        content_type: "application/pdf".to_owned(),
        bytes: pdf,
    };
    mail.mailer
        .send_with_attachments(&message, &[attachment])
        .await
        .map_err(|e| e.to_string())?;
    match invoicing
        .record_mailed(invoice.merchant_id, invoice.number, to, context)
        .await
    {
        Ok(()) => Ok(true),
        Err(InvoicingError::Refused(refused)) => Err(refused.to_string()),
        Err(InvoicingError::Service(error)) => Err(error.to_string()),
    }
}

/// The message's text: the invoice's figures in a few lines.
fn invoice_text(invoice: &Invoice) -> String {
    let mut text = format!(
        "Dear {},\n\nYour commission invoice {} for {} is attached (PDF).\n\n\
         Commission accrued: {}\nCommission reversed by refunds: {}\nTaxable value: {}\n",
        invoice.company_name,
        invoice.number,
        month_name(invoice.month),
        rupees(invoice.figures.accrued),
        rupees(invoice.figures.reversed),
        rupees(invoice.taxable),
    );
    for tax in &invoice.taxes {
        text.push_str(&format!(
            "{} @ {}: {}\n",
            tax.name,
            tax.rate,
            rupees(tax.amount)
        ));
    }
    text.push_str(&format!("Total due: {}\n", rupees(invoice.total)));
    text
}

/// Runs the monthly invoice run until `shutdown` completes.
pub async fn run(
    invoicing: Invoicing,
    mail: Option<InvoiceMail>,
    schedule: InvoiceSchedule,
    shutdown: impl Future<Output = ()>,
) {
    let recheck = schedule.recheck.max(crate::MIN_DUE_RECHECK);
    let ledger = invoicing.ledger().clone();
    let mut due = schedule.last_due(ledger.now());
    tokio::pin!(shutdown);
    loop {
        if ledger.now() >= due {
            match run_once(&invoicing, mail.as_ref(), due).await {
                Ok(report) if report.failures.is_empty() => due = schedule.next_after(due),
                Ok(_) => tracing::warn!("invoice run incomplete; trying again"),
                Err(error) => tracing::warn!(%error, "invoice run failed; trying again"),
            }
        }
        let until_due = (due - ledger.now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(until_due.min(recheck)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn runs_are_on_the_first_at_two_in_the_morning_ist_for_the_month_before() {
        let schedule = InvoiceSchedule::default();
        // 1 December 2026 01:00 IST is 30 November 19:30 UTC: December's run is still ahead.
        let now = utc("2026-11-30T19:30:00Z");
        assert_eq!(schedule.last_due(now), utc("2026-10-31T20:30:00Z"));
        assert_eq!(
            schedule.next_after(schedule.last_due(now)),
            utc("2026-11-30T20:30:00Z")
        );
        let at_run = utc("2026-11-30T20:30:00Z");
        assert_eq!(schedule.last_due(at_run), at_run);
        assert_eq!(at_run.with_timezone(&ist()).day(), 1);
        assert_eq!(
            billed_month(at_run),
            IstMonth {
                year: 2026,
                month: 11
            }
        );
        // December's run bills November; January's bills December of the year before.
        let january = schedule.next_after(at_run);
        assert_eq!(january, utc("2026-12-31T20:30:00Z"));
        assert_eq!(
            billed_month(january),
            IstMonth {
                year: 2026,
                month: 12
            }
        );
        assert_eq!(schedule.next_after(january), utc("2027-01-31T20:30:00Z"));
    }
}
