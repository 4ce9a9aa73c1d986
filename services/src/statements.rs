//! Month-end statements: what a merchant owed at the start of an IST month, what changed during
//! it and what it owed at the end.
//!
//! Built from the merchant's wallet stream in the log, folded with the domain's `Wallet` decider,
//! so every figure is the wallet's own (the same fold the auditor replays) and no read model lag
//! can make a statement disagree with the balance. A fact belongs to the month in which it was
//! decided (its `at`), in India Standard Time.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};
use lightspeed_domain::wallet::{Wallet, WalletEvent};
use lightspeed_domain::{Decider, MerchantId, Paise};
use lightspeed_eventstore::{EventStore, stream_of};
use serde::Serialize;

use crate::error::ServiceError;
use crate::ledger::Ledger;

/// UTC+05:30, checked when the crate is compiled.
const IST: FixedOffset = match FixedOffset::east_opt(5 * 3600 + 30 * 60) {
    Some(offset) => offset,
    None => panic!("UTC+05:30 is a valid offset"),
};

/// India Standard Time: UTC+05:30, no daylight saving.
pub fn ist() -> FixedOffset {
    IST
}

/// Events read per round trip while folding a wallet.
const PAGE: usize = 1_000;

/// A calendar month in IST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StatementMonth {
    /// Year.
    pub year: i32,
    /// Month, 1 to 12.
    pub month: u32,
}

impl StatementMonth {
    /// Parses `yyyy-mm`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (year, month) = text.split_once('-')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        let month = StatementMonth {
            year: year.parse().ok()?,
            month: month.parse().ok()?,
        };
        month.first_day()?;
        Some(month)
    }

    fn first_day(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
    }

    /// The first instant of the month (IST midnight on its first day).
    pub fn start(self) -> Option<DateTime<Utc>> {
        ist_midnight(self.first_day()?)
    }

    /// The first instant of the next month.
    pub fn end(self) -> Option<DateTime<Utc>> {
        let first = self.first_day()?;
        let next = if first.month() == 12 {
            NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
        };
        ist_midnight(next)
    }
}

impl std::fmt::Display for StatementMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

fn ist_midnight(day: NaiveDate) -> Option<DateTime<Utc>> {
    ist()
        .from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|at| at.with_timezone(&Utc))
}

/// What kind of fact a statement line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementEntryKind {
    /// A refund reversed part of a payment's commission (reduces the balance due).
    CommissionReversal,
    /// A payout was paid out (reduces the balance due).
    Payout,
    /// A paid-out payout was reversed by the bank (restores the balance due).
    PayoutReversal,
    /// A settlement outside the payout system (reduces the balance due).
    Settlement,
}

/// One commission reversal, payout, payout reversal or settlement of the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementEntry {
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// What it is.
    pub kind: StatementEntryKind,
    /// The refund (for a commission reversal), the payout id or the settlement's reference.
    pub reference: String,
    /// Its amount.
    pub amount: Paise,
    /// What it did to the balance due (negative reduces it).
    pub balance_effect: Paise,
}

/// A merchant's statement for one IST month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// The month.
    pub month: StatementMonth,
    /// Balance due at the start of the month.
    pub opening_balance: Paise,
    /// Commission accrued during the month.
    pub commission_accrued: Paise,
    /// Payments whose commission accrued during the month.
    pub commissions: u64,
    /// Commission reversed by refunds during the month.
    pub commission_reversed: Paise,
    /// Paid out during the month.
    pub paid_out: Paise,
    /// Restored by reversals of paid-out payouts during the month.
    pub reversed: Paise,
    /// Settled manually during the month.
    pub settled: Paise,
    /// Balance due at the end of the month.
    pub closing_balance: Paise,
    /// Payouts requested and not yet settled at the end of the month.
    pub pending_at_close: Paise,
    /// The month's commission reversals, payouts, payout reversals and settlements, in the
    /// order they were decided.
    pub entries: Vec<StatementEntry>,
}

