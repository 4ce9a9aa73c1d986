//! How the commands print their results.

use std::io::Write;

use serde::Serialize;

use crate::commission::{CommissionReport, ReadModelCheck, Totals};
use crate::format::format_instant;
use crate::replay::MerchantCommission;
use crate::verify::Report;

/// How `audit commission` prints its figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns, amounts in rupees with their paise (`1234.50`), a total line,
    /// inconsistencies and the read model comparison.
    #[default]
    Table,
    /// One line per merchant, amounts in paise; inconsistencies and differences go to the error
    /// writer.
    Csv,
    /// One JSON document: the figures in paise, totals, inconsistencies and the read model
    /// comparison.
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Self::Table),
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown format {other:?}: table, csv or json")),
        }
    }
}

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "merchant_id,payments_succeeded,volume_paise,commission_accrued_paise,\
commission_reversed_paise,paid_out_paise,reversed_paise,settled_paise,pending_payouts_paise,balance_due_paise";

/// Prints a commission report in `format`: figures to `out`; in CSV, differences to `err`.
pub fn write_commission(
    report: &CommissionReport,
    format: OutputFormat,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Table => write_table(report, out),
        OutputFormat::Csv => {
            writeln!(out, "{CSV_HEADER}")?;
            for m in &report.merchants {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{}",
                    m.merchant_id,
                    m.payments_succeeded,
                    m.volume_paise.0,
                    m.commission_accrued_paise.0,
                    m.commission_reversed_paise.0,
                    m.paid_out_paise.0,
                    m.reversed_paise.0,
                    m.settled_paise.0,
                    m.pending_payouts_paise.0,
                    m.balance_due_paise.0
                )?;
            }
            write_inconsistencies(report, err)?;
            write_read_model(report, err)
        }
        OutputFormat::Json => {
            #[derive(Serialize)]
            struct Document<'a> {
                #[serde(flatten)]
                report: &'a CommissionReport,
                totals: Totals,
            }
            serde_json::to_writer_pretty(
                &mut *out,
                &Document {
                    report,
                    totals: report.totals(),
                },
            )
            .map_err(std::io::Error::other)?;
            writeln!(out)
        }
    }
}

fn write_table(report: &CommissionReport, out: &mut dyn Write) -> std::io::Result<()> {
    let as_of = report
        .as_of
        .map_or_else(|| "the end of the log".to_owned(), format_instant);
    writeln!(
        out,
        "Commission per merchant as of {as_of}, replayed from {} of {} events \
         (wallet events, payment initiations and successes)",
        report.events_applied, report.events_read
    )?;
    writeln!(
        out,
        "{:<36} {:>9} {:>16} {:>14} {:>14} {:>14} {:>12} {:>12} {:>14}",
        "merchant",
        "payments",
        "volume ₹",
        "accrued ₹",
        "refunds −₹",
        "paid out ₹",
        "reversed ₹",
        "settled ₹",
        "balance due ₹"
    )?;
    let row =
        |out: &mut dyn Write, name: &str, count: u64, figures: [lightspeed_domain::Paise; 7]| {
            writeln!(
                out,
                "{name:<36} {count:>9} {:>16} {:>14} {:>14} {:>14} {:>12} {:>12} {:>14}",
                figures[0].to_string(),
                figures[1].to_string(),
                figures[2].to_string(),
                figures[3].to_string(),
                figures[4].to_string(),
                figures[5].to_string(),
                figures[6].to_string(),
            )
        };
    for m in &report.merchants {
        row(
            out,
            &m.merchant_id.to_string(),
            m.payments_succeeded,
            money(m),
        )?;
    }
    let t = report.totals();
    row(
        out,
        "TOTAL",
        t.payments_succeeded,
        [
            t.volume_paise,
            t.commission_accrued_paise,
            t.commission_reversed_paise,
            t.paid_out_paise,
            t.reversed_paise,
            t.settled_paise,
            t.balance_due_paise,
        ],
    )?;
    write_refunds(&t, out)?;
    write_inconsistencies(report, out)?;
    write_read_model(report, out)
}

/// What refunds did to the commission: the report line of the reversals.
fn write_refunds(totals: &Totals, out: &mut dyn Write) -> std::io::Result<()> {
    let reversed = totals.commission_reversed_paise;
    if reversed == lightspeed_domain::Paise::ZERO {
        return writeln!(out, "Refunds: no commission reversed.");
    }
    writeln!(
        out,
        "Refunds: ₹{reversed} of commission reversed (₹{} accrued, ₹{} net of reversals).",
        totals.commission_accrued_paise,
        totals.commission_accrued_paise.saturating_sub(reversed)
    )
}

fn write_inconsistencies(report: &CommissionReport, out: &mut dyn Write) -> std::io::Result<()> {
    if report.inconsistencies.is_empty() {
        return writeln!(
            out,
            "Payments and wallets: every success has exactly its commission, computed by the rule; \
             no refund reversed commission beyond its payment's."
        );
    }
    writeln!(
        out,
        "Payments and wallets: {} INCONSISTENCIES:",
        report.inconsistencies.len()
    )?;
    for inconsistency in &report.inconsistencies {
        writeln!(out, "  {inconsistency}")?;
    }
    Ok(())
}

fn money(m: &MerchantCommission) -> [lightspeed_domain::Paise; 7] {
    [
        m.volume_paise,
        m.commission_accrued_paise,
        m.commission_reversed_paise,
        m.paid_out_paise,
        m.reversed_paise,
        m.settled_paise,
        m.balance_due_paise,
    ]
}

fn write_read_model(report: &CommissionReport, out: &mut dyn Write) -> std::io::Result<()> {
    match &report.read_model {
        None => Ok(()),
        Some(ReadModelCheck::Skipped(why)) => {
            writeln!(out, "Read model not compared: {why}.")
        }
        Some(ReadModelCheck::Compared(c)) if c.differences.is_empty() => writeln!(
            out,
            "Read model (wallets v{}, at its checkpoint {}): {} merchants compared, no differences.",
            c.version, c.checkpoint, c.merchants
        ),
        Some(ReadModelCheck::Compared(c)) => {
            writeln!(
                out,
                "Read model (wallets v{}, at its checkpoint {}): {} DIFFERENCES over {} merchants:",
                c.version,
                c.checkpoint,
                c.differences.len(),
                c.merchants
            )?;
            for d in &c.differences {
                writeln!(
                    out,
                    "  merchant {} {}: replay {}, read model {}",
                    d.merchant_id, d.field, d.replay, d.read_model
                )?;
            }
            Ok(())
        }
    }
}

/// Prints the summary of a clean verification.
pub fn write_verified(report: &Report, source: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let span = match (report.first_recorded_at, report.last_recorded_at) {
        (Some(first), Some(last)) => {
            format!("{} to {}", format_instant(first), format_instant(last))
        }
        _ => "no events".to_owned(),
    };
    writeln!(out, "OK: {source} verified")?;
    writeln!(
        out,
        "  events: {} ({} sealed, {} after the last seal)",
        report.events,
        report.events.saturating_sub(report.unsealed_events),
        report.unsealed_events
    )?;
    writeln!(out, "  streams: {}", report.streams)?;
    writeln!(out, "  seals: {}", report.seals)?;
    writeln!(out, "  recorded: {span}")
}
