//! The page shell: header with navigation, language and theme switches, who is signed in and
//! the sign-out button; the bare page for messages. A new page adds one line to [`NAV`].

use lightspeed_domain::access::Action;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::assets;
use crate::i18n::{Lang, Msg};
use crate::web::Viewer;

/// The navigation: label, path, and the action a role needs to see it (none: every role).
pub const NAV: &[(Msg, &str, Option<Action>)] = &[
    (Msg::Overview, "/console", None),
    (Msg::Merchants, "/console/merchants", None),
    (Msg::Gateways, "/console/gateways", None),
    (Msg::Transactions, "/console/transactions", None),
    (Msg::Queues, "/console/queues", None),
    (Msg::Commission, "/console/commission", None),
    (Msg::Whatsapp, "/console/whatsapp", None),
    (Msg::Deliveries, "/console/deliveries", None),
    (Msg::Refunds, "/console/refunds", None),
    (Msg::Alerts, "/console/alerts", None),
    (Msg::Audit, "/console/audit", None),
    (Msg::Projections, "/console/projections", None),
    (
        Msg::Sessions,
        "/console/sessions",
        Some(Action::ManagePeople),
    ),
];

/// htmx's settings: no inline styles or eval (the CSP allows neither), and error answers are
/// shown like any other page.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"responseHandling":[{"code":"204","swap":false},{"code":"...","swap":true}]}"#;

fn head(lang: Lang, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=(PreEscaped(HTMX_CONFIG));
            title { (title) " · " (lang.t(Msg::Console)) }
            link rel="stylesheet" href=(assets::css_path());
            script src=(assets::htmx_path()) defer {}
            script src=(assets::htmx_sse_path()) defer {}
        }
    }
}

/// A page of the console for `viewer`; `current` is the path of its navigation entry.
pub fn page(viewer: &Viewer, current: &str, title: &str, body: Markup) -> Markup {
    let lang = viewer.lang;
    html! {
        (DOCTYPE)
        html lang=(lang.code()) data-theme=(viewer.theme) {
            (head(lang, title))
            body hx-boost="true" {
                a.skip href="#content" { (lang.t(Msg::SkipToContent)) }
                (top_bar(viewer, current))
                main #content tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn top_bar(viewer: &Viewer, current: &str) -> Markup {
    let lang = viewer.lang;
    html! {
        header.top {
            a.brand href="/console" { (lang.t(Msg::Console)) }
            nav.main aria-label=(lang.t(Msg::MainNavigation)) {
                ul {
                    @for (label, path, needs) in NAV {
                        @if needs.is_none_or(|action| viewer.may(action)) {
                            li { a href=(path) aria-current=[(*path == current).then_some("page")] { (lang.t(*label)) } }
                        }
                    }
                }
            }
            div.prefs {
                (switches(viewer, current))
                span { (lang.t(Msg::SignedInAs)) " " strong { (viewer.session.email) } " (" (viewer.role.as_str()) ")" }
                form.inline method="post" action="/console/sign-out" {
                    input type="hidden" name="csrf" value=(viewer.session.csrf);
                    button.secondary type="submit" { (lang.t(Msg::SignOut)) }
                }
            }
        }
    }
}

fn switches(viewer: &Viewer, back: &str) -> Markup {
    let lang = viewer.lang;
    let link = |key: &str, value: &str| format!("/console/prefs?{key}={value}&back={back}");
    // Full navigations: the language and theme live on <html>, which a boosted swap keeps.
    html! {
        span hx-boost="false" aria-label=(lang.t(Msg::Language)) {
            a href=(link("lang", "en")) lang="en" aria-current=[(lang == Lang::En).then_some("true")] { "English" }
            " · "
            a href=(link("lang", "hi")) lang="hi" aria-current=[(lang == Lang::Hi).then_some("true")] { "हिन्दी" }
        }
        span hx-boost="false" aria-label=(lang.t(Msg::Theme)) {
            a href=(link("theme", "light")) aria-current=[(viewer.theme == "light").then_some("true")] { (lang.t(Msg::Light)) }
            " · "
            a href=(link("theme", "dark")) aria-current=[(viewer.theme == "dark").then_some("true")] { (lang.t(Msg::Dark)) }
        }
    }
}

/// A page with no navigation (sign-in, errors), in `lang`.
pub fn bare_page(lang: Lang, theme: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) data-theme=(theme) {
            (head(lang, title))
            body {
                main.signin #content {
                    h1 { (lang.t(Msg::Console)) }
                    (body)
                }
            }
        }
    }
}

/// A bare page saying one thing, with a way back.
pub fn message_page(lang: Lang, msg: Msg) -> Markup {
    bare_page(
        lang,
        "auto",
        lang.t(msg),
        html! {
            p.notice.bad role="alert" { (lang.t(msg)) }
            p { a href="/console" { (lang.t(Msg::Overview)) } " · " a href="/console/sign-in" { (lang.t(Msg::SignIn)) } }
        },
    )
}
