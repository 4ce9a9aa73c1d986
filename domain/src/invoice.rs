//! Monthly commission invoices: gapless numbers per Indian financial year, the invoice's
//! figures and tax lines, and where it is mailed.
//!
//! Two streams decide an invoice, appended together or not at all:
//!
//! - `invoice_series-<financial year>` ([`InvoiceSeries`], e.g. `invoice_series-2026-27`): the
//!   series of numbers of one financial year (April to March, IST). Its version *is* the last
//!   number given: the next invoice is `version + 1`, and it is appended at exactly the version
//!   it was decided on, so two issuers deciding at once cannot both take a number, and a
//!   refused or failed append takes none. Numbers are therefore 1, 2, 3, … with no gap and no
//!   repeat, whatever the replicas and restarts.
//! - `merchant_invoices-<MerchantId>` ([`MerchantInvoices`]): one merchant's invoices, at most
//!   one per IST month (a second issue of a month is refused with the first one's number, so an
//!   issue is idempotent per merchant-month), the address invoices are mailed to, and which
//!   invoices were mailed.
//!
//! # Figures and rounding
//!
//! An invoice bills the commission of one IST month, as the month's statement states it:
//! taxable value = commission accrued − commission reversed by refunds. A month whose taxable
//! value is zero or less gets no invoice ([`InvoiceError::NothingToInvoice`]). Each tax line
//! (none by default; e.g. `IGST` at 1 800 bps, or `CGST` and `SGST` at 900 bps each) is
//! taxable × rate / 10 000, rounded half-up to the paisa **per line** ([`BasisPoints::of`], the
//! commission's own rule); the total is the taxable value plus every line. All integer paise.
//!
//! # Dates
//!
//! The invoice date is the instant it is decided for (the scheduled issue, 02:00 IST on the 1st
//! of the next month), and its number belongs to the financial year of that date: March's
//! invoice, issued on 1 April, opens the next year's series.

use crate::calendar::{IST, IstMonth};
use crate::decider::Decider;
use crate::ids::MerchantId;
use crate::money::{BasisPoints, Paise};
use crate::validation::valid_email;
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Prefix of every invoice number.
pub const NUMBER_PREFIX: &str = "LS";
/// Most tax lines an invoice carries.
pub const MAX_TAX_LINES: usize = 4;
/// Longest tax line name, in characters.
pub const MAX_TAX_NAME_CHARS: usize = 32;

/// An Indian financial year: 1 April of `first_year` to 31 March of the next year, in IST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FinancialYear {
    /// The calendar year it starts in (2026 for 2026-27).
    pub first_year: i32,
}

impl FinancialYear {
    /// The financial year of an IST month.
    pub fn of_month(month: IstMonth) -> FinancialYear {
        FinancialYear {
            first_year: if month.month >= 4 {
                month.year
            } else {
                month.year - 1
            },
        }
    }

    /// The financial year an instant falls in, in IST.
    pub fn of(at: DateTime<Utc>) -> FinancialYear {
        Self::of_month(IstMonth::of(at))
    }

    /// Parses `2026-27`; `None` for anything else.
    pub fn parse(text: &str) -> Option<FinancialYear> {
        let (first, second) = text.split_once('-')?;
        if first.len() != 4
            || second.len() != 2
            || !text.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        {
            return None;
        }
        let year = FinancialYear {
            first_year: first.parse().ok()?,
        };
        (second == year.second_two_digits()).then_some(year)
    }

    fn second_two_digits(self) -> String {
        format!("{:02}", (self.first_year + 1).rem_euclid(100))
    }

    /// The four digits in invoice numbers: `2627` for 2026-27.
    pub fn short(self) -> String {
        format!(
            "{:02}{}",
            self.first_year.rem_euclid(100),
            self.second_two_digits()
        )
    }
}

impl std::fmt::Display for FinancialYear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{}", self.first_year, self.second_two_digits())
    }
}

