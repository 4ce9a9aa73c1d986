//! Admin operations over a real PostgreSQL: edits of several settings at once, bulk priorities,
//! key rotation by resealing, queue switches and alerts raised once.

use std::sync::Arc;

use chrono::Utc;
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::{GatewayCommand, GatewayError, GatewaySettings};
use lightspeed_domain::merchant::{ClientKey, MerchantCommand, MerchantError};
use lightspeed_domain::ops_alert::AlertKind;
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::{BasisPoints, GatewayId, ManualClock, MerchantId, Provider, SealedSecret};
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_eventstore::{CommandContext, Metadata, PgEventStore};
use lightspeed_services::{AlertChange, Ledger, NewGateway, NewMerchant, Resealer, ServiceError};

fn sealed(key_id: &str, blob: &str) -> SealedSecret {
    SealedSecret {
        key_id: key_id.into(),
        sealed: blob.into(),
    }
}

fn admin() -> CommandContext {
    CommandContext {
        command_id: None,
        metadata: Metadata {
            actor: Some("admin:ops@example.com".into()),
            ..Metadata::default()
        },
    }
}

struct World {
    db: TestDatabase,
    ledger: Ledger,
}

async fn world() -> World {
    let db = TestDatabase::new().await;
    let store = PgEventStore::new(db.pool.clone(), Arc::new(ManualClock::new(Utc::now())));
    World {
        ledger: Ledger::new(store),
        db,
    }
}

impl World {
    async fn merchant(&self) -> MerchantId {
        let merchant_id = MerchantId::new();
        let key = format!("ck_{}", uuid::Uuid::now_v7().simple());
        self.ledger
            .onboard_merchant(
                NewMerchant {
                    merchant_id,
                    company_name: "Acme Retail".into(),
                    webhook_url: None,
                    whatsapp: None,
                    client_key: ClientKey::parse(&key[..27]).expect("client key"),
                    client_salt: sealed("old", "salt"),
                    webhook_secret: sealed("old", "whsec"),
                    fee: BasisPoints::DEFAULT_FEE,
                    thresholds: Thresholds::default(),
                    checkout: CheckoutSettings::default(),
                    at: self.ledger.now(),
                },
                &CommandContext::default(),
            )
            .await
            .expect("onboard");
        merchant_id
    }

    async fn gateway(&self, merchant_id: MerchantId, priority: u16) -> GatewayId {
        let gateway_id = GatewayId::new();
        self.ledger
            .register_gateway(
                NewGateway {
                    gateway_id,
                    merchant_id,
                    provider: Provider::Sandbox,
                    label: format!("sandbox {priority}"),
                    credentials: sealed("old", "credentials"),
                    settings: GatewaySettings {
                        priority,
                        ..GatewaySettings::default()
                    },
                    enabled: true,
                    at: self.ledger.now(),
                },
                &CommandContext::default(),
            )
            .await
            .expect("register gateway");
        gateway_id
    }

    async fn events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM ledger.events")
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
    }
}

#[tokio::test]
async fn an_edit_of_several_settings_is_all_or_nothing() {
    let world = world().await;
    let merchant_id = world.merchant().await;
    let at = world.ledger.now();
    let before = world.events().await;
    let refused = world
        .ledger
        .update_merchant(
            merchant_id,
            &[
                MerchantCommand::ChangeFee {
                    fee: BasisPoints(200),
                    at,
                },
                MerchantCommand::ChangeApiRateLimit {
                    per_minute: Some(0),
                    at,
                },
            ],
            &admin(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(ServiceError::Merchant(MerchantError::Invalid(_)))
    ));
    assert_eq!(
        world.events().await,
        before,
        "the valid fee change was not kept"
    );

    let merchant = world
        .ledger
        .update_merchant(
            merchant_id,
            &[
                MerchantCommand::ChangeFee {
                    fee: BasisPoints(200),
                    at,
                },
                MerchantCommand::ChangeApiRateLimit {
                    per_minute: Some(30),
                    at,
                },
            ],
            &admin(),
        )
        .await
        .expect("edit");
    assert_eq!(
        (merchant.fee(), merchant.api_rate_per_minute()),
        (BasisPoints(200), Some(30))
    );
    assert_eq!(world.events().await, before + 2);
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT metadata->>'actor' FROM ledger.events ORDER BY position DESC LIMIT 2",
    )
    .fetch_all(&world.db.pool)
    .await
    .expect("actors");
    assert_eq!(actors, vec!["admin:ops@example.com"; 2]);
}

