//! The alert rules' observations: where each condition holds now, with the figures people need.
//! Each reads the read models (through `projections::alert_inputs`), the log, the queues or the
//! projectors' lag; none decides anything (the evaluator raises and resolves).

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use lightspeed_domain::Decider;
use lightspeed_domain::calendar::{IST, IstMonth};
use lightspeed_domain::ids::MerchantId;
use lightspeed_domain::merchant::Merchant;
use lightspeed_domain::ops_alert::AlertKind;
use lightspeed_domain::quota::{QuotaKind, QuotaUsage};
use lightspeed_eventstore::lookups::{Awaiting, streams_awaiting, streams_recording};
use lightspeed_eventstore::relay_lag::relay_lag;
use lightspeed_projections::alert_inputs::{
    failed_payouts as reversed_payouts, gateway_outcomes, gateways_over_share,
    merchants_without_gateway, resting_gateways as resting,
};
use lightspeed_services::{QuotaUse, ServiceError};
use uuid::Uuid;

use super::{AlertError, AlertEvaluator, Finding, Observed, rupees};
use crate::queues::QueueControl;

/// Reversed payouts looked at per evaluation.
const PAYOUT_BATCH: i64 = 500;
/// Payments initiated longer ago than this are not counted in a gateway's success rate.
const OUTCOME_HORIZON: TimeDelta = TimeDelta::days(2);
/// Merchants whose endpoints are looked at, the ones that disabled one most recently.
const MAX_ENDPOINT_MERCHANTS: usize = 1_000;
/// Quota thresholds recorded this month looked at per evaluation (a merchant records at most
/// two per cap and period).
const MAX_QUOTA_THRESHOLDS: usize = 100_000;
/// Longest IST month: thresholds recorded longer ago than this are of an earlier month.
const LONGEST_MONTH: TimeDelta = TimeDelta::days(31);

