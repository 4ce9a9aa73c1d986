//! The WhatsApp log and usage. Email notifications share the `notification` streams and are
//! left out: every event names its channel.
//!
//! - `read.whatsapp_log`: every WhatsApp notification: merchant, type, template, recipient, template
//!   parameters (`payload`), status, attempts, last error, provider message id, timestamps.
//! - `read.whatsapp_usage`: per merchant, IST day and template: notifications queued (and
//!   requeued), sent and given up, each counted on the IST day it happened.
//! - `read.whatsapp_standing`: per IST day of first queueing and notification type: how many of
//!   those notifications are queued, sent and given up on now (each moves as its status does).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures::future::BoxFuture;
use lightspeed_domain::notification::{Channel, NotificationEvent};
use lightspeed_domain::{Decider, Notification};
use lightspeed_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::pagination::{Page, PageRequest, escape_like, into_page};
use crate::projection::{
    Projection, RowCache, RowChange, add_counts, facts_of, ist_day, serde_name,
};

/// Longest usage report, in days.
pub const MAX_USAGE_DAYS: u32 = 366;

/// The WhatsApp projection (`whatsapp_log`, `whatsapp_usage`, `whatsapp_standing`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Whatsapp;

/// One notification, as `read.whatsapp_log` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsappMessage {
    /// The notification.
    pub notification_id: Uuid,
    /// The merchant (client) it is for.
    pub merchant_id: Uuid,
    /// `LOW_BALANCE`, `TXN_UPDATE`, `PAYOUT_UPDATE` or `ACCOUNT_STATUS`.
    pub notification_type: String,
    /// The WhatsApp template.
    pub template: String,
    /// The recipient's number.
    pub recipient: String,
    /// The template parameters, as a JSON array.
    pub payload: serde_json::Value,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    /// Attempts since it was (re)queued.
    pub attempts: i32,
    /// Attempts allowed since it was (re)queued.
    pub attempt_limit: i32,
    /// The last provider error code.
    pub last_error_code: Option<String>,
    /// The last provider error message.
    pub last_error_message: Option<String>,
    /// The provider's message id, once sent.
    pub provider_message_id: Option<String>,
    /// When the next attempt is due, while queued.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was first queued.
    pub queued_at: DateTime<Utc>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was given up on.
    pub failed_at: Option<DateTime<Utc>>,
    /// When the last event changing this row happened.
    pub updated_at: DateTime<Utc>,
}

/// One merchant's messages of one template on one IST day, as `read.whatsapp_usage` holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsappUsageDay {
    /// The merchant.
    pub merchant_id: Uuid,
    /// The IST day.
    pub day: NaiveDate,
    /// The template.
    pub template: String,
    /// Notifications queued or requeued.
    pub queued: i64,
    /// Notifications sent.
    pub sent: i64,
    /// Notifications given up on.
    pub failed: i64,
}

// The template parameters are `json`, kept as the text written: the log only shows and
// searches them, and parsing them into `jsonb` on every write bought nothing.
const DDL: &str = "
CREATE TABLE {s}.whatsapp_log (
    notification_id      uuid PRIMARY KEY,
    merchant_id          uuid NOT NULL,
    notification_type    text NOT NULL,
    template             text NOT NULL,
    recipient            text NOT NULL,
    payload              json NOT NULL,
    status               text NOT NULL,
    attempts             integer NOT NULL,
    attempt_limit        integer NOT NULL,
    last_error_code      text,
    last_error_message   text,
    provider_message_id  text,
    next_attempt_at      timestamptz,
    queued_at            timestamptz NOT NULL,
    sent_at              timestamptz,
    failed_at            timestamptz,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX ON {s}.whatsapp_log (merchant_id, queued_at DESC);
CREATE INDEX ON {s}.whatsapp_log (status, queued_at DESC);
CREATE INDEX ON {s}.whatsapp_log (queued_at DESC, notification_id);
CREATE TABLE {s}.whatsapp_usage (
    merchant_id  uuid NOT NULL,
    day          date NOT NULL,
    template     text NOT NULL,
    queued       bigint NOT NULL,
    sent         bigint NOT NULL,
    failed       bigint NOT NULL,
    PRIMARY KEY (merchant_id, day, template)
);
CREATE TABLE {s}.whatsapp_standing (
    day                date NOT NULL,
    notification_type  text NOT NULL,
    queued             bigint NOT NULL,
    sent               bigint NOT NULL,
    failed             bigint NOT NULL,
    PRIMARY KEY (day, notification_type)
);
";

impl Projection for Whatsapp {
    fn name(&self) -> &'static str {
        "whatsapp"
    }

    fn layout(&self) -> i32 {
        3
    }

    fn categories(&self) -> Option<&'static [&'static str]> {
        Some(&[<Notification as Decider>::CATEGORY])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["whatsapp_log", "whatsapp_usage", "whatsapp_standing"]
    }

    fn create_tables(&self, schema: &str) -> String {
        DDL.replace("{s}", schema)
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        schema: &'a str,
        events: &'a [RecordedEvent],
        rows: &'a mut RowCache,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, schema, events, rows))
    }
}

