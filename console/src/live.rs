//! The console's live pages: each open Overview, Transactions or Gateways page follows one
//! Server-Sent Events stream (`GET /console/live/{page}`) of the process's [`Hub`], rendered as
//! HTML fragments that htmx's SSE extension swaps in (`hx-ext="sse"`, `sse-connect`,
//! `sse-swap`; no script of our own). A page is rendered with the hub's head as its stream's
//! `?after=`, so nothing published between its render and its stream's start is lost; a
//! reconnecting browser resumes with `Last-Event-ID`.

use std::time::{Duration, Instant};

use axum::body::{Body, BodyDataStream};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use lightspeed_live::{
    GatewayChange, GatewayItem, Hub, LiveItem, Renderer, SseEvent, SseOptions, Topic, resume_point,
    sse_response,
};
use maud::{Markup, html};
use serde::Deserialize;

use crate::format::time;
use crate::i18n::{Lang, Msg};
use crate::pages::overview::{QueueRow, alert_item, lag_rows, queue_rows};
use crate::pages::transactions::live_row;
use crate::session::SessionFailure;
use crate::web::{Console, Refusal, SESSION_COOKIE, Viewer, cookie};

/// A page that follows the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivePage {
    /// Queue stats, projection lag, alerts.
    Overview,
    /// Payments initiated.
    Transactions,
    /// Gateway health changes.
    Gateways,
}

impl LivePage {
    const ALL: [LivePage; 3] = [
        LivePage::Overview,
        LivePage::Transactions,
        LivePage::Gateways,
    ];

    /// Its name in the stream's path.
    fn name(self) -> &'static str {
        match self {
            LivePage::Overview => "overview",
            LivePage::Transactions => "transactions",
            LivePage::Gateways => "gateways",
        }
    }

    /// The topics its one stream follows.
    fn topics(self) -> &'static [Topic] {
        match self {
            LivePage::Overview => &[Topic::QueueStats, Topic::ProjectionLag, Topic::Alerts],
            LivePage::Transactions => &[Topic::Transactions],
            LivePage::Gateways => &[Topic::GatewayHealth],
        }
    }

    /// The stream a page rendered now follows: from the hub's present head.
    pub fn stream_url(self, hub: &Hub) -> String {
        format!("/console/live/{}?after={}", self.name(), hub.head())
    }
}

/// Every live page's renderer in every language, made once per console so an item is rendered
/// once per page kind and language however many pages show it.
pub struct Renderers(Vec<(LivePage, Lang, Renderer)>);

impl Renderers {
    /// The renderers of every page and language.
    pub fn new() -> Self {
        let mut renderers = Vec::new();
        for page in LivePage::ALL {
            for lang in [Lang::En, Lang::Hi] {
                let renderer = Renderer::new(move |item| render(page, lang, item));
                renderers.push((page, lang, renderer));
            }
        }
        Renderers(renderers)
    }

    fn of(&self, page: LivePage, lang: Lang) -> Renderer {
        self.0
            .iter()
            .find(|(p, l, _)| *p == page && *l == lang)
            .map(|(_, _, renderer)| renderer.clone())
            .unwrap_or_else(|| Renderer::new(move |item| render(page, lang, item)))
    }
}

impl Default for Renderers {
    fn default() -> Self {
        Self::new()
    }
}

