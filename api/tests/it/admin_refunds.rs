//! Refunds on the read side, over real HTTP and PostgreSQL: the refunds read model through
//! `GET /admin/refunds` (filters, cursor, problem documents), one refund, one payment with its
//! refunds from the log; and the commission effect of partial refunds under both treatments,
//! from `record_refund_outcome` through the wallet and the read models to `audit commission`,
//! equal to the paisa.

use std::collections::HashSet;

use lightspeed_audit::{ReadModelCheck, ReplayFilter, replay_database};
use lightspeed_domain::merchant::MerchantCommand;
use lightspeed_domain::payment::PaymentCommand;
use lightspeed_domain::payment::refunds::RefundCommission;
use lightspeed_domain::{BasisPoints, Decider, Paise, Payment, PaymentId, RefundId};
use lightspeed_eventstore::{
    CommandContext, EventStore, ExpectedVersion, Metadata, NewEvent, stream_of,
};
use lightspeed_services::RefundOutcome;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{
    TestApp, TestMerchant, payment, problem, request_refund, settle_success, spawn_app,
};

/// A merchant charged 2.5 % whose refunds get `treatment`, with a sandbox gateway.
async fn merchant(app: &TestApp, treatment: RefundCommission) -> TestMerchant {
    let merchant = app.merchant().await;
    let at = app.ledger.now();
    app.ledger
        .update_merchant(
            merchant.id,
            &[
                MerchantCommand::ChangeFee {
                    fee: BasisPoints(250),
                    at,
                },
                MerchantCommand::ChangeRefundCommission {
                    policy: treatment,
                    at,
                },
            ],
            &CommandContext::default(),
        )
        .await
        .expect("settings");
    app.sandbox_gateway(&merchant, 1, None).await;
    merchant
}