impl Ledger {
    /// The merchant's statement for `month`, from its wallet stream.
    pub async fn statement(
        &self,
        merchant_id: MerchantId,
        month: StatementMonth,
    ) -> Result<Statement, ServiceError> {
        self.merchant(merchant_id).await?;
        let (Some(start), Some(end)) = (month.start(), month.end()) else {
            return Err(ServiceError::Store(format!("month {month} out of range")));
        };
        let stream = stream_of::<Wallet>(merchant_id)?;
        let mut opening = Wallet::default();
        let mut closing = Wallet::default();
        let mut statement = Statement {
            merchant_id,
            month,
            opening_balance: Paise::ZERO,
            commission_accrued: Paise::ZERO,
            commissions: 0,
            commission_reversed: Paise::ZERO,
            paid_out: Paise::ZERO,
            reversed: Paise::ZERO,
            settled: Paise::ZERO,
            closing_balance: Paise::ZERO,
            pending_at_close: Paise::ZERO,
            entries: Vec::new(),
        };
        let mut after = 0;
        loop {
            let page = self.store.read_stream(&stream, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.stream_version;
            for recorded in &page {
                let event: WalletEvent = recorded
                    .decode()
                    .map_err(|e| ServiceError::Store(e.to_string()))?;
                let at = decided_at(&event);
                if at >= end {
                    continue;
                }
                closing = Wallet::evolve(closing, &event);
                if at < start {
                    opening = Wallet::evolve(opening, &event);
                } else {
                    statement.count(&event);
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        statement.opening_balance = opening.balance_due();
        statement.closing_balance = closing.balance_due();
        statement.pending_at_close = closing.pending();
        Ok(statement)
    }
}

impl Statement {
    fn count(&mut self, event: &WalletEvent) {
        match event {
            WalletEvent::CommissionAccrued { commission, .. } => {
                self.commission_accrued = self.commission_accrued.saturating_add(*commission);
                self.commissions += 1;
            }
            WalletEvent::CommissionReversed {
                refund_id,
                commission,
                at,
                ..
            } => {
                self.commission_reversed = self.commission_reversed.saturating_add(*commission);
                self.entries.push(StatementEntry {
                    at: *at,
                    kind: StatementEntryKind::CommissionReversal,
                    reference: refund_id.clone(),
                    amount: *commission,
                    balance_effect: Paise::ZERO.saturating_sub(*commission),
                });
            }
            WalletEvent::PayoutRequested { .. } => {}
            WalletEvent::CommissionPaidOut {
                payout_id,
                amount,
                at,
                ..
            } => {
                self.paid_out = self.paid_out.saturating_add(*amount);
                self.entries.push(StatementEntry {
                    at: *at,
                    kind: StatementEntryKind::Payout,
                    reference: payout_id.to_string(),
                    amount: *amount,
                    balance_effect: Paise::ZERO.saturating_sub(*amount),
                });
            }
            WalletEvent::PayoutReversed {
                payout_id,
                amount,
                was_paid_out: true,
                at,
                ..
            } => {
                self.reversed = self.reversed.saturating_add(*amount);
                self.entries.push(StatementEntry {
                    at: *at,
                    kind: StatementEntryKind::PayoutReversal,
                    reference: payout_id.to_string(),
                    amount: *amount,
                    balance_effect: *amount,
                });
            }
            // A pending payout that failed never moved the balance due.
            WalletEvent::PayoutReversed { .. } => {}
            WalletEvent::ManualSettlementRecorded {
                reference,
                amount,
                at,
                ..
            } => {
                self.settled = self.settled.saturating_add(*amount);
                self.entries.push(StatementEntry {
                    at: *at,
                    kind: StatementEntryKind::Settlement,
                    reference: reference.clone(),
                    amount: *amount,
                    balance_effect: Paise::ZERO.saturating_sub(*amount),
                });
            }
        }
    }
}

fn decided_at(event: &WalletEvent) -> DateTime<Utc> {
    event.at()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_ist_calendar_months() {
        let month = StatementMonth::parse("2026-12").expect("month");
        assert_eq!(month.to_string(), "2026-12");
        assert_eq!(
            month.start().map(|at| at.to_rfc3339()),
            Some("2026-11-30T18:30:00+00:00".to_owned())
        );
        assert_eq!(
            month.end().map(|at| at.to_rfc3339()),
            Some("2026-12-31T18:30:00+00:00".to_owned())
        );
        for bad in [
            "2026-13", "2026-1", "26-11", "2026/11", "", "2026-00", "abcd-ef",
        ] {
            assert_eq!(StatementMonth::parse(bad), None, "{bad}");
        }
    }
}
