//! The sandbox kept in PostgreSQL: instances over one database serve each other's orders, a
//! restart loses neither an open order nor an owed webhook, concurrent sweeps send each owed
//! webhook once, retention removes only what is older than it, and there is no cap.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::psp::{
    CheckoutData, Customer, OrderRequest, PaymentOutcome, PspAccount, PspClient, PspCredentials,
    verify_webhook,
};
use lightspeed_adapters::sandbox::{CreateOrder, OrderStatus};
use lightspeed_adapters::secrets::generate_webhook_secret;
use lightspeed_domain::{Clock, ManualClock, Paise, PaymentId, SystemClock};
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_sandbox::{AccountKey, PayerChoice, RETENTION_BATCH, Sandbox};
use sqlx::PgPool;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::common::{browser, keyring, serve};

/// A merchant endpoint that takes every webhook.
async fn merchant() -> MockServer {
    let merchant = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&merchant)
        .await;
    merchant
}

/// A sandbox account: its credentials (for the adapter) and its key (for direct calls).
fn account() -> (PspCredentials, AccountKey) {
    let secret = generate_webhook_secret();
    let key = AccountKey::parse(secret.expose_str().expect("utf-8")).expect("whsec_ key");
    (
        PspCredentials::Sandbox {
            webhook_secret: secret,
        },
        key,
    )
}

fn create_order(reference: &str, callback_url: &str) -> CreateOrder {
    CreateOrder {
        reference: reference.to_owned(),
        amount: Paise(49_900),
        currency: "INR".into(),
        description: "Plan".into(),
        callback_url: callback_url.to_owned(),
        return_url: "https://merchant.example/return".into(),
    }
}

/// Sweeps `a` and `b` at the same time until neither finds anything due; answers the attempts
/// each made.
async fn sweep_together(a: &Sandbox, b: &Sandbox) -> (usize, usize) {
    let mut made = (0, 0);
    loop {
        let (first, second) = tokio::join!(a.sweep_once(), b.sweep_once());
        let (first, second) = (
            first.expect("sweep").attempts,
            second.expect("sweep").attempts,
        );
        if first + second == 0 {
            return made;
        }
        made = (made.0 + first, made.1 + second);
    }
}

fn webhook_ids(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().expect("ascii").to_owned())
        .collect()
}

