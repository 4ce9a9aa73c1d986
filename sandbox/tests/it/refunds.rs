//! Refunds on the sandbox PSP over real HTTP and PostgreSQL, called by its PSP adapter:
//! idempotent creation keyed by our refund reference, the refundable balance (also under
//! concurrent requests), the settle control and auto-settlement, and the signed refund webhooks
//! (at least once, with one `webhook-id` per refund).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::psp::{
    CheckoutData, Customer, OrderRequest, PaymentOutcome, PspAccount, PspClient, PspCredentials,
    PspError, PspRefund, RefundRequest, psp_reference, refund_reference, verify_webhook,
};
use lightspeed_adapters::sandbox::{
    CreateRefund, KEY_HEADER, RefundStatus, order_id_for, refund_id_for,
};
use lightspeed_adapters::secrets::generate_webhook_secret;
use lightspeed_domain::psp_outcome::RefundState;
use lightspeed_domain::{Paise, PaymentId, RefundId, SystemClock};
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_sandbox::{AccountKey, SandboxConfig, SandboxError};
use serde_json::json;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{Served, browser, keyring, serve};

/// A sandbox on a database of its own, an account on it and a merchant receiving webhooks.
struct World {
    served: Served,
    _db: TestDatabase,
    merchant: MockServer,
    credentials: PspCredentials,
    account: PspAccount,
    client: PspClient,
}

async fn world(configure: impl FnOnce(&mut SandboxConfig)) -> World {
    let db = TestDatabase::new().await;
    let served = serve(&db, &keyring(), Arc::new(SystemClock), configure).await;
    let merchant = MockServer::start().await;
    let credentials = PspCredentials::Sandbox {
        webhook_secret: generate_webhook_secret(),
    };
    let account = PspAccount::test(credentials.clone()).with_base_url(served.base_url.clone());
    World {
        served,
        _db: db,
        merchant,
        credentials,
        account,
        client: PspClient::new(&HttpConfig::default()).expect("client"),
    }
}

impl World {
    /// A payment of ₹499.00, paid by the payer on the checkout page.
    async fn paid_order(&self) -> PaymentId {
        let order = OrderRequest {
            payment_id: PaymentId::new(),
            amount: Paise(49900),
            currency: "INR".into(),
            customer: Customer::default(),
            callback_url: format!("{}/webhooks/sandbox", self.merchant.uri()),
            return_url: "https://merchant.example/return".into(),
            description: "Premium Plan".into(),
        };
        let created = self
            .client
            .create_order(&self.account, &order)
            .await
            .expect("order created");
        let CheckoutData::Sandbox { checkout_url } = created.checkout else {
            panic!("not a sandbox checkout")
        };
        let paid = browser()
            .post(format!("{checkout_url}/pay"))
            .send()
            .await
            .expect("payer's click");
        assert_eq!(paid.status(), 303);
        order.payment_id
    }

    fn refund(&self, payment_id: PaymentId, amount: i64) -> RefundRequest {
        RefundRequest {
            payment_id,
            refund_id: RefundId::new(),
            amount: Paise(amount),
            psp_order_id: None,
            psp_payment_id: None,
            reason: "returned".into(),
            callback_url: format!("{}/webhooks/sandbox", self.merchant.uri()),
        }
    }

    fn key(&self) -> AccountKey {
        let PspCredentials::Sandbox { webhook_secret } = &self.credentials else {
            panic!("sandbox credentials")
        };
        AccountKey::parse(webhook_secret.expose_str().expect("utf-8")).expect("whsec_ key")
    }

    /// The settle control, as a test (standing for the bank) calls it.
    async fn settle(&self, refund: &RefundRequest, status: &str) -> reqwest::Response {
        let PspCredentials::Sandbox { webhook_secret } = &self.credentials else {
            panic!("sandbox credentials")
        };
        let id = refund_id_for(&refund_reference(refund.refund_id));
        browser()
            .post(format!("{}/v1/refunds/{id}/settle", self.served.base_url))
            .header(KEY_HEADER, webhook_secret.expose_str().expect("utf-8"))
            .json(&json!({ "status": status }))
            .send()
            .await
            .expect("settle call")
    }