/// An item as `page` shows it in `lang`: the event name its `sse-swap` listens for and the
/// fragment swapped in; `None` for what the page does not show.
fn render(page: LivePage, lang: Lang, item: &LiveItem) -> Option<SseEvent> {
    let (name, fragment) = match (page, item) {
        (_, LiveItem::Reset) => ("reset", missed(lang)),
        (LivePage::Transactions, LiveItem::Payment(payment)) => {
            let (name, fragment) = live_row(payment)?;
            return Some(SseEvent::new(name, fragment.into_string()));
        }
        (LivePage::Overview, LiveItem::QueueStats(stats)) => {
            let rows: Vec<QueueRow> = stats
                .queues
                .iter()
                .map(|q| QueueRow {
                    name: q.queue.clone(),
                    figures: Some((q.waiting, q.active, q.failed)),
                    paused: q.paused,
                })
                .collect();
            ("queue_stats", queue_rows(lang, &rows))
        }
        (LivePage::Overview, LiveItem::ProjectionLag(lag)) => {
            let projections: Vec<_> = lag
                .projections
                .iter()
                .map(|p| (p.projection.clone(), p.lag_events, p.lag_ms))
                .collect();
            let relay = lag.relay_events.zip(lag.relay_ms);
            ("projection_lag", lag_rows(lang, &projections, relay))
        }
        (LivePage::Overview, LiveItem::Alert(alert)) => ("alert", alert_item(lang, alert)),
        (LivePage::Gateways, LiveItem::GatewayHealth(gateway)) => {
            ("gateway_health", gateway_change(gateway))
        }
        _ => return None,
    };
    Some(SseEvent::new(name, fragment.into_string()))
}

/// What a page shows when it missed items the hub no longer holds.
fn missed(lang: Lang) -> Markup {
    html! { p.notice.bad role="alert" { a href="" { (lang.t(Msg::LiveMissed)) } } }
}

/// Where a live page shows that it missed items or that its session ended; inside its
/// `sse-connect` element, which carries `sse-close=` [`SIGNED_OUT_EVENT`].
pub fn live_reset() -> Markup {
    html! {
        div.live-reset role="status" sse-swap="reset" hx-swap="innerHTML" {}
        div.live-signed-out role="alert" sse-swap=(SIGNED_OUT_EVENT) hx-swap="innerHTML" {}
    }
}

/// A gateway's health change, as the Gateways page lists it.
pub(crate) fn gateway_change(gateway: &GatewayItem) -> Markup {
    let (class, what) = match &gateway.change {
        GatewayChange::Registered { label, .. } => ("badge ok", format!("registered: {label}")),
        GatewayChange::Toggled { enabled: true } => ("badge ok", "enabled".to_owned()),
        GatewayChange::Toggled { enabled: false } => ("badge warn", "disabled".to_owned()),
        GatewayChange::TemporarilyFailed { reason, .. } => {
            ("badge bad", format!("resting: {reason}"))
        }
        GatewayChange::Recovered => ("badge ok", "recovered".to_owned()),
        GatewayChange::Retired => ("badge warn", "retired".to_owned()),
    };
    html! {
        li {
            code { (gateway.gateway_id) } " " span class=(class) { (what) } " · " (time(gateway.at))
        }
    }
}

/// Where a reconnecting page resumes when it sends no `Last-Event-ID`.
#[derive(Debug, Deserialize)]
pub struct Resume {
    after: Option<String>,
}

/// Longest time an open stream goes without rechecking its session.
const SESSION_RECHECK: Duration = Duration::from_secs(5);
/// Shortest time between two rechecks when items keep coming.
const SESSION_RECHECK_ON_ITEMS: Duration = Duration::from_secs(1);

/// The event a live page gets when its session ended (signed out elsewhere, revoked, idle or
/// too old, or the person's access changed); its `sse-close` closes the page's stream.
pub const SIGNED_OUT_EVENT: &str = "signed_out";

/// What a live page shows when its session ended: the stream's last frame.
fn signed_out_frame(lang: Lang) -> Bytes {
    let notice = html! {
        p.notice.bad { a href="/console/sign-in" { (lang.t(Msg::SignedOutLive)) } }
    };
    Bytes::from(format!(
        "event: {SIGNED_OUT_EVENT}\ndata: {}\n\n",
        notice.into_string()
    ))
}

