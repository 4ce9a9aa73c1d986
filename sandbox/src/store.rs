//! Every statement on the `sandbox` schema. Each runs on its own: none holds a transaction open
//! while a webhook is posted.

use chrono::{DateTime, Utc};
use lightspeed_adapters::sandbox::{CreateOrder, DeliveryAttempt, FailureInfo};
use lightspeed_domain::SealedSecret;
use sqlx::PgPool;

/// An order as stored, without its sealed key.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredOrder {
    pub id: String,
    pub key_digest: Vec<u8>,
    pub reference: String,
    pub amount_paise: i64,
    pub currency: String,
    pub description: String,
    pub return_url: String,
    pub payment_id: Option<String>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
}

/// A new order and the account that creates it.
pub(crate) struct NewOrder<'a> {
    pub id: &'a str,
    pub key_digest: &'a [u8],
    pub key: &'a SealedSecret,
    pub request: &'a CreateOrder,
    pub created_at: DateTime<Utc>,
}

/// The payer's choice on an order and the webhook it owes.
pub(crate) struct NewChoice<'a> {
    pub order_id: &'a str,
    pub payment_id: &'a str,
    pub failure: Option<&'a FailureInfo>,
    pub chosen_at: DateTime<Utc>,
    pub webhook_id: &'a str,
    pub body: &'a [u8],
    /// Until when the first attempt is left to the click that made the choice.
    pub first_attempt_until: DateTime<Utc>,
}

/// A delivery attempt claimed: what to post, where, signed with which key.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Claim {
    pub order_id: String,
    /// The attempt's number, from 1.
    pub attempt: i32,
    pub webhook_id: String,
    pub body: Vec<u8>,
    pub callback_url: String,
    pub key_id: String,
    pub key_sealed: String,
}

impl Claim {
    /// The account key, as sealed.
    pub fn key(&self) -> SealedSecret {
        SealedSecret {
            key_id: self.key_id.clone(),
            sealed: self.key_sealed.clone(),
        }
    }
}

