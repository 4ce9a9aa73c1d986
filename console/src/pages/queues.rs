//! Queues: each work queue's depth now and over the last hour (from the samples
//! `lightspeed_monitoring` keeps, as `GET /admin/queues/series` reads them), and pause, resume,
//! retry failed and drain, each behind a confirmation page. The changes are the admin API's:
//! pause and resume recorded in the log, retry and drain run on the broker then recorded.

use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use lightspeed_domain::access::Action;
use lightspeed_monitoring::queues::{
    self as monitored, QueueControl, QueueControlError, QueueDepth, QueueSample,
};
use maud::{Markup, html};
use serde::Deserialize;

use crate::charts;
use crate::format::{self, time};
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/queues";
/// How far back the chart looks, in minutes.
const CHART_MINUTES: i64 = 60;
/// One bar per minute.
const CHART_BUCKET: Duration = Duration::from_secs(60);

/// A change to a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    /// Workers stop fetching; jobs wait in the broker.
    Pause,
    /// Workers fetch again.
    Resume,
    /// Failed jobs are put back.
    Retry,
    /// Waiting jobs are discarded.
    Drain,
}

impl QueueAction {
    const ALL: [QueueAction; 4] = [Self::Pause, Self::Resume, Self::Retry, Self::Drain];

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.path() == text)
    }

    fn path(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Retry => "retry",
            Self::Drain => "drain",
        }
    }

    fn label(self) -> Msg {
        match self {
            Self::Pause => Msg::QueuePause,
            Self::Resume => Msg::QueueResume,
            Self::Retry => Msg::QueueRetry,
            Self::Drain => Msg::QueueDrain,
        }
    }

    fn explanation(self) -> Msg {
        match self {
            Self::Pause => Msg::QueuePauseExplained,
            Self::Resume => Msg::QueueResumeExplained,
            Self::Retry => Msg::QueueRetryExplained,
            Self::Drain => Msg::QueueDrainExplained,
        }
    }
}

fn control(console: &Console, lang: Lang) -> Result<Arc<dyn QueueControl>, Refusal> {
    console
        .app
        .queues
        .clone()
        .ok_or_else(|| Refusal::Unavailable(lang, "queue control is not wired".into()))
}

fn known(control: &dyn QueueControl, lang: Lang, name: &str) -> Result<(), Refusal> {
    if control.queues().iter().any(|queue| queue == name) {
        Ok(())
    } else {
        Err(Refusal::NotFound(lang))
    }
}

/// What the last change did, carried in the address it redirects to.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    queue: Option<String>,
    done: Option<String>,
    jobs: Option<u64>,
}

/// `GET /console/queues`.
pub async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    Query(done): Query<DoneQuery>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let control = control(&console, lang)?;
    // Each queue's section is a few broker and database round trips: read them at once.
    let names = control.queues();
    let sections = futures::future::try_join_all(
        names
            .iter()
            .map(|name| queue_section(&console, &viewer, control.as_ref(), name)),
    )
    .await?;
    let body = html! {
        (done_notice(lang, &done))
        @for section in sections { (section) }
    };
    Ok(page(&viewer, PATH, lang.t(Msg::Queues), body))
}

fn done_notice(lang: Lang, done: &DoneQuery) -> Markup {
    let (Some(queue), Some(action)) = (
        &done.queue,
        done.done.as_deref().and_then(QueueAction::parse),
    ) else {
        return html! {};
    };
    html! {
        p.notice role="status" {
            (lang.t(Msg::Done)) " " code { (queue) } ": " (lang.t(action.label()))
            @if let Some(jobs) = done.jobs { " · " (jobs) " " (lang.t(Msg::Jobs)) }
        }
    }
}

async fn queue_section(
    console: &Console,
    viewer: &Viewer,
    control: &dyn QueueControl,
    name: &str,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let state = console
        .app
        .ledger
        .queue_state(name)
        .await
        .map_err(unavailable(lang))?;
    let depth = control.depth(name).await.ok();
    let chart = depth_chart(console, lang, name).await?;
    Ok(html! {
        section.card data-queue=(name) aria-labelledby={ "queue-" (name) } {
            h2 #{ "queue-" (name) } {
                code { (name) } " "
                @if state.is_paused() { span.badge.warn { (lang.t(Msg::Paused)) } }
                @else { span.badge.ok { (lang.t(Msg::Flowing)) } }
            }
            (depth_facts(lang, depth))
            dl.facts {
                @if let Some(at) = state.paused_since() { dt { (lang.t(Msg::PausedSince)) } dd { (time(at)) } }
                @if let Some(at) = state.last_retried_at() { dt { (lang.t(Msg::LastRetried)) } dd { (time(at)) } }
                @if let Some(at) = state.last_drained_at() { dt { (lang.t(Msg::LastDrained)) } dd { (time(at)) } }
            }
            (chart)
            (action_links(viewer, name, state.is_paused()))
        }
    })
}

