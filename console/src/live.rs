//! The console's live pages: each open Overview, Transactions or Gateways page follows one
//! Server-Sent Events stream (`GET /console/live/{page}`) of the process's [`Hub`], rendered as
//! HTML fragments that htmx's SSE extension swaps in (`hx-ext="sse"`, `sse-connect`,
//! `sse-swap`; no script of our own). A page is rendered with the hub's head as its stream's
//! `?after=`, so nothing published between its render and its stream's start is lost; a
//! reconnecting browser resumes with `Last-Event-ID`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
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
use crate::web::{Console, Refusal, Viewer};

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
        (LivePage::Transactions, LiveItem::Payment(payment)) => ("payment", live_row(payment)?),
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

/// Where a live page shows that it missed items; inside its `sse-connect` element.
pub fn live_reset() -> Markup {
    html! { div.live-reset role="status" sse-swap="reset" hx-swap="innerHTML" {} }
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

/// `GET /console/live/{page}`: the page's stream, for any signed-in person.
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
    sse_response(items, renderer, SseOptions::default())
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
        assert!(event.data.starts_with("<tr>"), "{}", event.data);
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
    fn a_page_shows_only_its_own_items_and_says_when_it_missed_some() {
        let failed = payment(PaymentChange::Failed { code: "X".into() });
        assert_eq!(render(LivePage::Transactions, Lang::En, &failed), None);
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
