//! Projections: every version not dropped, with its state, checkpoint and lag behind the log,
//! as `GET /admin/projections` reads them. A version being rebuilt shows how many events it has
//! applied so far. Those whose role may rebuild projections start a rebuild here, after a
//! confirmation; it runs in this process ([`crate::rebuilds`]) and the page follows its
//! progress live (`GET /console/live/rebuilds`).

use std::time::Duration;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use lightspeed_domain::access::Action;
use lightspeed_projections::status::ProjectionStatus;
use maud::{Markup, html};

use crate::format::time;
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::live::{SIGNED_OUT_EVENT, live_reset, watched};
use crate::pages::sign_in::CsrfOnly;
use crate::rebuilds::{RunOutcome, RunView, StartError};
use crate::web::{Console, Refusal, Viewer, answered_at, unavailable};

const PATH: &str = "/console/projections";
/// The live stream of the rebuilds started here.
const STREAM: &str = "/console/live/rebuilds";
/// The event that carries the rebuilds' table body.
const REBUILDS_EVENT: &str = "rebuilds";
/// Shortest time between two progress frames of one stream.
const FRAME_EVERY: Duration = Duration::from_millis(200);
/// A comment is sent after this long without a change, so proxies keep the connection.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /console/projections`.
pub async fn list(State(console): State<Console>, viewer: Viewer) -> Result<Markup, Refusal> {
    render(&console, &viewer, None).await
}

async fn render(
    console: &Console,
    viewer: &Viewer,
    notice: Option<Markup>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let versions = lightspeed_projections::status::all(console.app.pool())
        .await
        .map_err(unavailable(lang))?;
    let rebuild = viewer.may(Action::RebuildProjections);
    let body = html! {
        @if let Some(notice) = notice { (notice) }
        @if versions.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
        @else {
            div.table-wrap { table #projections {
                thead { tr {
                    th scope="col" { (lang.t(Msg::Projection)) }
                    th.num scope="col" { (lang.t(Msg::Version)) }
                    th scope="col" { (lang.t(Msg::Status)) }
                    th.num scope="col" { (lang.t(Msg::Events)) }
                    th.num scope="col" { (lang.t(Msg::LagEvents)) }
                    th.num scope="col" { (lang.t(Msg::LagMs)) }
                    th scope="col" { (lang.t(Msg::LagMeasured)) }
                    th scope="col" { (lang.t(Msg::Checkpoint)) }
                    @if rebuild { th scope="col" { (lang.t(Msg::Actions)) } }
                } }
                tbody { @for v in &versions { (row(lang, v, rebuild)) } }
            } }
        }
        section.card.wide #rebuilds hx-ext="sse" sse-connect=(STREAM) sse-close=(SIGNED_OUT_EVENT) aria-labelledby="rebuilds-title" {
            h2 #rebuilds-title { (lang.t(Msg::RebuildProgress)) }
            (live_reset())
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { (lang.t(Msg::Projection)) }
                    th scope="col" { (lang.t(Msg::Actor)) }
                    th scope="col" { (lang.t(Msg::Started)) }
                    th scope="col" { (lang.t(Msg::Status)) }
                    th.num scope="col" { (lang.t(Msg::Events)) }
                } }
                tbody #rebuild-rows sse-swap=(REBUILDS_EVENT) hx-swap="innerHTML" {
                    (run_rows(lang, &console.rebuilds.runs()))
                }
            } }
        }
    };
    Ok(page(viewer, PATH, lang.t(Msg::Projections), body))
}

fn row(lang: Lang, v: &ProjectionStatus, rebuild: bool) -> Markup {
    let badge = match v.state.as_str() {
        "active" => "badge ok",
        "building" => "badge warn",
        _ => "badge",
    };
    html! {
        tr data-projection=(v.projection) {
            td { code { (v.projection) } }
            td.num { (v.version) }
            td { span class=(badge) { (v.state) } }
            td.num { (v.events_applied) }
            td.num { (v.lag_events) }
            td.num { (v.lag_ms) }
            td { @if let Some(at) = v.lag_measured_at { (time(at)) } @else { (lang.t(Msg::NotMeasured)) } }
            td { code { (v.checkpoint) } }
            @if rebuild {
                td { @if v.state == "active" {
                    a.button.secondary data-action="rebuild" href={ (PATH) "/" (v.projection) "/rebuild" } { (lang.t(Msg::Rebuild)) }
                } }
            }
        }
    }
}