#[tokio::test]
async fn bulk_priorities_change_every_gateway_or_none() {
    let world = world().await;
    let merchant_id = world.merchant().await;
    let first = world.gateway(merchant_id, 1).await;
    let second = world.gateway(merchant_id, 2).await;
    world
        .ledger
        .retire_gateway(merchant_id, second, "closed".into(), &admin())
        .await
        .expect("retire");
    let before = world.events().await;
    let refused = world
        .ledger
        .set_gateway_priorities(&[(first, 9), (second, 8)], &admin())
        .await;
    assert!(matches!(
        refused,
        Err(ServiceError::Gateway(GatewayError::Retired))
    ));
    let duplicate = world
        .ledger
        .set_gateway_priorities(&[(first, 9), (first, 8)], &admin())
        .await;
    assert!(matches!(duplicate, Err(ServiceError::DuplicateGateway(id)) if id == first));
    assert_eq!(world.events().await, before);

    let third = world.gateway(merchant_id, 3).await;
    let changed = world
        .ledger
        .set_gateway_priorities(&[(first, 30), (third, 10)], &admin())
        .await
        .expect("priorities");
    let priorities: Vec<u16> = changed.iter().map(|g| g.settings().priority).collect();
    assert_eq!(priorities, vec![30, 10]);
    let edited = world
        .ledger
        .update_gateway(
            first,
            &[GatewayCommand::Toggle {
                enabled: false,
                at: world.ledger.now(),
            }],
            &admin(),
        )
        .await
        .expect("toggle");
    assert!(!edited.is_enabled());
    assert_eq!(edited.settings().priority, 30);
}

/// Reseals `old:<blob>` as `new:<blob>-resealed`; refuses blobs under an unknown key.
struct RenameKey;

impl Resealer for RenameKey {
    fn key_id(&self) -> &str {
        "new"
    }

    fn is_current(&self, sealed: &SealedSecret) -> bool {
        sealed.key_id == "new"
    }

    fn reseal(&self, sealed: &SealedSecret) -> Result<SealedSecret, String> {
        match sealed.key_id.as_str() {
            "old" => Ok(SealedSecret {
                key_id: "new".into(),
                sealed: format!("{}-resealed", sealed.sealed),
            }),
            other => Err(format!("no key {other}")),
        }
    }
}

#[tokio::test]
async fn key_rotation_reseals_every_secret_by_appending_events_and_a_second_run_does_nothing() {
    let world = world().await;
    let merchant_id = world.merchant().await;
    let active = world.gateway(merchant_id, 1).await;
    let retired = world.gateway(merchant_id, 2).await;
    world
        .ledger
        .retire_gateway(merchant_id, retired, "closed".into(), &admin())
        .await
        .expect("retire");
    world
        .ledger
        .update_merchant(
            merchant_id,
            &[MerchantCommand::RotateWebhookSecret {
                secret: sealed("old", "whsec2"),
                grace_secs: 3_600,
                at: world.ledger.now(),
            }],
            &admin(),
        )
        .await
        .expect("rotate webhook secret");
    let stranger = world.merchant().await;
    world
        .ledger
        .update_merchant(
            stranger,
            &[MerchantCommand::RotateWebhookSecret {
                secret: sealed("lost", "whsec3"),
                grace_secs: 0,
                at: world.ledger.now(),
            }],
            &admin(),
        )
        .await
        .expect("rotate webhook secret");
    let stored_before: Vec<String> =
        sqlx::query_scalar("SELECT payload::text FROM ledger.events ORDER BY position")
            .fetch_all(&world.db.pool)
            .await
            .expect("payloads");

    let report = world
        .ledger
        .reseal_secrets(&RenameKey, &admin())
        .await
        .expect("reseal");
    assert_eq!(report.merchants_resealed, 1);
    assert_eq!(report.gateways_resealed, 2, "the retired gateway too");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert!(report.failures[0].reason.contains("no key lost"));

    let merchant = world.ledger.merchant(merchant_id).await.expect("merchant");
    assert_eq!(merchant.client_salt(), &sealed("new", "salt-resealed"));
    assert_eq!(
        merchant.webhook_secrets_valid_at(world.ledger.now()),
        vec![
            &sealed("new", "whsec2-resealed"),
            &sealed("new", "whsec-resealed")
        ]
    );
    for gateway in [active, retired] {
        let gateway = world.ledger.gateway(gateway).await.expect("gateway");
        assert_eq!(
            gateway.credentials(),
            &sealed("new", "credentials-resealed")
        );
    }
    let stored_after: Vec<String> =
        sqlx::query_scalar("SELECT payload::text FROM ledger.events ORDER BY position LIMIT $1")
            .bind(i64::try_from(stored_before.len()).expect("count"))
            .fetch_all(&world.db.pool)
            .await
            .expect("payloads");
    assert_eq!(stored_after, stored_before, "old events are never edited");

    let before = world.events().await;
    let again = world
        .ledger
        .reseal_secrets(&RenameKey, &admin())
        .await
        .expect("reseal");
    assert_eq!((again.merchants_resealed, again.gateways_resealed), (0, 0));
    assert_eq!(again.already_current, 3);
    assert_eq!(world.events().await, before);
}

