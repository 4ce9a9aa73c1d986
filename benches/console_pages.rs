//! Every console page's server time with a million payments in the read models, against
//! `lightspeed serve` running as its own process, beside the same run's HTTP floor (`/health`):
//! `cargo bench --bench console_pages`.
//!
//! The merchants are onboarded through the ledger (each with a sandbox gateway), one payment
//! is initiated through the API (its page reads its events from the log), a person is invited
//! as `admin`, and every read model is built from the log. Then the transactions read model
//! gets a million payments and the WhatsApp one its notifications, decided by their deciders
//! and applied by the projector's own batch function (see `tests/support/transactions_fill.rs`),
//! and the tables are analysed as autovacuum would after such a load. The person signs in with
//! a one-time link; every page is asked over one keep-alive HTTP/1.1 connection with the
//! session's cookie, one request at a time.
//!
//! Settings (environment): `BENCH_MERCHANTS` (1 000), `BENCH_PAYMENTS` (1 000 000 in all),
//! `BENCH_BUSY_PAYMENTS` (200 000 of them the first merchant's), `BENCH_MESSAGES` (100 000
//! WhatsApp notifications), `BENCH_REQUESTS` (200 per page and round), `BENCH_ROUNDS` (3).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use lightspeed_console::{ConsoleConfig, SessionSettings};
use lightspeed_domain::access::Role;
use lightspeed_domain::notification::{
    NotificationCommand, NotificationEvent, NotificationType, QueueNotification,
};
use lightspeed_domain::person::PersonEmail;
use lightspeed_domain::retry::Jitter;
use lightspeed_domain::{Decider, GatewayId, MerchantId, Notification, NotificationId, Paise};
use lightspeed_eventstore::handler::new_events;
use lightspeed_eventstore::{CommandContext, LogPosition, Payload, RecordedEvent, stream_of};
use lightspeed_projections::{BatchOutcome, apply_batch, catalog, versions};
use support::served_api::ServedApi;
use support::transactions_fill::{PaymentRun, fill};
use support::{World, bare_world};

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Who signs in.
const EMAIL: &str = "bench-ops@example.com";
/// How far back the filled payments and notifications go.
const SPAN_DAYS: i64 = 35;
/// Notifications applied per projector batch.
const BATCH: usize = 2_000;
/// Unmeasured requests before each page's measured ones.
const WARM_UP: usize = 10;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A merchant with one sandbox gateway, and how initiation sees it.
async fn onboard(
    world: &World,
) -> (
    MerchantId,
    GatewayId,
    lightspeed_domain::payment::MerchantSnapshot,
) {
    let merchant = world.merchant().await;
    let (gateway, _) = world.app.sandbox_gateway(&merchant, 0, None).await;
    let snapshot = world
        .app
        .ledger
        .current_merchant(merchant.id)
        .await
        .expect("merchant")
        .merchant
        .snapshot(Paise(0));
    (merchant.id, gateway, snapshot)
}

/// What the pages are asked about: the busy merchant and the payment initiated through the API.
struct Filled {
    busy: MerchantId,
    payment_id: String,
}

