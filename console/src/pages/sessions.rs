//! Sessions: who is signed in, and revoking a session (people managers only). A revocation is
//! an event on the session's stream, so every replica refuses the session at its next request.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use lightspeed_domain::access::Action;
use maud::{Markup, html};
use uuid::Uuid;

use crate::format::time;
use crate::i18n::Msg;
use crate::layout::page;
use crate::pages::sign_in::CsrfOnly;
use crate::session::decider::EndReason;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/sessions";

/// `GET /console/sessions`.
pub async fn list(State(console): State<Console>, viewer: Viewer) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    if !viewer.may(Action::ManagePeople) {
        return Err(Refusal::Forbidden(lang));
    }
    let sessions = console.sessions.open().await.map_err(unavailable(lang))?;
    let body = html! {
        div.table-wrap { table {
            thead { tr {
                th scope="col" { (lang.t(Msg::Email)) }
                th scope="col" { (lang.t(Msg::Started)) }
                th scope="col" { (lang.t(Msg::LastSeen)) }
                th scope="col" { (lang.t(Msg::Actions)) }
            } }
            tbody {
                @for row in &sessions {
                    tr {
                        td { (row.email) @if row.session_id == viewer.session.session_id { " ✓" } }
                        td { (time(row.started_at)) }
                        td { (time(row.last_seen_at)) }
                        td {
                            form.inline method="post" action={ (PATH) "/" (row.session_id) "/revoke" } {
                                input type="hidden" name="csrf" value=(viewer.session.csrf);
                                button.danger type="submit" aria-label={ (lang.t(Msg::Revoke)) " " (row.email) } { (lang.t(Msg::Revoke)) }
                            }
                        }
                    }
                }
            }
        } }
    };
    Ok(page(&viewer, PATH, lang.t(Msg::Sessions), body))
}

/// `POST /console/sessions/{id}/revoke`.
pub async fn revoke(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Refusal> {
    viewer.authorize(Action::ManagePeople, &form.csrf)?;
    let session_id: Uuid = id.parse().map_err(|_| Refusal::NotFound(viewer.lang))?;
    console
        .sessions
        .end(session_id, EndReason::Revoked, &viewer.actor())
        .await
        .map_err(unavailable(viewer.lang))?;
    Ok(Redirect::to(PATH).into_response())
}