#[tokio::test]
async fn a_pause_is_seen_by_the_next_read_and_resuming_twice_records_once() {
    let world = world().await;
    let workers_view = Ledger::new(world.ledger.store().clone());
    assert!(
        !workers_view
            .queue_paused("merchant-webhooks")
            .await
            .expect("read")
    );
    world
        .ledger
        .pause_queue("merchant-webhooks", &admin())
        .await
        .expect("pause");
    assert!(
        workers_view
            .queue_paused("merchant-webhooks")
            .await
            .expect("read")
    );
    assert!(
        !workers_view
            .queue_paused("webhook-processing")
            .await
            .expect("read")
    );
    let before = world.events().await;
    world
        .ledger
        .pause_queue("merchant-webhooks", &admin())
        .await
        .expect("pause again");
    assert_eq!(world.events().await, before, "already paused");
    world
        .ledger
        .resume_queue("merchant-webhooks", &admin())
        .await
        .expect("resume");
    world
        .ledger
        .resume_queue("merchant-webhooks", &admin())
        .await
        .expect("resume again");
    assert_eq!(world.events().await, before + 1);
    assert!(
        !workers_view
            .queue_paused("merchant-webhooks")
            .await
            .expect("read")
    );
    let drained = world
        .ledger
        .record_queue_drain("merchant-webhooks", 4, &admin())
        .await
        .expect("drain");
    assert!(drained.last_drained_at().is_some());
}

#[tokio::test]
async fn an_alert_is_recorded_by_one_of_two_replicas_and_resolved_once() {
    let world = world().await;
    let other = Ledger::new(world.ledger.store().clone());
    let key = "whatsapp_failure_rate";
    let raise = |ledger: Ledger| async move {
        ledger
            .raise_alert(
                key,
                AlertKind::WhatsappFailureRate,
                "9 of 100 failed".into(),
                &CommandContext::default(),
            )
            .await
            .expect("raise")
    };
    let (a, b) = tokio::join!(raise(world.ledger.clone()), raise(other.clone()));
    let mut changes = [a, b];
    changes.sort_by_key(|c| *c == AlertChange::Unchanged);
    assert_eq!(changes, [AlertChange::Recorded, AlertChange::Unchanged]);
    assert!(world.ledger.alert_known_raised(key) || other.alert_known_raised(key));
    let alert = world
        .ledger
        .alert(key)
        .await
        .expect("read")
        .expect("raised");
    assert!(alert.is_firing());
    let resolve = |ledger: Ledger| async move {
        ledger
            .resolve_alert(key, "0 of 100 failed".into(), &CommandContext::default())
            .await
            .expect("resolve")
    };
    assert_eq!(resolve(world.ledger.clone()).await, AlertChange::Recorded);
    assert_eq!(resolve(other).await, AlertChange::Unchanged);
    assert_eq!(
        world
            .ledger
            .alert("never")
            .await
            .expect("read")
            .map(|a| a.kind()),
        None
    );
}

#[tokio::test]
async fn a_regenerated_key_is_refused_for_requests_but_still_routes_psp_webhooks() {
    let world = world().await;
    let merchant_id = world.merchant().await;
    let old_key = world
        .ledger
        .merchant(merchant_id)
        .await
        .expect("merchant")
        .client_key()
        .clone();
    let new_key = ClientKey::parse("ck_ROTATEDrotated0123456789").expect("key");
    world
        .ledger
        .rotate_merchant_keys(
            merchant_id,
            new_key.clone(),
            sealed("old", "salt2"),
            &admin(),
        )
        .await
        .expect("rotate");
    assert!(
        world
            .ledger
            .merchant_by_client_key(old_key.as_str())
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        world
            .ledger
            .merchant_by_client_key(new_key.as_str())
            .await
            .expect("read")
            .is_some()
    );
    let routed = world
        .ledger
        .merchant_by_issued_client_key(old_key.as_str())
        .await
        .expect("read")
        .expect("merchant");
    assert_eq!(routed.id(), merchant_id);
}