fn depth_facts(lang: Lang, depth: Option<QueueDepth>) -> Markup {
    html! {
        @match depth {
            Some(d) => p {
                (lang.t(Msg::Waiting)) " " strong.waiting { (d.waiting) } " · "
                (lang.t(Msg::Running)) " " strong { (d.active) } " · "
                (lang.t(Msg::Failed)) " " strong { (d.failed) }
            },
            None => p.muted { (lang.t(Msg::BrokerUnanswered)) },
        }
    }
}

/// Jobs waiting, the most seen each minute of the last hour.
async fn depth_chart(console: &Console, lang: Lang, name: &str) -> Result<Markup, Refusal> {
    let to = console.app.ledger.now();
    let from = to - chrono::TimeDelta::minutes(CHART_MINUTES);
    let points = monitored::series(console.app.pool(), name, from, to, CHART_BUCKET)
        .await
        .map_err(unavailable(lang))?;
    if points.is_empty() {
        return Ok(
            html! { h3 { (lang.t(Msg::WaitingLastHour)) } p.muted { (lang.t(Msg::NoSamples)) } },
        );
    }
    let values = minute_slots(lang, from, &points);
    Ok(html! {
        h3 { (lang.t(Msg::WaitingLastHour)) }
        (charts::bars(&format!("{} {name}", lang.t(Msg::WaitingLastHour)), &values))
    })
}

/// One bar per minute of the hour from `from`, so the time axis stays put; a minute with no
/// sample draws no bar and says so on hover.
fn minute_slots(lang: Lang, from: DateTime<Utc>, points: &[QueueSample]) -> Vec<(String, i64)> {
    let first = from.timestamp() - from.timestamp().rem_euclid(60) + 60;
    (0..CHART_MINUTES)
        .filter_map(|minute| DateTime::from_timestamp(first + minute * 60, 0))
        .map(|slot| match points.iter().find(|p| p.sampled_at == slot) {
            Some(p) => (format::ist_text(slot), p.waiting),
            None => (
                format!("{} ({})", format::ist_text(slot), lang.t(Msg::NoSample)),
                0,
            ),
        })
        .collect()
}

/// Links to the confirmation page of each change that applies now, for people who may
/// control queues.
fn action_links(viewer: &Viewer, name: &str, paused: bool) -> Markup {
    let lang = viewer.lang;
    if !viewer.may(Action::ControlQueues) {
        return html! {};
    }
    let first = if paused {
        QueueAction::Resume
    } else {
        QueueAction::Pause
    };
    html! {
        p.actions {
            @for action in [first, QueueAction::Retry, QueueAction::Drain] {
                a.button.secondary href={ (PATH) "/" (name) "/" (action.path()) } data-action=(action.path()) {
                    (lang.t(action.label()))
                }
                " "
            }
        }
    }
}

fn parse_action(lang: Lang, text: &str) -> Result<QueueAction, Refusal> {
    QueueAction::parse(text).ok_or(Refusal::NotFound(lang))
}

/// `GET /console/queues/{name}/{action}`: what the change does, and the button that makes it.
pub async fn confirm(
    State(console): State<Console>,
    viewer: Viewer,
    Path((name, action)): Path<(String, String)>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    if !viewer.may(Action::ControlQueues) {
        return Err(Refusal::Forbidden(lang));
    }
    let action = parse_action(lang, &action)?;
    known(control(&console, lang)?.as_ref(), lang, &name)?;
    let body = html! {
        p.notice { (lang.t(action.explanation())) }
        form.stack method="post" action={ (PATH) "/" (name) "/" (action.path()) } {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            @if action == QueueAction::Drain {
                label { (lang.t(Msg::TypeQueueName)) input name="confirm" required autocomplete="off"; }
            }
            p {
                button.danger[action == QueueAction::Drain] type="submit" { (lang.t(Msg::Confirm)) ": " (lang.t(action.label())) }
                " " a href=(PATH) { (lang.t(Msg::Cancel)) }
            }
        }
    };
    let title = format!("{} · {name}", lang.t(action.label()));
    Ok(page(&viewer, PATH, &title, body))
}

/// The confirmation form.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    /// For a drain: the queue's name, typed again.
    confirm: Option<String>,
}

