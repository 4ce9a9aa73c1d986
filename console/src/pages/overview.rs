//! Overview: payments per minute, success rate, commission today, queue depths, projection and
//! relay lag, open alerts; each from the read models, the log or the broker, as the admin API
//! reads them.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Duration, FixedOffset, Timelike, Utc};
use lightspeed_domain::Decider;
use lightspeed_domain::ops_alert::OpsAlert;
use lightspeed_eventstore::recent::{NewestEvents, newest_events};
use lightspeed_projections::commission::DailyFilter;
use lightspeed_projections::transactions::TransactionSearch;
use maud::{Markup, html};

use crate::charts::bars;
use crate::format::{percent_bps, rupees, time};
use crate::i18n::{Lang, Msg};
use crate::layout::page as shell;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console";
/// Minutes the payments chart covers.
const CHART_MINUTES: i64 = 30;
/// Most payments the chart counts (the search's largest step); the chart says when it is full.
const CHART_PAYMENTS: u32 = 200;
/// Most open alerts listed.
const ALERTS: i64 = 20;

/// `GET /console`.
pub async fn page(State(console): State<Console>, viewer: Viewer) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let now = console.app.ledger.now();
    let body = html! {
        div.cards {
            (payments_card(&console, lang, now).await?)
            (success_card(&console, lang).await?)
            (commission_card(&console, lang, now).await?)
            (queues_card(&console, lang).await)
            (lag_card(&console, lang).await?)
            (alerts_card(&console, lang).await?)
        }
    };
    Ok(shell(&viewer, PATH, lang.t(Msg::Overview), body))
}

async fn payments_card(
    console: &Console,
    lang: Lang,
    now: DateTime<Utc>,
) -> Result<Markup, Refusal> {
    let search = TransactionSearch {
        from: Some(now - Duration::minutes(CHART_MINUTES)),
        limit: CHART_PAYMENTS,
        ..TransactionSearch::default()
    };
    let page = lightspeed_projections::transactions::search(console.app.pool(), &search, None)
        .await
        .map_err(unavailable(lang))?;
    let per_minute = per_minute(page.items.iter().map(|row| row.initiated_at), now);
    let total: i64 = per_minute.iter().map(|(_, n)| n).sum();
    Ok(html! {
        section.card.wide aria-labelledby="payments-title" {
            h2 #payments-title { (lang.t(Msg::PaymentsPerMinute)) }
            p.figure { (total) }
            @if page.next_cursor.is_some() { p.muted { "≥ " (CHART_PAYMENTS) } }
            (bars(lang.t(Msg::PaymentsPerMinute), &per_minute))
        }
    })
}

/// Counts of instants per minute for the last [`CHART_MINUTES`] minutes, oldest first, each
/// labelled with its IST minute.
fn per_minute(
    instants: impl Iterator<Item = DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<(String, i64)> {
    let minute = |at: DateTime<Utc>| {
        at.with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(at)
    };
    let end = minute(now);
    let mut counts: BTreeMap<DateTime<Utc>, i64> = (0..CHART_MINUTES)
        .map(|back| (end - Duration::minutes(back), 0))
        .collect();
    for at in instants {
        if let Some(count) = counts.get_mut(&minute(at)) {
            *count += 1;
        }
    }
    let ist = FixedOffset::east_opt(19_800).unwrap_or_else(|| unreachable!("a valid offset"));
    counts
        .into_iter()
        .map(|(at, n)| (at.with_timezone(&ist).format("%H:%M IST").to_string(), n))
        .collect()
}

async fn success_card(console: &Console, lang: Lang) -> Result<Markup, Refusal> {
    let counts = lightspeed_projections::gauges::payment_counts(console.app.pool())
        .await
        .map_err(unavailable(lang))?;
    let count = |status: &str| -> i64 {
        counts
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.count)
            .sum()
    };
    let (succeeded, failed) = (count("succeeded") + count("refunded"), count("failed"));
    let rate = (succeeded + failed > 0).then(|| succeeded * 10_000 / (succeeded + failed));
    Ok(html! {
        section.card aria-labelledby="success-title" {
            h2 #success-title { (lang.t(Msg::SuccessRate)) }
            p.figure { @match rate { Some(bps) => (percent_bps(bps)), None => "—" } }
            p.muted { (succeeded) " / " (succeeded + failed) }
        }
    })
}

