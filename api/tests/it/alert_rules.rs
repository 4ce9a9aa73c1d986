//! The ops alert rules one by one, over real PostgreSQL, NATS JetStream and HTTP, each with two
//! evaluator replicas at once: a gateway's success rate, a queue's backlog, projection and relay
//! lag, a disabled merchant webhook endpoint, a failed payout and a merchant's quota caps. Each
//! alert is raised once, told once by email (to a loopback SMTP server, every ops address) and by
//! the signed webhook with its figures, resolved when its condition clears, and not raised
//! again until the condition returns.

use std::sync::Arc;

use chrono::TimeDelta;
use lightspeed_adapters::mailer::loopback::LoopbackSmtp;
use lightspeed_domain::ops_alert::AlertKind;
use lightspeed_monitoring::alerts::channels::AlertRoutes;
use lightspeed_monitoring::alerts::{AlertConfig, AlertEvaluator};
use lightspeed_monitoring::queues::QueueControl;
use lightspeed_workers::control::WorkQueues;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::alerts::{Deliveries, HOOK_SECRET, OPS, config, mails, readable, receiver, tick_both};
use crate::common::*;

/// Two evaluator replicas that tell some kinds of alert by email and the signed webhook.
struct Replicas {
    kinds: Vec<AlertKind>,
    a: AlertEvaluator,
    b: AlertEvaluator,
    smtp: LoopbackSmtp,
    posted: Deliveries,
    /// Changes told so far.
    told: usize,
}

impl Replicas {
    /// Replicas over `app`'s database with the default bounds changed by `change`.
    async fn start(app: &TestApp, kinds: &[AlertKind], change: impl Fn(&mut AlertConfig)) -> Self {
        let smtp = LoopbackSmtp::start().await;
        let (hook_url, posted) = receiver().await;
        let mut settings = config(&smtp, &hook_url);
        let routes: Vec<String> = kinds
            .iter()
            .map(|kind| format!("{}=email,webhook", kind.as_str()))
            .collect();
        settings.channels.routes =
            AlertRoutes::parse(&format!("{};*=slack", routes.join(";"))).expect("routes");
        change(&mut settings);
        let a = AlertEvaluator::new(app.ledger.clone(), settings.clone()).expect("a");
        let b = AlertEvaluator::new(app.replica_ledger(), settings).expect("b");
        Self {
            kinds: kinds.to_vec(),
            a,
            b,
            smtp,
            posted,
            told: 0,
        }
    }

    /// Both replicas evaluate at once; answers the keys of these kinds raised and resolved.
    async fn tick(&self) -> (Vec<String>, Vec<String>) {
        let evaluation = tick_both(&self.a, &self.b).await;
        (self.mine(evaluation.raised), self.mine(evaluation.resolved))
    }

    /// The keys of these kinds, sorted.
    fn mine(&self, keys: Vec<String>) -> Vec<String> {
        let kind_of = |key: &str| key.split_once('.').map_or(key, |(kind, _)| kind).to_owned();
        let mut keys: Vec<String> = keys
            .into_iter()
            .filter(|key| self.kinds.iter().any(|k| k.as_str() == kind_of(key)))
            .collect();
        keys.sort();
        keys
    }

    /// Checks the next change told, of the first kind: see [`Replicas::told_of`].
    async fn told(&mut self, state: &str) -> String {
        self.told_of(self.kinds[0], state).await
    }

    /// Checks the next change told: one mail to every ops address saying `kind` and `state`,
    /// and one signed post; answers the mail's text.
    async fn told_of(&mut self, kind: AlertKind, state: &str) -> String {
        let received = mails(&mut self.smtp, OPS.len()).await;
        let mut to: Vec<String> = received.iter().flat_map(|m| m.to.clone()).collect();
        to.sort();
        assert_eq!(to, vec!["lead@example.com", "oncall@example.com"]);
        let text = readable(&received[0].data);
        let said = format!("{} {state}", kind.as_str());
        assert!(text.contains(&said), "{said}: {text}");
        let posted = self.posted.lock().expect("lock").clone();
        let (headers, body) = posted.get(self.told).expect("one signed post per change");
        self.told += 1;
        let verifier = standardwebhooks::Webhook::new(HOOK_SECRET).expect("secret");
        verifier.verify(body, headers).expect("signature verifies");
        let body: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(body["type"], format!("ops_alert.{state}"));
        assert_eq!(body["data"]["kind"], kind.as_str());
        text
    }

