-- The sandbox PSP's own data (crate `sandbox`): the orders it was asked to create, the payer's
-- choice on each, and the webhook each then owes. Not the ledger's: the sandbox is a PSP that
-- happens to be served by the product. Orders are removed once older than the retention
-- (`SANDBOX_RETENTION_DAYS`), with their webhooks and attempts.
CREATE SCHEMA IF NOT EXISTS sandbox;

CREATE TABLE sandbox.orders (
    id              text PRIMARY KEY CHECK (id ~ '^sbo_[A-Za-z0-9_-]{1,64}$'),
    -- The account key that created the order: its SHA-256 recognises the account; the key
    -- itself, sealed under ENCRYPTION_KEY, signs the order's webhook.
    key_digest      bytea NOT NULL CHECK (length(key_digest) = 32),
    key_id          text NOT NULL,
    key_sealed      text NOT NULL,
    reference       text NOT NULL,
    amount_paise    bigint NOT NULL CHECK (amount_paise > 0),
    currency        text NOT NULL,
    description     text NOT NULL,
    callback_url    text NOT NULL,
    return_url      text NOT NULL,
    created_at      timestamptz NOT NULL,
    -- The payer's first choice (a payment, failed when a failure is set); later clicks change
    -- nothing.
    payment_id      text,
    failure_code    text,
    failure_reason  text,
    chosen_at       timestamptz,
    CHECK ((payment_id IS NULL) = (chosen_at IS NULL)),
    CHECK ((failure_code IS NULL) = (failure_reason IS NULL)),
    CHECK (payment_id IS NOT NULL OR failure_code IS NULL)
);

CREATE INDEX orders_by_age ON sandbox.orders (created_at);

-- The webhook an order owes once the payer chose, written with the choice.
CREATE TABLE sandbox.webhooks (
    order_id    text PRIMARY KEY REFERENCES sandbox.orders (id) ON DELETE CASCADE,
    -- The Standard Webhooks `webhook-id`, the same on every attempt.
    webhook_id  text NOT NULL,
    -- The bytes signed and posted on every attempt.
    body        bytea NOT NULL,
    -- Attempts claimed so far. Each claim adds one, so an attempt whose lease ran out cannot
    -- reschedule the claim that replaced it.
    attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the next attempt may be claimed: the end of the running attempt's lease, or the
    -- retry time. NULL once nothing is owed (delivered, or attempts used up).
    due_at      timestamptz
);

CREATE INDEX webhooks_due ON sandbox.webhooks (due_at) WHERE due_at IS NOT NULL;

-- What each attempt got: an HTTP status, or why no answer came.
CREATE TABLE sandbox.webhook_attempts (
    order_id      text NOT NULL REFERENCES sandbox.webhooks (order_id) ON DELETE CASCADE,
    attempt       integer NOT NULL CHECK (attempt >= 1),
    status        integer CHECK (status BETWEEN 100 AND 999),
    error         text,
    attempted_at  timestamptz NOT NULL,
    PRIMARY KEY (order_id, attempt),
    CHECK ((status IS NULL) <> (error IS NULL))
);
