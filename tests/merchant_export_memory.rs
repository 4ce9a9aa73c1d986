//! The merchant's CSV export of its transactions streams in constant memory: 100 000 rows
//! through `lightspeed serve` running as its own process, whose peak resident memory
//! (`/proc/<pid>/status`) is read before and after, and every row arrives exactly once.

mod support;

use std::collections::HashSet;

use chrono::{SecondsFormat, TimeDelta, Utc};
use lightspeed_api::testing::TestMerchant;
use lightspeed_domain::{GatewayId, Paise};
use lightspeed_projections::ProjectorDeps;
use support::served_api::ServedApi;
use support::transactions_fill::{FilledPayment, PaymentRun, ensure_read_model, fill};
use support::{World, bare_world};
use uuid::Uuid;

/// Rows the export must stream.
const ROWS: usize = 100_000;

/// `count` payments of `merchant` in the read model, one a second up to about now.
async fn payments(
    world: &World,
    merchant: &TestMerchant,
    count: usize,
    prefix: &str,
) -> Vec<FilledPayment> {
    let gateway: GatewayId = world.app.sandbox_gateway(merchant, 0, None).await.0;
    let snapshot = world
        .app
        .ledger
        .current_merchant(merchant.id)
        .await
        .expect("merchant")
        .merchant
        .snapshot(Paise(0));
    let spacing = TimeDelta::seconds(1);
    let run = PaymentRun {
        merchant: snapshot,
        gateways: &[gateway],
        count,
        first: Utc::now() - spacing * i32::try_from(count).expect("count"),
        spacing,
        order_prefix: prefix,
    };
    fill(&world.app.db.pool, &[run]).await.remove(0)
}

/// The transaction ids of a CSV export, read chunk by chunk as the server sends them; answers
/// them with the body's size in bytes.
async fn exported_ids(api: &ServedApi, merchant: &TestMerchant, query: &str) -> (Vec<Uuid>, usize) {
    let mut response = api
        .signed_get(merchant, &format!("/transactions{query}"))
        .header("accept", "text/csv")
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), 200);
    let (mut ids, mut bytes, mut pending) = (Vec::new(), 0, Vec::new());
    while let Some(chunk) = response.chunk().await.expect("a chunk") {
        bytes += chunk.len();
        pending.extend_from_slice(&chunk);
        let complete = pending
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        for line in pending[..complete]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let first = line.split(|&b| b == b',').next().unwrap_or_default();
            let first = std::str::from_utf8(first).expect("utf-8");
            if first != "transaction_id" {
                ids.push(first.parse().expect("a transaction id"));
            }
        }
        pending.drain(..complete);
    }
    assert!(pending.is_empty(), "the body ends with a whole line");
    (ids, bytes)
}

#[tokio::test]
async fn the_csv_export_of_100_000_rows_streams_in_flat_memory() {
    let world = bare_world().await;
    let deps = ProjectorDeps {
        store: world.app.ledger.store().clone(),
        live: None,
    };
    let merchant = world.app.merchant().await;
    let other = world.app.merchant().await;
    lightspeed_eventstore::testing::settled(&world.app.db.pool).await;
    ensure_read_model(&deps).await;
    let filled = payments(&world, &merchant, ROWS, "EXP").await;
    let foreign = payments(&world, &other, 100, "OTHER").await;
    let api = world.served_api().await;

    // The export's one-time costs (connections, prepared statements, threads) first, on the
    // oldest hundred rows, so what follows is the export's own growth.
    let hundredth = filled[100]
        .initiated_at
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    let (warm, _) = exported_ids(&api, &merchant, &format!("?to={hundredth}")).await;
    assert_eq!(warm.len(), 100);
    let before = api.memory();
    let (ids, bytes) = exported_ids(&api, &merchant, "").await;
    let after = api.memory();

    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(ids.len(), ROWS, "one line per payment");
    assert_eq!(unique.len(), ROWS, "no row twice");
    let expected: HashSet<Uuid> = filled.iter().map(|p| p.payment_id.0).collect();
    assert_eq!(
        unique, expected,
        "every row of the merchant's, none of another's"
    );
    assert!(foreign.iter().all(|p| !unique.contains(&p.payment_id.0)));

    // An export built in memory holds at least its whole body at once (100 000 rows of about
    // 216 bytes: some 21 MB), or the rows it is written from, which are bigger (each row's
    // struct and strings, some 400 bytes). Streamed, it holds one read-ahead of 512 rows and
    // one 256-row chunk (about 200 KB) whatever the count, plus what the allocator keeps per
    // thread (about 4 MB measured). The bound, half the body, is twice that below what any
    // export gathering the rows needs. The peak after is compared with the resident size
    // before, so even a peak reached before the export cannot hide the export's own.
    let growth_kib = after.peak.saturating_sub(before.resident);
    let bound_kib = u64::try_from(bytes / 2 / 1024).expect("size");
    eprintln!("{bytes} bytes exported; peak grew by {growth_kib} KiB (bound {bound_kib} KiB)");
    assert!(bytes > 20_000_000, "the body is the size the bound assumes");
    assert!(
        growth_kib < bound_kib,
        "the export's memory grew by {growth_kib} KiB for a {bytes}-byte body"
    );
}