/// An invoice number: the financial year and the place in its series (from 1), written
/// `LS-2627-000042` (at most 16 characters until the millionth invoice of a year, letters,
/// digits and hyphens only, as GST invoice numbers must be).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InvoiceNumber {
    /// The financial year whose series it is in.
    pub year: FinancialYear,
    /// Its place in the series: 1, 2, 3, …
    pub sequence: u64,
}

impl InvoiceNumber {
    /// Parses `LS-2627-000042` (the year written for this century); `None` for anything else.
    pub fn parse(text: &str) -> Option<InvoiceNumber> {
        let rest = text.strip_prefix(NUMBER_PREFIX)?.strip_prefix('-')?;
        let (short, sequence) = rest.split_once('-')?;
        if short.len() != 4 || sequence.len() < 6 || sequence.len() > 12 {
            return None;
        }
        if !short.bytes().all(|b| b.is_ascii_digit())
            || !sequence.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let first_year = 2000 + short[..2].parse::<i32>().ok()?;
        let year = FinancialYear { first_year };
        let sequence: u64 = sequence.parse().ok()?;
        let number = InvoiceNumber { year, sequence };
        (sequence > 0 && year.short() == short && number.to_string() == text).then_some(number)
    }
}

impl std::fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{NUMBER_PREFIX}-{}-{:06}",
            self.year.short(),
            self.sequence
        )
    }
}

/// A configured tax: its name on the invoice and its rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate {
    /// e.g. `IGST`.
    pub name: String,
    /// e.g. 1 800 bps (18 %).
    pub rate: BasisPoints,
}

impl TaxRate {
    /// Parses `NAME:BPS` lists separated by commas, e.g. `CGST:900,SGST:900`; an empty text is
    /// no tax. Names are 1 to 32 letters, digits, spaces or hyphens; at most four lines.
    pub fn parse_list(text: &str) -> Result<Vec<TaxRate>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let rates = text
            .split(',')
            .map(|part| {
                let (name, bps) = part
                    .split_once(':')
                    .ok_or_else(|| format!("{part:?}: expected NAME:BASIS_POINTS"))?;
                let name = name.trim();
                let named = !name.is_empty()
                    && name.chars().count() <= MAX_TAX_NAME_CHARS
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
                if !named {
                    return Err(format!(
                        "{name:?}: a tax name is 1 to {MAX_TAX_NAME_CHARS} letters, digits, spaces or hyphens"
                    ));
                }
                let bps: u32 = bps
                    .trim()
                    .parse()
                    .map_err(|_| format!("{part:?}: the rate is whole basis points"))?;
                let rate = BasisPoints::new(bps).map_err(|e| format!("{part:?}: {e}"))?;
                Ok(TaxRate {
                    name: name.to_owned(),
                    rate,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if rates.len() > MAX_TAX_LINES {
            return Err(format!("at most {MAX_TAX_LINES} tax lines"));
        }
        Ok(rates)
    }
}

/// One tax line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxLine {
    /// The tax's name.
    pub name: String,
    /// Its rate.
    pub rate: BasisPoints,
    /// taxable × rate / 10 000, rounded half-up to the paisa.
    pub amount: Paise,
}

/// The tax lines on `taxable` at `rates`, each rounded half-up to the paisa on its own.
pub fn tax_lines(taxable: Paise, rates: &[TaxRate]) -> Vec<TaxLine> {
    rates
        .iter()
        .map(|rate| TaxLine {
            name: rate.name.clone(),
            rate: rate.rate,
            amount: rate.rate.of(taxable),
        })
        .collect()
}

/// What a month's statement says about commission, as billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionFigures {
    /// Commission accrued in the month.
    pub accrued: Paise,
    /// Payments whose commission accrued in the month.
    pub payments: u64,
    /// Commission reversed by refunds in the month.
    pub reversed: Paise,
}

impl CommissionFigures {
    /// accrued − reversed.
    pub fn taxable(&self) -> Paise {
        self.accrued.saturating_sub(self.reversed)
    }
}

/// An issued invoice, as its stream records it (everything the PDF shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// Its number.
    pub number: InvoiceNumber,
    /// The merchant billed.
    pub merchant_id: MerchantId,
    /// The merchant's company name when issued.
    pub company_name: String,
    /// The IST month billed.
    pub month: IstMonth,
    /// The month's commission.
    pub figures: CommissionFigures,
    /// accrued − reversed.
    pub taxable: Paise,
    /// The tax lines in force when issued.
    pub taxes: Vec<TaxLine>,
    /// taxable + every tax line.
    pub total: Paise,
    /// The invoice date.
    pub issued_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// The series of numbers of one financial year.

/// The number series of one financial year: how many invoices it gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceSeries {
    /// Its year, once it gave a number.
    pub year: Option<FinancialYear>,
    /// Numbers given (the last one given; the next is this + 1).
    pub issued: u64,
}