/// The rows of the rebuilds started here: who, when, and how far.
fn run_rows(lang: Lang, runs: &[RunView]) -> Markup {
    html! {
        @if runs.is_empty() { tr { td colspan="5" { span.muted { (lang.t(Msg::NoneYet)) } } } }
        @for run in runs {
            tr data-rebuild=(run.projection) {
                td { code { (run.projection) } }
                td { (run.started_by.trim_start_matches("admin:")) }
                td { (time(run.started_at)) }
                td { @match &run.outcome {
                    None => span.badge.warn { (lang.t(Msg::RebuildRunningState)) },
                    Some(RunOutcome::Finished { version, .. }) => span.badge.ok { (lang.t(Msg::RebuildFinished)) " · v" (version) },
                    Some(RunOutcome::Failed { reason }) => { span.badge.bad { (lang.t(Msg::RebuildFailed)) } " " (reason) },
                } }
                td.num { @match &run.progress {
                    Some(p) => {
                        progress max="100" value=(p.percent()) aria-label={ (run.projection) " %" } { (p.percent()) "%" }
                        " " (p.done) " / " @if let Some(total) = p.total { (total) } @else { "?" } " (" (p.percent()) "%)"
                    },
                    None => "—",
                } }
            }
        }
    }
}

/// `GET /console/projections/{name}/rebuild`: what a rebuild does, and the button that starts it.
pub async fn confirm(viewer: Viewer, Path(name): Path<String>) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    if !viewer.may(Action::RebuildProjections) {
        return Err(Refusal::Forbidden(lang));
    }
    if lightspeed_projections::catalog::by_name(&name).is_none() {
        return Err(Refusal::NotFound(lang));
    }
    let body = html! {
        p.notice { (lang.t(Msg::RebuildExplained)) }
        form.stack method="post" action={ (PATH) "/" (name) "/rebuild" } {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            p {
                button type="submit" { (lang.t(Msg::Confirm)) ": " (lang.t(Msg::Rebuild)) " " (name) }
                " " a href=(PATH) { (lang.t(Msg::Cancel)) }
            }
        }
    };
    let title = format!("{} · {name}", lang.t(Msg::Rebuild));
    Ok(page(&viewer, PATH, &title, body))
}

/// `POST /console/projections/{name}/rebuild`: starts the rebuild, recorded with the person as
/// its actor; answers the page, which follows its progress.
pub async fn start(
    State(console): State<Console>,
    viewer: Viewer,
    Path(name): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Refusal> {
    let lang = viewer.lang;
    viewer.authorize(Action::RebuildProjections, &form.csrf)?;
    let notice = match console.rebuilds.start(&name, &viewer.actor()).await {
        Ok(()) => html! { p.notice role="status" { (lang.t(Msg::RebuildStarted)) } },
        Err(StartError::Unknown) => return Err(Refusal::NotFound(lang)),
        Err(StartError::Running) => {
            html! { p.notice.bad role="alert" { (lang.t(Msg::RebuildRunning)) } }
        }
        Err(StartError::Store(reason)) => return Err(Refusal::Unavailable(lang, reason)),
    };
    let page = render(&console, &viewer, Some(notice)).await?;
    Ok(answered_at(PATH, page))
}

/// One SSE frame carrying the rebuilds' rows.
fn rows_frame(lang: Lang, runs: &[RunView]) -> Bytes {
    let rows = run_rows(lang, runs).into_string().replace('\n', "\ndata: ");
    Bytes::from(format!("event: {REBUILDS_EVENT}\ndata: {rows}\n\n"))
}

/// `GET /console/live/rebuilds`: the rows of the rebuilds started in this process, sent again
/// whenever one reports progress (at most every [`FRAME_EVERY`]), for any signed-in person.
pub async fn rebuild_stream(
    State(console): State<Console>,
    viewer: Result<Viewer, Refusal>,
    headers: HeaderMap,
) -> Response {
    let lang = match viewer {
        Ok(viewer) => viewer.lang,
        Err(Refusal::SignIn) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(refusal) => return refusal.into_response(),
    };
    let changes = console.rebuilds.watch();
    let rebuilds = console.rebuilds.clone();
    let frames = futures::stream::unfold(
        (changes, rebuilds, true),
        move |(mut changes, rebuilds, first)| async move {
            if first {
                drop(changes.borrow_and_update());
                let frame = rows_frame(lang, &rebuilds.runs());
                return Some((
                    Ok::<_, std::convert::Infallible>(frame),
                    (changes, rebuilds, false),
                ));
            }
            tokio::time::sleep(FRAME_EVERY).await;
            let frame = match tokio::time::timeout(KEEP_ALIVE, changes.changed()).await {
                Err(_) => Bytes::from_static(b": keep-alive\n\n"),
                Ok(Err(_)) => return None,
                Ok(Ok(())) => {
                    drop(changes.borrow_and_update());
                    rows_frame(lang, &rebuilds.runs())
                }
            };
            Some((Ok(frame), (changes, rebuilds, false)))
        },
    );
    let response = (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(frames),
    )
        .into_response();
    watched(&console, &headers, lang, response)
}
