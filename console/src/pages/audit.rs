//! Audit log: every change people made, newest first, with filters (person, action, kind and
//! id of the thing, IST days), read from the audit read model as `GET /admin/audit-log` reads
//! it. The signed export of the log is `lightspeed audit export` (a file for the auditors'
//! tools), not a download here.

use axum::extract::{Query, State};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use lightspeed_domain::calendar::IST;
use lightspeed_projections::audit_log::{AuditEntry, AuditFilter};
use maud::{Markup, html};
use serde::Deserialize;

use crate::format::time;
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/audit";
/// Rows per step.
const PER_STEP: u32 = 50;

/// The filters and cursor.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    entity_type: Option<String>,
    entity_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

fn given(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn day(field: &Option<String>) -> Option<NaiveDate> {
    given(field).and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
}

/// The start of an IST day.
fn ist_start(day: NaiveDate) -> DateTime<Utc> {
    let local = day.and_time(NaiveTime::MIN);
    local
        .and_local_timezone(IST)
        .single()
        .map_or_else(|| local.and_utc(), |at| at.with_timezone(&Utc))
}

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            actor: given(&self.actor).map(|a| a.to_ascii_lowercase()),
            action: given(&self.action),
            entity_type: given(&self.entity_type),
            entity_id: given(&self.entity_id),
            from: day(&self.from).map(ist_start),
            to: day(&self.to).and_then(|d| d.succ_opt()).map(ist_start),
            limit: PER_STEP,
        }
    }

    fn older_link(&self, cursor: &str) -> String {
        let fields = [
            ("actor", given(&self.actor)),
            ("action", given(&self.action)),
            ("entity_type", given(&self.entity_type)),
            ("entity_id", given(&self.entity_id)),
            ("from", day(&self.from).map(|d| d.to_string())),
            ("to", day(&self.to).map(|d| d.to_string())),
        ];
        crate::web::filtered_link(PATH, &fields, ("cursor", cursor))
    }
}

/// `GET /console/audit`.
pub async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    Query(query): Query<AuditQuery>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let cursor = given(&query.cursor);
    let step = lightspeed_projections::audit_log::list(
        console.app.pool(),
        &query.filter(),
        cursor.as_deref(),
    )
    .await
    .map_err(unavailable(lang))?;
    let body = html! {
        (filters(lang, &query))
        p.muted { (lang.t(Msg::AuditExportHint)) }
        @if step.items.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
        @else {
            div.table-wrap { table #audit {
                thead { tr {
                    th scope="col" { (lang.t(Msg::Time)) }
                    th scope="col" { (lang.t(Msg::Actor)) }
                    th scope="col" { (lang.t(Msg::EventType)) }
                    th scope="col" { (lang.t(Msg::Subject)) }
                    th scope="col" { (lang.t(Msg::Details)) }
                } }
                tbody { @for entry in &step.items { (row(lang, entry)) } }
            } }
        }
        @if let Some(next) = &step.next_cursor { p { a href=(query.older_link(next)) { (lang.t(Msg::Older)) " →" } } }
    };
    Ok(page(&viewer, PATH, lang.t(Msg::Audit), body))
}

fn filters(lang: Lang, query: &AuditQuery) -> Markup {
    html! {
        form.filters method="get" action=(PATH) role="search" {
            label { (lang.t(Msg::Actor)) input type="email" name="actor" value=[given(&query.actor)]; }
            label { (lang.t(Msg::EventType)) input name="action" value=[given(&query.action)]; }
            label { (lang.t(Msg::Kind)) input name="entity_type" value=[given(&query.entity_type)] size="12"; }
            label { (lang.t(Msg::Subject)) input name="entity_id" value=[given(&query.entity_id)]; }
            label { (lang.t(Msg::FromDay)) input type="date" name="from" value=[day(&query.from)]; }
            label { (lang.t(Msg::ToDay)) input type="date" name="to" value=[day(&query.to)]; }
            button type="submit" { (lang.t(Msg::Search)) }
        }
    }
}

fn row(lang: Lang, entry: &AuditEntry) -> Markup {
    html! {
        tr {
            td { (time(entry.at)) }
            td { (entry.actor) }
            td { code { (entry.action) } }
            td { code { (entry.entity_type) "-" (entry.entity_id) } }
            td {
                details {
                    summary { (lang.t(Msg::Details)) }
                    @if let Some(before) = &entry.before { p { (lang.t(Msg::Before)) } pre.mono { (before.to_string()) } }
                    p { (lang.t(Msg::After)) }
                    pre.mono { (entry.after.to_string()) }
                }
            }
        }
    }
}
