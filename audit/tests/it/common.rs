//! Shared helpers of the audit tests: a real log over real PostgreSQL (the projections'
//! scenario generator driving the domain's deciders), sealed, with the wallets read model kept
//! up to date; exports in a temporary directory; editing an export's lines.

#![allow(dead_code, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use indicatif::ProgressBar;
use lightspeed_audit::{ExportSummary, MerchantCommission, export_log};
use lightspeed_domain::{ManualClock, MerchantId};
use lightspeed_eventstore::seal::{Sealer, SealerConfig};
use lightspeed_eventstore::testing::{TestDatabase, settled};
use lightspeed_eventstore::{EventStore, PgEventStore};
use lightspeed_projections::progress::Silent;
use lightspeed_projections::scenario::{self, Scenario, ScenarioConfig};
use lightspeed_projections::wallets::Wallets;
use lightspeed_projections::{
    Projection, RebuildOptions, apply_batch, rebuild_projection, versions,
};
use sqlx::{PgPool, Row};

/// Events per seal in tests: small, so a log of a few hundred events has many seals.
pub const EVENTS_PER_SEAL: usize = 40;

/// A log being written by a scenario, with a clock the test moves.
pub struct Log {
    pub db: TestDatabase,
    pub store: PgEventStore,
    pub clock: ManualClock,
    pub scenario: Scenario,
}

impl Log {
    /// A fresh database with the wallets read model active and the scenario's onboarding
    /// appended, one second apart from the start instant.
    pub async fn new(seed: u64) -> Self {
        let db = TestDatabase::new().await;
        let clock = ManualClock::new(start());
        let store = PgEventStore::new(db.pool.clone(), Arc::new(clock.clone()));
        let deps = lightspeed_projections::ProjectorDeps {
            store: store.clone(),
            live: None,
        };
        rebuild_projection(
            Arc::new(Wallets),
            &deps,
            &RebuildOptions::default(),
            &Silent,
        )
        .await
        .expect("activate the wallets read model");
        let (scenario, operations) = Scenario::new(ScenarioConfig {
            merchants: 4,
            gateways_per_merchant: 2,
            seed,
        });
        let log = Self {
            db,
            store,
            clock,
            scenario,
        };
        log.append(operations).await;
        log
    }

    /// Appends operations one by one, each recorded 10 ms after the one before.
    pub async fn append(&self, operations: Vec<scenario::Operation>) {
        for operation in operations {
            self.clock.advance(TimeDelta::milliseconds(10));
            scenario::append_each(&self.store, vec![operation])
                .await
                .expect("append");
        }
    }

    /// Runs the scenario on for at least `events` events.
    pub async fn more(&mut self, events: usize) {
        let operations = self.scenario.more(events);
        self.append(operations).await;
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// Seals everything sealable.
    pub async fn seal(&self) {
        self.settle().await;
        let sealer = Sealer::new(
            self.pool().clone(),
            SealerConfig {
                max_events_per_seal: EVENTS_PER_SEAL,
                ..SealerConfig::default()
            },
        );
        while sealer.seal_once().await.expect("seal").is_some() {}
    }

    /// Waits (up to 30 s) until a gap-safe reader sees every committed event: transactions
    /// left open elsewhere on the cluster (other tests) hold it back for a while.
    pub async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let head = self.store.head().await.expect("head");
            let last: Option<(String, i64)> = sqlx::query_as(
                "SELECT transaction_id::text, position FROM ledger.events
                  ORDER BY transaction_id DESC, position DESC LIMIT 1",
            )
            .fetch_optional(self.pool())
            .await
            .expect("last");
            let last = last.map_or(lightspeed_eventstore::LogPosition::START, |(tx, p)| {
                lightspeed_eventstore::LogPosition {
                    transaction_id: tx.parse().expect("xid8"),
                    position: u64::try_from(p).expect("position"),
                }
            });
            if head == last {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the log never settled"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Applies everything new to the wallets read model, as its projector would.
    pub async fn project(&self) {
        self.settle().await;
        let active = versions::active(self.pool(), Wallets.name())
            .await
            .expect("active")
            .expect("wallets active");
        let categories: Vec<String> = Wallets
            .categories()
            .unwrap_or_default()
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        settled(self.pool()).await;
        loop {
            let record = versions::find(self.pool(), Wallets.name(), active.version)
                .await
                .expect("find")
                .expect("version");
            let events = self
                .store
                .read_log(record.checkpoint, Some(&categories), 1_000)
                .await
                .expect("read");
            if events.is_empty() {
                return;
            }
            apply_batch(self.pool(), &Wallets, active.version, &events)
                .await
                .expect("apply");
        }
    }

    /// The wallet read model now, without all-zero rows.
    pub async fn read_model(&self) -> Figures {
        let rows = sqlx::query(
            "SELECT merchant_id, payments_succeeded, volume_paise, commission_accrued_paise,
                    commission_reversed_paise, paid_out_paise, reversed_paise, settled_paise, pending_payouts_paise,
                    balance_due_paise FROM read.wallet_balances",
        )
        .fetch_all(self.pool())
        .await
        .expect("read model");
        let mut figures = Figures::new();
        for row in rows {
            let values: Vec<i64> = (1..10).map(|i| row.get::<i64, _>(i)).collect();
            if values.iter().any(|v| *v != 0) {
                figures.insert(MerchantId(row.get("merchant_id")), values);
            }
        }
        figures
    }

    /// Exports the log to `path`.
    pub async fn export(&self, path: &Path, until: Option<DateTime<Utc>>) -> ExportSummary {
        self.settle().await;
        let file = std::fs::File::create(path).expect("create export");
        let (summary, _) = export_log(self.pool(), until, file, &ProgressBar::hidden())
            .await
            .expect("export");
        summary
    }
}

/// Where every test log's clock starts.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .expect("a valid instant")
}

/// Per merchant, the nine compared figures in `read.wallet_balances` column order.
pub type Figures = BTreeMap<MerchantId, Vec<i64>>;

/// A replay's figures in the same shape, without all-zero merchants.
pub fn figures(merchants: &[MerchantCommission]) -> Figures {
    merchants
        .iter()
        .map(|m| {
            (
                m.merchant_id,
                m.figures().iter().map(|(_, v)| *v).collect::<Vec<i64>>(),
            )
        })
        .filter(|(_, values)| values.iter().any(|v| *v != 0))
        .collect()
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("ls-audit-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The lines of an export (decompressed), without their line ends.
pub fn read_lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).expect("read export");
    let text = zstd::decode_all(bytes.as_slice()).expect("decompress");
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Writes lines back as an export, compressed like the original.
pub fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut text = Vec::new();
    for line in lines {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    let packed = zstd::encode_all(text.as_slice(), 3).expect("compress");
    std::fs::write(path, packed).expect("write export");
}

/// A line as JSON.
pub fn json(line: &[u8]) -> serde_json::Value {
    serde_json::from_slice(line).expect("a JSON line")
}

/// Index of the first line whose JSON satisfies `pick`, from `from` on.
pub fn find_line(
    lines: &[Vec<u8>],
    from: usize,
    pick: impl Fn(&serde_json::Value) -> bool,
) -> usize {
    (from..lines.len())
        .find(|i| pick(&json(&lines[*i])))
        .expect("a matching line")
}

pub fn is_event(line: &serde_json::Value) -> bool {
    line["record"] == "event"
}
