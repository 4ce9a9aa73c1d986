//! Routing policy: which of a merchant's gateways takes a payment.
//!
//! A pure function over snapshots of the merchant's gateways (their folded states, which carry
//! this month's volume, the recent booking window, temporary failures and last use), a success
//! rate per gateway from the read side, the amount, the instant and the merchant's checkout
//! settings. Eligibility is [`Gateway::check_bookable`], the very check the `Book` command
//! enforces, so a route chosen here is a booking the gateway accepts (unless another request
//! booked it first, which optimistic concurrency on the gateway stream catches).

use crate::gateway::{BookingRequest, Gateway, Ineligible};
use crate::ids::GatewayId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

use crate::checkout_settings::RoutingMode;

/// A gateway's observed success: payments that succeeded out of those that reached an outcome.
///
/// Ranked by the smoothed rate `(succeeded + 1) / (attempted + 2)`, compared exactly as
/// fractions in integers: a gateway with no history ranks at one half, neither above a proven
/// gateway nor starved of traffic. Counts above 2^62 are clamped (no read model gets there) so
/// the cross products always fit in `u128`; `succeeded` is capped at `attempted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SuccessRate {
    /// Payments that succeeded.
    pub succeeded: u64,
    /// Payments that succeeded or failed.
    pub attempted: u64,
}

impl SuccessRate {
    const MAX_COUNT: u64 = 1 << 62;

    /// The smoothed rate as (numerator, denominator), each at most 2^62 + 2.
    fn smoothed(&self) -> (u128, u128) {
        let attempted = self.attempted.min(Self::MAX_COUNT);
        let succeeded = self.succeeded.min(attempted);
        (u128::from(succeeded) + 1, u128::from(attempted) + 2)
    }

    /// Compares smoothed rates by cross-multiplying in `u128` (no floating point, no overflow).
    pub fn rank_cmp(&self, other: &SuccessRate) -> Ordering {
        let (a_numerator, a_denominator) = self.smoothed();
        let (b_numerator, b_denominator) = other.smoothed();
        (a_numerator * b_denominator).cmp(&(b_numerator * a_denominator))
    }

    /// The smoothed rate in basis points (rounded down), for display and ops.
    pub fn smoothed_bps(&self) -> u32 {
        let (numerator, denominator) = self.smoothed();
        // succeeded ≤ attempted, so numerator < denominator and the rate is below 10 000 bps.
        u32::try_from(numerator * 10_000 / denominator).expect("a smoothed rate below one")
    }
}

/// One gateway as routing sees it.
#[derive(Debug, Clone, Copy)]
pub struct RouteCandidate<'a> {
    /// The gateway's folded state (or a read-model snapshot of it).
    pub gateway: &'a Gateway,
    /// Its success rate, from the read side.
    pub success_rate: SuccessRate,
}

/// Why routing passed over a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rejection {
    /// The payment already tried this gateway (a reroute looks elsewhere).
    #[error("already tried for this payment")]
    AlreadyTried,
    /// The gateway cannot take the booking.
    #[error(transparent)]
    Ineligible(#[from] Ineligible),
}

/// No gateway of the merchant can take the payment; says why each one was passed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no gateway available ({} considered)", rejected.len())]
pub struct NoGatewayAvailable {
    /// Every candidate and why it was passed over.
    pub rejected: Vec<(GatewayId, Rejection)>,
}

/// Picks the gateway for a payment, or says why none qualifies.
///
/// Eligible: [`Gateway::check_bookable`] passes for `request` and the gateway is not in
/// `already_tried`. Among the eligible, `request.settings.routing_mode` orders them; the gateway
/// id breaks any remaining tie so the answer is deterministic.
pub fn route(
    candidates: &[RouteCandidate<'_>],
    request: &BookingRequest,
    already_tried: &[GatewayId],
) -> Result<GatewayId, NoGatewayAvailable> {
    let mut rejected = Vec::new();
    let mut best: Option<&RouteCandidate<'_>> = None;
    for candidate in candidates {
        let id = candidate.gateway.id();
        let verdict = if already_tried.contains(&id) {
            Err(Rejection::AlreadyTried)
        } else {
            candidate
                .gateway
                .check_bookable(request)
                .map_err(Rejection::from)
        };
        match verdict {
            Err(rejection) => rejected.push((id, rejection)),
            Ok(()) => {
                let better = best.is_none_or(|current| {
                    preference(request.settings.routing_mode, candidate, current) == Ordering::Less
                });
                if better {
                    best = Some(candidate);
                }
            }
        }
    }
    best.map(|candidate| candidate.gateway.id())
        .ok_or(NoGatewayAvailable { rejected })
}

/// `Less` when `a` should be preferred to `b`.
fn preference(mode: RoutingMode, a: &RouteCandidate<'_>, b: &RouteCandidate<'_>) -> Ordering {
    let by_priority = || {
        b.gateway
            .settings()
            .priority
            .cmp(&a.gateway.settings().priority)
    };
    let by_success = || b.success_rate.rank_cmp(&a.success_rate);
    let by_last_use = || {
        least_recent_first(
            a.gateway.usage().last_booked_at(),
            b.gateway.usage().last_booked_at(),
        )
    };
    let by_id = || a.gateway.id().cmp(&b.gateway.id());
    match mode {
        RoutingMode::Smart => by_priority()
            .then_with(by_success)
            .then_with(by_last_use)
            .then_with(by_id),
        RoutingMode::RoundRobin => by_last_use().then_with(by_priority).then_with(by_id),
    }
}

/// Never used sorts first, then the oldest use.
fn least_recent_first(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => a.cmp(&b),
    }
}

#[cfg(test)]
mod tests;