#[tokio::test]
async fn an_order_created_on_one_instance_is_paid_on_another_and_read_on_a_third() {
    let db = TestDatabase::new().await;
    let keyring = keyring();
    let clock = Arc::new(SystemClock);
    let (a, b, c) = (
        serve(&db, &keyring, clock.clone(), |_| {}).await,
        serve(&db, &keyring, clock.clone(), |_| {}).await,
        serve(&db, &keyring, clock.clone(), |_| {}).await,
    );
    let merchant = merchant().await;
    let (credentials, _) = account();
    let on = |base_url: &str| PspAccount::test(credentials.clone()).with_base_url(base_url);
    let client = PspClient::new(&HttpConfig::default()).expect("client");
    let order = OrderRequest {
        payment_id: PaymentId::new(),
        amount: Paise(49_900),
        currency: "INR".into(),
        customer: Customer::default(),
        callback_url: format!("{}/hook", merchant.uri()),
        return_url: "https://merchant.example/return".into(),
        description: "Plan".into(),
    };

    let created = client.create_order(&on(&a.base_url), &order).await.unwrap();
    let again = client.create_order(&on(&b.base_url), &order).await.unwrap();
    assert!(!created.reused && again.reused);
    assert_eq!(again.psp_order_id, created.psp_order_id);
    let CheckoutData::Sandbox { .. } = created.checkout else {
        panic!("not sandbox")
    };

    let page = format!("{}/checkout/{}", c.base_url, created.psp_order_id);
    let html = browser()
        .get(&page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(">Pay<"), "{html}");
    let paid = browser()
        .post(format!(
            "{}/checkout/{}/pay",
            b.base_url, created.psp_order_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);

    let status = client
        .fetch_status(&on(&c.base_url), order.payment_id, None)
        .await
        .unwrap();
    assert_eq!(
        status.outcome,
        PaymentOutcome::Succeeded {
            amount: Paise(49_900)
        }
    );
    let hooks = merchant.received_requests().await.unwrap();
    assert_eq!(hooks.len(), 1);
    let hook = verify_webhook(&credentials, &hooks[0].headers, &hooks[0].body, Utc::now()).unwrap();
    assert_eq!(hook.payment_reference, Some(order.payment_id));
    assert_eq!(hook.psp_payment_id, status.psp_payment_id);
}

#[tokio::test]
async fn after_a_restart_open_orders_remain_and_two_sweepers_send_each_owed_webhook_once() {
    let db = TestDatabase::new().await;
    let keyring = keyring();
    let clock = ManualClock::new(Utc::now());
    let merchant = merchant().await;
    let callback = format!("{}/hook", merchant.uri());
    let (credentials, key) = account();
    let before = serve(&db, &keyring, Arc::new(clock.clone()), |_| {}).await;
    let open = before
        .sandbox
        .create_order(&key, create_order("still-open", &callback))
        .await
        .unwrap()
        .order;
    let mut owed = BTreeSet::new();
    for n in 0..20 {
        let id = before
            .sandbox
            .create_order(&key, create_order(&format!("owed-{n}"), &callback))
            .await
            .unwrap()
            .order
            .id;
        // The process dies right after recording the payer's choice, before any attempt.
        let recorded = before.sandbox.choose(&id, PayerChoice::Pay).await.unwrap();
        assert!(recorded.expect("known order").first);
        owed.insert(id);
    }
    drop(before);
    assert!(merchant.received_requests().await.unwrap().is_empty());

    let (one, two) = (
        serve(&db, &keyring, Arc::new(clock.clone()), |_| {}).await,
        serve(&db, &keyring, Arc::new(clock.clone()), |_| {}).await,
    );
    // Each choice left its first attempt to its click for a lease: the post's timeout (5 s)
    // and a margin (5 s).
    let waiting = sweep_together(&one.sandbox, &two.sandbox).await;
    assert_eq!(waiting, (0, 0), "the clicks' leases still run");
    clock.advance(TimeDelta::seconds(11));
    let (by_one, by_two) = sweep_together(&one.sandbox, &two.sandbox).await;
    assert_eq!(by_one + by_two, 20, "one attempt per owed webhook");

    let hooks = merchant.received_requests().await.unwrap();
    let ids = webhook_ids(&hooks);
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!((hooks.len(), distinct.len()), (20, 20), "each sent once");
    for hook in &hooks {
        let verified =
            verify_webhook(&credentials, &hook.headers, &hook.body, clock.now()).unwrap();
        assert!(owed.contains(verified.psp_order_id.as_deref().expect("order id")));
    }
    for id in &owed {
        let order = two.sandbox.order(id, &key).await.unwrap().expect("kept");
        assert_eq!(order.status, OrderStatus::Paid);
        assert_eq!(order.deliveries.len(), 1);
        assert_eq!(order.deliveries[0].status, Some(200));
    }
    let still_open = one.sandbox.order(&open.id, &key).await.unwrap();
    assert_eq!(still_open.expect("kept").status, OrderStatus::Created);
    let paid = browser()
        .post(format!("{}/checkout/{}/pay", two.base_url, open.id))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
    assert_eq!(merchant.received_requests().await.unwrap().len(), 21);
}

#[tokio::test]
async fn an_attempt_abandoned_mid_post_is_made_once_more_with_the_same_webhook_id() {
    let db = TestDatabase::new().await;
    let keyring = keyring();
    let clock = ManualClock::new(Utc::now());
    let merchant = MockServer::start().await;
    // The first post hangs: its process dies while waiting for the answer.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .up_to_n_times(1)
        .mount(&merchant)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&merchant)
        .await;
    let (_, key) = account();
    let before = serve(&db, &keyring, Arc::new(clock.clone()), |_| {}).await;
    let callback = format!("{}/hook", merchant.uri());
    let id = before
        .sandbox
        .create_order(&key, create_order("abandoned", &callback))
        .await
        .unwrap()
        .order
        .id;
    before.sandbox.choose(&id, PayerChoice::Fail).await.unwrap();
    let delivering = tokio::spawn({
        let (sandbox, id) = (before.sandbox.clone(), id.clone());
        async move { sandbox.deliver_owed(&id).await }
    });
    tokio::time::timeout(Duration::from_secs(30), async {
        while merchant.received_requests().await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the first post reached the merchant");
    delivering.abort();
    drop(before);

    let (one, two) = (
        serve(&db, &keyring, Arc::new(clock.clone()), |_| {}).await,
        serve(&db, &keyring, Arc::new(clock.clone()), |_| {}).await,
    );
    assert_eq!(
        sweep_together(&one.sandbox, &two.sandbox).await,
        (0, 0),
        "leased"
    );
    // The lease is the post's timeout (5 s) and a margin (5 s).
    clock.advance(TimeDelta::seconds(11));
    let (by_one, by_two) = sweep_together(&one.sandbox, &two.sandbox).await;
    assert_eq!(by_one + by_two, 1);
    let ids = webhook_ids(&merchant.received_requests().await.unwrap());
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "the same webhook-id on every attempt");
    let order = one.sandbox.order(&id, &key).await.unwrap().expect("kept");
    assert_eq!(order.status, OrderStatus::Failed);
    assert_eq!(order.deliveries.last().expect("recorded").status, Some(200));
}

/// Stores `count` orders of `key` created at `at` straight into the table, `<prefix>-<n>`.
async fn insert_orders(pool: &PgPool, key: &str, prefix: &str, count: i32, at: DateTime<Utc>) {
    sqlx::query(
        "INSERT INTO sandbox.orders (id, key_digest, key_id, key_sealed, reference, amount_paise,
                                     currency, description, callback_url, return_url, created_at)
         SELECT 'sbo_' || $2 || '-' || n, sha256(convert_to($1, 'UTF8')), 'k', 'sealed',
                $2 || '-' || n, 100, 'INR', 'bulk', 'http://127.0.0.1:9/hook',
                'http://127.0.0.1:9/return', $4
           FROM generate_series(1, $3) AS n",
    )
    .bind(key)
    .bind(prefix)
    .bind(count)
    .bind(at)
    .execute(pool)
    .await
    .expect("bulk orders");
}

