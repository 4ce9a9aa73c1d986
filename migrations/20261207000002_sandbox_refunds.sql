-- Refunds of sandbox payments (crate `sandbox`) and the webhooks they owe. An order now owes
-- several webhooks (its payment's, then one per settled refund), so webhooks and their attempts
-- are keyed by the webhook's `webhook_id`.

-- What the order's refunds not failed add up to; never more than what was paid.
ALTER TABLE sandbox.orders
    ADD COLUMN refunded_paise bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT orders_refunded_within_amount CHECK (refunded_paise BETWEEN 0 AND amount_paise);

CREATE TABLE sandbox.refunds (
    -- `sbr_` and the caller's refund reference, which is the refund's idempotency key.
    id             text PRIMARY KEY CHECK (id ~ '^sbr_[A-Za-z0-9_-]{1,64}$'),
    order_id       text NOT NULL REFERENCES sandbox.orders (id) ON DELETE CASCADE,
    -- SHA-256 of the account key that asked: a replay must come from the same account.
    key_digest     bytea NOT NULL CHECK (length(key_digest) = 32),
    reference      text NOT NULL,
    amount_paise   bigint NOT NULL CHECK (amount_paise >= 100),
    reason         text NOT NULL,
    created_at     timestamptz NOT NULL,
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed', 'failed')),
    settled_at     timestamptz,
    -- When the sweeps settle it as processed by themselves (the auto-settle setting), if ever.
    settle_due_at  timestamptz,
    CHECK ((status = 'pending') = (settled_at IS NULL))
);

CREATE INDEX refunds_by_order ON sandbox.refunds (order_id);
CREATE INDEX refunds_to_settle ON sandbox.refunds (settle_due_at)
    WHERE status = 'pending' AND settle_due_at IS NOT NULL;

ALTER TABLE sandbox.webhook_attempts ADD COLUMN webhook_id text;
UPDATE sandbox.webhook_attempts AS a
   SET webhook_id = w.webhook_id
  FROM sandbox.webhooks AS w
 WHERE w.order_id = a.order_id;
ALTER TABLE sandbox.webhook_attempts
    ALTER COLUMN webhook_id SET NOT NULL,
    DROP CONSTRAINT webhook_attempts_order_id_fkey,
    DROP CONSTRAINT webhook_attempts_pkey;

-- The refund a webhook tells; NULL for the payment's own.
ALTER TABLE sandbox.webhooks
    DROP CONSTRAINT webhooks_pkey,
    ADD PRIMARY KEY (webhook_id),
    ADD COLUMN refund_id text UNIQUE REFERENCES sandbox.refunds (id) ON DELETE CASCADE;
CREATE INDEX webhooks_by_order ON sandbox.webhooks (order_id);

ALTER TABLE sandbox.webhook_attempts
    ADD PRIMARY KEY (webhook_id, attempt),
    ADD CONSTRAINT webhook_attempts_webhook_id_fkey
        FOREIGN KEY (webhook_id) REFERENCES sandbox.webhooks (webhook_id) ON DELETE CASCADE;
