//! The read functions: filters, pages and cursors; and no secret in any read model.

use crate::common;

use std::collections::HashSet;

use chrono::{TimeDelta, Utc};
use common::{deps, scenario_with};
use lightspeed_domain::payment::PaymentStatus;
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_projections::pagination::{MAX_PER_PAGE, PageRequest};
use lightspeed_projections::progress::Silent;
use lightspeed_projections::scenario::SEALED_MARKER;
use lightspeed_projections::{
    ProjectionError, RebuildOptions, audit_log, catalog, commission, gateways, merchants, rebuild,
    status, transactions, wallets, webhooks, whatsapp,
};

#[tokio::test]
async fn read_functions_filter_and_paginate() {
    let db = TestDatabase::new().await;
    let deps = deps(&db);
    let pool = deps.store.pool().clone();

    // Before any build, reads say so instead of failing obscurely.
    assert!(matches!(
        wallets::list(
            &pool,
            &wallets::WalletFilter::default(),
            PageRequest::default()
        )
        .await,
        Err(ProjectionError::NotBuilt("wallets"))
    ));

    let scenario = scenario_with(&deps.store, 4_000, 42).await;
    for name in catalog::names() {
        rebuild(name, &deps, &RebuildOptions::default(), &Silent)
            .await
            .expect("build");
    }

    // Wallets: pages of 1 cover every merchant once, largest balance due first.
    let all = wallets::list(
        &pool,
        &wallets::WalletFilter::default(),
        PageRequest::default(),
    )
    .await
    .expect("list");
    assert_eq!(all.total, scenario.wallets().len() as i64);
    let mut paged = Vec::new();
    for page in 1..=all.total {
        let one = wallets::list(
            &pool,
            &wallets::WalletFilter::default(),
            PageRequest {
                page: u32::try_from(page).expect("small"),
                per_page: 1,
            },
        )
        .await
        .expect("page");
        paged.extend(one.items);
    }
    assert_eq!(paged, all.items);
    assert!(
        all.items
            .windows(2)
            .all(|w| w[0].balance_due_paise >= w[1].balance_due_paise)
    );
    let some_merchant = all.items[0].merchant_id;
    let one = wallets::list(
        &pool,
        &wallets::WalletFilter {
            merchant_id: Some(some_merchant),
            ..Default::default()
        },
        PageRequest::default(),
    )
    .await
    .expect("by merchant");
    assert_eq!(one.items.len(), 1);
    assert!(matches!(
        wallets::list(
            &pool,
            &wallets::WalletFilter::default(),
            PageRequest {
                page: 0,
                per_page: 5
            }
        )
        .await,
        Err(ProjectionError::InvalidQuery(_))
    ));
    assert!(matches!(
        wallets::list(
            &pool,
            &wallets::WalletFilter::default(),
            PageRequest {
                page: 1,
                per_page: 5_000
            }
        )
        .await,
        Err(ProjectionError::InvalidQuery(_))
    ));

    // Ledger: a cursor walk sees every entry once, newest first, and sums to the balances.
    let mut cursor: Option<String> = None;
    let mut entries = Vec::new();
    loop {
        let step = commission::ledger(
            &pool,
            &commission::LedgerFilter {
                limit: 37,
                ..Default::default()
            },
            cursor.as_deref(),
        )
        .await
        .expect("ledger");
        entries.extend(step.items);
        match step.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let positions: HashSet<i64> = entries.iter().map(|e| e.log_position).collect();
    assert_eq!(positions.len(), entries.len(), "no entry twice");
    assert!(
        entries
            .windows(2)
            .all(|w| w[0].log_position > w[1].log_position)
    );
    let effect: i64 = entries.iter().map(|e| e.balance_effect_paise).sum();
    let due: i64 = all.items.iter().map(|w| w.balance_due_paise).sum();
    assert_eq!(effect, due, "the ledger explains every balance due");
    let commissions = commission::ledger(
        &pool,
        &commission::LedgerFilter {
            merchant_id: Some(some_merchant),
            entry_type: Some("COMMISSION".into()),
            limit: 200,
            ..Default::default()
        },
        None,
    )
    .await
    .expect("filtered ledger");
    assert!(
        commissions
            .items
            .iter()
            .all(|e| e.merchant_id == some_merchant && e.entry_type == "COMMISSION")
    );
    assert!(matches!(
        commission::ledger(
            &pool,
            &commission::LedgerFilter {
                limit: 10,
                ..Default::default()
            },
            Some("nope")
        )
        .await,
        Err(ProjectionError::InvalidQuery(_))
    ));

    // Commission per day agrees with the wallets.
    let days = commission::daily(&pool, &commission::DailyFilter::default())
        .await
        .expect("daily");
    let accrued: i64 = days.iter().map(|d| d.commission_paise).sum();
    assert_eq!(
        accrued,
        all.items
            .iter()
            .map(|w| w.commission_accrued_paise)
            .sum::<i64>()
    );
    assert!(
        days.iter().map(|d| d.day).collect::<HashSet<_>>().len() >= 2,
        "IST days turn"
    );

    // Transactions: filters and a cursor walk.
    let succeeded = transactions::search(
        &pool,
        &transactions::TransactionSearch {
            merchant_id: Some(some_merchant),
            status: Some("succeeded".into()),
            limit: 200,
            ..Default::default()
        },
        None,
    )
    .await
    .expect("search");
    assert!(
        succeeded
            .items
            .iter()
            .all(|t| t.merchant_id == some_merchant && t.status == "succeeded")
    );
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let step = transactions::search(
            &pool,
            &transactions::TransactionSearch {
                limit: 50,
                ..Default::default()
            },
            cursor.as_deref(),
        )
        .await
        .expect("walk");
        seen.extend(step.items);
        match step.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let ids: HashSet<_> = seen.iter().map(|t| t.payment_id).collect();
    assert_eq!(ids.len(), seen.len());
    // Every status is stored by its one name, the one the merchant API and webhooks use.
    let names: HashSet<&str> = seen.iter().map(|t| t.status.as_str()).collect();
    let vocabulary: HashSet<&str> = PaymentStatus::ALL.map(PaymentStatus::as_str).into();
    assert!(names.is_subset(&vocabulary), "{names:?}");
    assert!(
        names.contains("created") && names.contains("pending"),
        "{names:?}"
    );
    let earlier_name = transactions::search(
        &pool,
        &transactions::TransactionSearch {
            status: Some("initiated".into()),
            limit: 50,
            ..Default::default()
        },
        None,
    )
    .await;
    assert!(matches!(
        earlier_name,
        Err(ProjectionError::InvalidQuery(_))
    ));
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM read.transactions")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(seen.len() as i64, total);
    let first = &seen[0];
    let by_order = transactions::search(
        &pool,
        &transactions::TransactionSearch {
            merchant_order_id: Some(first.merchant_order_id.clone()),
            limit: 10,
            ..Default::default()
        },
        None,
    )
    .await
    .expect("by order id");
    assert_eq!(by_order.items, vec![first.clone()]);
    let recent = transactions::search(
        &pool,
        &transactions::TransactionSearch {
            from: Some(first.initiated_at),
            limit: 200,
            ..Default::default()
        },
        None,
    )
    .await
    .expect("by date");
    assert!(
        recent
            .items
            .iter()
            .all(|t| t.initiated_at >= first.initiated_at)
    );
    assert!(matches!(
        transactions::search(
            &pool,
            &transactions::TransactionSearch {
                status: Some("lost".into()),
                limit: 5,
                ..Default::default()
            },
            None
        )
        .await,
        Err(ProjectionError::InvalidQuery(_))
    ));

    // Gateways: health for a merchant, as of the scenario's last instant.
    let health = gateways::health(
        &pool,
        &gateways::GatewayFilter {
            merchant_id: Some(some_merchant),
            ..Default::default()
        },
        seen[0].initiated_at,
    )
    .await
    .expect("health");
    assert!(!health.is_empty());
    assert!(
        health
            .iter()
            .all(|g| g.gateway.merchant_id == some_merchant)
    );
    assert!(health.iter().any(|g| g.gateway.success_rate_bps.is_some()));
    assert!(health.iter().any(|g| g.this_month_volume_paise > 0));

    // Merchants, WhatsApp, webhooks, audit log.
    let merchants = merchants::list(
        &pool,
        &merchants::MerchantFilter::default(),
        PageRequest::default(),
    )
    .await
    .expect("merchants");
    assert_eq!(merchants.total, all.total);
    let found = merchants::list(
        &pool,
        &merchants::MerchantFilter {
            q: Some("merchant 1 pvt".into()),
            ..Default::default()
        },
        PageRequest::default(),
    )
    .await
    .expect("search merchants");
    assert_eq!(found.items.len(), 1);
    let log = whatsapp::log(
        &pool,
        &whatsapp::WhatsappFilter::default(),
        PageRequest::default(),
    )
    .await
    .expect("whatsapp log");
    assert!(log.total > 0);
    let sent = whatsapp::log(
        &pool,
        &whatsapp::WhatsappFilter {
            status: Some("sent".into()),
            q: Some("txn".into()),
            ..Default::default()
        },
        PageRequest::default(),
    )
    .await
    .expect("filtered log");
    assert!(
        sent.items
            .iter()
            .all(|m| m.status == "sent" && m.template.contains("txn"))
    );
    let merchant_with_messages = log.items[0].merchant_id;
    let today = (Utc::now() + TimeDelta::days(3650)).date_naive();
    assert!(
        whatsapp::usage(&pool, merchant_with_messages, 30, today)
            .await
            .expect("usage")
            .is_empty()
    );
    let usage = whatsapp::usage(&pool, merchant_with_messages, 366, days[0].day)
        .await
        .expect("usage");
    assert!(usage.iter().map(|u| u.queued).sum::<i64>() > 0);
    // The standing by type, moved as each message's status moves (requeues and give-ups
    // included), equals counting the log's rows as they stand now.
    let by_rows = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (chrono::NaiveDate, String, i64, i64, i64)>(sql)
                .fetch_all(&pool)
                .await
                .expect("standing")
        }
    };
    let kept = by_rows(
        "SELECT day, notification_type, queued, sent, failed FROM read.whatsapp_standing
          ORDER BY 1, 2",
    )
    .await;
    let counted = by_rows(
        "SELECT (queued_at AT TIME ZONE 'Asia/Kolkata')::date, notification_type,
                count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'sent'),
                count(*) FILTER (WHERE status = 'failed')
           FROM read.whatsapp_log GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await;
    assert!(
        counted.iter().any(|(.., failed)| *failed > 0),
        "{counted:?}"
    );
    assert_eq!(kept, counted);
    // Ids differ from run to run, so which deliveries the first page holds does too: look
    // through every page for one that was attempted.
    let mut attempted = None;
    for page in 1.. {
        let deliveries = webhooks::deliveries(
            &pool,
            &webhooks::DeliveryFilter::default(),
            PageRequest {
                page,
                per_page: MAX_PER_PAGE,
            },
        )
        .await
        .expect("deliveries");
        assert!(deliveries.total > 0);
        attempted = deliveries.items.iter().find(|d| d.attempts > 0).cloned();
        if attempted.is_some() || deliveries.items.is_empty() {
            break;
        }
    }
    let attempted = attempted.expect("an attempt");
    let attempts = webhooks::attempts(&pool, attempted.delivery_id)
        .await
        .expect("attempts");
    assert!(!attempts.is_empty());
    let audit = audit_log::list(
        &pool,
        &audit_log::AuditFilter {
            limit: 200,
            ..Default::default()
        },
        None,
    )
    .await
    .expect("audit");
    assert!(audit.items.iter().all(|a| a.actor == "ops@lightspeed.test"));
    assert!(audit.items.iter().any(|a| a.action == "MerchantOnboarded"));
    if let Some(fee) = audit
        .items
        .iter()
        .find(|a| a.action == "MerchantFeeChanged")
    {
        assert!(fee.before.is_some());
    }
    let statuses = status::all(&pool).await.expect("status");
    assert_eq!(statuses.len(), catalog::all().len());
    assert!(
        statuses
            .iter()
            .all(|s| s.state == "active" && s.events_applied > 0)
    );

    // No read model holds a sealed blob (salts, webhook secrets, credentials).
    let leaks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT to_jsonb(t)::text AS row FROM read.merchants t
             UNION ALL SELECT to_jsonb(t)::text FROM read.gateways t
             UNION ALL SELECT to_jsonb(t)::text FROM read.audit_log t
             UNION ALL SELECT to_jsonb(t)::text FROM read.wallet_balances t
         ) r WHERE row LIKE '%' || $1 || '%'",
    )
    .bind(SEALED_MARKER)
    .fetch_one(&pool)
    .await
    .expect("scan");
    assert_eq!(leaks, 0);
}