    /// Nothing more was told than what [`Replicas::told`] checked.
    fn nothing_more_told(&mut self) {
        assert!(self.smtp.try_next().is_none(), "no other mail");
        assert_eq!(self.posted.lock().expect("lock").len(), self.told);
    }

    /// Watches the work queues too.
    fn with_queues(self, queues: Arc<dyn QueueControl>) -> Self {
        Self {
            a: self.a.with_queues(Arc::clone(&queues)),
            b: self.b.with_queues(queues),
            ..self
        }
    }

    /// Runs `observe` (what the projectors or a sampler would do meanwhile), then ticks, until
    /// the tick answers `expected` (a condition that changes eventually, as the relay catching
    /// up does); every other tick must change nothing. Fails the test after [`WAIT_LIMIT`].
    async fn until<F, Fut>(&self, expected: (Vec<String>, Vec<String>), mut observe: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            observe().await;
            let changed = self.tick().await;
            if changed == expected {
                return;
            }
            assert_eq!(changed, NONE, "expecting {expected:?}");
            assert!(tokio::time::Instant::now() < deadline, "never {expected:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

async fn nothing() {}

fn one(key: &str) -> Vec<String> {
    vec![key.to_owned()]
}

const NONE: (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());

#[tokio::test]
async fn a_gateway_success_rate_under_its_bound_with_enough_payments_is_raised_once_and_resolved() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway, _) = app.sandbox_gateway(&merchant, 1, None).await;
    let key = AlertKind::GatewaySuccessRate.key(Some(&gateway.to_string()));
    let mut replicas = Replicas::start(&app, &[AlertKind::GatewaySuccessRate], |c| {
        c.success_rate_min_payments = 4;
    })
    .await;

    // Three declines: under 80 %, but too few payments to judge.
    for n in 0..3 {
        crate::ops::fail_payment(&app, &merchant, &format!("DECLINED-{n}")).await;
    }
    app.project().await;
    assert_eq!(replicas.tick().await, NONE);
    // The fourth: 0 of 4 succeeded.
    crate::ops::fail_payment(&app, &merchant, "DECLINED-3").await;
    app.project().await;
    assert_eq!(replicas.tick().await, (one(&key), vec![]));
    assert_eq!(replicas.tick().await, NONE);
    let text = replicas.told("raised").await;
    assert!(
        text.contains("0 of 4 payments succeeded in the last 15 minutes, under 80.00 %"),
        "{text}"
    );

    // Sixteen successes: 16 of 20 is 80 %, not under it.
    for n in 0..16 {
        let payment_id = initiate(&app, &merchant, &format!("PAID-{n}"), 10_000).await;
        settle_success(&app, merchant.id, payment_id).await;
    }
    app.project().await;
    assert_eq!(replicas.tick().await, (vec![], one(&key)));
    assert_eq!(replicas.tick().await, NONE);
    replicas.told("resolved").await;

    // A quarter of an hour on, the window holds only new declines: raised again.
    app.clock.advance(TimeDelta::minutes(16));
    for n in 4..8 {
        crate::ops::fail_payment(&app, &merchant, &format!("DECLINED-{n}")).await;
    }
    app.project().await;
    assert_eq!(replicas.tick().await, (one(&key), vec![]));
    replicas.told("raised").await;
    replicas.nothing_more_told();
    let alert = app.ledger.alert(&key).await.expect("read").expect("alert");
    assert_eq!((alert.times_raised(), alert.is_firing()), (2, true));
}

#[tokio::test]
async fn a_payout_failed_is_raised_once_told_and_a_second_failure_is_its_own_alert() {
    use lightspeed_domain::wallet::{PayoutReversalReason, WalletCommand};
    use lightspeed_domain::{BasisPoints, Paise, PaymentId, PayoutId, Wallet};
    use lightspeed_eventstore::{CommandContext, stream_of};

    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let mut replicas = Replicas::start(&app, &[AlertKind::PayoutFailed], |_| {}).await;
    let wallet = stream_of::<Wallet>(merchant.id).expect("stream");
    let execute = |command: WalletCommand| {
        let (app, wallet) = (&app, &wallet);
        async move {
            app.ledger
                .wallets()
                .execute(wallet, &command, &CommandContext::default())
                .await
                .expect("wallet command");
        }
    };
    let fee = BasisPoints::DEFAULT_FEE;
    let amount = Paise(100_000 * i64::from(BasisPoints::WHOLE) / i64::from(fee.bps()));
    execute(WalletCommand::AccrueCommission {
        payment_id: PaymentId::new(),
        amount,
        fee,
        commission: fee.of(amount),
        at: app.ledger.now(),
    })
    .await;
    let payout = |amount: i64| {
        let payout_id = PayoutId::new();
        let execute = &execute;
        let at = app.ledger.now();
        async move {
            execute(WalletCommand::RequestPayout {
                payout_id,
                amount: Paise(amount),
                at,
            })
            .await;
            execute(WalletCommand::RecordPayoutReversed {
                payout_id,
                reason: PayoutReversalReason::Failed,
                detail: "Beneficiary bank is offline".into(),
                at,
            })
            .await;
            payout_id
        }
    };
    let first = payout(60_000).await;
    app.project().await;
    let key = AlertKind::PayoutFailed.key(Some(&first.to_string()));
    assert_eq!(replicas.tick().await, (one(&key), vec![]));
    assert_eq!(replicas.tick().await, NONE);
    let text = replicas.told("raised").await;
    assert!(
        text.contains("₹600.00") && text.contains("Beneficiary bank is offline"),
        "{text}"
    );
    // A one-off fact: acknowledged by a person, never resolved by the evaluator.
    let (status, acked) = problem(
        app.admin(Method::POST, &format!("/admin/alerts/{key}/ack"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(replicas.tick().await, NONE);

    let second = payout(25_000).await;
    app.project().await;
    let again = AlertKind::PayoutFailed.key(Some(&second.to_string()));
    assert_eq!(replicas.tick().await, (one(&again), vec![]));
    assert!(replicas.told("raised").await.contains("₹250.00"));
    assert_eq!(replicas.tick().await, NONE);
    replicas.nothing_more_told();
}

/// Disables the merchant's first webhook endpoint (its id is the merchant's) as the workers do
/// after five days of failed deliveries.
async fn disable_endpoint(app: &TestApp, merchant: &TestMerchant) {
    use lightspeed_domain::merchant::MerchantCommand;
    use lightspeed_domain::{Merchant, WebhookEndpointId};
    use lightspeed_eventstore::{CommandContext, CommandHandler, stream_of};
    let handler: CommandHandler<Merchant, _> = CommandHandler::new(app.ledger.store().clone());
    let now = app.ledger.now();
    let command = MerchantCommand::DisableFailingWebhookEndpoint {
        endpoint_id: WebhookEndpointId(merchant.id.0),
        failing_since: now - TimeDelta::days(6),
        at: now,
    };
    let executed = handler
        .execute(
            &stream_of::<Merchant>(merchant.id).expect("stream"),
            &command,
            &CommandContext::default(),
        )
        .await
        .expect("disable");
    assert_eq!(executed.events.len(), 1);
}

#[tokio::test]
async fn a_disabled_webhook_endpoint_is_raised_once_resolved_when_enabled_and_raised_again() {
    let app = spawn_app().await;
    let merchant = app
        .merchant_with(MerchantSettings {
            webhook_url: Some("https://shop.example/hooks".into()),
            ..MerchantSettings::default()
        })
        .await;
    let key = AlertKind::WebhookEndpointDisabled.key(Some(&format!("{0}.{0}", merchant.id)));
    app.project().await;
    let mut replicas = Replicas::start(&app, &[AlertKind::WebhookEndpointDisabled], |_| {}).await;
    assert_eq!(replicas.tick().await, NONE);

    disable_endpoint(&app, &merchant).await;
    assert_eq!(replicas.tick().await, (one(&key), vec![]));
    assert_eq!(replicas.tick().await, NONE);
    let text = replicas.told("raised").await;
    assert!(
        text.contains(&format!("({})", merchant.id)) && text.contains("after failing deliveries"),
        "{text}"
    );

    let enabled = app
        .admin_json(
            Method::PATCH,
            &format!("/admin/merchants/{0}/webhook-endpoints/{0}", merchant.id),
            &json!({ "enabled": true }),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(enabled.status(), StatusCode::OK);
    assert_eq!(replicas.tick().await, (vec![], one(&key)));
    assert_eq!(replicas.tick().await, NONE);
    replicas.told("resolved").await;

    disable_endpoint(&app, &merchant).await;
    assert_eq!(replicas.tick().await, (one(&key), vec![]));
    replicas.told("raised").await;
    replicas.nothing_more_told();
}

/// Sets the merchant's quota caps through the admin API.
async fn set_caps(app: &TestApp, merchant: &TestMerchant, caps: Value) {
    let response = app
        .admin_json(
            Method::PUT,
            &format!("/admin/merchants/{}/quota", merchant.id),
            &caps,
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK, "caps set");
}

#[tokio::test]
async fn a_merchant_near_and_at_a_quota_cap_is_raised_once_resolved_on_a_raised_cap_and_a_new_day()
{
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 0, None).await;
    set_caps(&app, &merchant, json!({ "daily_count": 10 })).await;
    app.project().await;
    let subject = format!("{}.daily_count", merchant.id);
    let near = AlertKind::QuotaNear.key(Some(&subject));
    let reached = AlertKind::QuotaReached.key(Some(&subject));
    let mut replicas = Replicas::start(
        &app,
        &[AlertKind::QuotaNear, AlertKind::QuotaReached],
        |_| {},
    )
    .await;
    let tick = || replicas.tick();
    let quiet = NONE;

    for n in 0..7 {
        initiate(&app, &merchant, &format!("Q-{n}"), 1_000).await;
    }
    assert_eq!(tick().await, quiet, "70 % is nothing yet");
    initiate(&app, &merchant, "Q-7", 1_000).await;
    assert_eq!(tick().await, (one(&near), vec![]));
    assert_eq!(tick().await, quiet);

    for n in 8..10 {
        initiate(&app, &merchant, &format!("Q-{n}"), 1_000).await;
    }
    // At the cap: raised; the near alert stays as it is.
    assert_eq!(tick().await, (one(&reached), vec![]));
    assert_eq!(tick().await, quiet);

    // The admin raises the cap: both resolved, once.
    set_caps(&app, &merchant, json!({ "daily_count": 100 })).await;
    let mut both = vec![near.clone(), reached.clone()];
    both.sort();
    assert_eq!(tick().await, (vec![], both));
    assert_eq!(tick().await, quiet);

    // The cap back at 10: at it again, raised a second time.
    set_caps(&app, &merchant, json!({ "daily_count": 10 })).await;
    assert_eq!(tick().await, (one(&reached), vec![]));
    assert_eq!(tick().await, quiet);

    // A new IST day uses nothing yet: resolved.
    let today = app.ledger.now();
    app.clock
        .set(lightspeed_domain::quota::day_resets_at(today) + TimeDelta::minutes(1));
    assert_eq!(tick().await, (vec![], one(&reached)));
    assert_eq!(tick().await, quiet);
    let alert = app
        .ledger
        .alert(&reached)
        .await
        .expect("read")
        .expect("alert");
    assert_eq!((alert.times_raised(), alert.is_firing()), (2, false));

    // Told in order: near raised; reached raised; both resolved; reached raised, resolved.
    let (near_kind, reached_kind) = (AlertKind::QuotaNear, AlertKind::QuotaReached);
    let text = replicas.told_of(near_kind, "raised").await;
    assert!(
        text.contains("is near its daily payment quota: 8 of 10 used"),
        "{text}"
    );
    let text = replicas.told_of(reached_kind, "raised").await;
    assert!(
        text.contains("is at its daily payment quota: 10 of 10 used"),
        "{text}"
    );
    replicas.told_of(near_kind, "resolved").await;
    replicas.told_of(reached_kind, "resolved").await;
    replicas.told_of(reached_kind, "raised").await;
    replicas.told_of(reached_kind, "resolved").await;
    replicas.nothing_more_told();
}

#[tokio::test]
async fn a_queue_too_deep_or_with_a_job_waiting_too_long_is_raised_once_and_resolved_when_drained()
{
    use crate::admin_queues::{CHECKS, Checks, hopeless_check};
    let app = spawn_app().await;
    app.project().await;
    let queues = Arc::new(WorkQueues::new(
        app.nats.jetstream.clone(),
        app.nats.config.clone(),
    ));
    let mut replicas = Replicas::start(&app, &[AlertKind::QueueBacklog], |c| {
        c.queue_max_waiting = 2;
    })
    .await
    .with_queues(Arc::clone(&queues) as Arc<dyn QueueControl>);
    let key = AlertKind::QueueBacklog.key(Some(CHECKS));
    let act = |path: String| {
        let app = &app;
        async move {
            let response = app
                .admin(Method::POST, &path)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
    };
    act(format!("/admin/queues/{CHECKS}/pause")).await;
    let checks = Checks::start(&app).await;
    checks.told_to_wait(1).await;
    assert_eq!(replicas.tick().await, NONE);

    // Three jobs wait in the paused queue: over the bound of two.
    let waiting = || async {
        QueueControl::depth(queues.as_ref(), CHECKS)
            .await
            .expect("depth")
            .waiting
    };
    for _ in 0..3 {
        hopeless_check(&app).await;
    }
    wait_for("three jobs waiting", || async {
        (waiting().await == 3).then_some(())
    })
    .await;
    assert_eq!(replicas.tick().await, (one(&key), vec![]));
    assert_eq!(replicas.tick().await, NONE);
    let text = replicas.told("raised").await;
    assert!(text.contains("3 jobs waiting (bound 2)"), "{text}");

    act(format!("/admin/queues/{CHECKS}/drain?confirm={CHECKS}")).await;
    assert_eq!(replicas.tick().await, (vec![], one(&key)));
    assert_eq!(replicas.tick().await, NONE);
    replicas.told("resolved").await;

    // One job waits: under the bound of two, until it has waited over ten minutes.
    hopeless_check(&app).await;
    wait_for("a job waiting", || async {
        (waiting().await == 1).then_some(())
    })
    .await;
    assert_eq!(replicas.tick().await, NONE);
    app.clock.advance(TimeDelta::minutes(11));
    assert_eq!(replicas.tick().await, (one(&key), vec![]));
    assert_eq!(replicas.tick().await, NONE);
    let text = replicas.told("raised").await;
    let waited: i64 = text
        .split("the oldest waiting for ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|secs| secs.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        waited > 600 && text.contains("1 jobs waiting (bound 2)") && text.contains("(bound 600 s)"),
        "{text}"
    );
    replicas.nothing_more_told();
    checks.stop().await;
}

/// Measures every active projection's lag, as their projectors do every second.
async fn measure_lags(app: &TestApp) {
    let versions = lightspeed_projections::status::all(&app.db.pool)
        .await
        .expect("versions");
    for version in versions.iter().filter(|v| v.state == "active") {
        let projection =
            lightspeed_projections::catalog::by_name(&version.projection).expect("projection");
        lightspeed_projections::status::measure_lag(
            &app.db.pool,
            projection.as_ref(),
            version.version,
        )
        .await
        .expect("measure");
    }
}

/// The keys of the projection lag alerts that should fire now: active versions over a minute
/// behind.
async fn lagging(app: &TestApp) -> Vec<String> {
    let versions = lightspeed_projections::status::all(&app.db.pool)
        .await
        .expect("versions");
    let mut keys: Vec<String> = versions
        .iter()
        .filter(|v| v.state == "active" && v.lag_ms > 60_000)
        .map(|v| AlertKind::ProjectionLag.key(Some(&v.projection)))
        .collect();
    keys.sort();
    keys
}

/// Measures until the transactions projection is seen behind (the gap-safe reader waits for
/// other transactions on the cluster); answers the projection lag alerts that should fire.
async fn seen_lagging(app: &TestApp) -> Vec<String> {
    let transactions = AlertKind::ProjectionLag.key(Some("transactions"));
    wait_for("the transactions projection seen behind", || async {
        measure_lags(app).await;
        let keys = lagging(app).await;
        keys.contains(&transactions).then_some(keys)
    })
    .await
}

#[tokio::test]
async fn projections_lagging_over_their_bound_are_raised_once_resolved_when_caught_up_and_again() {
    let app = spawn_app().await;
    // Events recorded ten minutes before the database's now have waited that long.
    app.clock.set(chrono::Utc::now() - TimeDelta::minutes(10));
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 0, None).await;
    app.project().await;
    measure_lags(&app).await;
    assert_eq!(lagging(&app).await, Vec::<String>::new());
    let mut replicas = Replicas::start(&app, &[AlertKind::ProjectionLag], |_| {}).await;
    assert_eq!(replicas.tick().await, NONE);

    initiate(&app, &merchant, "LAG-1", 10_000).await;
    let behind = seen_lagging(&app).await;
    assert_eq!(replicas.tick().await, (behind.clone(), vec![]));
    assert_eq!(replicas.tick().await, NONE);
    for _ in &behind {
        let text = replicas.told("raised").await;
        assert!(text.contains("behind the log (bound 60000 ms)"), "{text}");
    }

    app.project().await;
    measure_lags(&app).await;
    assert_eq!(lagging(&app).await, Vec::<String>::new());
    assert_eq!(replicas.tick().await, (vec![], behind.clone()));
    assert_eq!(replicas.tick().await, NONE);
    for _ in &behind {
        replicas.told("resolved").await;
    }

    initiate(&app, &merchant, "LAG-2", 10_000).await;
    let again = seen_lagging(&app).await;
    assert_eq!(replicas.tick().await, (again.clone(), vec![]));
    for _ in &again {
        replicas.told("raised").await;
    }
    replicas.nothing_more_told();
    let transactions = AlertKind::ProjectionLag.key(Some("transactions"));
    let alert = app
        .ledger
        .alert(&transactions)
        .await
        .expect("read")
        .expect("alert");
    assert_eq!((alert.times_raised(), alert.is_firing()), (2, true));
}

#[tokio::test]
async fn relay_lag_over_its_bound_is_raised_once_resolved_when_the_relay_catches_up_and_again() {
    use lightspeed_eventstore::relay::{Relay, RelayConfig};
    let app = spawn_app().await;
    // Events recorded ten minutes before the database's now have waited that long.
    app.clock.set(chrono::Utc::now() - TimeDelta::minutes(10));
    app.merchant().await;
    app.project().await;
    let stream = app.nats.config.stream_name.clone();
    let mut replicas = Replicas::start(&app, &[AlertKind::RelayLag], |c| {
        c.relay_stream = Some(stream.clone());
    })
    .await;
    let key = AlertKind::RelayLag.key(None);
    replicas.until((one(&key), vec![]), nothing).await;
    assert_eq!(replicas.tick().await, NONE);
    let text = replicas.told("raised").await;
    assert!(
        text.contains(&format!("The relay to {stream} is"))
            && text.contains("behind the log (bound 60000 ms)"),
        "{text}"
    );

    // The relay publishes the log: caught up, resolved once.
    let relay = Relay::new(
        app.ledger.store().clone(),
        app.nats.jetstream.clone(),
        app.nats.config.clone(),
        RelayConfig::default(),
    );
    let relaying = tokio::spawn(async move { relay.run().await });
    replicas.until((vec![], one(&key)), nothing).await;
    // The resolve is published too before the relay stops.
    wait_for("the relay caught up", || async {
        let lag = lightspeed_eventstore::relay_lag::relay_lag(&app.db.pool, &stream)
            .await
            .expect("lag");
        (lag.events == 0).then_some(())
    })
    .await;
    relaying.abort();
    let _ = relaying.await;
    assert_eq!(replicas.tick().await, NONE);
    replicas.told("resolved").await;

    // With the relay stopped, new events wait: raised again.
    app.merchant().await;
    replicas.until((one(&key), vec![]), nothing).await;
    replicas.told("raised").await;
    replicas.nothing_more_told();
}
