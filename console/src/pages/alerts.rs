//! Alerts: those firing now and the recent raises and resolutions, read from the log's
//! `ops_alert` category as `GET /admin/alerts` reads it. The ops-alert model records only
//! raise and resolve (no acknowledgement), so this page lists and changes nothing.

use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use lightspeed_domain::Decider;
use lightspeed_domain::ops_alert::{OpsAlert, OpsAlertEvent};
use lightspeed_eventstore::RecordedEvent;
use lightspeed_eventstore::recent::{NewestEvents, newest_events};
use maud::{Markup, html};
use serde::Deserialize;

use crate::format::time;
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/alerts";
/// The event that raises an alert: a stream whose latest event it is holds a firing alert.
const RAISED: &str = "OpsAlertRaised";
/// Alert events per list.
const SHOWN: u32 = 50;
const KINDS: [&str; 2] = ["payment_failed", "whatsapp_failure_rate"];

/// One alert event, for people.
struct AlertLine {
    key: String,
    raised: bool,
    summary: String,
    at: DateTime<Utc>,
    position: u64,
}

impl AlertLine {
    fn of(event: &RecordedEvent) -> Option<Self> {
        let (raised, summary) = match event.decode().ok()? {
            OpsAlertEvent::OpsAlertRaised { summary, .. } => (true, summary),
            OpsAlertEvent::OpsAlertResolved { summary, .. } => (false, summary),
            OpsAlertEvent::OpsAlertAcknowledged { by, .. } => {
                (true, format!("acknowledged by {by}"))
            }
        };
        Some(Self {
            key: event.stream_id.id().to_owned(),
            raised,
            summary,
            at: event.recorded_at,
            position: event.log_position.position,
        })
    }
}

/// The list's filter and cursor.
#[derive(Debug, Default, Deserialize)]
pub struct AlertQuery {
    kind: Option<String>,
    before: Option<i64>,
}

/// `GET /console/alerts`.
pub async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    Query(query): Query<AlertQuery>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let kind = query.kind.as_deref().filter(|k| KINDS.contains(k));
    let firing = lines(&console, lang, kind, None, true).await?;
    let recent = lines(&console, lang, kind, query.before, false).await?;
    let older = (recent.len() == SHOWN as usize)
        .then(|| recent.last().map(|l| l.position))
        .flatten();
    let body = html! {
        p.muted { (lang.t(Msg::AlertsReadOnly)) }
        form.filters method="get" action=(PATH) role="search" {
            label { (lang.t(Msg::Kind))
                select name="kind" {
                    option value="" { (lang.t(Msg::AnyType)) }
                    @for k in KINDS { option value=(k) selected[kind == Some(k)] { (k) } }
                }
            }
            button type="submit" { (lang.t(Msg::Search)) }
        }
        section.card.wide aria-labelledby="firing-title" {
            h2 #firing-title { (lang.t(Msg::OpenAlerts)) }
            (table(lang, "firing", &firing))
        }
        section.card.wide aria-labelledby="recent-title" {
            h2 #recent-title { (lang.t(Msg::RecentAlerts)) }
            (table(lang, "recent", &recent))
            @if let Some(before) = older {
                p { a href={ (PATH) "?before=" (before) @if let Some(k) = kind { "&kind=" (k) } } { (lang.t(Msg::Older)) " →" } }
            }
        }
    };
    Ok(page(&viewer, PATH, lang.t(Msg::Alerts), body))
}

async fn lines(
    console: &Console,
    lang: Lang,
    kind: Option<&str>,
    before: Option<i64>,
    firing: bool,
) -> Result<Vec<AlertLine>, Refusal> {
    let page = NewestEvents {
        category: <OpsAlert as Decider>::CATEGORY,
        id_first_part: kind,
        before,
        latest_of_type: firing.then_some(RAISED),
        limit: i64::from(SHOWN),
    };
    let events = newest_events(console.app.pool(), &page)
        .await
        .map_err(unavailable(lang))?;
    Ok(events.iter().filter_map(AlertLine::of).collect())
}

fn table(lang: Lang, id: &str, lines: &[AlertLine]) -> Markup {
    html! {
        @if lines.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
        @else {
            div.table-wrap { table id=(id) {
                thead { tr {
                    th scope="col" { (lang.t(Msg::Time)) }
                    th scope="col" { (lang.t(Msg::Status)) }
                    th scope="col" { (lang.t(Msg::Kind)) }
                    th scope="col" { (lang.t(Msg::Summary)) }
                } }
                tbody { @for l in lines { tr {
                    td { (time(l.at)) }
                    td { @if l.raised { span.badge.bad { (lang.t(Msg::Raised)) } } @else { span.badge.ok { (lang.t(Msg::Resolved)) } } }
                    td { code { (l.key) } }
                    td { (l.summary) }
                } } }
            } }
        }
    }
}
