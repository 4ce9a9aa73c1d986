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
    /// The refund the webhook tells, if it is a refund's.
    pub refund_id: Option<String>,
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

/// The delivery attempts recorded for order `id`'s payment webhook, in order.
pub(crate) async fn attempts(pool: &PgPool, id: &str) -> sqlx::Result<Vec<DeliveryAttempt>> {
    let rows: Vec<(Option<i32>, Option<String>)> = sqlx::query_as(
        "SELECT a.status, a.error
           FROM sandbox.webhook_attempts AS a
           JOIN sandbox.webhooks AS w ON w.webhook_id = a.webhook_id
          WHERE w.order_id = $1 AND w.refund_id IS NULL
          ORDER BY a.attempt",
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
             SELECT webhook_id FROM sandbox.webhooks
              WHERE due_at <= $1
              ORDER BY due_at
              LIMIT $3
                FOR UPDATE SKIP LOCKED)
         UPDATE sandbox.webhooks AS w
            SET attempts = w.attempts + 1, due_at = $2
           FROM due, sandbox.orders AS o
          WHERE w.webhook_id = due.webhook_id AND o.id = w.order_id
      RETURNING w.order_id, w.refund_id, w.attempts AS attempt, w.webhook_id, w.body,
                o.callback_url, o.key_id, o.key_sealed",
    )
    .bind(now)
    .bind(lease_until)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// Claims the next attempt of webhook `webhook_id`, leased until `lease_until`, if it is still
/// owed and nobody claimed an attempt since the `attempts_seen`-th, whatever its due time: the
/// caller made that attempt, or saw the webhook recorded.
pub(crate) async fn claim_next(
    pool: &PgPool,
    webhook_id: &str,
    attempts_seen: i32,
    lease_until: DateTime<Utc>,
) -> sqlx::Result<Option<Claim>> {
    sqlx::query_as(
        "UPDATE sandbox.webhooks AS w
            SET attempts = w.attempts + 1, due_at = $3
           FROM sandbox.orders AS o
          WHERE w.webhook_id = $1 AND w.attempts = $2 AND w.due_at IS NOT NULL
            AND o.id = w.order_id
      RETURNING w.order_id, w.refund_id, w.attempts AS attempt, w.webhook_id, w.body,
                o.callback_url, o.key_id, o.key_sealed",
    )
    .bind(webhook_id)
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
             INSERT INTO sandbox.webhook_attempts
                    (order_id, webhook_id, attempt, status, error, attempted_at)
             VALUES ($1, $2, $3, $4, $5, $6))
         UPDATE sandbox.webhooks SET due_at = $7 WHERE webhook_id = $2 AND attempts = $3",
    )
    .bind(&claim.order_id)
    .bind(&claim.webhook_id)
    .bind(claim.attempt)
    .bind(attempt.status.map(i32::from))
    .bind(attempt.error.as_deref())
    .bind(attempted_at)
    .bind(next_due)
    .execute(pool)
    .await?;
    Ok(())
}

/// The `webhook-id` of the webhook order `order_id`'s payment owes, once the payer chose.
pub(crate) async fn payment_webhook(pool: &PgPool, order_id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT webhook_id FROM sandbox.webhooks WHERE order_id = $1 AND refund_id IS NULL",
    )
    .bind(order_id)
    .fetch_optional(pool)
    .await
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

/// A refund as stored, with what its order says about the payment.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredRefund {
    pub id: String,
    pub key_digest: Vec<u8>,
    pub reference: String,
    pub amount_paise: i64,
    pub reason: String,
    pub status: String,
    pub order_id: String,
    pub order_reference: String,
    pub payment_id: String,
    pub currency: String,
}

/// A new refund and the account that asks for it.
pub(crate) struct NewRefund<'a> {
    pub id: &'a str,
    pub order_id: &'a str,
    pub key_digest: &'a [u8],
    pub reference: &'a str,
    pub amount_paise: i64,
    pub reason: &'a str,
    pub created_at: DateTime<Utc>,
    pub settle_due_at: Option<DateTime<Utc>>,
}