fn span(duration: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

/// Payouts reversed within the look-back (one-off alerts).
pub(super) async fn failed_payouts(evaluator: &AlertEvaluator) -> Result<Vec<Finding>, AlertError> {
    let since = evaluator.ledger.now() - span(evaluator.config.payout_lookback);
    let payouts = reversed_payouts(evaluator.pool(), since, PAYOUT_BATCH).await?;
    Ok(payouts
        .into_iter()
        .map(|payout| Finding {
            subject: Some(payout.payout_id.to_string()),
            summary: format!(
                "Payout {} of {} to {} ({}) failed: {}",
                payout.payout_id,
                rupees(payout.amount_paise),
                payout
                    .company_name
                    .as_deref()
                    .unwrap_or("an unknown merchant"),
                payout.merchant_id,
                payout.detail.as_deref().unwrap_or("no detail"),
            ),
        })
        .collect())
}

/// Gateways near (the configured share) and at their monthly limit this IST month.
pub(super) async fn gateway_limits(
    evaluator: &AlertEvaluator,
    now: DateTime<Utc>,
) -> Result<(Observed, Observed), AlertError> {
    let month = IstMonth::of(now).to_string();
    let near_bps = evaluator.config.gateway_limit_near_bps;
    let over_near = gateways_over_share(evaluator.pool(), &month, near_bps).await?;
    let (mut near, mut reached) = (Observed::default(), Observed::default());
    for gateway in over_near {
        let limit = gateway.monthly_limit_paise;
        let used = gateway.month_volume_paise;
        let finding = |what: &str| Finding {
            subject: Some(gateway.gateway_id.to_string()),
            summary: format!(
                "Gateway {:?} ({}, {}) of {} is {what} its monthly limit: {} of {} booked in {month}",
                gateway.label,
                gateway.provider,
                gateway.gateway_id,
                gateway
                    .company_name
                    .as_deref()
                    .unwrap_or("an unknown merchant"),
                rupees(used),
                rupees(limit),
            ),
        };
        if used >= limit {
            reached.findings.push(finding("at"));
            // The near alert stays as it is while the limit is reached.
            near.undecided
                .insert(AlertKind::GatewayLimitNear.key(Some(&gateway.gateway_id.to_string())));
        } else {
            near.findings.push(finding("near"));
        }
    }
    Ok((near, reached))
}

/// Active merchants none of whose gateways could take a payment.
pub(super) async fn no_gateway_available(
    evaluator: &AlertEvaluator,
    now: DateTime<Utc>,
) -> Result<Observed, AlertError> {
    let month = IstMonth::of(now).to_string();
    let merchants = merchants_without_gateway(evaluator.pool(), now, &month).await?;
    Ok(Observed {
        findings: merchants
            .into_iter()
            .map(|m| Finding {
                subject: Some(m.merchant_id.to_string()),
                summary: format!(
                    "{} ({}) has no gateway available: all {} are disabled, resting or at their monthly limit; payments are refused with 503",
                    m.company_name, m.merchant_id, m.gateways
                ),
            })
            .collect(),
        undecided: BTreeSet::new(),
    })
}

/// Enabled gateways resting after failures.
pub(super) async fn resting_gateways(
    evaluator: &AlertEvaluator,
    now: DateTime<Utc>,
) -> Result<Observed, AlertError> {
    let gateways = resting(evaluator.pool(), now).await?;
    Ok(Observed {
        findings: gateways
            .into_iter()
            .map(|g| Finding {
                subject: Some(g.gateway_id.to_string()),
                summary: format!(
                    "Gateway {:?} ({}, {}) of {} is temporarily failed until {}: {}",
                    g.label,
                    g.provider,
                    g.gateway_id,
                    g.company_name.as_deref().unwrap_or("an unknown merchant"),
                    g.until.to_rfc3339(),
                    g.reason.as_deref().unwrap_or("no reason recorded"),
                ),
            })
            .collect(),
        undecided: BTreeSet::new(),
    })
}

/// Gateways whose success share over the window is under the bound, with enough payments.
pub(super) async fn success_rates(
    evaluator: &AlertEvaluator,
    now: DateTime<Utc>,
) -> Result<Observed, AlertError> {
    let config = &evaluator.config;
    let since = now - span(config.success_rate_window);
    let outcomes = gateway_outcomes(evaluator.pool(), since, now - OUTCOME_HORIZON).await?;
    let minutes = config.success_rate_window.as_secs() / 60;
    let mut observed = Observed::default();
    for gateway in outcomes {
        // succeeded / decided < bps / 10 000, in integers.
        let under = i128::from(gateway.succeeded) * 10_000
            < i128::from(gateway.decided) * i128::from(config.success_rate_min_bps);
        let subject = gateway.gateway_id.to_string();
        if under && gateway.decided >= config.success_rate_min_payments {
            observed.findings.push(Finding {
                summary: format!(
                    "Gateway {:?} ({}, {subject}): {} of {} payments succeeded in the last {minutes} minutes, under {}.{:02} %",
                    gateway.label.as_deref().unwrap_or("?"),
                    gateway.provider.as_deref().unwrap_or("unknown"),
                    gateway.succeeded,
                    gateway.decided,
                    config.success_rate_min_bps / 100,
                    config.success_rate_min_bps % 100,
                ),
                subject: Some(subject),
            });
        } else if under {
            // Too few payments to judge: the alert stays as it is.
            observed
                .undecided
                .insert(AlertKind::GatewaySuccessRate.key(Some(&subject)));
        }
    }
    Ok(observed)
}

/// Queues with too many jobs waiting, or whose oldest waiting job waited too long.
pub(super) async fn queue_backlog(
    evaluator: &AlertEvaluator,
    queues: &dyn QueueControl,
    now: DateTime<Utc>,
) -> Result<Observed, AlertError> {
    let config = &evaluator.config;
    let mut observed = Observed::default();
    for queue in queues.queues() {
        let key = AlertKind::QueueBacklog.key(Some(&queue));
        let (Ok(depth), Ok(oldest)) = (
            queues.depth(&queue).await,
            queues.oldest_waiting(&queue).await,
        ) else {
            // The broker did not answer: nothing is known about this queue now.
            observed.undecided.insert(key);
            continue;
        };
        // Broker and evaluator clocks differ a little: a job is never younger than nothing.
        let waited = oldest.map_or(TimeDelta::zero(), |at| (now - at).max(TimeDelta::zero()));
        let too_deep = depth.waiting > config.queue_max_waiting;
        let too_old = waited > span(config.queue_max_age);
        if too_deep || too_old {
            observed.findings.push(Finding {
                subject: Some(queue.clone()),
                summary: format!(
                    "Queue {queue}: {} jobs waiting (bound {}), {} running, {} failed; the oldest waiting for {} s (bound {} s)",
                    depth.waiting,
                    config.queue_max_waiting,
                    depth.active,
                    depth.failed,
                    waited.num_seconds(),
                    config.queue_max_age.as_secs(),
                ),
            });
        }
    }
    Ok(observed)
}

/// Projections and the relay further behind the log than their bounds.
pub(super) async fn lag(
    evaluator: &AlertEvaluator,
) -> Result<(Observed, Option<Observed>), AlertError> {
    let config = &evaluator.config;
    let bound_ms = i64::try_from(config.projection_max_lag.as_millis()).unwrap_or(i64::MAX);
    let versions = lightspeed_projections::status::all(evaluator.pool()).await?;
    let projections = Observed {
        findings: versions
            .into_iter()
            .filter(|v| v.state == "active" && v.lag_ms > bound_ms)
            .map(|v| Finding {
                summary: format!(
                    "Projection {} v{} is {} ms ({} events) behind the log (bound {} ms)",
                    v.projection, v.version, v.lag_ms, v.lag_events, bound_ms
                ),
                subject: Some(v.projection),
            })
            .collect(),
        undecided: BTreeSet::new(),
    };
    let relay = match &config.relay_stream {
        Some(stream) => {
            let lag = relay_lag(evaluator.pool(), stream).await?;
            let bound_ms = i64::try_from(config.relay_max_lag.as_millis()).unwrap_or(i64::MAX);
            let mut observed = Observed::default();
            if lag.oldest_ms > bound_ms {
                observed.findings.push(Finding {
                    subject: None,
                    summary: format!(
                        "The relay to {stream} is {} ms ({} events) behind the log (bound {bound_ms} ms)",
                        lag.oldest_ms, lag.events
                    ),
                });
            }
            Some(observed)
        }
        None => None,
    };
    Ok((projections, relay))
}

/// Merchant webhook endpoints disabled after failing deliveries (until re-enabled or removed).
pub(super) async fn disabled_endpoints(evaluator: &AlertEvaluator) -> Result<Observed, AlertError> {
    let pool = evaluator.pool();
    let category = <Merchant as Decider>::CATEGORY;
    let mut streams = Vec::new();
    for event_type in ["WebhookEndpointDisabled", "MerchantWebhookEndpointDisabled"] {
        streams.extend(streams_recording(pool, category, event_type).await?);
    }
    // The most recent first, each merchant once, a bounded number.
    let mut seen = BTreeSet::new();
    let merchants: Vec<Uuid> = streams
        .iter()
        .rev()
        .filter_map(|stream| stream.id().parse::<Uuid>().ok())
        .filter(|id| seen.insert(*id))
        .take(MAX_ENDPOINT_MERCHANTS)
        .collect();
    let mut observed = Observed::default();
    for merchant_id in merchants {
        let merchant = match evaluator.ledger.merchant(MerchantId(merchant_id)).await {
            Ok(merchant) => merchant,
            Err(ServiceError::UnknownMerchant) => continue,
            Err(e) => return Err(e.into()),
        };
        for endpoint in merchant.webhook_endpoints() {
            let Some(disabled_at) = endpoint.disabled_at().filter(|_| endpoint.enabled()) else {
                continue;
            };
            observed.findings.push(Finding {
                subject: Some(format!("{merchant_id}.{}", endpoint.id())),
                summary: format!(
                    "Webhook endpoint {} of {} ({merchant_id}) was disabled at {} after failing deliveries",
                    endpoint.id(),
                    merchant.company_name(),
                    disabled_at.to_rfc3339(),
                ),
            });
        }
    }
    Ok(observed)
}

/// The merchants that recorded a quota threshold this IST month (their usage streams are
/// `<merchant>.<YYYY-MM>`): the only ones whose use of a cap can be at 80 % or more, since the
/// domain records 80 % with the admission that reaches it.
async fn merchants_near_a_cap(
    evaluator: &AlertEvaluator,
    now: DateTime<Utc>,
) -> Result<Vec<MerchantId>, AlertError> {
    let suffix = format!(".{}", IstMonth::of(now));
    let awaiting = Awaiting {
        category: <QuotaUsage as Decider>::CATEGORY,
        recorded: "QuotaThresholdReached",
        recorded_from: now - LONGEST_MONTH,
        // Another replica's clock may be a little ahead of this one.
        recorded_before: now + TimeDelta::days(1),
        awaited: &[],
        limit: MAX_QUOTA_THRESHOLDS,
    };
    let streams = streams_awaiting(evaluator.pool(), &awaiting).await?;
    let merchants: BTreeSet<Uuid> = streams
        .iter()
        .filter_map(|stream| stream.id().strip_suffix(&suffix))
        .filter_map(|merchant| merchant.parse().ok())
        .collect();
    Ok(merchants.into_iter().map(MerchantId).collect())
}

/// Merchants whose use of a quota cap this period is at the configured near share (at least the
/// 80 % the domain records) or at the cap: resolved when the period resets (a new IST day or
/// month uses nothing yet) or an admin raises or lifts the cap.
pub(super) async fn quota_use(
    evaluator: &AlertEvaluator,
    now: DateTime<Utc>,
) -> Result<(Observed, Observed), AlertError> {
    let near_bps = evaluator.config.quota_near_bps;
    let (mut near, mut reached) = (Observed::default(), Observed::default());
    for merchant_id in merchants_near_a_cap(evaluator, now).await? {
        let status = match evaluator.ledger.quota_status(merchant_id).await {
            Ok(status) => status,
            Err(ServiceError::UnknownMerchant) => continue,
            Err(e) => return Err(e.into()),
        };
        let company = evaluator.ledger.merchant(merchant_id).await?;
        for cap in status.usage {
            let Some(limit) = cap.limit else {
                continue;
            };
            let subject = format!("{merchant_id}.{}", cap.quota.as_str());
            let finding = |what: &str| Finding {
                subject: Some(subject.clone()),
                summary: quota_summary(company.company_name(), merchant_id, &cap, limit, what),
            };
            if cap.used >= limit {
                reached.findings.push(finding("at"));
                // The near alert stays as it is while the cap is reached.
                near.undecided
                    .insert(AlertKind::QuotaNear.key(Some(&subject)));
            } else if i128::from(cap.used) * 10_000 >= i128::from(limit) * i128::from(near_bps) {
                near.findings.push(finding("near"));
            }
        }
    }
    Ok((near, reached))
}

/// E.g. `Acme (…) is near its daily payment quota: 8 of 10 used; resets 08 Dec 2026 00:00 IST`.
fn quota_summary(
    company: &str,
    merchant_id: MerchantId,
    cap: &QuotaUse,
    limit: i64,
    what: &str,
) -> String {
    let (label, used) = match cap.quota {
        QuotaKind::DailyCount => ("daily payment", format!("{} of {limit}", cap.used)),
        QuotaKind::MonthlyCount => ("monthly payment", format!("{} of {limit}", cap.used)),
        QuotaKind::DailyVolume => ("daily volume", volume(cap.used, limit)),
        QuotaKind::MonthlyVolume => ("monthly volume", volume(cap.used, limit)),
    };
    format!(
        "{company} ({merchant_id}) is {what} its {label} quota: {used} used; the period resets {}",
        cap.resets_at
            .with_timezone(&IST)
            .format("%d %b %Y %H:%M IST")
    )
}

fn volume(used: i64, limit: i64) -> String {
    format!("{} of {}", rupees(used), rupees(limit))
}
