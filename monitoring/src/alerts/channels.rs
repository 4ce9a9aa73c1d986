//! Where ops hear of an alert: Slack, email over SMTP, WhatsApp to ops numbers, and a generic
//! webhook signed as the merchant webhooks are (Standard Webhooks). Which kinds go where is
//! [`AlertRoutes`]. Only the evaluator that recorded a change tells people of it, so each change
//! is sent once; a channel that fails is logged (without its URL or credentials) and dropped:
//! the alert is in the log and at `GET /admin/alerts` either way.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lightspeed_adapters::mailer::{Mail, Mailer};
use lightspeed_adapters::merchant_webhook::{WebhookSecret, sign};
use lightspeed_adapters::whatsapp::{TemplateMessage, WhatsAppProvider};
use lightspeed_domain::ops_alert::AlertKind;

/// Longest list of email recipients or WhatsApp numbers one alert goes to.
pub const MAX_RECIPIENTS: usize = 20;

/// A channel an alert can go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// The Slack incoming webhook.
    Slack,
    /// Email to the ops addresses.
    Email,
    /// WhatsApp to the ops numbers.
    Whatsapp,
    /// The signed generic webhook.
    Webhook,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 4] = [
        Channel::Slack,
        Channel::Email,
        Channel::Whatsapp,
        Channel::Webhook,
    ];

    /// The name routes use.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Slack => "slack",
            Channel::Email => "email",
            Channel::Whatsapp => "whatsapp",
            Channel::Webhook => "webhook",
        }
    }

    fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// Which alert kinds go to which channels: `kind=channel,channel;…`, with `*` for every kind not
/// named, e.g. `payment_failed=slack;gateway_limit_reached=slack,email,whatsapp;*=slack,email`.
/// A kind with no entry and no `*` goes to every configured channel (the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertRoutes {
    by_kind: BTreeMap<&'static str, BTreeSet<Channel>>,
    otherwise: Option<BTreeSet<Channel>>,
}

impl AlertRoutes {
    /// Parses the routes; refuses an unknown kind or channel by name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut routes = AlertRoutes::default();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (kind, channels) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not kind=channel,…"))?;
            let channels = channels
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| Channel::parse(c).ok_or_else(|| format!("unknown channel {c:?}")))
                .collect::<Result<BTreeSet<_>, _>>()?;
            match kind.trim() {
                "*" => routes.otherwise = Some(channels),
                name => {
                    let kind = AlertKind::parse(name)
                        .ok_or_else(|| format!("unknown alert kind {name:?}"))?;
                    routes.by_kind.insert(kind.as_str(), channels);
                }
            }
        }
        Ok(routes)
    }

    /// Whether alerts of `kind` go to `channel`.
    pub fn sends(&self, kind: AlertKind, channel: Channel) -> bool {
        match (self.by_kind.get(kind.as_str()), &self.otherwise) {
            (Some(channels), _) | (None, Some(channels)) => channels.contains(&channel),
            (None, None) => true,
        }
    }
}

/// Email to ops.
#[derive(Debug, Clone)]
pub struct EmailChannel {
    /// The configured mailer.
    pub mailer: Mailer,
    /// The ops addresses (at most [`MAX_RECIPIENTS`] are used).
    pub to: Vec<String>,
}

/// WhatsApp to ops numbers: one approved template whose body takes the alert's state, kind and
/// summary as `{{1}}`, `{{2}}`, `{{3}}`.
#[derive(Clone)]
pub struct WhatsappChannel {
    /// The provider (the one the WhatsApp worker uses).
    pub provider: Arc<dyn WhatsAppProvider>,
    /// The ops numbers, international format (at most [`MAX_RECIPIENTS`] are used).
    pub numbers: Vec<String>,
    /// The template's name (Meta) or id (Gupshup).
    pub template: String,
    /// The template's language.
    pub language: String,
}

/// The signed generic webhook.
#[derive(Debug, Clone)]
pub struct WebhookChannel {
    /// Where alerts are posted.
    pub url: String,
    /// The `whsec_…` secret the receiver verifies with.
    pub secret: WebhookSecret,
}

/// Every channel configured, and the routes.
#[derive(Clone, Default)]
pub struct Channels {
    /// The Slack incoming webhook URL.
    pub slack_url: Option<String>,
    /// Email.
    pub email: Option<EmailChannel>,
    /// WhatsApp.
    pub whatsapp: Option<WhatsappChannel>,
    /// The generic webhook.
    pub webhook: Option<WebhookChannel>,
    /// Which kinds go where.
    pub routes: AlertRoutes,
}

/// What happened to an alert, as told to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The alert's key.
    pub key: String,
    /// Its kind.
    pub kind: &'static str,
    /// `raised` or `resolved`.
    pub state: &'static str,
    /// For people.
    pub summary: String,
    /// When it was decided.
    pub at: DateTime<Utc>,
}