/// What storing a new refund did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefundInsert {
    /// Stored, its amount reserved on the order.
    Stored,
    /// A refund with this id exists already.
    Exists,
    /// The order's payment has less left to refund than the amount.
    OverRefund,
}

/// A refund's settlement and the webhook it owes.
pub(crate) struct Settlement<'a> {
    pub refund_id: &'a str,
    /// `processed` or `failed`.
    pub status: &'a str,
    pub settled_at: DateTime<Utc>,
    pub webhook_id: &'a str,
    pub body: &'a [u8],
    /// When the first attempt may be claimed by the sweeps.
    pub first_attempt_at: DateTime<Utc>,
}

/// Stores `refund` and reserves its amount on its paid order, all or nothing. The reservation
/// is one guarded `UPDATE`, which PostgreSQL re-checks on the latest row after waiting for a
/// racing one, so concurrent refunds never together exceed the amount paid. The transaction
/// holds no webhook post.
pub(crate) async fn insert_refund(
    pool: &PgPool,
    refund: &NewRefund<'_>,
) -> sqlx::Result<RefundInsert> {
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO sandbox.refunds (id, order_id, key_digest, reference, amount_paise, reason,
                                      created_at, settle_due_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(refund.id)
    .bind(refund.order_id)
    .bind(refund.key_digest)
    .bind(refund.reference)
    .bind(refund.amount_paise)
    .bind(refund.reason)
    .bind(refund.created_at)
    .bind(refund.settle_due_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(RefundInsert::Exists);
    }
    let reserved = sqlx::query(
        "UPDATE sandbox.orders SET refunded_paise = refunded_paise + $2
          WHERE id = $1 AND payment_id IS NOT NULL AND failure_code IS NULL
            AND refunded_paise + $2 <= amount_paise",
    )
    .bind(refund.order_id)
    .bind(refund.amount_paise)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if reserved == 0 {
        tx.rollback().await?;
        return Ok(RefundInsert::OverRefund);
    }
    tx.commit().await?;
    Ok(RefundInsert::Stored)
}

/// The refund `id`, if it exists.
pub(crate) async fn refund(pool: &PgPool, id: &str) -> sqlx::Result<Option<StoredRefund>> {
    sqlx::query_as(
        "SELECT r.id, r.key_digest, r.reference, r.amount_paise, r.reason, r.status, r.order_id,
                o.reference AS order_reference, o.payment_id, o.currency
           FROM sandbox.refunds AS r
           JOIN sandbox.orders AS o ON o.id = r.order_id
          WHERE r.id = $1 AND o.payment_id IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Settles a pending refund and records the webhook it owes, in one statement; a failed refund
/// gives its amount back to its order. `false` when the refund is not pending (any more).
pub(crate) async fn settle_refund(
    pool: &PgPool,
    settlement: &Settlement<'_>,
) -> sqlx::Result<bool> {
    let settled = sqlx::query(
        "WITH settled AS (
             UPDATE sandbox.refunds SET status = $2, settled_at = $3
              WHERE id = $1 AND status = 'pending'
          RETURNING id, order_id, amount_paise),
         restored AS (
             UPDATE sandbox.orders AS o SET refunded_paise = o.refunded_paise - s.amount_paise
               FROM settled AS s
              WHERE o.id = s.order_id AND $2 = 'failed')
         INSERT INTO sandbox.webhooks (order_id, refund_id, webhook_id, body, due_at)
         SELECT order_id, id, $4, $5, $6 FROM settled",
    )
    .bind(settlement.refund_id)
    .bind(settlement.status)
    .bind(settlement.settled_at)
    .bind(settlement.webhook_id)
    .bind(settlement.body)
    .bind(settlement.first_attempt_at)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(settled == 1)
}

/// Up to `limit` pending refunds whose auto-settlement is due at `now`.
pub(crate) async fn refunds_due(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: u32,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT id FROM sandbox.refunds
          WHERE status = 'pending' AND settle_due_at <= $1
          ORDER BY settle_due_at
          LIMIT $2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}
