//! Monthly commission invoices in the log: issuing one per merchant-month from the month's
//! statement under the next gapless number of its financial year, the invoice-mail address,
//! what was mailed, and the reads the API and the mailer need.
//!
//! An issue appends `InvoiceNumberAssigned` (stream `invoice_series-<year>`, at exactly the
//! version decided on) and `InvoiceIssued` (stream `merchant_invoices-<merchant>`, at exactly
//! its version) in one append. Two issuers racing for the same number: one append wins, the
//! other fails whole and decides again on the next number; two racing for the same
//! merchant-month: the loser finds the month issued and answers the winner's invoice. So the
//! numbers of a year are 1..N, each once, whatever runs where. Rendering and mailing are not
//! here: an invoice is its event; its PDF is made from it when wanted.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lightspeed_domain::calendar::IstMonth;
use lightspeed_domain::invoice::{
    AssignNumber, CommissionFigures, FinancialYear, Invoice, InvoiceError, InvoiceNumber,
    InvoiceSeries, InvoiceSeriesError, InvoiceSeriesEvent, IssueInvoice, MerchantInvoices,
    MerchantInvoicesCommand, MerchantInvoicesEvent, TaxRate,
};
use lightspeed_domain::{Decider, Merchant, MerchantId};
use lightspeed_eventstore::{
    AppendError, CommandContext, CommandError, CommandHandler, EventStore, PgEventStore, StreamId,
    lookups, stream_of,
};
use uuid::Uuid;

use crate::error::ServiceError;
use crate::ledger::Ledger;
use crate::statements::StatementMonth;
use crate::unit_of_work::UnitOfWork;

/// How many times an issue is decided again after another issuer took the number first. Each
/// round one of the racing issuers wins, so with two of them a run of 64 losses is 2⁻⁶⁴ likely;
/// a merchant that still loses is reported and issued at the run's next try.
const MAX_ISSUE_ATTEMPTS: usize = 64;

/// What an issue came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueOutcome {
    /// This call issued the invoice.
    Issued(Invoice),
    /// The month was already invoiced (by this or another issuer); the invoice as it is.
    AlreadyIssued(Invoice),
    /// The month's commission less reversals is not positive: no invoice.
    NothingToInvoice,
}

impl IssueOutcome {
    /// The invoice, unless there was nothing to invoice.
    pub fn invoice(&self) -> Option<&Invoice> {
        match self {
            IssueOutcome::Issued(invoice) | IssueOutcome::AlreadyIssued(invoice) => Some(invoice),
            IssueOutcome::NothingToInvoice => None,
        }
    }
}

/// Why an invoicing operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum InvoicingError {
    /// The ledger could not do it (unknown merchant, the store).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The invoice rules refused (an address that is no address, an unknown invoice).
    #[error(transparent)]
    Refused(InvoiceError),
}

impl From<CommandError<InvoiceError>> for InvoicingError {
    fn from(error: CommandError<InvoiceError>) -> Self {
        match error {
            CommandError::Rejected(refused) => InvoicingError::Refused(refused),
            other => InvoicingError::Service(store_error(other)),
        }
    }
}

impl From<CommandError<InvoiceSeriesError>> for InvoicingError {
    fn from(error: CommandError<InvoiceSeriesError>) -> Self {
        InvoicingError::Service(store_error(error))
    }
}

/// A command's failure other than a refusal, as the ledger's error.
fn store_error<E: std::error::Error>(error: CommandError<E>) -> ServiceError {
    match error {
        CommandError::Contended { .. } => ServiceError::Contended,
        CommandError::Append(append) => append.into(),
        CommandError::Read(read) => read.into(),
        other => ServiceError::Store(other.to_string()),
    }
}

/// Invoicing over the ledger's log, with the tax lines in force.
#[derive(Debug, Clone)]
pub struct Invoicing {
    ledger: Ledger,
    series: CommandHandler<InvoiceSeries, PgEventStore>,
    books: CommandHandler<MerchantInvoices, PgEventStore>,
    taxes: Arc<[TaxRate]>,
}

impl Invoicing {
    /// Invoicing with `taxes` on every invoice issued from now on (none: no tax line).
    pub fn new(ledger: Ledger, taxes: Vec<TaxRate>) -> Self {
        let store = ledger.store.clone();
        Self {
            ledger,
            series: CommandHandler::new(store.clone()),
            books: CommandHandler::new(store),
            taxes: taxes.into(),
        }
    }

    /// The tax lines in force.
    pub fn taxes(&self) -> &[TaxRate] {
        &self.taxes
    }