fn count(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// Usage counted by a batch, per merchant, IST day and template, before it is added to the
/// stored counts.
type UsageDays = BTreeMap<(Uuid, NaiveDate, String), WhatsappUsageDay>;

async fn apply(
    conn: &mut PgConnection,
    schema: &str,
    events: &[RecordedEvent],
    rows: &mut RowCache,
) -> Result<(), ProjectionError> {
    // Email notifications share the stream category; this read model is WhatsApp's log.
    let changes: Vec<_> =
        facts_of::<NotificationEvent>(events, <Notification as Decider>::CATEGORY)?
            .into_iter()
            .filter(|(_, _, event)| event.channel() == Channel::Whatsapp)
            .map(|(id, recorded, event)| (id, recorded, WhatsappMessage::of(event)))
            .collect();
    let messages = rows
        .load(
            conn,
            schema,
            "whatsapp_log",
            "notification_id",
            changes
                .iter()
                .map(|(notification_id, _, change)| (*notification_id, change.creates())),
            |row: &WhatsappMessage| row.notification_id,
        )
        .await?;
    let mut usage = UsageDays::new();
    let mut standing = Standing::new();
    for (notification_id, recorded, change) in changes {
        match change {
            RowChange::Created(row) => {
                tally(&mut usage, &row, row.queued_at).queued += 1;
                stand(&mut standing, &row, 1);
                messages.insert(row.notification_id, row);
            }
            RowChange::Changed(event) => {
                let row = messages.existing(notification_id, recorded)?;
                stand(&mut standing, row, -1);
                row.apply(event, &mut usage);
                stand(&mut standing, row, 1);
            }
        }
    }
    add_usage(conn, schema, &usage).await?;
    add_standing(conn, schema, &standing).await
}

/// How a batch moved notifications between statuses, per IST day of first queueing and type.
type Standing = BTreeMap<(NaiveDate, String), WhatsappCounts>;

/// Counts `row` (`by` 1) or uncounts it (`by` -1) under its status.
fn stand(standing: &mut Standing, row: &WhatsappMessage, by: i64) {
    let counts = standing
        .entry((ist_day(row.queued_at), row.notification_type.clone()))
        .or_default();
    match row.status.as_str() {
        "sent" => counts.sent += by,
        "failed" => counts.failed += by,
        _ => counts.queued += by,
    }
}

/// One IST day's and type's counts, as `read.whatsapp_standing` holds them.
#[derive(Serialize)]
struct StandingRow<'a> {
    day: NaiveDate,
    notification_type: &'a str,
    #[serde(flatten)]
    counts: WhatsappCounts,
}

/// Adds a batch's moves to the stored standing, in one statement.
async fn add_standing(
    conn: &mut PgConnection,
    schema: &str,
    standing: &Standing,
) -> Result<(), ProjectionError> {
    let rows: Vec<StandingRow<'_>> = standing
        .iter()
        .filter(|(_, counts)| **counts != WhatsappCounts::default())
        .map(|((day, notification_type), counts)| StandingRow {
            day: *day,
            notification_type,
            counts: *counts,
        })
        .collect();
    add_counts(
        conn,
        schema,
        "whatsapp_standing",
        "day, notification_type",
        &rows,
    )
    .await
}