/// Asks the series for the next number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignNumber {
    /// The series' year (the stream's id).
    pub year: FinancialYear,
    /// For whom.
    pub merchant_id: MerchantId,
    /// The month billed.
    pub month: IstMonth,
    /// The invoice date; must fall in `year`.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// What a series records.
    pub enum InvoiceSeriesEvent {
        /// The next number of the year was given to a merchant's month.
        InvoiceNumberAssigned {
            /// The number.
            number: InvoiceNumber,
            /// The merchant billed.
            merchant_id: MerchantId,
            /// The month billed.
            month: IstMonth,
            /// The invoice date.
            at: DateTime<Utc>,
        },
    }
}

/// Why a series gives no number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceSeriesError {
    /// The invoice date is not in the series' year, or the stream is another year's.
    #[error("an invoice dated {at} is not numbered in the {year} series")]
    WrongYear {
        /// The series asked.
        year: FinancialYear,
        /// The invoice date.
        at: DateTime<Utc>,
    },
}

impl Decider for InvoiceSeries {
    const CATEGORY: &'static str = "invoice_series";
    const SNAPSHOT_VERSION: Option<u32> = Some(1);
    type State = InvoiceSeries;
    type Command = AssignNumber;
    type Event = InvoiceSeriesEvent;
    type Error = InvoiceSeriesError;

    fn decide(
        series: &InvoiceSeries,
        command: &AssignNumber,
    ) -> Result<Vec<InvoiceSeriesEvent>, InvoiceSeriesError> {
        let other_year = series.year.is_some_and(|year| year != command.year);
        if other_year || FinancialYear::of(command.at) != command.year {
            return Err(InvoiceSeriesError::WrongYear {
                year: command.year,
                at: command.at,
            });
        }
        Ok(vec![InvoiceSeriesEvent::InvoiceNumberAssigned {
            number: InvoiceNumber {
                year: command.year,
                sequence: series.issued + 1,
            },
            merchant_id: command.merchant_id,
            month: command.month,
            at: command.at,
        }])
    }

    fn evolve(mut series: InvoiceSeries, event: &InvoiceSeriesEvent) -> InvoiceSeries {
        match event {
            InvoiceSeriesEvent::InvoiceNumberAssigned { number, .. } => {
                series.year = Some(number.year);
                series.issued = series.issued.max(number.sequence);
            }
        }
        series
    }

    fn snapshot(state: &InvoiceSeries) -> Option<serde_json::Value> {
        serde_json::to_value(state).ok()
    }

    fn restore(snapshot: serde_json::Value) -> Option<InvoiceSeries> {
        serde_json::from_value(snapshot).ok()
    }
}

// ---------------------------------------------------------------------------------------------
// One merchant's invoices.

/// A merchant's invoices, by month, and where they are mailed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerchantInvoices {
    invoices: BTreeMap<IstMonth, Invoice>,
    mailed: BTreeMap<InvoiceNumber, DateTime<Utc>>,
    email: Option<String>,
}

