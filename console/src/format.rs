//! How the console writes money and time for people in India: rupees with Indian digit
//! grouping from integer paise, instants in IST with UTC on hover.

use chrono::{DateTime, FixedOffset, Utc};
use maud::{Markup, html};

/// India Standard Time, UTC+05:30 (no daylight saving).
fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60).unwrap_or_else(|| unreachable!("a valid offset"))
}

/// `₹1,23,456.78` from 12 345 678 paise; negative amounts as `-₹…`. Integers only.
pub fn rupees(paise: i64) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    let magnitude = paise.unsigned_abs();
    let (whole, fraction) = (magnitude / 100, magnitude % 100);
    format!("{sign}₹{}.{fraction:02}", indian_grouping(whole))
}

/// Digits grouped the Indian way: the last three together, then pairs (`12,34,56,789`).
pub fn indian_grouping(number: u64) -> String {
    let digits = number.to_string();
    if digits.len() <= 3 {
        return digits;
    }
    let (head, last_three) = digits.split_at(digits.len() - 3);
    let mut groups: Vec<&str> = Vec::new();
    let mut end = head.len();
    while end > 0 {
        let start = end.saturating_sub(2);
        groups.push(&head[start..end]);
        end = start;
    }
    groups.reverse();
    format!("{},{last_three}", groups.join(","))
}

/// A percentage from basis points, `98.50%`, integers only.
pub fn percent_bps(bps: i64) -> String {
    let sign = if bps < 0 { "-" } else { "" };
    let magnitude = bps.unsigned_abs();
    format!("{sign}{}.{:02}%", magnitude / 100, magnitude % 100)
}

/// An instant as `08 Dec 2026, 15:30 IST`.
pub fn ist_text(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist())
        .format("%d %b %Y, %H:%M:%S IST")
        .to_string()
}

/// An instant for people: IST in the text, UTC on hover, machine-readable in `datetime`.
pub fn time(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S UTC").to_string()) {
            (ist_text(at))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rupees_are_grouped_the_indian_way() {
        assert_eq!(rupees(12_345_678), "₹1,23,456.78");
        assert_eq!(rupees(0), "₹0.00");
        assert_eq!(rupees(5), "₹0.05");
        assert_eq!(rupees(100_000), "₹1,000.00");
        assert_eq!(rupees(10_000_000), "₹1,00,000.00");
        assert_eq!(rupees(123_456_789_012), "₹1,23,45,67,890.12");
        assert_eq!(rupees(-12_345_678), "-₹1,23,456.78");
        assert_eq!(rupees(i64::MIN), "-₹92,23,37,20,36,85,47,758.08");
    }

    #[test]
    fn grouping_keeps_the_last_three_digits_together() {
        assert_eq!(indian_grouping(999), "999");
        assert_eq!(indian_grouping(1_000), "1,000");
        assert_eq!(indian_grouping(12_345), "12,345");
        assert_eq!(indian_grouping(123_456), "1,23,456");
        assert_eq!(indian_grouping(1_234_567), "12,34,567");
    }

    #[test]
    fn percentages_come_from_basis_points() {
        assert_eq!(percent_bps(9_850), "98.50%");
        assert_eq!(percent_bps(5), "0.05%");
        assert_eq!(percent_bps(10_000), "100.00%");
    }

    #[test]
    fn times_show_ist_with_utc_on_hover() {
        let at = Utc.with_ymd_and_hms(2026, 12, 8, 10, 0, 0).unwrap();
        let markup = time(at).into_string();
        assert!(markup.contains("08 Dec 2026, 15:30:00 IST"), "{markup}");
        assert!(
            markup.contains("title=\"2026-12-08 10:00:00 UTC\""),
            "{markup}"
        );
    }
}