async fn order_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sandbox.orders")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn retention_removes_only_orders_older_than_it_a_bounded_batch_per_sweep() {
    let db = TestDatabase::new().await;
    let clock = ManualClock::new(Utc::now());
    let merchant = merchant().await;
    let callback = format!("{}/hook", merchant.uri());
    let served = serve(&db, &keyring(), Arc::new(clock.clone()), |config| {
        config.retention = Duration::from_secs(30 * 24 * 3600);
    })
    .await;
    let sandbox = &served.sandbox;
    let (credentials, key) = account();
    let PspCredentials::Sandbox { webhook_secret } = &credentials else {
        panic!("sandbox credentials")
    };
    let old = sandbox
        .create_order(&key, create_order("old", &callback))
        .await
        .unwrap()
        .order
        .id;
    sandbox.choose(&old, PayerChoice::Pay).await.unwrap();
    sandbox.deliver_owed(&old).await.unwrap();
    let expired = i32::try_from(RETENTION_BATCH + 500).unwrap();
    insert_orders(
        &db.pool,
        webhook_secret.expose_str().unwrap(),
        "old",
        expired,
        clock.now(),
    )
    .await;
    clock.advance(TimeDelta::days(20));
    let young = sandbox
        .create_order(&key, create_order("young", &callback))
        .await
        .unwrap()
        .order
        .id;
    clock.advance(TimeDelta::days(10) - TimeDelta::seconds(1));
    assert_eq!(
        sandbox.sweep_once().await.unwrap().removed,
        0,
        "not yet 30 days"
    );

    clock.advance(TimeDelta::seconds(2));
    let first = sandbox.sweep_once().await.unwrap().removed;
    let second = sandbox.sweep_once().await.unwrap().removed;
    let third = sandbox.sweep_once().await.unwrap().removed;
    assert_eq!((first, second, third), (u64::from(RETENTION_BATCH), 501, 0));
    assert_eq!(order_count(&db.pool).await, 1);
    assert!(sandbox.order(&old, &key).await.unwrap().is_none());
    let kept = sandbox.order(&young, &key).await.unwrap().expect("young");
    assert_eq!(kept.status, OrderStatus::Created);
    let page = browser()
        .get(format!("{}/checkout/{old}", served.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
}

#[tokio::test]
async fn ten_thousand_and_one_open_orders_do_not_stop_the_next() {
    let db = TestDatabase::new().await;
    let served = serve(&db, &keyring(), Arc::new(SystemClock), |_| {}).await;
    let (credentials, key) = account();
    let PspCredentials::Sandbox { webhook_secret } = &credentials else {
        panic!("sandbox credentials")
    };
    let secret = webhook_secret.expose_str().unwrap();
    insert_orders(&db.pool, secret, "bulk", 10_001, Utc::now()).await;

    let client = PspClient::new(&HttpConfig::default()).expect("client");
    let account = PspAccount::test(credentials.clone()).with_base_url(served.base_url.clone());
    let order = OrderRequest {
        payment_id: PaymentId::new(),
        amount: Paise(100),
        currency: "INR".into(),
        customer: Customer::default(),
        callback_url: "http://127.0.0.1:9/hook".into(),
        return_url: "http://127.0.0.1:9/return".into(),
        description: "one more".into(),
    };
    let created = client.create_order(&account, &order).await.unwrap();
    assert!(!created.reused);
    assert_eq!(order_count(&db.pool).await, 10_002);
    let bulk = served.sandbox.order("sbo_bulk-10001", &key).await.unwrap();
    assert_eq!(bulk.expect("readable").status, OrderStatus::Created);
}

#[tokio::test]
async fn a_nul_in_an_order_is_refused_and_stores_nothing() {
    let db = TestDatabase::new().await;
    let served = serve(&db, &keyring(), Arc::new(SystemClock), |_| {}).await;
    let (credentials, _) = account();
    let PspCredentials::Sandbox { webhook_secret } = &credentials else {
        panic!("sandbox credentials")
    };
    let mut order = create_order("nul", "https://merchant.example/hook");
    order.description = "bad\u{0}byte".into();
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/orders", served.base_url))
        .header("x-sandbox-key", webhook_secret.expose_str().unwrap())
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_text");
    assert_eq!(order_count(&db.pool).await, 0);
}
