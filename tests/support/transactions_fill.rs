//! A merchant's payments put into the transactions read model in bulk, for tests and benches
//! that need hundreds of thousands of rows: each payment's events are decided by the payment
//! decider and applied with [`apply_batch`], the live projector's own path (one transaction
//! with the checkpoint), so every row is the one the projector writes. Only the log is skipped:
//! the events get positions after the read model's checkpoint instead of being appended.

use chrono::{DateTime, TimeDelta, Utc};
use lightspeed_domain::payment::{
    InitiatePayment, MerchantSnapshot, PaymentCommand, PaymentDetails, PaymentEvent,
};
use lightspeed_domain::{Decider, GatewayId, Paise, Payment, PaymentId};
use lightspeed_eventstore::handler::new_events;
use lightspeed_eventstore::{CommandContext, LogPosition, Payload, RecordedEvent, stream_of};
use lightspeed_projections::progress::Silent;
use lightspeed_projections::{
    BatchOutcome, ProjectorDeps, apply_batch, catalog, rebuild, versions,
};
use sqlx::PgPool;

/// Payments applied per projector batch.
const BATCH: usize = 2_000;

/// One payment put into the read model.
#[derive(Debug, Clone, Copy)]
pub struct FilledPayment {
    /// Its id.
    pub payment_id: PaymentId,
    /// When it was initiated.
    pub initiated_at: DateTime<Utc>,
    /// Its amount in paise.
    pub amount: i64,
    /// Whether it succeeded (7 in 10 do; 2 fail; 1 stays pending).
    pub succeeded: bool,
}

/// Which payments to make: `count` of them for one merchant, routed round the gateways,
/// the `n`-th initiated at `first + n × spacing`.
pub struct PaymentRun<'a> {
    /// The merchant, as initiation sees it.
    pub merchant: MerchantSnapshot,
    /// Its gateways.
    pub gateways: &'a [GatewayId],
    /// How many payments.
    pub count: usize,
    /// When the first is initiated.
    pub first: DateTime<Utc>,
    /// Time between two initiations.
    pub spacing: TimeDelta,
    /// Prefix of the order ids (`<prefix>-<n>`).
    pub order_prefix: &'a str,
}

/// Makes sure the transactions read model has an active version (rebuilt from the log).
pub async fn ensure_read_model(deps: &ProjectorDeps) {
    if versions::active(deps.pool(), "transactions")
        .await
        .expect("versions")
        .is_none()
    {
        rebuild("transactions", deps, &Default::default(), &Silent)
            .await
            .expect("rebuild transactions");
    }
}

/// Applies the runs' payments to the active transactions read model, in batches across runs;
/// answers each run's payments, oldest first.
pub async fn fill(pool: &PgPool, runs: &[PaymentRun<'_>]) -> Vec<Vec<FilledPayment>> {
    let projection = catalog::by_name("transactions").expect("the transactions projection");
    let version = versions::active(pool, "transactions")
        .await
        .expect("versions")
        .expect("an active transactions read model (ensure_read_model)");
    let mut position = version.checkpoint;
    let mut filled: Vec<Vec<FilledPayment>> = runs
        .iter()
        .map(|run| Vec::with_capacity(run.count))
        .collect();
    let all: Vec<(usize, usize)> = runs
        .iter()
        .enumerate()
        .flat_map(|(r, run)| (0..run.count).map(move |n| (r, n)))
        .collect();
    for batch in all.chunks(BATCH) {
        let mut events = Vec::new();
        for &(r, n) in batch {
            let (payment, decided) = payment(&runs[r], n);
            filled[r].push(payment);
            events.extend(recorded(payment, decided, &mut position));
        }
        let outcome = apply_batch(pool, projection.as_ref(), version.version, &events)
            .await
            .expect("apply");
        assert!(matches!(outcome, BatchOutcome::Applied(applied) if applied == events.len()));
    }
    filled
}

/// A spread of amounts from ₹1 to ₹10 000, the same for the same `n`.
fn amount_of(n: usize) -> i64 {
    let mixed = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    100 + i64::try_from(mixed % 999_901).expect("small")
}

/// The `n`-th payment of the run and its events, decided by the payment decider: initiated,
/// its PSP order created, then succeeded (7 in 10), failed (2 in 10) or left pending.
fn payment(run: &PaymentRun<'_>, n: usize) -> (FilledPayment, Vec<PaymentEvent>) {
    let at = run.first + run.spacing * i32::try_from(n).expect("count");
    let gateway_id = run.gateways[n % run.gateways.len()];
    let payment = FilledPayment {
        payment_id: PaymentId::new(),
        initiated_at: at,
        amount: amount_of(n),
        succeeded: n % 10 < 7,
    };
    let mut commands = vec![
        PaymentCommand::Initiate(InitiatePayment {
            payment_id: payment.payment_id,
            merchant: run.merchant,
            amount: Paise(payment.amount),
            currency: "INR".into(),
            merchant_order_id: format!("{}-{n}", run.order_prefix),
            details: PaymentDetails::default(),
            gateway_id,
            at,
        }),
        PaymentCommand::RecordPspOrder {
            gateway_id,
            psp_order_id: format!("order_{n}"),
            checkout: serde_json::json!({}),
            at: at + TimeDelta::seconds(1),
        },
    ];
    let settled = at + TimeDelta::seconds(30);
    match n % 10 {
        0..=6 => commands.push(PaymentCommand::RecordSuccess {
            psp_payment_id: format!("pay_{n}"),
            amount: Paise(payment.amount),
            at: settled,
        }),
        7 | 8 => commands.push(PaymentCommand::RecordFailure {
            code: "BAD_REQUEST_ERROR".into(),
            description: "Payment declined by the bank".into(),
            at: settled,
        }),
        _ => {}
    }
    let mut state = None;
    let mut events = Vec::new();
    for command in &commands {
        let decided = Payment::decide(&state, command).expect("the decider accepts it");
        state = decided.iter().fold(state, Payment::evolve);
        events.extend(decided);
    }
    (payment, events)
}

/// The payment's events as the log would hand them to the projector, at the next positions.
fn recorded(
    payment: FilledPayment,
    events: Vec<PaymentEvent>,
    position: &mut LogPosition,
) -> Vec<RecordedEvent> {
    let stream_id = stream_of::<Payment>(payment.payment_id).expect("stream");
    let encoded = new_events(&stream_id, &events, &CommandContext::default()).expect("encode");
    encoded
        .into_iter()
        .zip(events)
        .enumerate()
        .map(|(index, (event, decided))| {
            position.position += 1;
            RecordedEvent {
                log_position: *position,
                event_id: event.event_id,
                stream_id: stream_id.clone(),
                stream_version: index as u64 + 1,
                event_type: event.event_type,
                schema_version: event.schema_version,
                payload: Payload::of(&event.payload).expect("payload"),
                metadata: event.metadata,
                recorded_at: decided.at(),
                row_hash: [0; 32],
            }
        })
        .collect()
}
