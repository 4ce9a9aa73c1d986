//! Projections: every version not dropped, with its state, checkpoint and lag behind the log,
//! as `GET /admin/projections` reads them. A version being rebuilt shows how many events it has
//! applied so far. Rebuilds run from `lightspeed projections rebuild`, not from this page: a
//! rebuild replays the whole log in large batches, which belongs in its own process rather
//! than beside the API's requests.

use axum::extract::State;
use lightspeed_projections::status::ProjectionStatus;
use maud::{Markup, html};

use crate::format::time;
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/projections";

/// `GET /console/projections`.
pub async fn list(State(console): State<Console>, viewer: Viewer) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let versions = lightspeed_projections::status::all(console.app.pool())
        .await
        .map_err(unavailable(lang))?;
    let body = html! {
        p.muted { (lang.t(Msg::RebuildHint)) }
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
                } }
                tbody { @for v in &versions { (row(lang, v)) } }
            } }
        }
    };
    Ok(page(&viewer, PATH, lang.t(Msg::Projections), body))
}

fn row(lang: Lang, v: &ProjectionStatus) -> Markup {
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
        }
    }
}