    /// The refund webhooks the merchant received, in order.
    async fn refund_hooks(&self) -> Vec<wiremock::Request> {
        self.merchant
            .received_requests()
            .await
            .expect("recording on")
            .into_iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains("\"refund."))
            .collect()
    }
}

fn rejected_code(result: Result<PspRefund, PspError>) -> String {
    match result {
        Err(PspError::Rejected { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn refunds_are_idempotent_bounded_and_settled_with_signed_webhooks() {
    let world = world(|_| {}).await;
    // The first attempt at the processed webhook fails: the sandbox retries it.
    Mock::given(method("POST"))
        .and(body_string_contains("refund.processed"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&world.merchant)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&world.merchant)
        .await;
    let (client, account) = (&world.client, &world.account);
    let payment = world.paid_order().await;

    let first = world.refund(payment, 20000);
    let created = client.create_refund(account, &first).await.unwrap();
    let first_id = refund_id_for(&refund_reference(first.refund_id));
    assert_eq!(
        created,
        PspRefund {
            psp_refund_id: Some(first_id.clone()),
            amount: Paise(20000),
            state: RefundState::Pending,
        }
    );
    assert_eq!(
        client.create_refund(account, &first).await.unwrap(),
        created,
        "the same request under the same key replays"
    );
    let other_body = RefundRequest {
        amount: Paise(20100),
        ..first.clone()
    };
    assert_eq!(
        rejected_code(client.create_refund(account, &other_body).await),
        "refund_exists"
    );
    assert_eq!(
        rejected_code(
            client
                .create_refund(account, &world.refund(payment, 99))
                .await
        ),
        "invalid_amount"
    );

    let rest = world.refund(payment, 29900);
    client.create_refund(account, &rest).await.unwrap();
    let over = world.refund(payment, 100);
    assert_eq!(
        rejected_code(client.create_refund(account, &over).await),
        "amount_exceeds_refundable"
    );
    assert_eq!(
        client.fetch_refund(account, &over, None).await.unwrap(),
        None
    );
    assert!(world.refund_hooks().await.is_empty(), "nothing settled yet");

    let settled = world.settle(&first, "processed").await;
    assert_eq!(settled.status(), 200);
    let hooks = world.refund_hooks().await;
    assert_eq!(hooks.len(), 2, "one failed delivery, one retry");
    assert_eq!(
        hooks[0].headers["webhook-id"],
        hooks[1].headers["webhook-id"]
    );
    assert_eq!(hooks[0].body, hooks[1].body);
    let hook = verify_webhook(
        &world.credentials,
        &hooks[1].headers,
        &hooks[1].body,
        Utc::now(),
    )
    .unwrap();
    assert_eq!(
        hook.outcome,
        PaymentOutcome::Refund {
            refund_id: Some(first.refund_id),
            psp_refund_id: Some(first_id.clone()),
            amount: Paise(20000),
            state: RefundState::Succeeded,
        }
    );
    assert_eq!(hook.payment_reference, Some(payment));
    let stranger = PspCredentials::Sandbox {
        webhook_secret: generate_webhook_secret(),
    };
    assert!(verify_webhook(&stranger, &hooks[1].headers, &hooks[1].body, Utc::now()).is_err());

    assert_eq!(world.settle(&first, "processed").await.status(), 200);
    assert_eq!(world.settle(&first, "failed").await.status(), 409);
    assert_eq!(
        world.refund_hooks().await.len(),
        2,
        "settled once, told once"
    );
    assert_eq!(
        client
            .fetch_refund(account, &first, Some(&first_id))
            .await
            .unwrap()
            .map(|r| r.state),
        Some(RefundState::Succeeded)
    );

    // A failed refund gives its amount back to what may be refunded.
    assert_eq!(world.settle(&rest, "failed").await.status(), 200);
    let hooks = world.refund_hooks().await;
    assert_eq!(hooks.len(), 3);
    assert_ne!(
        hooks[1].headers["webhook-id"],
        hooks[2].headers["webhook-id"]
    );
    let hook = verify_webhook(
        &world.credentials,
        &hooks[2].headers,
        &hooks[2].body,
        Utc::now(),
    )
    .unwrap();
    assert!(matches!(
        hook.outcome,
        PaymentOutcome::Refund { state: RefundState::Failed { ref code, .. }, .. }
            if code == "SANDBOX_REFUND_FAILED"
    ));
    client
        .create_refund(account, &world.refund(payment, 29900))
        .await
        .unwrap();
}

#[tokio::test]
async fn only_paid_orders_of_the_account_are_refunded() {
    let world = world(|_| {}).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&world.merchant)
        .await;
    let (client, account) = (&world.client, &world.account);
    assert_eq!(
        rejected_code(
            client
                .create_refund(account, &world.refund(PaymentId::new(), 500))
                .await
        ),
        "not_found"
    );
    let payment = world.paid_order().await;
    let stranger = PspAccount::test(PspCredentials::Sandbox {
        webhook_secret: generate_webhook_secret(),
    })
    .with_base_url(world.served.base_url.clone());
    let refund = world.refund(payment, 500);
    assert_eq!(
        rejected_code(client.create_refund(&stranger, &refund).await),
        "not_found"
    );
    client.create_refund(account, &refund).await.unwrap();
    assert_eq!(
        client.fetch_refund(&stranger, &refund, None).await.unwrap(),
        None,
        "another account does not see the refund"
    );
    assert_eq!(world.settle(&refund, "pending").await.status(), 422);

    let unpaid = world
        .served
        .sandbox
        .create_order(
            &world.key(),
            lightspeed_adapters::sandbox::CreateOrder {
                reference: "unpaid".into(),
                amount: Paise(1000),
                currency: "INR".into(),
                description: "d".into(),
                callback_url: format!("{}/hook", world.merchant.uri()),
                return_url: "https://merchant.example/return".into(),
            },
        )
        .await
        .unwrap();
    let request = CreateRefund {
        reference: "r-unpaid".into(),
        amount: Paise(500),
        reason: String::new(),
    };
    assert!(matches!(
        world
            .served
            .sandbox
            .create_refund(&world.key(), &unpaid.order.id, request)
            .await,
        Err(SandboxError::OrderNotPaid)
    ));
}

#[tokio::test]
async fn concurrent_refunds_never_exceed_the_amount_paid() {
    let world = world(|_| {}).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&world.merchant)
        .await;
    let payment = world.paid_order().await;
    let order_id = order_id_for(&psp_reference(payment));
    let key = world.key();
    let attempts = (0..16).map(|i| {
        let (sandbox, key, order_id) =
            (world.served.sandbox.clone(), key.clone(), order_id.clone());
        async move {
            let request = CreateRefund {
                reference: format!("race-{i}"),
                amount: Paise(10000),
                reason: "race".into(),
            };
            sandbox.create_refund(&key, &order_id, request).await
        }
    });
    let results = join_all(attempts).await;
    let accepted = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(SandboxError::OverRefund)))
        .count();
    assert_eq!(
        (accepted, refused),
        (4, 12),
        "4 × ₹100 fit in ₹499, a fifth does not"
    );
}