/// A payment of `amount`, succeeded.
async fn paid(app: &TestApp, merchant: &TestMerchant, order: &str, amount: i64) -> PaymentId {
    let created = app.initiate(merchant, &payment(order, amount)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let body: Value = created.json().await.expect("json");
    let id: PaymentId = body["transaction_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("payment id");
    settle_success(app, merchant.id, id).await;
    id
}

/// Records the PSP's answer, as the refund worker would.
async fn outcome(app: &TestApp, payment: PaymentId, refund: RefundId, outcome: RefundOutcome) {
    app.ledger
        .record_refund_outcome(
            payment,
            refund,
            &outcome,
            app.ledger.now(),
            &CommandContext::default(),
        )
        .await
        .expect("outcome");
}

fn succeeded(psp_refund_id: &str) -> RefundOutcome {
    RefundOutcome::Succeeded {
        psp_refund_id: Some(psp_refund_id.into()),
    }
}

async fn admin_get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    problem(app.admin(Method::GET, path).send().await.expect("request")).await
}

/// The commission reversed by each refund of a payment, in request order, from the admin view.
async fn reversals(app: &TestApp, payment: PaymentId) -> (Value, Vec<i64>) {
    let (status, view) = admin_get(app, &format!("/admin/transactions/{payment}")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let reversed = view["refunds"]
        .as_array()
        .expect("refunds")
        .iter()
        .map(|r| r["commission_reversed_paise"].as_i64().expect("paise"))
        .collect();
    (view, reversed)
}

#[tokio::test]
async fn partial_refunds_reverse_commission_half_up_and_the_audit_agrees_to_the_paisa() {
    let app = spawn_app().await;
    let reversing = merchant(&app, RefundCommission::ReverseProportional).await;
    let retaining = merchant(&app, RefundCommission::Retain).await;
    // 2.5 % of 10 001 paise is 250.025: 250 paise of commission.
    let a = paid(&app, &reversing, "ORD-A", 10_001).await;
    let b = paid(&app, &retaining, "ORD-B", 10_001).await;
    // 2.5 % of 10 020 paise is 250.5: 251 (half-up); a refund of 20 paise is a share of 0.5: 1.
    let c = paid(&app, &reversing, "ORD-C", 10_020).await;

    // Three partials of A, with a refused one between them that reverses nothing.
    let first = request_refund(&app, &reversing, a, "A-1", 3_334).await;
    outcome(&app, a, first, succeeded("rfnd_a1")).await;
    let refused = request_refund(&app, &reversing, a, "A-X", 5_000).await;
    outcome(
        &app,
        a,
        refused,
        RefundOutcome::Failed {
            code: "BAD_REQUEST_ERROR".into(),
            reason: "insufficient balance".into(),
        },
    )
    .await;
    let second = request_refund(&app, &reversing, a, "A-2", 3_333).await;
    outcome(
        &app,
        a,
        second,
        RefundOutcome::Submitted {
            psp_refund_id: "rfnd_a2".into(),
        },
    )
    .await;
    outcome(
        &app,
        a,
        second,
        RefundOutcome::Succeeded {
            psp_refund_id: None,
        },
    )
    .await;
    let third = request_refund(&app, &reversing, a, "A-3", 3_334).await;
    outcome(&app, a, third, succeeded("rfnd_a3")).await;
    // Retained: the same partials reverse nothing.
    for (n, amount) in [3_334, 3_333, 3_334].into_iter().enumerate() {
        let id = request_refund(&app, &retaining, b, &format!("B-{n}"), amount).await;
        outcome(&app, b, id, succeeded(&format!("rfnd_b{n}"))).await;
    }
    let tiny = request_refund(&app, &reversing, c, "C-1", 20).await;
    outcome(&app, c, tiny, succeeded("rfnd_c1")).await;

    // Cumulative half-up shares of 250: 83.34 → 83, 166.67 → 167 (84 more), 250 (83 more).
    let (view, reversed) = reversals(&app, a).await;
    assert_eq!(reversed, [83, 0, 84, 83], "{view}");
    assert_eq!(view["commission_paise"], 250);
    assert_eq!(
        view["commission_reversed_paise"], 250,
        "never more than accrued"
    );
    assert_eq!(view["refunded_paise"], 10_001);
    assert_eq!(view["refundable_paise"], 0);
    assert_eq!(view["status"], "refunded");
    let (_, reversed) = reversals(&app, b).await;
    assert_eq!(reversed, [0, 0, 0]);
    let (view, reversed) = reversals(&app, c).await;
    assert_eq!(
        (view["commission_paise"].as_i64(), reversed),
        (Some(251), vec![1])
    );

    app.project().await;
    let (_, wallets) = admin_get(
        &app,
        &format!("/admin/wallets?merchant_id={}", reversing.id),
    )
    .await;
    let wallet = &wallets["items"][0];
    assert_eq!(wallet["commission_accrued_paise"], 501);
    assert_eq!(wallet["commission_reversed_paise"], 251);
    assert_eq!(wallet["balance_due_paise"], 250);
    let (_, wallets) = admin_get(
        &app,
        &format!("/admin/wallets?merchant_id={}", retaining.id),
    )
    .await;
    assert_eq!(wallets["items"][0]["balance_due_paise"], 250);
    let (status, ledger) = admin_get(
        &app,
        &format!(
            "/admin/commission/ledger?entry_type=COMMISSION_REVERSED&merchant_id={}",
            reversing.id
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ledger}");
    let effects: i64 = ledger["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["balance_effect_paise"].as_i64().expect("paise"))
        .sum();
    assert_eq!(effects, -251);

    let report = replay_database(&app.db.pool, ReplayFilter::default())
        .await
        .expect("audit");
    assert!(report.agrees(), "{report:?}");
    assert!(matches!(
        report.read_model,
        Some(ReadModelCheck::Compared(_))
    ));
    let audited = report
        .merchants
        .iter()
        .find(|m| m.merchant_id == reversing.id)
        .expect("audited");
    assert_eq!(audited.commission_reversed_paise, Paise(251));
    assert_eq!(audited.balance_due_paise, Paise(250));
}

#[tokio::test]
async fn admin_refunds_filter_paginate_newest_first_and_refuse_bad_queries() {
    let app = spawn_app().await;
    let merchant = merchant(&app, RefundCommission::Retain).await;
    let other = merchant_of_other(&app).await;
    let a = paid(&app, &merchant, "ORD-1", 50_000).await;
    let b = paid(&app, &other, "ORD-2", 50_000).await;
    let mut ours = Vec::new();
    for (n, amount) in [1_000, 2_000, 3_000, 4_000].into_iter().enumerate() {
        app.clock.advance(chrono::TimeDelta::seconds(1));
        ours.push(request_refund(&app, &merchant, a, &format!("R-{n}"), amount).await);
    }
    outcome(&app, a, ours[0], succeeded("rfnd_1")).await;
    outcome(
        &app,
        a,
        ours[1],
        RefundOutcome::Failed {
            code: "REFUND_DECLINED".into(),
            reason: "closed account".into(),
        },
    )
    .await;
    let theirs = request_refund(&app, &other, b, "R-0", 7_000).await;
    app.project().await;

    // Pages of one cover every refund once, newest request first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/refunds?limit=1&cursor={c}"),
            None => "/admin/refunds?limit=1".to_owned(),
        };
        let (status, page) = admin_get(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let ids: Vec<&str> = seen
        .iter()
        .map(|r| r["refund_id"].as_str().expect("id"))
        .collect();
    let mut expected: Vec<String> = ours.iter().rev().map(ToString::to_string).collect();
    expected.insert(0, theirs.to_string());
    assert_eq!(ids, expected);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 5);

    let count = |query: &'static str| {
        let app = &app;
        async move {
            let (status, page) = admin_get(app, &format!("/admin/refunds?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {page}");
            page["items"].as_array().expect("items").len()
        }
    };
    assert_eq!(count("status=succeeded").await, 1);
    assert_eq!(count("status=failed").await, 1);
    assert_eq!(count("status=requested").await, 3);
    assert_eq!(count("min_amount_paise=3000").await, 3);
    assert_eq!(
        count("min_amount_paise=2000&max_amount_paise=4000").await,
        3
    );
    let by_merchant = format!("/admin/refunds?merchant_id={}", merchant.id);
    let (_, page) = admin_get(&app, &by_merchant).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(4));
    let (_, page) = admin_get(&app, &format!("/admin/refunds?payment_id={b}")).await;
    assert_eq!(page["items"][0]["merchant_refund_id"], "R-0");
    assert_eq!(page["items"][0]["amount_paise"], 7_000);
    assert_eq!(count("from=2000-01-01&to=2000-01-02").await, 0);

    let (status, one) = admin_get(&app, &format!("/admin/refunds/{}", ours[1])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["status"], "failed");
    assert_eq!(one["failure_code"], "REFUND_DECLINED");
    assert_eq!(one["payment_id"], a.to_string());
    let (status, one) = admin_get(&app, "/admin/refunds/rfnd_1").await;
    assert_eq!(
        (status, one["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("REFUND_NOT_FOUND"))
    );

    for query in [
        "status=refunded",
        "limit=0",
        "limit=201",
        "cursor=nonsense",
        "from=yesterday",
        "min_amount_paise=5&max_amount_paise=4",
        "merchant_id=not-a-uuid",
    ] {
        let (status, body) = admin_get(&app, &format!("/admin/refunds?{query}")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("INVALID_QUERY")),
            "{query}: {body}"
        );
    }
    let (status, body) = admin_get(&app, "/admin/transactions/not-a-payment").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("TRANSACTION_NOT_FOUND"))
    );
    let unauthenticated = app
        .http
        .get(format!("{}/admin/refunds", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_refund_the_psp_reported_itself_is_a_row_keyed_by_its_psp_refund_id() {
    let app = spawn_app().await;
    let merchant = merchant(&app, RefundCommission::ReverseProportional).await;
    let id = paid(&app, &merchant, "ORD-EXT", 20_000).await;
    // What the PSP's report of a refund made in its dashboard records (no service issues it
    // yet): the payment decides it, the store appends it.
    let state = app.ledger.payment(id).await.expect("load");
    let command = PaymentCommand::RecordRefund {
        refund_id: "rfnd_dashboard_1".into(),
        amount: Paise(5_000),
        at: app.ledger.now(),
    };
    let events = <Payment as Decider>::decide(&state, &command).expect("decide");
    let events = events
        .iter()
        .map(|e| {
            NewEvent::from_domain(uuid::Uuid::now_v7(), e, Metadata::default()).expect("event")
        })
        .collect();
    app.ledger
        .store()
        .append(
            stream_of::<Payment>(id).expect("stream"),
            ExpectedVersion::Any,
            events,
        )
        .await
        .expect("external refund");
    app.project().await;
    let (status, row) = admin_get(&app, "/admin/refunds/rfnd_dashboard_1").await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!(row["refund_id"], uuid::Uuid::nil().to_string());
    assert_eq!(row["merchant_refund_id"], Value::Null);
    assert_eq!(row["status"], "succeeded");
    assert_eq!(row["commission_treatment"], "retain");
    assert_eq!(row["commission_reversed_paise"], 0);
    let (_, view) = admin_get(&app, &format!("/admin/transactions/{id}")).await;
    assert_eq!(view["refunded_paise"], 5_000);
    assert_eq!(view["refunds"][0]["refund_key"], "rfnd_dashboard_1");
    assert_eq!(view["transaction"]["refunded_paise"], 5_000);
}

/// A second merchant, retaining commission, with its own gateway.
async fn merchant_of_other(app: &TestApp) -> TestMerchant {
    merchant(app, RefundCommission::Retain).await
}
