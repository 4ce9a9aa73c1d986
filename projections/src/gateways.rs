//! Gateway volumes and health, one row per gateway (`read.gateways`).
//!
//! Volume follows the domain's rule ([`lightspeed_domain::gateway`]): bookings of the latest IST
//! month booked, less released ones of that month; a late success counts towards volume but not
//! as a use. Health: the outcomes of the last [`RECENT_OUTCOMES`] payments that reached one at
//! this gateway (a bit mask, newest in bit 0) and their success rate in basis points, the last
//! failure code (the only response code an event carries), last use, bookings in the latest two
//! clock minutes, temporary failure, toggle, priority, provider and merchant. Nothing from the
//! sealed credentials is kept.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures::future::BoxFuture;
use lightspeed_domain::calendar::IstMonth;
use lightspeed_domain::gateway::GatewayEvent;
use lightspeed_domain::payment::PaymentEvent;
use lightspeed_domain::{Decider, Gateway, Payment};
use lightspeed_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::projection::{Projection, RowCache, RowChange, decode, stream_uuid, undecodable};

/// How many recent payment outcomes the success rate is computed over.
pub const RECENT_OUTCOMES: u32 = 50;

/// The gateways projection (`gateways`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Gateways;

/// One gateway, as `read.gateways` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRow {
    /// The gateway.
    pub gateway_id: Uuid,
    /// The merchant who owns it.
    pub merchant_id: Uuid,
    /// The PSP, e.g. `razorpay`.
    pub provider: String,
    /// The merchant's name for it.
    pub label: String,
    /// Toggled on.
    pub enabled: bool,
    /// Retired for good.
    pub retired: bool,
    /// Routing priority (higher preferred).
    pub priority: i32,
    /// Monthly volume limit, if any.
    pub monthly_limit_paise: Option<i64>,
    /// Its own requests-per-minute cap, if any.
    pub rpm_cap: Option<i32>,
    /// Resting after a failure until then.
    pub temporarily_failed_until: Option<DateTime<Utc>>,
    /// Why it rests.
    pub temporary_failure_reason: Option<String>,
    /// The IST month (`YYYY-MM`) the volume columns count.
    pub volume_month: Option<String>,
    /// Unreleased volume booked in that month.
    pub month_volume_paise: i64,
    /// Unreleased bookings made in that month.
    pub month_payments: i64,
    /// When a payment was last routed to it.
    pub last_used_at: Option<DateTime<Utc>>,
    /// The latest clock minute with a routed booking.
    pub rpm_minute: Option<DateTime<Utc>>,
    /// Routed bookings in that minute.
    pub rpm_minute_bookings: i64,
    /// Routed bookings in the minute before it.
    pub rpm_previous_minute_bookings: i64,
    /// The recent outcomes, newest in bit 0 (1 = succeeded).
    pub recent_outcomes: i64,
    /// How many outcomes the mask holds (at most [`RECENT_OUTCOMES`]).
    pub recent_attempted: i32,
    /// How many of them succeeded.
    pub recent_succeeded: i32,
    /// `recent_succeeded × 10 000 / recent_attempted`, rounded down; none before any outcome.
    pub success_rate_bps: Option<i32>,
    /// Payments that succeeded here, ever.
    pub payments_succeeded: i64,
    /// Payments that failed here, ever.
    pub payments_failed: i64,
    /// The code of the last failure.
    pub last_failure_code: Option<String>,
    /// When it failed.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// When it was registered.
    pub registered_at: DateTime<Utc>,
    /// When the last event changing this row happened.
    pub updated_at: DateTime<Utc>,
}

const DDL: &str = "
CREATE TABLE {s}.gateways (
    gateway_id                    uuid PRIMARY KEY,
    merchant_id                   uuid NOT NULL,
    provider                      text NOT NULL,
    label                         text NOT NULL,
    enabled                       boolean NOT NULL,
    retired                       boolean NOT NULL,
    priority                      integer NOT NULL,
    monthly_limit_paise           bigint,
    rpm_cap                       integer,
    temporarily_failed_until      timestamptz,
    temporary_failure_reason      text,
    volume_month                  text,
    month_volume_paise            bigint NOT NULL,
    month_payments                bigint NOT NULL,
    last_used_at                  timestamptz,
    rpm_minute                    timestamptz,
    rpm_minute_bookings           bigint NOT NULL,
    rpm_previous_minute_bookings  bigint NOT NULL,
    recent_outcomes               bigint NOT NULL,
    recent_attempted              integer NOT NULL,
    recent_succeeded              integer NOT NULL,
    success_rate_bps              integer,
    payments_succeeded            bigint NOT NULL,
    payments_failed               bigint NOT NULL,
    last_failure_code             text,
    last_failure_at               timestamptz,
    registered_at                 timestamptz NOT NULL,
    updated_at                    timestamptz NOT NULL
);
CREATE INDEX ON {s}.gateways (merchant_id, priority DESC);
";