/// A page's stream, rechecking its session every [`SESSION_RECHECK`] and, while items keep
/// coming, at most every [`SESSION_RECHECK_ON_ITEMS`]; once the session no longer holds, the
/// stream sends [`SIGNED_OUT_EVENT`] and ends.
struct Watched {
    frames: BodyDataStream,
    console: Console,
    cookie: String,
    lang: Lang,
    checked_at: Instant,
    ended: bool,
}

impl Watched {
    async fn next_frame(&mut self) -> Option<Result<Bytes, axum::Error>> {
        loop {
            if self.ended {
                return None;
            }
            let wait = SESSION_RECHECK.saturating_sub(self.checked_at.elapsed());
            let frame = tokio::time::timeout(wait, self.frames.next()).await;
            let due = match frame {
                Err(_) => true,
                Ok(_) => self.checked_at.elapsed() >= SESSION_RECHECK_ON_ITEMS,
            };
            if due {
                self.checked_at = Instant::now();
                if !still_signed_in(&self.console, &self.cookie).await {
                    self.ended = true;
                    return Some(Ok(signed_out_frame(self.lang)));
                }
            }
            match frame {
                Err(_) => continue,
                Ok(None) => return None,
                Ok(Some(frame)) => return Some(frame),
            }
        }
    }
}

/// Whether the session of `cookie` and the person's access still hold; a failed read keeps
/// the stream (the next page request decides).
async fn still_signed_in(console: &Console, cookie: &str) -> bool {
    let session = match console.sessions.recheck(cookie).await {
        Ok(session) => session,
        Err(SessionFailure::Store(reason)) => {
            tracing::warn!(%reason, "live stream could not recheck its session");
            return true;
        }
        Err(_) => return false,
    };
    match crate::people::session_role(
        &console.app.ledger,
        &session.email,
        &session.session_id.to_string(),
        session.started_at,
    )
    .await
    {
        Ok(role) => role.is_some(),
        Err(reason) => {
            tracing::warn!(%reason, "live stream could not recheck the person's access");
            true
        }
    }
}

/// `GET /console/live/{page}`: the page's stream, for any signed-in person, as long as they
/// stay signed in.
pub async fn stream(
    State(console): State<Console>,
    viewer: Result<Viewer, Refusal>,
    Path(page): Path<String>,
    Query(resume): Query<Resume>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer {
        Ok(viewer) => viewer,
        // A stream is not a page: no redirect to the sign-in form, which EventSource would
        // read as a broken stream and retry.
        Err(Refusal::SignIn) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(refusal) => return refusal.into_response(),
    };
    let Some(page) = LivePage::ALL.into_iter().find(|p| p.name() == page) else {
        return Refusal::NotFound(viewer.lang).into_response();
    };
    let after = resume_point(&headers, resume.after.as_deref());
    let items = console.hub.subscribe(page.topics(), after.as_deref());
    let renderer = console.renderers.of(page, viewer.lang);
    let response = sse_response(items, renderer, SseOptions::default());
    watched(&console, &headers, viewer.lang, response)
}