#[tokio::test]
async fn auto_settlement_processes_refunds_in_the_sweeps() {
    let world = world(|config| config.refund_auto_settle = Some(Duration::ZERO)).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&world.merchant)
        .await;
    let payment = world.paid_order().await;
    let refund = world.refund(payment, 1000);
    world
        .client
        .create_refund(&world.account, &refund)
        .await
        .unwrap();

    let sweep = world.served.sandbox.sweep_once().await.unwrap();
    assert_eq!((sweep.refunds_settled, sweep.attempts), (1, 1));
    let hooks = world.refund_hooks().await;
    assert_eq!(hooks.len(), 1);
    let hook = verify_webhook(
        &world.credentials,
        &hooks[0].headers,
        &hooks[0].body,
        Utc::now(),
    )
    .unwrap();
    assert!(matches!(
        hook.outcome,
        PaymentOutcome::Refund {
            state: RefundState::Succeeded,
            ..
        }
    ));
    let view = world
        .served
        .sandbox
        .refund(
            &refund_id_for(&refund_reference(refund.refund_id)),
            &world.key(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.status, RefundStatus::Processed);

    let sweep = world.served.sandbox.sweep_once().await.unwrap();
    assert_eq!((sweep.refunds_settled, sweep.attempts), (0, 0));
    assert_eq!(world.refund_hooks().await.len(), 1);
}
