//! Alerts: those firing now and the recent raises, acknowledgements and resolutions, read from
//! the log's `ops_alert` category as `GET /admin/alerts` reads it; a firing alert is
//! acknowledged as `POST /admin/alerts/{id}/ack` does it.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use lightspeed_domain::Decider;
use lightspeed_domain::access::Action;
use lightspeed_domain::ops_alert::{
    ALERT_KINDS, AlertKind, FIRING_EVENT_TYPES, OpsAlert, OpsAlertError, OpsAlertEvent,
};
use lightspeed_eventstore::RecordedEvent;
use lightspeed_eventstore::recent::{NewestEvents, newest_events};
use maud::{Markup, html};
use serde::Deserialize;

use crate::format::time;
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::pages::sign_in::CsrfOnly;
use crate::web::{Console, Refusal, Viewer, unavailable};
use lightspeed_services::ServiceError;

const PATH: &str = "/console/alerts";
/// Alert events per list.
const SHOWN: u32 = 50;

/// Where an alert stands after one of its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    Raised,
    Acknowledged,
    Resolved,
}

/// One alert event, for people.
pub(crate) struct AlertLine {
    pub(crate) key: String,
    pub(crate) standing: Standing,
    pub(crate) summary: String,
    pub(crate) at: DateTime<Utc>,
    position: u64,
}

impl AlertLine {
    fn of(event: &RecordedEvent) -> Option<Self> {
        let (standing, summary) = match event.decode().ok()? {
            OpsAlertEvent::OpsAlertRaised { summary, .. } => (Standing::Raised, summary),
            OpsAlertEvent::OpsAlertResolved { summary, .. } => (Standing::Resolved, summary),
            OpsAlertEvent::OpsAlertAcknowledged { by, .. } => {
                (Standing::Acknowledged, format!("acknowledged by {by}"))
            }
        };
        Some(Self {
            key: event.stream_id.id().to_owned(),
            standing,
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
    let kind = query
        .kind
        .as_deref()
        .filter(|k| AlertKind::parse(k).is_some());
    let firing = lines(&console, lang, kind, None, true, SHOWN).await?;
    let recent = lines(&console, lang, kind, query.before, false, SHOWN).await?;
    let older = (recent.len() == SHOWN as usize)
        .then(|| recent.last().map(|l| l.position))
        .flatten();
    let body = html! {
        p.muted { (lang.t(Msg::AlertsReadOnly)) }
        form.filters method="get" action=(PATH) role="search" {
            label { (lang.t(Msg::Kind))
                select name="kind" {
                    option value="" { (lang.t(Msg::AnyType)) }
                    @for k in ALERT_KINDS.map(AlertKind::as_str) { option value=(k) selected[kind == Some(k)] { (k) } }
                }
            }
            button type="submit" { (lang.t(Msg::Search)) }
        }
        section.card.wide aria-labelledby="firing-title" {
            h2 #firing-title { (lang.t(Msg::OpenAlerts)) }
            (table(&viewer, "firing", &firing, viewer.may(Action::AcknowledgeAlerts)))
        }
        section.card.wide aria-labelledby="recent-title" {
            h2 #recent-title { (lang.t(Msg::RecentAlerts)) }
            (table(&viewer, "recent", &recent, false))
            @if let Some(before) = older {
                p { a href={ (PATH) "?before=" (before) @if let Some(k) = kind { "&kind=" (k) } } { (lang.t(Msg::Older)) " →" } }
            }
        }
    };
    Ok(page(&viewer, PATH, lang.t(Msg::Alerts), body))
}

/// The alerts open now (raised, or acknowledged and still firing), newest first.
pub(crate) async fn open(
    console: &Console,
    lang: Lang,
    limit: u32,
) -> Result<Vec<AlertLine>, Refusal> {
    lines(console, lang, None, None, true, limit).await
}

/// The newest alert events, or with `firing` the latest event of each open alert.
async fn lines(
    console: &Console,
    lang: Lang,
    kind: Option<&str>,
    before: Option<i64>,
    firing: bool,
    limit: u32,
) -> Result<Vec<AlertLine>, Refusal> {
    let page = NewestEvents {
        category: <OpsAlert as Decider>::CATEGORY,
        id_first_part: kind,
        before,
        latest_of_types: firing.then_some(&FIRING_EVENT_TYPES[..]),
        limit: i64::from(limit),
    };
    let events = newest_events(console.app.pool(), &page)
        .await
        .map_err(unavailable(lang))?;
    Ok(events.iter().filter_map(AlertLine::of).collect())
}

fn table(viewer: &Viewer, id: &str, lines: &[AlertLine], acknowledge: bool) -> Markup {
    let lang = viewer.lang;
    html! {
        @if lines.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
        @else {
            div.table-wrap { table id=(id) {
                thead { tr {
                    th scope="col" { (lang.t(Msg::Time)) }
                    th scope="col" { (lang.t(Msg::Status)) }
                    th scope="col" { (lang.t(Msg::Kind)) }
                    th scope="col" { (lang.t(Msg::Summary)) }
                    @if acknowledge { th scope="col" { (lang.t(Msg::Actions)) } }
                } }
                tbody { @for l in lines { tr {
                    td { (time(l.at)) }
                    td { (badge(lang, l.standing)) }
                    td { code { (l.key) } }
                    td { (l.summary) }
                    @if acknowledge { td { @if l.standing == Standing::Raised { (acknowledge_form(viewer, &l.key)) } } }
                } } }
            } }
        }
    }
}

/// The alert's standing as a badge.
pub(crate) fn badge(lang: Lang, standing: Standing) -> Markup {
    html! {
        @match standing {
            Standing::Raised => span.badge.bad { (lang.t(Msg::Raised)) },
            Standing::Acknowledged => span.badge.warn { (lang.t(Msg::Acknowledged)) },
            Standing::Resolved => span.badge.ok { (lang.t(Msg::Resolved)) },
        }
    }
}

fn acknowledge_form(viewer: &Viewer, key: &str) -> Markup {
    html! {
        form.inline method="post" action={ (PATH) "/" (key) "/ack" } {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            button.secondary type="submit" { (viewer.lang.t(Msg::Acknowledge)) }
        }
    }
}

/// `POST /console/alerts/{key}/ack`: the person acknowledges a firing alert, recorded in the
/// log with their email; acknowledging it again records nothing.
pub async fn acknowledge(
    State(console): State<Console>,
    viewer: Viewer,
    Path(key): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Refusal> {
    let lang = viewer.lang;
    viewer.authorize(Action::AcknowledgeAlerts, &form.csrf)?;
    let acknowledged = console
        .app
        .ledger
        .acknowledge_alert(&key, &viewer.session.email, &viewer.context())
        .await;
    match acknowledged {
        Ok(_) => {
            tracing::info!(alert = %key, person = %viewer.session.email, "ops alert acknowledged");
            Ok(Redirect::to(PATH).into_response())
        }
        Err(ServiceError::Alert(OpsAlertError::NotRaised) | ServiceError::Invalid(_)) => {
            Err(Refusal::NotFound(lang))
        }
        Err(other) => Err(Refusal::Unavailable(lang, other.to_string())),
    }
}