/// `response`, a live stream, ended with [`SIGNED_OUT_EVENT`] once the session of the request
/// (its `headers`' cookie) no longer holds.
pub(crate) fn watched(
    console: &Console,
    headers: &HeaderMap,
    lang: Lang,
    response: Response,
) -> Response {
    let Some(cookie) = cookie(headers, SESSION_COOKIE) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let (parts, body) = response.into_parts();
    let watched = Watched {
        frames: body.into_data_stream(),
        console: console.clone(),
        cookie,
        lang,
        checked_at: Instant::now(),
        ended: false,
    };
    let frames = futures::stream::unfold(watched, |mut watched| async move {
        watched.next_frame().await.map(|frame| (frame, watched))
    });
    Response::from_parts(parts, Body::from_stream(frames))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use lightspeed_domain::{Currency, Paise};
    use lightspeed_live::{PaymentChange, PaymentItem};

    use super::*;

    fn payment(change: PaymentChange) -> LiveItem {
        LiveItem::Payment(PaymentItem {
            payment_id: "0190-pay".into(),
            change,
            at: chrono::Utc.with_ymd_and_hms(2026, 12, 8, 10, 0, 0).unwrap(),
        })
    }

    fn initiated() -> LiveItem {
        payment(PaymentChange::Initiated {
            merchant_id: "00000000-0000-0000-0000-000000000001".parse().unwrap(),
            amount: Paise(12_345_678),
            currency: Currency::Inr,
            merchant_order_id: "order-<7>".into(),
            gateway_id: "00000000-0000-0000-0000-000000000002".parse().unwrap(),
        })
    }

    #[test]
    fn a_new_payment_is_a_row_written_as_the_page_writes_it() {
        let event = render(LivePage::Transactions, Lang::En, &initiated()).unwrap();
        assert_eq!(event.name, "payment");
        assert!(
            event.data.starts_with("<tr data-payment=\"0190-pay\">"),
            "{}",
            event.data
        );
        assert!(
            event.data.contains("sse-swap=\"status-0190-pay\""),
            "{}",
            event.data
        );
        assert!(event.data.contains("₹1,23,456.78"), "{}", event.data);
        assert!(event.data.contains("15:30:00 IST"), "{}", event.data);
        assert!(
            event.data.contains("order-&lt;7&gt;"),
            "escaped: {}",
            event.data
        );
        assert!(
            event.data.contains("/console/transactions/0190-pay"),
            "{}",
            event.data
        );
    }

    #[test]
    fn a_status_change_replaces_the_status_of_its_row_only() {
        let failed = payment(PaymentChange::Failed { code: "X".into() });
        let event = render(LivePage::Transactions, Lang::En, &failed).unwrap();
        assert_eq!(event.name, "status-0190-pay");
        assert!(event.data.contains("failed"), "{}", event.data);
        let paid = payment(PaymentChange::Succeeded {
            amount: Paise(10_000),
            commission: Paise(350),
        });
        let event = render(LivePage::Transactions, Lang::En, &paid).unwrap();
        assert_eq!(event.name, "status-0190-pay");
        assert!(event.data.contains("succeeded"), "{}", event.data);
        assert!(
            event
                .data
                .contains("id=\"commission-0190-pay\" hx-swap-oob=\"true\""),
            "{}",
            event.data
        );
        assert!(event.data.contains("₹3.50"), "{}", event.data);
        let refund = payment(PaymentChange::RefundRequested { amount: Paise(100) });
        assert_eq!(render(LivePage::Transactions, Lang::En, &refund), None);
    }

    #[test]
    fn signed_out_is_one_closing_event_in_the_persons_language() {
        let frame = String::from_utf8(signed_out_frame(Lang::Hi).to_vec()).unwrap();
        assert!(frame.starts_with("event: signed_out\ndata: "), "{frame}");
        assert!(frame.ends_with("\n\n"), "{frame}");
        assert_eq!(frame.matches('\n').count(), 3, "one data line: {frame}");
        assert!(frame.contains(Lang::Hi.t(Msg::SignedOutLive)), "{frame}");
    }

    #[test]
    fn a_page_shows_only_its_own_items_and_says_when_it_missed_some() {
        let failed = payment(PaymentChange::Failed { code: "X".into() });
        assert_eq!(render(LivePage::Overview, Lang::En, &failed), None);
        assert_eq!(render(LivePage::Overview, Lang::En, &initiated()), None);
        assert_eq!(render(LivePage::Gateways, Lang::En, &initiated()), None);
        let reset = render(LivePage::Overview, Lang::Hi, &LiveItem::Reset).unwrap();
        assert_eq!(reset.name, "reset");
        assert!(
            reset.data.contains(Lang::Hi.t(Msg::LiveMissed)),
            "{}",
            reset.data
        );
    }
}