impl Projection for Gateways {
    fn name(&self) -> &'static str {
        "gateways"
    }

    fn layout(&self) -> i32 {
        1
    }

    fn categories(&self) -> Option<&'static [&'static str]> {
        Some(&[
            <Gateway as Decider>::CATEGORY,
            <Payment as Decider>::CATEGORY,
        ])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["gateways"]
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

/// What a batch says about a gateway: its registration, another event of its own, or the
/// outcome of a payment there.
enum Fact {
    Registered(Box<GatewayRow>),
    Gateway(GatewayEvent),
    Outcome {
        succeeded: bool,
        code: Option<String>,
        at: DateTime<Utc>,
    },
}

async fn apply(
    conn: &mut PgConnection,
    schema: &str,
    events: &[RecordedEvent],
    rows: &mut RowCache,
) -> Result<(), ProjectionError> {
    let facts = facts(events)?;
    let gateways = rows
        .load(
            conn,
            schema,
            "gateways",
            "gateway_id",
            facts
                .iter()
                .map(|(gateway_id, _, fact)| (*gateway_id, matches!(fact, Fact::Registered(_)))),
            |row: &GatewayRow| row.gateway_id,
        )
        .await?;
    for (gateway_id, recorded, fact) in facts {
        match fact {
            Fact::Registered(row) => gateways.insert(row.gateway_id, *row),
            Fact::Gateway(event) => gateways.existing(gateway_id, recorded)?.apply(&event),
            Fact::Outcome {
                succeeded,
                code,
                at,
            } => gateways
                .existing(gateway_id, recorded)?
                .record_outcome(succeeded, code, at),
        }
    }
    Ok(())
}

/// The batch's facts about gateways, each with the gateway it is about.
fn facts(events: &[RecordedEvent]) -> Result<Vec<(Uuid, &RecordedEvent, Fact)>, ProjectionError> {
    let mut facts = Vec::with_capacity(events.len());
    for event in events {
        match (event.stream_id.category(), event.event_type.as_str()) {
            ("gateway", _) => {
                let fact = match GatewayRow::of(decode(event)?) {
                    RowChange::Created(row) => Fact::Registered(Box::new(row)),
                    RowChange::Changed(other) => Fact::Gateway(other),
                };
                facts.push((stream_uuid(event)?, event, fact));
            }
            ("payment", "PaymentSucceeded" | "PaymentFailed") => {
                let (gateway_id, outcome) = outcome(event)?;
                facts.push((gateway_id, event, outcome));
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// The gateway a payment succeeded or failed at, and the outcome.
fn outcome(event: &RecordedEvent) -> Result<(Uuid, Fact), ProjectionError> {
    match decode::<PaymentEvent>(event)? {
        PaymentEvent::PaymentSucceeded { gateway_id, at, .. } => Ok((
            gateway_id.0,
            Fact::Outcome {
                succeeded: true,
                code: None,
                at,
            },
        )),
        PaymentEvent::PaymentFailed {
            gateway_id,
            code,
            at,
            ..
        } => Ok((
            gateway_id.0,
            Fact::Outcome {
                succeeded: false,
                code: Some(code),
                at,
            },
        )),
        _ => Err(undecodable(
            event,
            format!("a {} decoded to another payment event", event.event_type),
        )),
    }
}

fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

impl GatewayRow {
    /// What `event` does to its row: a gateway's registration creates it; any other event
    /// changes it.
    fn of(event: GatewayEvent) -> RowChange<Self, GatewayEvent> {
        let GatewayEvent::GatewayRegistered {
            gateway_id,
            merchant_id,
            provider,
            label,
            settings,
            enabled,
            at,
            ..
        } = event
        else {
            return RowChange::Changed(event);
        };
        RowChange::Created(Self {
            gateway_id: gateway_id.0,
            merchant_id: merchant_id.0,
            provider: provider.as_str().into(),
            label,
            enabled,
            retired: false,
            priority: i32::from(settings.priority),
            monthly_limit_paise: settings.monthly_limit.map(|limit| limit.0),
            rpm_cap: settings
                .rpm_cap
                .map(|cap| i32::try_from(cap).unwrap_or(i32::MAX)),
            temporarily_failed_until: None,
            temporary_failure_reason: None,
            volume_month: None,
            month_volume_paise: 0,
            month_payments: 0,
            last_used_at: None,
            rpm_minute: None,
            rpm_minute_bookings: 0,
            rpm_previous_minute_bookings: 0,
            recent_outcomes: 0,
            recent_attempted: 0,
            recent_succeeded: 0,
            success_rate_bps: None,
            payments_succeeded: 0,
            payments_failed: 0,
            last_failure_code: None,
            last_failure_at: None,
            registered_at: at,
            updated_at: at,
        })
    }

    /// Applies an event of a registered gateway.
    fn apply(&mut self, event: &GatewayEvent) {
        match event {
            GatewayEvent::GatewayRegistered { .. }
            | GatewayEvent::GatewayCredentialsRotated { .. }
            | GatewayEvent::GatewayCredentialsResealed { .. } => {}
            GatewayEvent::GatewaySettingsChanged {
                label, settings, ..
            } => {
                self.label = label.clone();
                self.priority = i32::from(settings.priority);
                self.monthly_limit_paise = settings.monthly_limit.map(|limit| limit.0);
                self.rpm_cap = settings
                    .rpm_cap
                    .map(|cap| i32::try_from(cap).unwrap_or(i32::MAX));
            }
            GatewayEvent::GatewayToggled { enabled, .. } => self.enabled = *enabled,
            GatewayEvent::GatewayBooked {
                amount,
                late_success,
                at,
                ..
            } => self.book(amount.0, *at, !late_success),
            GatewayEvent::GatewayBookingReleased {
                amount, booked_at, ..
            } => {
                if self.volume_month.as_deref() == Some(&IstMonth::of(*booked_at).to_string()) {
                    self.month_volume_paise =
                        self.month_volume_paise.saturating_sub(amount.0).max(0);
                    self.month_payments = self.month_payments.saturating_sub(1).max(0);
                }
            }
            GatewayEvent::GatewayTemporarilyFailed { reason, until, .. } => {
                self.temporarily_failed_until = Some(*until);
                self.temporary_failure_reason = Some(reason.clone());
            }
            GatewayEvent::GatewayRecovered { .. } => {
                self.temporarily_failed_until = None;
                self.temporary_failure_reason = None;
            }
            GatewayEvent::GatewayRetired { .. } => self.retired = true,
        }
        self.updated_at = event.at();
    }

    /// The domain's volume rule, and for routed bookings last use and the minute counts.
    fn book(&mut self, amount: i64, at: DateTime<Utc>, routed: bool) {
        let month = IstMonth::of(at).to_string();
        match self.volume_month.as_deref() {
            Some(current) if current == month => {
                self.month_volume_paise = self.month_volume_paise.saturating_add(amount);
                self.month_payments = self.month_payments.saturating_add(1);
            }
            // A booking decided on a clock a little behind, across a month end: that month
            // no longer counts.
            Some(current) if current > month.as_str() => {}
            _ => {
                self.volume_month = Some(month);
                self.month_volume_paise = amount;
                self.month_payments = 1;
            }
        }
        if routed {
            self.last_used_at = Some(self.last_used_at.map_or(at, |last| last.max(at)));
            let minute = minute_of(at);
            match self.rpm_minute {
                Some(current) if minute == current => self.rpm_minute_bookings += 1,
                Some(current) if minute < current => {
                    if minute + TimeDelta::minutes(1) == current {
                        self.rpm_previous_minute_bookings += 1;
                    }
                }
                Some(current) => {
                    self.rpm_previous_minute_bookings = if minute - TimeDelta::minutes(1) == current
                    {
                        self.rpm_minute_bookings
                    } else {
                        0
                    };
                    self.rpm_minute = Some(minute);
                    self.rpm_minute_bookings = 1;
                }
                None => {
                    self.rpm_minute = Some(minute);
                    self.rpm_minute_bookings = 1;
                }
            }
        }
        self.updated_at = at;
    }

    fn record_outcome(&mut self, succeeded: bool, code: Option<String>, at: DateTime<Utc>) {
        let window = (1i64 << RECENT_OUTCOMES) - 1;
        self.recent_outcomes = ((self.recent_outcomes << 1) | i64::from(succeeded)) & window;
        self.recent_attempted = (self.recent_attempted + 1).min(RECENT_OUTCOMES as i32);
        self.recent_succeeded = i32::try_from(self.recent_outcomes.count_ones()).unwrap_or(0);
        self.success_rate_bps = Some(self.recent_succeeded * 10_000 / self.recent_attempted.max(1));
        if succeeded {
            self.payments_succeeded = self.payments_succeeded.saturating_add(1);
        } else {
            self.payments_failed = self.payments_failed.saturating_add(1);
            self.last_failure_code = code;
            self.last_failure_at = Some(at);
        }
        self.updated_at = at;
    }
}

/// A gateway's health as of an instant: the stored row and what it means now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayHealth {
    /// The stored row.
    #[serde(flatten)]
    pub gateway: GatewayRow,
    /// Volume booked in the IST month of `now` (zero when the stored month is an older one).
    pub this_month_volume_paise: i64,
    /// Bookings in the IST month of `now`.
    pub this_month_payments: i64,
    /// Routed bookings in the clock minute of `now` and the one before it.
    pub requests_last_two_minutes: i64,
    /// Whether it rests after a failure at `now`.
    pub temporarily_failed: bool,
}

impl GatewayHealth {
    fn at(gateway: GatewayRow, now: DateTime<Utc>) -> Self {
        let this_month = gateway.volume_month.as_deref() == Some(&IstMonth::of(now).to_string());
        let minute = minute_of(now);
        let requests_last_two_minutes = match gateway.rpm_minute {
            Some(m) if m == minute => {
                gateway.rpm_minute_bookings + gateway.rpm_previous_minute_bookings
            }
            Some(m) if m + TimeDelta::minutes(1) == minute => gateway.rpm_minute_bookings,
            _ => 0,
        };
        Self {
            this_month_volume_paise: if this_month {
                gateway.month_volume_paise
            } else {
                0
            },
            this_month_payments: if this_month {
                gateway.month_payments
            } else {
                0
            },
            requests_last_two_minutes,
            temporarily_failed: gateway
                .temporarily_failed_until
                .is_some_and(|until| until > now),
            gateway,
        }
    }
}

/// Which gateways to show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayFilter {
    /// Only this merchant's.
    pub merchant_id: Option<Uuid>,
    /// Only this provider's (`razorpay`, `payu`, `cashfree`, `phonepe`, `sandbox`).
    pub provider: Option<String>,
    /// Only toggled on (true) or off (false).
    pub enabled: Option<bool>,
    /// Include retired gateways.
    pub include_retired: bool,
}

/// Gateways matching `filter` as of `now`, by merchant then priority (at most 1 000).
pub async fn health(
    pool: &PgPool,
    filter: &GatewayFilter,
    now: DateTime<Utc>,
) -> Result<Vec<GatewayHealth>, ProjectionError> {
    let rows: Vec<Json<GatewayRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(g) FROM read.gateways g
          WHERE ($1::uuid IS NULL OR merchant_id = $1)
            AND ($2::text IS NULL OR provider = $2)
            AND ($3::boolean IS NULL OR enabled = $3)
            AND ($4 OR NOT retired)
          ORDER BY merchant_id, priority DESC, gateway_id
          LIMIT 1000",
    )
    .persistent(false)
    .bind(filter.merchant_id)
    .bind(&filter.provider)
    .bind(filter.enabled)
    .bind(filter.include_retired)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("gateways", e))?;
    Ok(rows
        .into_iter()
        .map(|Json(row)| GatewayHealth::at(row, now))
        .collect())
}

/// Payment outcomes added up over every gateway, retired ones included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeTotals {
    /// Payments that succeeded, ever.
    pub succeeded: i64,
    /// Payments that failed, ever.
    pub failed: i64,
    /// Of each gateway's last [`RECENT_OUTCOMES`] outcomes, those that succeeded.
    pub recent_succeeded: i64,
    /// Each gateway's last outcomes (at most [`RECENT_OUTCOMES`] each).
    pub recent_attempted: i64,
}

/// Payment outcomes over every gateway: one row per gateway, whatever the payments' count.
pub async fn outcome_totals(pool: &PgPool) -> Result<OutcomeTotals, ProjectionError> {
    let (succeeded, failed, recent_succeeded, recent_attempted): (i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT coalesce(sum(payments_succeeded), 0)::bigint,
                    coalesce(sum(payments_failed), 0)::bigint,
                    coalesce(sum(recent_succeeded), 0)::bigint,
                    coalesce(sum(recent_attempted), 0)::bigint
               FROM read.gateways",
        )
        .fetch_one(pool)
        .await
        .map_err(|e| ProjectionError::from_read("gateways", e))?;
    Ok(OutcomeTotals {
        succeeded,
        failed,
        recent_succeeded,
        recent_attempted,
    })
}