/// `POST /console/queues/{name}/{action}`: the change, as `POST /admin/queues/{name}/{action}`
/// makes it.
pub async fn act(
    State(console): State<Console>,
    viewer: Viewer,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, Refusal> {
    let lang = viewer.lang;
    viewer.authorize(Action::ControlQueues, &form.csrf)?;
    let action = parse_action(lang, &action)?;
    let control = control(&console, lang)?;
    known(control.as_ref(), lang, &name)?;
    if action == QueueAction::Drain && form.confirm.as_deref().map(str::trim) != Some(name.as_str())
    {
        return Ok(Redirect::to(&format!("{PATH}/{name}/drain")).into_response());
    }
    let jobs = carry_out(&console, &viewer, control.as_ref(), &name, action).await?;
    tracing::info!(queue = %name, action = action.path(), ?jobs, person = %viewer.session.email, "queue action");
    let mut target = format!("{PATH}?queue={name}&done={}", action.path());
    if let Some(jobs) = jobs {
        target.push_str(&format!("&jobs={jobs}"));
    }
    Ok(Redirect::to(&target).into_response())
}

async fn carry_out(
    console: &Console,
    viewer: &Viewer,
    control: &dyn QueueControl,
    name: &str,
    action: QueueAction,
) -> Result<Option<u64>, Refusal> {
    let (lang, ledger, context) = (viewer.lang, &console.app.ledger, viewer.context());
    let failed = unavailable(lang);
    let broker = |e: QueueControlError| Refusal::Unavailable(lang, e.to_string());
    match action {
        QueueAction::Pause | QueueAction::Resume => {
            let paused = action == QueueAction::Pause;
            if paused {
                ledger.pause_queue(name, &context).await
            } else {
                ledger.resume_queue(name, &context).await
            }
            .map_err(&failed)?;
            control.pause_changed(name, paused).await;
            Ok(None)
        }
        QueueAction::Retry => {
            let jobs = control.retry_failed(name).await.map_err(broker)?;
            ledger
                .record_queue_retry(name, jobs, &context)
                .await
                .map_err(&failed)?;
            Ok(Some(jobs))
        }
        QueueAction::Drain => {
            let jobs = control.drain(name).await.map_err(broker)?;
            ledger
                .record_queue_drain(name, jobs, &context)
                .await
                .map_err(&failed)?;
            Ok(Some(jobs))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use lightspeed_domain::access::Role;

    use super::*;
    use crate::session::SignedIn;

    /// Someone signed in with `role`, whose CSRF token is `token`.
    pub(crate) fn viewer(role: Role) -> Viewer {
        Viewer {
            session: SignedIn {
                session_id: uuid::Uuid::nil(),
                email: "someone@example.com".into(),
                started_at: chrono::DateTime::UNIX_EPOCH,
                csrf: "token".into(),
            },
            role,
            lang: Lang::En,
            theme: "auto",
            request_id: None,
        }
    }

    #[test]
    fn the_chart_has_a_bar_for_every_minute_of_the_hour() {
        let from = DateTime::from_timestamp(1_800_000_030, 0).expect("instant");
        let sampled_at = DateTime::from_timestamp(1_800_000_120, 0).expect("instant");
        let sample = QueueSample {
            queue: "payouts".into(),
            sampled_at,
            waiting: 7,
            active: 0,
            failed: 0,
            paused: false,
        };
        let slots = minute_slots(Lang::En, from, &[sample]);
        assert_eq!(slots.len(), 60);
        assert_eq!(slots[1], (format::ist_text(sampled_at), 7));
        assert_eq!(slots[0].1, 0);
        assert!(slots[0].0.ends_with("(no sample)"), "{:?}", slots[0]);
    }

    #[test]
    fn only_people_who_control_queues_see_the_changes() {
        let ops = action_links(&viewer(Role::Ops), "payouts", false).into_string();
        assert!(
            ops.contains("/console/queues/payouts/pause") && ops.contains("/drain"),
            "{ops}"
        );
        let paused = action_links(&viewer(Role::Admin), "payouts", true).into_string();
        assert!(
            paused.contains("/resume") && !paused.contains("/pause"),
            "{paused}"
        );
        for role in [Role::Auditor, Role::Finance] {
            assert_eq!(
                action_links(&viewer(role), "payouts", false).into_string(),
                ""
            );
        }
    }

    #[test]
    fn an_auditor_is_refused_every_change_of_these_pages_even_with_the_token() {
        let auditor = viewer(Role::Auditor);
        for action in [Action::ControlQueues, Action::MovePayouts, Action::Resend] {
            assert!(
                matches!(
                    auditor.authorize(action, "token"),
                    Err(Refusal::Forbidden(_))
                ),
                "{action:?}"
            );
        }
        assert!(
            viewer(Role::Ops)
                .authorize(Action::ControlQueues, "token")
                .is_ok()
        );
        assert!(matches!(
            viewer(Role::Ops).authorize(Action::ControlQueues, "forged"),
            Err(Refusal::Csrf(_))
        ));
    }
}