impl MerchantInvoices {
    /// Every invoice, oldest month first.
    pub fn invoices(&self) -> impl DoubleEndedIterator<Item = &Invoice> {
        self.invoices.values()
    }

    /// The invoice of `month`, if issued.
    pub fn for_month(&self, month: IstMonth) -> Option<&Invoice> {
        self.invoices.get(&month)
    }

    /// The invoice numbered `number`, if it is this merchant's.
    pub fn by_number(&self, number: InvoiceNumber) -> Option<&Invoice> {
        self.invoices
            .values()
            .find(|invoice| invoice.number == number)
    }

    /// Where invoices are mailed, if anywhere.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// When the invoice was mailed, if it was.
    pub fn mailed_at(&self, number: InvoiceNumber) -> Option<DateTime<Utc>> {
        self.mailed.get(&number).copied()
    }
}

/// Issues a merchant's invoice for a month, under the number the series gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueInvoice {
    /// The number given.
    pub number: InvoiceNumber,
    /// The merchant.
    pub merchant_id: MerchantId,
    /// Its company name now.
    pub company_name: String,
    /// The month billed.
    pub month: IstMonth,
    /// The month's commission, from its statement.
    pub figures: CommissionFigures,
    /// The taxes in force.
    pub taxes: Vec<TaxRate>,
    /// The invoice date.
    pub at: DateTime<Utc>,
}