impl WhatsappMessage {
    /// What `event` does to its row: a notification's queueing creates it; any other event
    /// changes it.
    fn of(event: NotificationEvent) -> RowChange<Self, NotificationEvent> {
        let NotificationEvent::NotificationQueued {
            notification_id,
            merchant_id,
            kind,
            template,
            recipient,
            params,
            attempt_limit,
            at,
            ..
        } = event
        else {
            return RowChange::Changed(event);
        };
        RowChange::Created(Self {
            notification_id: notification_id.0,
            merchant_id: merchant_id.0,
            notification_type: serde_name(&kind),
            template,
            recipient,
            payload: serde_json::Value::from(params),
            status: "queued".into(),
            attempts: 0,
            attempt_limit: count(attempt_limit),
            last_error_code: None,
            last_error_message: None,
            provider_message_id: None,
            next_attempt_at: Some(at),
            queued_at: at,
            sent_at: None,
            failed_at: None,
            updated_at: at,
        })
    }

    /// Applies an event of a queued notification, counting what it sent, failed or requeued
    /// in `usage`.
    fn apply(&mut self, event: NotificationEvent, usage: &mut UsageDays) {
        let at = event.at();
        self.updated_at = at;
        match event {
            // It makes the row: see `of`.
            NotificationEvent::NotificationQueued { .. } => {}
            NotificationEvent::NotificationAttemptFailed {
                attempt,
                error_code,
                error_message,
                next_attempt_at,
                ..
            } => {
                self.attempts = count(attempt);
                self.last_error_code = Some(error_code);
                self.last_error_message = Some(error_message);
                self.next_attempt_at = next_attempt_at;
            }
            NotificationEvent::NotificationSent {
                attempt,
                provider_message_id,
                ..
            } => {
                self.attempts = count(attempt);
                self.status = "sent".into();
                self.provider_message_id = Some(provider_message_id);
                self.next_attempt_at = None;
                self.sent_at = Some(at);
                tally(usage, self, at).sent += 1;
            }
            NotificationEvent::NotificationFailed { .. } => {
                self.status = "failed".into();
                self.next_attempt_at = None;
                self.failed_at = Some(at);
                tally(usage, self, at).failed += 1;
            }
            NotificationEvent::NotificationRequeued { attempt_limit, .. } => {
                self.status = "queued".into();
                self.attempt_limit = count(attempt_limit);
                self.attempts = 0;
                self.next_attempt_at = Some(at);
                tally(usage, self, at).queued += 1;
            }
        }
    }
}

/// Adds a batch's usage to the stored counts, in one statement.
async fn add_usage(
    conn: &mut PgConnection,
    schema: &str,
    usage: &UsageDays,
) -> Result<(), ProjectionError> {
    let usage: Vec<&WhatsappUsageDay> = usage.values().collect();
    add_counts(
        conn,
        schema,
        "whatsapp_usage",
        "merchant_id, day, template",
        &usage,
    )
    .await
}

fn tally<'a>(
    usage: &'a mut UsageDays,
    message: &WhatsappMessage,
    at: DateTime<Utc>,
) -> &'a mut WhatsappUsageDay {
    let day = ist_day(at);
    usage
        .entry((message.merchant_id, day, message.template.clone()))
        .or_insert_with(|| WhatsappUsageDay {
            merchant_id: message.merchant_id,
            day,
            template: message.template.clone(),
            ..WhatsappUsageDay::default()
        })
}

/// Which notifications to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsappFilter {
    /// Only this merchant's (client's).
    pub merchant_id: Option<Uuid>,
    /// Only this status (`queued`, `sent`, `failed`).
    pub status: Option<String>,
    /// Only this template.
    pub template: Option<String>,
    /// Recipient, template, parameters or error contain this (case-insensitive).
    pub q: Option<String>,
}

/// The log's filter, parameters `$1` to `$4` in [`WhatsappFilter`]'s order, and its order. A
/// macro, so each statement is one static text.
macro_rules! log_rows {
    () => {
        "($1::uuid IS NULL OR merchant_id = $1)
            AND ($2::text IS NULL OR status = $2)
            AND ($3::text IS NULL OR template = $3)
            AND ($4::text IS NULL OR recipient ILIKE '%' || $4 || '%'
                                  OR template ILIKE '%' || $4 || '%'
                                  OR payload::text ILIKE '%' || $4 || '%'
                                  OR coalesce(last_error_message, '') ILIKE '%' || $4 || '%')
          ORDER BY queued_at DESC, notification_id DESC"
    };
}

fn checked_status(filter: &WhatsappFilter) -> Result<(), ProjectionError> {
    match &filter.status {
        Some(status) if !["queued", "sent", "failed"].contains(&status.as_str()) => {
            Err(ProjectionError::InvalidQuery(format!(
                "status must be queued, sent or failed, not {status:?}"
            )))
        }
        _ => Ok(()),
    }
}

