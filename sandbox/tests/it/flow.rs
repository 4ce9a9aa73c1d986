//! The sandbox PSP end to end on loopback: the adapter creates an order over HTTP, the payer
//! clicks Pay, the sandbox delivers a signed webhook (retrying a failed delivery) and redirects;
//! the webhook verifies and the status API agrees.

use std::sync::Arc;

use chrono::Utc;
use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::psp::{
    CheckoutData, Customer, OrderRequest, PaymentOutcome, PspAccount, PspClient, PspCredentials,
    PspError, psp_reference, verify_webhook,
};
use lightspeed_adapters::secrets::{Secret, generate_webhook_secret};
use lightspeed_domain::{Paise, PaymentId, SystemClock};
use lightspeed_eventstore::testing::TestDatabase;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{Served, browser, keyring, serve};

/// A sandbox on a database of its own; the database goes when the value does.
struct Running {
    served: Served,
    _db: TestDatabase,
}

impl std::ops::Deref for Running {
    type Target = Served;

    fn deref(&self) -> &Served {
        &self.served
    }
}

async fn start_sandbox() -> Running {
    let db = TestDatabase::new().await;
    let served = serve(&db, &keyring(), Arc::new(SystemClock), |_| {}).await;
    Running { served, _db: db }
}

fn order(callback_url: String) -> OrderRequest {
    OrderRequest {
        payment_id: PaymentId::new(),
        amount: Paise(49900),
        currency: "INR".into(),
        customer: Customer::default(),
        callback_url,
        return_url: "https://merchant.example/return?cart=7".into(),
        description: "Premium <Plan>".into(),
    }
}

#[tokio::test]
async fn pay_flow_delivers_a_verifiable_webhook_and_redirects() {
    let sandbox = start_sandbox().await;
    let merchant = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/webhooks/sandbox"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&merchant)
        .await;
    Mock::given(method("POST"))
        .and(path("/webhooks/sandbox"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&merchant)
        .await;

    let secret = generate_webhook_secret();
    let credentials = PspCredentials::Sandbox {
        webhook_secret: secret.clone(),
    };
    let account = PspAccount::test(credentials.clone()).with_base_url(sandbox.base_url.clone());
    let client = PspClient::new(&HttpConfig::default()).unwrap();
    let order = order(format!("{}/webhooks/sandbox", merchant.uri()));
    let reference = psp_reference(order.payment_id);

    let created = client.create_order(&account, &order).await.unwrap();
    assert!(!created.reused);
    let CheckoutData::Sandbox { checkout_url } = created.checkout.clone() else {
        panic!("not sandbox")
    };
    assert_eq!(
        checkout_url,
        format!("{}/checkout/sbo_{reference}", sandbox.base_url)
    );
    let again = client.create_order(&account, &order).await.unwrap();
    assert!(again.reused);
    assert_eq!(again.psp_order_id, created.psp_order_id);

    let page = browser()
        .get(&checkout_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(">Pay<") && page.contains(">Fail<"));
    assert!(page.contains("Premium &lt;Plan&gt;") && page.contains("499.00"));

    let status = client
        .fetch_status(&account, order.payment_id, None)
        .await
        .unwrap();
    assert_eq!(status.outcome, PaymentOutcome::Pending);

    let response = browser()
        .post(format!("{checkout_url}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!("https://merchant.example/return?cart=7&status=succeeded&reference={reference}")
    );

    let deliveries = merchant.received_requests().await.unwrap();
    assert_eq!(deliveries.len(), 2, "one failed delivery, one retry");
    assert_eq!(
        deliveries[0].headers["webhook-id"],
        deliveries[1].headers["webhook-id"]
    );
    let hook = verify_webhook(
        &credentials,
        &deliveries[1].headers,
        &deliveries[1].body,
        Utc::now(),
    )
    .unwrap();
    assert_eq!(
        hook.outcome,
        PaymentOutcome::Succeeded {
            amount: Paise(49900)
        }
    );
    assert_eq!(hook.payment_reference, Some(order.payment_id));
    let other = PspCredentials::Sandbox {
        webhook_secret: generate_webhook_secret(),
    };
    assert!(
        verify_webhook(
            &other,
            &deliveries[1].headers,
            &deliveries[1].body,
            Utc::now()
        )
        .is_err()
    );

    let status = client
        .fetch_status(&account, order.payment_id, None)
        .await
        .unwrap();
    assert_eq!(
        status.outcome,
        PaymentOutcome::Succeeded {
            amount: Paise(49900)
        }
    );
    assert_eq!(status.psp_payment_id, hook.psp_payment_id);

    // A second click changes nothing and sends nothing.
    let response = browser()
        .post(format!("{checkout_url}/fail"))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("status=succeeded")
    );
    assert_eq!(merchant.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn fail_flow_and_account_isolation() {
    let sandbox = start_sandbox().await;
    let merchant = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&merchant)
        .await;
    let account = PspAccount::test(PspCredentials::Sandbox {
        webhook_secret: generate_webhook_secret(),
    })
    .with_base_url(sandbox.base_url.clone());
    let client = PspClient::new(&HttpConfig::default()).unwrap();
    let order = order(format!("{}/hook", merchant.uri()));
    let created = client.create_order(&account, &order).await.unwrap();
    let CheckoutData::Sandbox { checkout_url } = created.checkout else {
        panic!("not sandbox")
    };
    let response = browser()
        .post(format!("{checkout_url}/fail"))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("status=failed")
    );
    let status = client
        .fetch_status(&account, order.payment_id, None)
        .await
        .unwrap();
    assert!(
        matches!(status.outcome, PaymentOutcome::Failed { ref code, .. } if code == "SANDBOX_DECLINED")
    );

    let stranger = PspAccount::test(PspCredentials::Sandbox {
        webhook_secret: generate_webhook_secret(),
    })
    .with_base_url(sandbox.base_url.clone());
    assert_eq!(
        client
            .fetch_status(&stranger, order.payment_id, None)
            .await
            .unwrap()
            .outcome,
        PaymentOutcome::Pending
    );
    assert!(matches!(
        client.create_order(&stranger, &order).await,
        Err(PspError::Rejected { ref code, .. }) if code == "order_exists"
    ));

    let bad_key = PspAccount::test(PspCredentials::Sandbox {
        webhook_secret: Secret::from("not-a-whsec"),
    })
    .with_base_url(sandbox.base_url.clone());
    let check = client.test_credentials(&bad_key).await.unwrap();
    assert_eq!((check.status, check.accepted), (401, false));
    assert!(client.test_credentials(&account).await.unwrap().accepted);
}