/// What can be asked of a merchant's invoices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerchantInvoicesCommand {
    /// Issue a month's invoice.
    Issue(IssueInvoice),
    /// Set (or with `None` remove) the address invoices are mailed to.
    SetEmail {
        /// The address.
        email: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that an invoice was mailed.
    RecordMailed {
        /// The invoice.
        number: InvoiceNumber,
        /// To whom.
        to: String,
        /// When.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What a merchant's invoices stream records.
    pub enum MerchantInvoicesEvent {
        /// A month's invoice was issued.
        InvoiceIssued {
            /// The invoice, whole.
            invoice: Invoice,
            /// The invoice date.
            at: DateTime<Utc>,
        },
        /// The address invoices are mailed to was set or removed.
        InvoiceEmailChanged {
            /// The address, or none.
            email: Option<String>,
            /// When.
            at: DateTime<Utc>,
        },
        /// An invoice was mailed.
        InvoiceMailed {
            /// The invoice.
            number: InvoiceNumber,
            /// To whom.
            to: String,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why a merchant's invoice command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// The month already has its invoice (a repeated issue: a no-op for the caller).
    #[error("{month} was already invoiced as {number}")]
    AlreadyIssued {
        /// The month.
        month: IstMonth,
        /// Its invoice's number.
        number: InvoiceNumber,
    },
    /// The month's commission less reversals is not positive.
    #[error("no commission to invoice for {month}")]
    NothingToInvoice {
        /// The month.
        month: IstMonth,
    },
    /// The number is not the one for this merchant's month, or too many tax lines.
    #[error("invalid invoice: {0}")]
    Invalid(String),
    /// Not an address invoices can be mailed to.
    #[error("not an email address")]
    InvalidEmail,
    /// No such invoice of this merchant.
    #[error("no invoice {0}")]
    UnknownInvoice(InvoiceNumber),
}

impl InvoiceError {
    /// True for a repeated issue, which callers acknowledge as done.
    pub fn is_already_recorded(&self) -> bool {
        matches!(self, InvoiceError::AlreadyIssued { .. })
    }
}

impl Decider for MerchantInvoices {
    const CATEGORY: &'static str = "merchant_invoices";
    type State = MerchantInvoices;
    type Command = MerchantInvoicesCommand;
    type Event = MerchantInvoicesEvent;
    type Error = InvoiceError;

    fn decide(
        state: &MerchantInvoices,
        command: &MerchantInvoicesCommand,
    ) -> Result<Vec<MerchantInvoicesEvent>, InvoiceError> {
        match command {
            MerchantInvoicesCommand::Issue(issue) => {
                if let Some(existing) = state.invoices.get(&issue.month) {
                    return Err(InvoiceError::AlreadyIssued {
                        month: issue.month,
                        number: existing.number,
                    });
                }
                let taxable = issue.figures.taxable();
                if !taxable.is_positive() {
                    return Err(InvoiceError::NothingToInvoice { month: issue.month });
                }
                if issue.taxes.len() > MAX_TAX_LINES {
                    return Err(InvoiceError::Invalid(format!(
                        "at most {MAX_TAX_LINES} tax lines"
                    )));
                }
                if issue.number.year != FinancialYear::of(issue.at) {
                    return Err(InvoiceError::Invalid(format!(
                        "{} is not in the financial year of its date",
                        issue.number
                    )));
                }
                let taxes = tax_lines(taxable, &issue.taxes);
                let total = taxes
                    .iter()
                    .fold(taxable, |total, line| total.saturating_add(line.amount));
                Ok(vec![MerchantInvoicesEvent::InvoiceIssued {
                    invoice: Invoice {
                        number: issue.number,
                        merchant_id: issue.merchant_id,
                        company_name: issue.company_name.clone(),
                        month: issue.month,
                        figures: issue.figures,
                        taxable,
                        taxes,
                        total,
                        issued_at: issue.at,
                    },
                    at: issue.at,
                }])
            }
            MerchantInvoicesCommand::SetEmail { email, at } => {
                let email = email.as_deref().map(str::trim);
                if email.is_some_and(|email| !valid_email(email)) {
                    return Err(InvoiceError::InvalidEmail);
                }
                if state.email.as_deref() == email {
                    return Ok(Vec::new());
                }
                Ok(vec![MerchantInvoicesEvent::InvoiceEmailChanged {
                    email: email.map(str::to_owned),
                    at: *at,
                }])
            }
            MerchantInvoicesCommand::RecordMailed { number, to, at } => {
                if state.by_number(*number).is_none() {
                    return Err(InvoiceError::UnknownInvoice(*number));
                }
                if state.mailed.contains_key(number) {
                    return Ok(Vec::new());
                }
                Ok(vec![MerchantInvoicesEvent::InvoiceMailed {
                    number: *number,
                    to: to.clone(),
                    at: *at,
                }])
            }
        }
    }

    fn evolve(mut state: MerchantInvoices, event: &MerchantInvoicesEvent) -> MerchantInvoices {
        match event {
            MerchantInvoicesEvent::InvoiceIssued { invoice, .. } => {
                state.invoices.insert(invoice.month, invoice.clone());
            }
            MerchantInvoicesEvent::InvoiceEmailChanged { email, .. } => {
                state.email = email.clone();
            }
            MerchantInvoicesEvent::InvoiceMailed { number, at, .. } => {
                state.mailed.insert(*number, *at);
            }
        }
        state
    }
}

/// The IST month before `month`.
pub fn previous_month(month: IstMonth) -> IstMonth {
    if month.month == 1 {
        IstMonth {
            year: month.year - 1,
            month: 12,
        }
    } else {
        IstMonth {
            year: month.year,
            month: month.month - 1,
        }
    }
}

/// Parses `yyyy-mm`; `None` for anything else.
pub fn parse_month(text: &str) -> Option<IstMonth> {
    let (year, month) = text.split_once('-')?;
    if year.len() != 4
        || month.len() != 2
        || !year
            .bytes()
            .chain(month.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let month = IstMonth {
        year: year.parse().ok()?,
        month: month.parse().ok()?,
    };
    (1..=12).contains(&month.month).then_some(month)
}

/// The IST calendar date of an instant, `yyyy-mm-dd`.
pub fn ist_date(at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&IST);
    format!(
        "{:04}-{:02}-{:02}",
        local.year(),
        local.month(),
        local.day()
    )
}

#[cfg(test)]
mod tests;