/// Notifications matching `filter`, newest first, with how many match in all.
pub async fn log(
    pool: &PgPool,
    filter: &WhatsappFilter,
    page: PageRequest,
) -> Result<Page<WhatsappMessage>, ProjectionError> {
    let (limit, offset) = page.limit_offset()?;
    checked_status(filter)?;
    let rows: Vec<(Json<WhatsappMessage>, i64)> = sqlx::query_as(concat!(
        "SELECT to_jsonb(w), count(*) OVER () FROM read.whatsapp_log w WHERE ",
        log_rows!(),
        " LIMIT $5 OFFSET $6"
    ))
    .persistent(false)
    .bind(filter.merchant_id)
    .bind(&filter.status)
    .bind(&filter.template)
    .bind(filter.q.as_deref().map(escape_like))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("whatsapp", e))?;
    Ok(into_page(rows, page))
}

/// One page of the log and whether more follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStep {
    /// The page's notifications, newest first.
    pub items: Vec<WhatsappMessage>,
    /// Whether a later page has notifications.
    pub more: bool,
}

/// Notifications matching `filter`, newest first, without counting them all: a page reads its
/// own rows (and one more) by an index in the log's order, however long the log is; [`log`]'s
/// count reads every matching row.
pub async fn log_step(
    pool: &PgPool,
    filter: &WhatsappFilter,
    page: PageRequest,
) -> Result<LogStep, ProjectionError> {
    let (limit, offset) = page.limit_offset()?;
    checked_status(filter)?;
    let rows: Vec<Json<WhatsappMessage>> = sqlx::query_scalar(concat!(
        "SELECT to_jsonb(w) FROM read.whatsapp_log w WHERE ",
        log_rows!(),
        " LIMIT $5 OFFSET $6"
    ))
    .persistent(false)
    .bind(filter.merchant_id)
    .bind(&filter.status)
    .bind(&filter.template)
    .bind(filter.q.as_deref().map(escape_like))
    .bind(limit + 1)
    .bind(offset)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("whatsapp", e))?;
    let mut items: Vec<WhatsappMessage> = rows.into_iter().map(|Json(row)| row).collect();
    let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(LogStep { items, more })
}

/// A merchant's usage over the `days` IST days ending with `today`, newest day first.
pub async fn usage(
    pool: &PgPool,
    merchant_id: Uuid,
    days: u32,
    today: NaiveDate,
) -> Result<Vec<WhatsappUsageDay>, ProjectionError> {
    if days == 0 || days > MAX_USAGE_DAYS {
        return Err(ProjectionError::InvalidQuery(format!(
            "days must be between 1 and {MAX_USAGE_DAYS}"
        )));
    }
    let from = today - TimeDelta::days(i64::from(days) - 1);
    let rows: Vec<Json<WhatsappUsageDay>> = sqlx::query_scalar(
        "SELECT to_jsonb(u) FROM read.whatsapp_usage u
          WHERE merchant_id = $1 AND day BETWEEN $2 AND $3
          ORDER BY day DESC, template",
    )
    .bind(merchant_id)
    .bind(from)
    .bind(today)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("whatsapp", e))?;
    Ok(rows.into_iter().map(|Json(row)| row).collect())
}

/// Notifications queued (and requeued), sent and given up on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsappCounts {
    /// Notifications queued or requeued.
    pub queued: i64,
    /// Notifications sent.
    pub sent: i64,
    /// Notifications given up on.
    pub failed: i64,
}

impl WhatsappCounts {
    /// The share of finished (sent or given up) notifications that were given up on, in
    /// hundredths of a percent, rounded down (none when nothing finished).
    pub fn failure_basis_points(&self) -> Option<i64> {
        let finished = self.sent + self.failed;
        (finished > 0).then(|| self.failed * 10_000 / finished)
    }
}

/// One merchant's usage over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantWhatsappUsage {
    /// The merchant.
    pub merchant_id: Uuid,
    /// Its company name, when the merchants read model knows it.
    pub company_name: Option<String>,
    /// Its counts.
    pub counts: WhatsappCounts,
}

/// The notifications of one type first queued in a period, by where they stand now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsappTypeStanding {
    /// `LOW_BALANCE`, `TXN_UPDATE`, `PAYOUT_UPDATE` or `ACCOUNT_STATUS`.
    pub notification_type: String,
    /// Still queued, sent and given up on.
    pub counts: WhatsappCounts,
}