async fn commission_card(
    console: &Console,
    lang: Lang,
    now: DateTime<Utc>,
) -> Result<Markup, Refusal> {
    let ist = FixedOffset::east_opt(19_800).unwrap_or_else(|| unreachable!("a valid offset"));
    let today = now.with_timezone(&ist).date_naive();
    let filter = DailyFilter {
        merchant_id: None,
        from: Some(today),
        to: Some(today),
    };
    let days = lightspeed_projections::commission::daily(console.app.pool(), &filter)
        .await
        .map_err(unavailable(lang))?;
    let net: i64 = days
        .iter()
        .map(|d| d.commission_paise - d.commission_reversed_paise)
        .sum();
    let payments: i64 = days.iter().map(|d| d.payments).sum();
    Ok(html! {
        section.card aria-labelledby="commission-title" {
            h2 #commission-title { (lang.t(Msg::CommissionToday)) }
            p.figure { (rupees(net)) }
            p.muted { (payments) " · " (today.format("%d %b %Y")) }
        }
    })
}

async fn queues_card(console: &Console, lang: Lang) -> Markup {
    let mut rows = Vec::new();
    if let Some(queues) = &console.app.queues {
        for name in queues.queues() {
            let depth = queues.depth(&name).await.ok();
            rows.push((name, depth));
        }
    }
    html! {
        section.card.half aria-labelledby="queues-title" {
            h2 #queues-title { (lang.t(Msg::QueueDepths)) }
            @if rows.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
            @else {
                table {
                    thead { tr { th scope="col" { (lang.t(Msg::Queue)) } th.num scope="col" { (lang.t(Msg::Waiting)) } th.num scope="col" { (lang.t(Msg::Running)) } th.num scope="col" { (lang.t(Msg::Failed)) } } }
                    tbody { @for (name, depth) in &rows { tr {
                        td { code { (name) } }
                        @match depth {
                            Some(d) => { td.num { (d.waiting) } td.num { (d.active) } td.num { (d.failed) } }
                            None => { td.num colspan="3" { "—" } }
                        }
                    } } }
                }
            }
        }
    }
}

async fn lag_card(console: &Console, lang: Lang) -> Result<Markup, Refusal> {
    let pool = console.app.pool();
    let versions = lightspeed_projections::status::all(pool)
        .await
        .map_err(unavailable(lang))?;
    let relay = match &console.app.config.readiness.relay_stream {
        Some(stream) => Some(
            lightspeed_eventstore::relay_lag::relay_lag(pool, stream)
                .await
                .map_err(unavailable(lang))?,
        ),
        None => None,
    };
    Ok(html! {
        section.card.half aria-labelledby="lag-title" {
            h2 #lag-title { (lang.t(Msg::ProjectionLag)) }
            table {
                thead { tr { th scope="col" { (lang.t(Msg::Projection)) } th.num scope="col" { (lang.t(Msg::Events)) } th.num scope="col" { "ms" } } }
                tbody {
                    @for v in versions.iter().filter(|v| v.state == "active") {
                        tr { td { (v.projection) } td.num { (v.lag_events) } td.num { (v.lag_ms) } }
                    }
                    @if let Some(relay) = relay {
                        tr { td { strong { (lang.t(Msg::RelayLag)) } } td.num { (relay.events) } td.num { (relay.oldest_ms) } }
                    }
                }
            }
        }
    })
}

async fn alerts_card(console: &Console, lang: Lang) -> Result<Markup, Refusal> {
    let page = NewestEvents {
        category: <OpsAlert as Decider>::CATEGORY,
        id_first_part: None,
        before: None,
        latest_of_type: Some("OpsAlertRaised"),
        limit: ALERTS,
    };
    let events = newest_events(console.app.pool(), &page)
        .await
        .map_err(unavailable(lang))?;
    Ok(html! {
        section.card.half aria-labelledby="alerts-title" {
            h2 #alerts-title { (lang.t(Msg::OpenAlerts)) }
            @if events.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
            ul { @for event in &events {
                li {
                    span.badge.bad { (event.payload["kind"].as_str().unwrap_or("alert")) }
                    " " (event.payload["summary"].as_str().unwrap_or_default())
                    " · " (time(event.recorded_at))
                }
            } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn payments_are_counted_in_their_minute() {
        let now = Utc.with_ymd_and_hms(2026, 12, 8, 10, 30, 20).unwrap();
        let instants = [
            now,
            now - Duration::seconds(10),
            now - Duration::minutes(2),
            now - Duration::hours(2),
        ];
        let minutes = per_minute(instants.into_iter(), now);
        assert_eq!(minutes.len(), CHART_MINUTES as usize);
        assert_eq!(minutes.last().unwrap(), &("16:00 IST".to_owned(), 2));
        assert_eq!(minutes[minutes.len() - 3].1, 1);
        assert_eq!(minutes.iter().map(|(_, n)| n).sum::<i64>(), 3);
    }
}
