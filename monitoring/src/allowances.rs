//! Request rates shared by the API replicas (`ops.rate_allowances`), by the generic cell rate
//! algorithm: each replica claims a few requests at a time, so together they stay within a
//! key's rate and burst.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A rate: `per_minute` requests a minute, up to `per_minute` at once (a minute's worth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests a minute, at least 1.
    pub per_minute: u32,
}

/// What a claim got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// This many requests (at least 1) may go ahead.
    Granted(u32),
    /// None now; the next fits after this long.
    Wait(Duration),
}

/// Claims up to `want` requests for `key` at `rate` as of `now`.
pub async fn claim(
    pool: &PgPool,
    key: &str,
    now: DateTime<Utc>,
    want: u32,
    rate: Rate,
) -> Result<Claimed, sqlx::Error> {
    let per_minute = rate.per_minute.max(1);
    let interval_us = 60_000_000 / i64::from(per_minute);
    let (granted, wait_us): (i32, i64) =
        sqlx::query_as("SELECT granted, wait_us FROM ops.claim_allowance($1, $2, $3, $4, $5)")
            .bind(key)
            .bind(now)
            .bind(i32::try_from(want.max(1)).unwrap_or(i32::MAX))
            .bind(interval_us.max(1))
            .bind(i32::try_from(per_minute).unwrap_or(i32::MAX))
            .fetch_one(pool)
            .await?;
    Ok(match u32::try_from(granted) {
        Ok(granted) if granted > 0 => Claimed::Granted(granted),
        _ => Claimed::Wait(Duration::from_micros(u64::try_from(wait_us).unwrap_or(1))),
    })
}