/// Onboards the merchants, initiates one payment and invites the person through the ledger,
/// builds every read model from the log, then fills the transactions and WhatsApp ones.
async fn populate(world: &World) -> Filled {
    let merchants = setting("BENCH_MERCHANTS", 1_000);
    let started = Instant::now();
    let onboarded: Vec<_> = futures::stream::iter(0..merchants)
        .map(|_| onboard(world))
        .buffered(16)
        .collect()
        .await;
    eprintln!(
        "{merchants} merchants onboarded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let first = world.app.merchant().await;
    world.app.sandbox_gateway(&first, 0, None).await;
    let payment_id = world.initiate(&first, "BENCH-REAL-1").await;
    let email = PersonEmail::parse(EMAIL).expect("email");
    world
        .app
        .ledger
        .invite_person(&email, Role::Admin, &CommandContext::default())
        .await
        .expect("invite");
    world.app.project().await;
    fill_payments(world, &onboarded).await;
    let ids: Vec<MerchantId> = onboarded.iter().map(|(id, _, _)| *id).collect();
    fill_notifications(world, &ids).await;
    for table in ["transactions", "whatsapp"] {
        analyse(world, table).await;
    }
    Filled {
        busy: ids[0],
        payment_id,
    }
}

async fn fill_payments(
    world: &World,
    onboarded: &[(
        MerchantId,
        GatewayId,
        lightspeed_domain::payment::MerchantSnapshot,
    )],
) {
    let (total, busy) = (
        setting("BENCH_PAYMENTS", 1_000_000),
        setting("BENCH_BUSY_PAYMENTS", 200_000),
    );
    let others = (total - busy) / (onboarded.len() - 1).max(1);
    let now = Utc::now();
    let span = TimeDelta::days(SPAN_DAYS);
    let runs: Vec<PaymentRun<'_>> = onboarded
        .iter()
        .enumerate()
        .map(|(m, (_, gateway, snapshot))| {
            let count = if m == 0 { busy } else { others };
            let spacing = span / i32::try_from(count.max(1)).expect("count");
            PaymentRun {
                merchant: *snapshot,
                gateways: std::slice::from_ref(gateway),
                count,
                first: now - span,
                spacing,
                order_prefix: "ORD",
            }
        })
        .collect();
    let started = Instant::now();
    let filled = fill(&world.app.db.pool, &runs).await;
    eprintln!(
        "{} payments applied in {:.1} s",
        filled.iter().map(Vec::len).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
}

/// The `n`-th notification's type and template: mostly transaction updates.
fn kind_of(n: usize) -> (NotificationType, &'static str) {
    match n % 10 {
        0 => (NotificationType::LowBalance, "low_balance"),
        1 => (NotificationType::AccountStatus, "account_status"),
        2 => (NotificationType::PayoutUpdate, "payout_update"),
        _ => (NotificationType::TxnUpdate, "txn_update"),
    }
}

/// The `n`-th notification's events, decided by the notification decider: queued, then sent
/// (8 in 10), given up after a permanent error (1 in 10) or left queued.
fn notification(merchant_id: MerchantId, n: usize, at: DateTime<Utc>) -> Vec<NotificationEvent> {
    let (kind, template) = kind_of(n);
    let later = at + TimeDelta::seconds(2);
    let mut commands = vec![NotificationCommand::Queue(QueueNotification {
        notification_id: NotificationId::new(),
        merchant_id,
        kind,
        template: template.to_owned(),
        recipient: "919867800451".to_owned(),
        params: vec![
            format!("ORD-{n}"),
            "₹499".to_owned(),
            "succeeded".to_owned(),
        ],
        at,
    })];
    match n % 10 {
        0..=7 => commands.push(NotificationCommand::RecordSent {
            provider_message_id: format!("wamid.{n}"),
            at: later,
        }),
        8 => commands.push(NotificationCommand::RecordAttemptFailed {
            error_code: "131026".to_owned(),
            error_message: "Message undeliverable".to_owned(),
            retryable: false,
            rate_limited: false,
            retry_after_secs: None,
            jitter: Jitter::NONE,
            at: later,
        }),
        _ => {}
    }
    let mut state = None;
    let mut events = Vec::new();
    for command in &commands {
        let decided = Notification::decide(&state, command).expect("the decider accepts it");
        state = decided.iter().fold(state, Notification::evolve);
        events.extend(decided);
    }
    events
}

/// The notification's events as the log would hand them to the projector, at the next
/// positions.
fn recorded(events: Vec<NotificationEvent>, position: &mut LogPosition) -> Vec<RecordedEvent> {
    let Some(NotificationEvent::NotificationQueued {
        notification_id, ..
    }) = events.first()
    else {
        unreachable!("a notification starts queued")
    };
    let stream_id = stream_of::<Notification>(notification_id).expect("stream");
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

/// `BENCH_MESSAGES` notifications over the last [`SPAN_DAYS`] days, a fifth of them the busy
/// merchant's and the rest round the others, applied to the WhatsApp read model.
async fn fill_notifications(world: &World, merchants: &[MerchantId]) {
    let count = setting("BENCH_MESSAGES", 100_000);
    let pool = &world.app.db.pool;
    let projection = catalog::by_name("whatsapp").expect("the whatsapp projection");
    let version = versions::active(pool, "whatsapp")
        .await
        .expect("versions")
        .expect("an active whatsapp read model");
    let mut position = version.checkpoint;
    let now = Utc::now();
    let spacing = TimeDelta::days(SPAN_DAYS) / i32::try_from(count.max(1)).expect("count");
    let started = Instant::now();
    let all: Vec<usize> = (0..count).collect();
    for batch in all.chunks(BATCH) {
        let mut events = Vec::new();
        for &n in batch {
            let merchant = if n % 5 == 0 {
                merchants[0]
            } else {
                merchants[n % merchants.len()]
            };
            let at = now - TimeDelta::days(SPAN_DAYS) + spacing * i32::try_from(n).expect("n");
            events.extend(recorded(notification(merchant, n, at), &mut position));
        }
        let outcome = apply_batch(pool, projection.as_ref(), version.version, &events)
            .await
            .expect("apply");
        assert!(matches!(outcome, BatchOutcome::Applied(applied) if applied == events.len()));
    }
    eprintln!(
        "{count} notifications applied in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// What autovacuum does after a bulk load: the planner's statistics and the visibility map.
async fn analyse(world: &World, projection: &str) {
    let pool = &world.app.db.pool;
    let version = versions::active(pool, projection)
        .await
        .expect("versions")
        .expect("active");
    let projection = catalog::by_name(projection).expect("projection");
    for table in projection.tables() {
        let sql = format!("VACUUM ANALYZE {}.{table}", version.schema_name);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .expect("vacuum analyze");
    }
}

/// A signed-in person's session on the served API.
struct Session {
    http: reqwest::Client,
    cookie: String,
}

/// Signs the person in with a one-time link, as `lightspeed admin login-link` prints it.
async fn sign_in(world: &World, api: &ServedApi) -> Session {
    let config = ConsoleConfig {
        public_url: api.url.clone(),
        sessions: SessionSettings::default(),
        mailer: None,
    };
    let link = lightspeed_console::login_link(&world.app.ledger, &config, EMAIL, "bench")
        .await
        .expect("login link");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answer = http.post(&link).send().await.expect("redeem");
    assert_eq!(answer.status(), 303, "redeeming {link}");
    let cookie = answer.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    Session { http, cookie }
}

/// The pages asked: (name, path).
fn pages(filled: &Filled) -> Vec<(&'static str, String)> {
    let busy = filled.busy.0;
    vec![
        ("/health (HTTP floor)", "/health".into()),
        ("overview", "/console".into()),
        ("merchants", "/console/merchants".into()),
        ("merchant detail", format!("/console/merchants/{busy}")),
        (
            "gateways of a merchant",
            format!("/console/gateways?merchant={busy}"),
        ),
        ("transactions", "/console/transactions".into()),
        (
            "transactions, busy merchant",
            format!("/console/transactions?merchant={busy}"),
        ),
        (
            "transactions, busy merchant and failed",
            format!("/console/transactions?merchant={busy}&status=failed"),
        ),
        (
            "transactions, status pending",
            "/console/transactions?status=pending".into(),
        ),
        (
            "transactions, order id",
            "/console/transactions?order_id=ORD-5000".into(),
        ),
        (
            "payment page",
            format!("/console/transactions/{}", filled.payment_id),
        ),
        ("refunds", "/console/refunds".into()),
        ("commission", "/console/commission".into()),
        ("queues", "/console/queues".into()),
        ("whatsapp, usage today", "/console/whatsapp".into()),
        (
            "whatsapp, usage this month",
            "/console/whatsapp?usage=month".into(),
        ),
        (
            "whatsapp, busy merchant and 35 days' usage",
            format!(
                "/console/whatsapp?merchant={busy}&usage=days&from={}&to={}",
                (Utc::now() - TimeDelta::days(SPAN_DAYS)).date_naive(),
                Utc::now().date_naive()
            ),
        ),
        ("deliveries", "/console/deliveries".into()),
        ("alerts", "/console/alerts".into()),
        ("audit", "/console/audit".into()),
        ("projections", "/console/projections".into()),
        ("sessions", "/console/sessions".into()),
    ]
}

/// p50 and p99 of `samples`, in ms.
fn quantiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

/// Times `requests` GETs of `path` with the session, after [`WARM_UP`] unmeasured; each must
/// answer 200, and a console page must be the signed-in person's.
async fn latency(api: &ServedApi, session: &Session, path: &str, requests: usize) -> (f64, f64) {
    let mut samples = Vec::with_capacity(requests);
    for n in 0..requests + WARM_UP {
        let request = session
            .http
            .get(format!("{}{path}", api.url))
            .header("cookie", &session.cookie);
        let sent = Instant::now();
        let response = request.send().await.expect("request");
        let status = response.status();
        let body = response.bytes().await.expect("body");
        let elapsed = sent.elapsed();
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        if n == 0 && path.starts_with("/console") {
            let page = String::from_utf8_lossy(&body);
            assert!(page.contains("/console/sign-out"), "{path}: not signed in");
        }
        if n >= WARM_UP {
            samples.push(elapsed);
        }
    }
    quantiles(samples)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn print(names: &[&str], rounds: &[Vec<(f64, f64)>]) {
    let floor_p99 = median(rounds.iter().map(|r| r[0].1).collect());
    println!("| page | p50 ms | p99 ms | p99 − floor's p99 ms |");
    println!("|---|---:|---:|---:|");
    for (i, name) in names.iter().enumerate() {
        let p50 = median(rounds.iter().map(|r| r[i].0).collect());
        let p99 = median(rounds.iter().map(|r| r[i].1).collect());
        println!("| {name} | {p50:.2} | {p99:.2} | {:.2} |", p99 - floor_p99);
    }
    for (n, round) in rounds.iter().enumerate() {
        eprintln!(
            "round {}: {}",
            n + 1,
            names
                .iter()
                .zip(round)
                .map(|(name, (p50, p99))| format!("{name} {p50:.2}/{p99:.2}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

#[tokio::main]
async fn main() {
    lightspeed_adapters::http::install_crypto_provider();
    let world = bare_world().await;
    let filled = populate(&world).await;
    let api = world.served_api().await;
    let session = sign_in(&world, &api).await;
    let pages = pages(&filled);
    let requests = setting("BENCH_REQUESTS", 200);
    let mut rounds = Vec::new();
    for _ in 0..setting("BENCH_ROUNDS", 3) {
        let mut round = Vec::with_capacity(pages.len());
        for (_, path) in &pages {
            round.push(latency(&api, &session, path, requests).await);
        }
        rounds.push(round);
    }
    let names: Vec<&str> = pages.iter().map(|(name, _)| *name).collect();
    print(&names, &rounds);
}