/// Usage across every merchant over IST days `from..=to`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WhatsappUsageSummary {
    /// Every merchant's counts added up (from `whatsapp_usage`: each event on its IST day).
    pub totals: WhatsappCounts,
    /// Per template, most queued first.
    pub by_template: Vec<(String, WhatsappCounts)>,
    /// The merchants that queued most, most first.
    pub top_merchants: Vec<MerchantWhatsappUsage>,
    /// The notifications first queued in the period (from `whatsapp_standing`), per type.
    pub by_type: Vec<WhatsappTypeStanding>,
}

/// Usage across every merchant over IST days `from..=to`, with the `top` merchants that
/// queued most.
pub async fn usage_summary(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    top: u32,
) -> Result<WhatsappUsageSummary, ProjectionError> {
    let days = (to - from).num_days() + 1;
    if days < 1 || days > i64::from(MAX_USAGE_DAYS) {
        return Err(ProjectionError::InvalidQuery(format!(
            "the period must be between 1 and {MAX_USAGE_DAYS} days, from its first to its last"
        )));
    }
    let (mut summary, by_type) = futures::try_join!(
        usage_by_template_and_merchant(pool, from, to, top),
        standing_by_type(pool, from, to),
    )?;
    summary.by_type = by_type;
    Ok(summary)
}

/// One row of the usage roll-up: a template's, a merchant's, or (neither) the totals.
type UsageRollup = (Option<String>, Option<Uuid>, Option<String>, i64, i64, i64);

async fn usage_by_template_and_merchant(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    top: u32,
) -> Result<WhatsappUsageSummary, ProjectionError> {
    // One pass over the period's rows gives the totals, each template's and each merchant's
    // sums; only the top merchants are kept and named. The totals' row is there even when no
    // row is (its sums then NULL, hence the coalesce).
    let rows: Vec<UsageRollup> = sqlx::query_as(
        "WITH rollup AS (
             SELECT template, merchant_id, GROUPING(template, merchant_id) AS level,
                    coalesce(sum(queued), 0)::bigint AS queued,
                    coalesce(sum(sent), 0)::bigint AS sent,
                    coalesce(sum(failed), 0)::bigint AS failed
               FROM read.whatsapp_usage
              WHERE day BETWEEN $1 AND $2
              GROUP BY GROUPING SETS ((template), (merchant_id), ())
         ), ranked AS (
             SELECT r.*, row_number() OVER (PARTITION BY level
                                            ORDER BY queued DESC, failed DESC, merchant_id) AS rank
               FROM rollup r
         )
         SELECT r.template, r.merchant_id, m.company_name, r.queued, r.sent, r.failed
           FROM ranked r LEFT JOIN read.merchants m ON m.merchant_id = r.merchant_id
          WHERE r.merchant_id IS NULL OR r.rank <= $3
          ORDER BY r.level, r.queued DESC, r.failed DESC, r.template, r.merchant_id",
    )
    .bind(from)
    .bind(to)
    .bind(i64::from(top))
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("whatsapp", e))?;
    let mut summary = WhatsappUsageSummary::default();
    for (template, merchant_id, company_name, queued, sent, failed) in rows {
        let counts = WhatsappCounts {
            queued,
            sent,
            failed,
        };
        match (template, merchant_id) {
            (Some(template), _) => summary.by_template.push((template, counts)),
            (None, Some(merchant_id)) => summary.top_merchants.push(MerchantWhatsappUsage {
                merchant_id,
                company_name,
                counts,
            }),
            (None, None) => summary.totals = counts,
        }
    }
    Ok(summary)
}

async fn standing_by_type(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<WhatsappTypeStanding>, ProjectionError> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT notification_type, sum(queued)::bigint, sum(sent)::bigint, sum(failed)::bigint
           FROM read.whatsapp_standing
          WHERE day BETWEEN $1 AND $2
          GROUP BY notification_type
         HAVING sum(queued + sent + failed) > 0
          ORDER BY sum(queued + sent + failed) DESC, notification_type",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("whatsapp", e))?;
    Ok(rows
        .into_iter()
        .map(
            |(notification_type, queued, sent, failed)| WhatsappTypeStanding {
                notification_type,
                counts: WhatsappCounts {
                    queued,
                    sent,
                    failed,
                },
            },
        )
        .collect())
}