/// Stores a new order; `false` when an order with its id exists already.
pub(crate) async fn insert_order(pool: &PgPool, order: &NewOrder<'_>) -> sqlx::Result<bool> {
    let request = order.request;
    let inserted = sqlx::query(
        "INSERT INTO sandbox.orders (id, key_digest, key_id, key_sealed, reference, amount_paise,
                                     currency, description, callback_url, return_url, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(order.id)
    .bind(order.key_digest)
    .bind(&order.key.key_id)
    .bind(&order.key.sealed)
    .bind(&request.reference)
    .bind(request.amount.0)
    .bind(&request.currency)
    .bind(&request.description)
    .bind(&request.callback_url)
    .bind(&request.return_url)
    .bind(order.created_at)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The order `id`, if it exists.
pub(crate) async fn order(pool: &PgPool, id: &str) -> sqlx::Result<Option<StoredOrder>> {
    sqlx::query_as(
        "SELECT id, key_digest, reference, amount_paise, currency, description, return_url,
                payment_id, failure_code, failure_reason
           FROM sandbox.orders WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The delivery attempts recorded for order `id`, in order.
pub(crate) async fn attempts(pool: &PgPool, id: &str) -> sqlx::Result<Vec<DeliveryAttempt>> {
    let rows: Vec<(Option<i32>, Option<String>)> = sqlx::query_as(
        "SELECT status, error FROM sandbox.webhook_attempts WHERE order_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(status, error)| {
            let status = status
                .map(u16::try_from)
                .transpose()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok(DeliveryAttempt { status, error })
        })
        .collect()
}

/// Records the payer's choice and the webhook it owes, due to the sweeps once the click had its
/// time for the first attempt; `false` when an earlier choice was recorded already (or the order
/// does not exist), which then stands.
pub(crate) async fn record_choice(pool: &PgPool, choice: &NewChoice<'_>) -> sqlx::Result<bool> {
    let recorded = sqlx::query(
        "WITH chosen AS (
             UPDATE sandbox.orders
                SET payment_id = $2, failure_code = $3, failure_reason = $4, chosen_at = $5
              WHERE id = $1 AND payment_id IS NULL
          RETURNING id)
         INSERT INTO sandbox.webhooks (order_id, webhook_id, body, due_at)
         SELECT id, $6, $7, $8 FROM chosen",
    )
    .bind(choice.order_id)
    .bind(choice.payment_id)
    .bind(choice.failure.map(|f| f.code.as_str()))
    .bind(choice.failure.map(|f| f.reason.as_str()))
    .bind(choice.chosen_at)
    .bind(choice.webhook_id)
    .bind(choice.body)
    .bind(choice.first_attempt_until)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(recorded == 1)
}

/// Claims up to `limit` webhooks due at `now`, leasing each until `lease_until`. Claims others
/// hold are skipped, so concurrent sweeps claim each webhook once.
pub(crate) async fn claim_due(
    pool: &PgPool,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> sqlx::Result<Vec<Claim>> {
    sqlx::query_as(
        "WITH due AS (
             SELECT order_id FROM sandbox.webhooks
              WHERE due_at <= $1
              ORDER BY due_at
              LIMIT $3
                FOR UPDATE SKIP LOCKED)
         UPDATE sandbox.webhooks AS w
            SET attempts = w.attempts + 1, due_at = $2
           FROM due, sandbox.orders AS o
          WHERE w.order_id = due.order_id AND o.id = w.order_id
      RETURNING w.order_id, w.attempts AS attempt, w.webhook_id, w.body,
                o.callback_url, o.key_id, o.key_sealed",
    )
    .bind(now)
    .bind(lease_until)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// Claims the next attempt of order `order_id`'s webhook, leased until `lease_until`, if it is
/// still owed and nobody claimed an attempt since the `attempts_seen`-th, whatever its due time:
/// the caller made that attempt, or saw the choice recorded.
pub(crate) async fn claim_next(
    pool: &PgPool,
    order_id: &str,
    attempts_seen: i32,
    lease_until: DateTime<Utc>,
) -> sqlx::Result<Option<Claim>> {
    sqlx::query_as(
        "UPDATE sandbox.webhooks AS w
            SET attempts = w.attempts + 1, due_at = $3
           FROM sandbox.orders AS o
          WHERE w.order_id = $1 AND w.attempts = $2 AND w.due_at IS NOT NULL
            AND o.id = w.order_id
      RETURNING w.order_id, w.attempts AS attempt, w.webhook_id, w.body,
                o.callback_url, o.key_id, o.key_sealed",
    )
    .bind(order_id)
    .bind(attempts_seen)
    .bind(lease_until)
    .fetch_optional(pool)
    .await
}

/// Records what `claim`'s attempt got, and when the next is due (`None`: nothing more is owed),
/// unless a later claim replaced it.
pub(crate) async fn record_attempt(
    pool: &PgPool,
    claim: &Claim,
    attempt: &DeliveryAttempt,
    attempted_at: DateTime<Utc>,
    next_due: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH attempt AS (
             INSERT INTO sandbox.webhook_attempts (order_id, attempt, status, error, attempted_at)
             VALUES ($1, $2, $3, $4, $5))
         UPDATE sandbox.webhooks SET due_at = $6 WHERE order_id = $1 AND attempts = $2",
    )
    .bind(&claim.order_id)
    .bind(claim.attempt)
    .bind(attempt.status.map(i32::from))
    .bind(attempt.error.as_deref())
    .bind(attempted_at)
    .bind(next_due)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes up to `limit` orders created before `before`, with their webhooks and attempts;
/// answers how many. Rows another sweep is removing are skipped.
pub(crate) async fn remove_expired(
    pool: &PgPool,
    before: DateTime<Utc>,
    limit: u32,
) -> sqlx::Result<u64> {
    let removed = sqlx::query(
        "DELETE FROM sandbox.orders
          WHERE id IN (SELECT id FROM sandbox.orders
                        WHERE created_at < $1
                        ORDER BY created_at
                        LIMIT $2
                          FOR UPDATE SKIP LOCKED)",
    )
    .bind(before)
    .bind(i64::from(limit))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(removed)
}
