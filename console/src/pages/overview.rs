//! Overview: payments per minute, success rate, commission today, queue depths, projection and
//! relay lag, open alerts; each from the read models, the log or the broker, as the admin API
//! reads them.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Duration, FixedOffset, Timelike, Utc};
use lightspeed_live::AlertItem;
use lightspeed_projections::commission::DailyFilter;
use lightspeed_projections::transactions::TransactionSearch;
use maud::{Markup, html};

use crate::charts::bars;
use crate::format::{percent_bps, rupees, time};
use crate::i18n::{Lang, Msg};
use crate::layout::page as shell;
use crate::live::{LivePage, live_reset};
use crate::pages::alerts;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console";
/// Minutes the payments chart covers.
const CHART_MINUTES: i64 = 30;
/// Most payments the chart counts (the search's largest step); the chart says when it is full.
const CHART_PAYMENTS: u32 = 200;
/// Most open alerts listed.
const ALERTS: u32 = 20;

/// `GET /console`.
pub async fn page(State(console): State<Console>, viewer: Viewer) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let now = console.app.ledger.now();
    // The stream resumes from the hub's head as of now, before the cards are read, so an
    // update landing while they are read is shown again rather than lost.
    let live = LivePage::Overview.stream_url(&console.hub);
    // The cards read different tables, so they are read at once: the page takes its slowest
    // card's time, not their sum.
    let (payments, success, commission, queues, lag, alerts) = tokio::try_join!(
        payments_card(&console, lang, now),
        success_card(&console, lang),
        commission_card(&console, lang, now),
        async { Ok(queues_card(&console, lang).await) },
        lag_card(&console, lang),
        alerts_card(&console, lang),
    )?;
    let body = html! {
        div.cards hx-ext="sse" sse-connect=(live) sse-close=(crate::live::SIGNED_OUT_EVENT) {
            (live_reset())
            (payments) (success) (commission) (queues) (lag) (alerts)
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

/// The success rate of the gateways' recent outcomes, and of every outcome ever, read from the
/// gateways read model (one row per gateway): counting the payments themselves would read
/// every row of the transactions read model on each view.
async fn success_card(console: &Console, lang: Lang) -> Result<Markup, Refusal> {
    let totals = lightspeed_projections::gateways::outcome_totals(console.app.pool())
        .await
        .map_err(unavailable(lang))?;
    let rate = |succeeded: i64, of: i64| (of > 0).then(|| succeeded * 10_000 / of);
    let recent = rate(totals.recent_succeeded, totals.recent_attempted);
    let finished = totals.succeeded + totals.failed;
    let ever = rate(totals.succeeded, finished);
    let shown = |bps: Option<i64>| bps.map_or_else(|| "—".to_owned(), percent_bps);
    Ok(html! {
        section.card aria-labelledby="success-title" {
            h2 #success-title { (lang.t(Msg::SuccessRate)) }
            p.figure { (shown(recent)) }
            p.muted { (lang.t(Msg::RecentOutcomes)) ": " (totals.recent_succeeded) " / " (totals.recent_attempted) }
            p.muted { (lang.t(Msg::EverOutcomes)) ": " (shown(ever)) " (" (totals.succeeded) " / " (finished) ")" }
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
        // Each queue's figures are a few broker round trips: read every queue's at once.
        rows = futures::future::join_all(queues.queues().into_iter().map(|name| async move {
            let depth = queues.depth(&name).await.ok();
            let paused = console
                .app
                .ledger
                .queue_paused(&name)
                .await
                .unwrap_or(false);
            QueueRow {
                figures: depth.map(|d| (d.waiting, d.active, d.failed)),
                paused,
                name,
            }
        }))
        .await;
    }
    html! {
        section.card.half aria-labelledby="queues-title" {
            h2 #queues-title { (lang.t(Msg::QueueDepths)) }
            table {
                thead { tr { th scope="col" { (lang.t(Msg::Queue)) } th.num scope="col" { (lang.t(Msg::Waiting)) } th.num scope="col" { (lang.t(Msg::Running)) } th.num scope="col" { (lang.t(Msg::Failed)) } } }
                tbody #queue-rows sse-swap="queue_stats" hx-swap="innerHTML" { (queue_rows(lang, &rows)) }
            }
        }
    }
}

/// One queue as the Overview shows it.
pub(crate) struct QueueRow {
    /// The queue.
    pub name: String,
    /// Waiting, running and failed jobs; `None` when the broker did not answer.
    pub figures: Option<(u64, u64, u64)>,
    /// Whether workers are paused on it.
    pub paused: bool,
}

/// The rows of the queue table (the page's, and the live stream's `queue_stats`).
pub(crate) fn queue_rows(lang: Lang, rows: &[QueueRow]) -> Markup {
    html! {
        @if rows.is_empty() { tr { td.muted colspan="4" { (lang.t(Msg::NoneYet)) } } }
        @for row in rows { tr {
            td { code { (row.name) } @if row.paused { " " span.badge.warn { (lang.t(Msg::Paused)) } } }
            @match row.figures {
                Some((waiting, active, failed)) => { td.num { (waiting) } td.num { (active) } td.num { (failed) } }
                None => { td.num colspan="3" { "—" } }
            }
        } }
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
    let projections: Vec<LagRow> = versions
        .iter()
        .filter(|v| v.state == "active")
        .map(|v| (v.projection.clone(), v.lag_events, v.lag_ms))
        .collect();
    let relay = relay.map(|r| (r.events, r.oldest_ms));
    Ok(html! {
        section.card.half aria-labelledby="lag-title" {
            h2 #lag-title { (lang.t(Msg::ProjectionLag)) }
            table {
                thead { tr { th scope="col" { (lang.t(Msg::Projection)) } th.num scope="col" { (lang.t(Msg::Events)) } th.num scope="col" { "ms" } } }
                tbody #lag-rows sse-swap="projection_lag" hx-swap="innerHTML" { (lag_rows(lang, &projections, relay)) }
            }
        }
    })
}

/// A projection's name, events behind and milliseconds behind.
pub(crate) type LagRow = (String, i64, i64);

/// The rows of the lag table (the page's, and the live stream's `projection_lag`).
pub(crate) fn lag_rows(lang: Lang, projections: &[LagRow], relay: Option<(i64, i64)>) -> Markup {
    html! {
        @for (projection, events, ms) in projections {
            tr { td { (projection) } td.num { (events) } td.num { (ms) } }
        }
        @if let Some((events, ms)) = relay {
            tr { td { strong { (lang.t(Msg::RelayLag)) } } td.num { (events) } td.num { (ms) } }
        }
    }
}

async fn alerts_card(console: &Console, lang: Lang) -> Result<Markup, Refusal> {
    let open = alerts::open(console, lang, ALERTS).await?;
    Ok(html! {
        section.card.half aria-labelledby="alerts-title" {
            h2 #alerts-title { (lang.t(Msg::OpenAlerts)) }
            ul.live-list #alert-list sse-swap="alert" hx-swap="afterbegin" { @for alert in &open {
                li {
                    (alerts::badge(lang, alert.standing)) " " code { (alert.key) }
                    " " (alert.summary)
                    " · " (time(alert.at))
                }
            } }
            // Hidden by the stylesheet once the live stream adds an alert to the list.
            @if open.is_empty() { p.muted.none-yet { (lang.t(Msg::NoneYet)) } }
        }
    })
}

/// An alert raised or resolved, as the live stream adds it to the Overview's list.
pub(crate) fn alert_item(lang: Lang, alert: &AlertItem) -> Markup {
    html! {
        li {
            @match &alert.alert_kind {
                Some(kind) if alert.firing => { span.badge.bad { (kind) } }
                _ => { span.badge.ok { (lang.t(Msg::Resolved)) } }
            }
            " " (alert.summary)
            " · " (time(alert.at))
        }
    }
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