    /// The ledger it issues over.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Issues `merchant_id`'s invoice for `month`, dated `at` (numbered in `at`'s financial
    /// year), from the month's statement; idempotent per merchant-month.
    pub async fn issue(
        &self,
        merchant_id: MerchantId,
        month: IstMonth,
        at: DateTime<Utc>,
        context: &CommandContext,
    ) -> Result<IssueOutcome, InvoicingError> {
        // Event ids are fresh: a retry decides again on what the log then holds, and the
        // merchant-month's stream makes it idempotent.
        let context = CommandContext {
            command_id: None,
            metadata: context.metadata.clone(),
        };
        let books_stream = books_stream(merchant_id)?;
        let year = FinancialYear::of(at);
        let series_stream = series_stream(year)?;
        let merchant: Merchant = self.ledger.merchant(merchant_id).await?;
        let statement = self
            .ledger
            .statement(
                merchant_id,
                StatementMonth {
                    year: month.year,
                    month: month.month,
                },
            )
            .await?;
        let figures = CommissionFigures {
            accrued: statement.commission_accrued,
            payments: statement.commissions,
            reversed: statement.commission_reversed,
        };
        for _ in 0..MAX_ISSUE_ATTEMPTS {
            let books = self.books.load(&books_stream).await?;
            if let Some(invoice) = books.state.for_month(month) {
                return Ok(IssueOutcome::AlreadyIssued(invoice.clone()));
            }
            if !figures.taxable().is_positive() {
                return Ok(IssueOutcome::NothingToInvoice);
            }
            let series = self.series.load(&series_stream).await?;
            let mut unit = UnitOfWork::new(context.clone());
            let assign = AssignNumber {
                year,
                merchant_id,
                month,
                at,
            };
            let assigned = unit
                .decide(&self.series, &series_stream, &series, &assign)
                .map_err(|e| ServiceError::Store(e.to_string()))?;
            let Some(InvoiceSeriesEvent::InvoiceNumberAssigned { number, .. }) =
                assigned.into_iter().next()
            else {
                return Err(ServiceError::Store("the series gave no number".into()).into());
            };
            let issue = MerchantInvoicesCommand::Issue(IssueInvoice {
                number,
                merchant_id,
                company_name: merchant.company_name().to_owned(),
                month,
                figures,
                taxes: self.taxes.to_vec(),
                at,
            });
            let invoice = match unit.decide(&self.books, &books_stream, &books, &issue) {
                Ok(events) => match events.into_iter().next() {
                    Some(MerchantInvoicesEvent::InvoiceIssued { invoice, .. }) => invoice,
                    _ => {
                        return Err(
                            ServiceError::Store("the issue decided no invoice".into()).into()
                        );
                    }
                },
                Err(InvoiceError::NothingToInvoice { .. }) => {
                    return Ok(IssueOutcome::NothingToInvoice);
                }
                Err(refused) => return Err(InvoicingError::Refused(refused)),
            };
            match unit.commit(&self.ledger.store).await {
                Ok(_) => return Ok(IssueOutcome::Issued(invoice)),
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(ServiceError::from(other).into()),
            }
        }
        Err(ServiceError::Contended.into())
    }

    /// Every onboarded merchant, for a run over all of them.
    pub async fn merchants(&self) -> Result<Vec<MerchantId>, ServiceError> {
        let category = <Merchant as Decider>::CATEGORY;
        let streams =
            lookups::streams_recording(self.ledger.store.pool(), category, "MerchantOnboarded")
                .await
                .map_err(|e| ServiceError::Store(e.to_string()))?;
        streams
            .into_iter()
            .map(|stream| {
                stream
                    .id()
                    .parse::<Uuid>()
                    .map(MerchantId)
                    .map_err(|_| ServiceError::Store(format!("stream {stream} names no id")))
            })
            .collect()
    }

    /// A merchant's invoices and invoice-mail address, as the log holds them now (an unknown
    /// merchant has none).
    pub async fn of_merchant(
        &self,
        merchant_id: MerchantId,
    ) -> Result<MerchantInvoices, InvoicingError> {
        Ok(self.books.load(&books_stream(merchant_id)?).await?.state)
    }

    /// The invoice numbered `number`, whoever's it is; `None` if no such number was given.
    pub async fn by_number(
        &self,
        number: InvoiceNumber,
    ) -> Result<Option<Invoice>, InvoicingError> {
        let Some(after) = number.sequence.checked_sub(1) else {
            return Ok(None);
        };
        let stream = series_stream(number.year)?;
        let page = self
            .ledger
            .store
            .read_stream(&stream, after, 1)
            .await
            .map_err(ServiceError::from)?;
        let Some(recorded) = page.first() else {
            return Ok(None);
        };
        let event: InvoiceSeriesEvent = recorded
            .decode()
            .map_err(|e| ServiceError::Store(e.to_string()))?;
        let InvoiceSeriesEvent::InvoiceNumberAssigned { merchant_id, .. } = event;
        let invoices = self.of_merchant(merchant_id).await?;
        Ok(invoices.by_number(number).cloned())
    }

    /// Sets (or removes) the address a merchant's invoices are mailed to.
    pub async fn set_email(
        &self,
        merchant_id: MerchantId,
        email: Option<String>,
        context: &CommandContext,
    ) -> Result<MerchantInvoices, InvoicingError> {
        self.ledger.merchant(merchant_id).await?;
        let command = MerchantInvoicesCommand::SetEmail {
            email,
            at: self.ledger.now(),
        };
        let executed = self
            .books
            .execute(&books_stream(merchant_id)?, &command, context)
            .await?;
        Ok(executed.state)
    }

    /// Records that invoice `number` was mailed to `to` (once; a second record is a no-op).
    pub async fn record_mailed(
        &self,
        merchant_id: MerchantId,
        number: InvoiceNumber,
        to: &str,
        context: &CommandContext,
    ) -> Result<(), InvoicingError> {
        let command = MerchantInvoicesCommand::RecordMailed {
            number,
            to: to.to_owned(),
            at: self.ledger.now(),
        };
        self.books
            .execute(&books_stream(merchant_id)?, &command, context)
            .await?;
        Ok(())
    }
}

fn books_stream(merchant_id: MerchantId) -> Result<StreamId, ServiceError> {
    Ok(stream_of::<MerchantInvoices>(merchant_id)?)
}

fn series_stream(year: FinancialYear) -> Result<StreamId, ServiceError> {
    Ok(stream_of::<InvoiceSeries>(year)?)
}