impl Notice {
    fn line(&self) -> String {
        let mark = if self.state == "raised" {
            ":rotating_light:"
        } else {
            ":white_check_mark:"
        };
        format!("{mark} {} {}: {}", self.kind, self.state, self.summary)
    }

    /// The webhook's body: `{"type": "ops_alert.<state>", "timestamp": …, "data": {…}}`.
    pub fn webhook_body(&self) -> serde_json::Value {
        serde_json::json!({
            "type": format!("ops_alert.{}", self.state),
            "timestamp": self.at,
            "data": {
                "key": self.key,
                "kind": self.kind,
                "state": self.state,
                "summary": self.summary,
                "at": self.at,
            },
        })
    }

    /// The webhook's `webhook-id`: the same for a change sent again, so receivers can drop it.
    pub fn webhook_id(&self) -> String {
        format!(
            "ops_alert.{}.{}.{}",
            self.key,
            self.state,
            self.at.timestamp_millis()
        )
    }
}

impl Channels {
    /// Whether any channel is configured.
    pub fn any(&self) -> bool {
        self.slack_url.is_some()
            || self.email.is_some()
            || self.whatsapp.is_some()
            || self.webhook.is_some()
    }

    /// Tells every channel `kind` is routed to of `notice`.
    pub async fn send(&self, http: &reqwest::Client, kind: AlertKind, notice: &Notice) {
        let routed = |channel| self.routes.sends(kind, channel);
        if let Some(url) = self.slack_url.as_deref().filter(|_| routed(Channel::Slack)) {
            let sent = http
                .post(url)
                .json(&serde_json::json!({ "text": notice.line() }))
                .send()
                .await;
            report("Slack", sent);
        }
        if let Some(email) = self.email.as_ref().filter(|_| routed(Channel::Email)) {
            for to in email.to.iter().take(MAX_RECIPIENTS) {
                let mail = Mail {
                    to: to.clone(),
                    subject: format!("[LightSpeed] {} {}", notice.kind, notice.state),
                    text: format!(
                        "{}\n\nAlert: {}\nState: {}\nAt: {}\n",
                        notice.summary,
                        notice.key,
                        notice.state,
                        notice.at.to_rfc3339()
                    ),
                };
                if let Err(e) = email.mailer.send(&mail).await {
                    tracing::warn!(error = %e, "cannot email an alert");
                }
            }
        }
        if let Some(wa) = self.whatsapp.as_ref().filter(|_| routed(Channel::Whatsapp)) {
            for number in wa.numbers.iter().take(MAX_RECIPIENTS) {
                let message = TemplateMessage {
                    to: number.clone(),
                    template: wa.template.clone(),
                    language: wa.language.clone(),
                    body_params: vec![
                        notice.state.to_owned(),
                        notice.kind.to_owned(),
                        notice.summary.clone(),
                    ],
                    button_url_param: None,
                };
                if let Err(e) = wa.provider.send_template(&message).await {
                    tracing::warn!(error = %e, "cannot send an alert by WhatsApp");
                }
            }
        }
        if let Some(hook) = self.webhook.as_ref().filter(|_| routed(Channel::Webhook)) {
            let body = notice.webhook_body().to_string();
            let headers = sign(
                &hook.secret,
                &[],
                &notice.webhook_id(),
                Utc::now().timestamp(),
                body.as_bytes(),
            );
            let mut request = http
                .post(&hook.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            for (name, value) in headers.pairs() {
                request = request.header(name, value);
            }
            report("the alert webhook", request.body(body).send().await);
        }
    }
}

fn report(channel: &str, sent: Result<reqwest::Response, reqwest::Error>) {
    match sent {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => {
            tracing::warn!(
                channel,
                status = response.status().as_u16(),
                "an alert channel refused an alert"
            )
        }
        Err(e) => tracing::warn!(channel, error = %e.without_url(), "cannot post an alert"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_kinds_and_a_default_and_refuse_what_they_do_not_know() {
        let routes = AlertRoutes::parse(
            "payment_failed=slack; gateway_limit_reached=email,whatsapp;*=webhook",
        )
        .expect("routes");
        assert!(routes.sends(AlertKind::PaymentFailed, Channel::Slack));
        assert!(!routes.sends(AlertKind::PaymentFailed, Channel::Email));
        assert!(routes.sends(AlertKind::GatewayLimitReached, Channel::Whatsapp));
        assert!(!routes.sends(AlertKind::GatewayLimitReached, Channel::Slack));
        assert!(routes.sends(AlertKind::RelayLag, Channel::Webhook));
        assert!(!routes.sends(AlertKind::RelayLag, Channel::Slack));
        let everything = AlertRoutes::parse("").expect("empty");
        assert!(
            Channel::ALL
                .into_iter()
                .all(|c| everything.sends(AlertKind::QueueBacklog, c))
        );
        assert!(AlertRoutes::parse("nope=slack").is_err());
        assert!(AlertRoutes::parse("relay_lag=pager").is_err());
        assert!(AlertRoutes::parse("relay_lag").is_err());
    }
}
