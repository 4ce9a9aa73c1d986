//! `lightspeed admin token` and `lightspeed admin revoke-token` against a real database: a token
//! only for one of the people (or an allow-listed admin), in the role asked; a revocation
//! appended to the log, so the server refuses the token from the next request on.

use std::sync::Arc;

use chrono::Utc;
use lightspeed_api::admin_auth::AdminAuthConfig;
use lightspeed_domain::ManualClock;
use lightspeed_domain::access::Role;
use lightspeed_domain::person::PersonEmail;
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_eventstore::{CommandContext, PgEventStore};
use lightspeed_services::Ledger;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

async fn lightspeed(args: &[&str], db: &TestDatabase) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_lightspeed"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("ADMIN_JWT_SECRET", SECRET)
        .env("ADMIN_EMAILS", "owner@example.com")
        .output()
        .await
        .expect("run lightspeed")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

#[tokio::test]
async fn tokens_are_minted_for_people_in_a_role_and_revoked_in_the_log() {
    let db = TestDatabase::new().await;
    let owner: PersonEmail = "owner@example.com".parse().expect("email");
    let ledger = Ledger::new(PgEventStore::new(
        db.pool.clone(),
        Arc::new(ManualClock::new(Utc::now())),
    ))
    .with_bootstrap_admins([owner.clone()]);
    let refused = lightspeed(&["admin", "token", "--email", "asha@example.com"], &db).await;
    assert!(!refused.status.success());
    assert!(text(&refused.stdout).is_empty(), "no token printed");
    assert!(
        text(&refused.stderr).contains("nor one of the people"),
        "{}",
        text(&refused.stderr)
    );

    let asha: PersonEmail = "asha@example.com".parse().expect("email");
    ledger
        .invite_person(&asha, Role::Ops, &CommandContext::default())
        .await
        .expect("invite");
    let minted = lightspeed(
        &[
            "admin",
            "token",
            "--email",
            "asha@example.com",
            "--role",
            "ops",
            "--ttl",
            "1h",
        ],
        &db,
    )
    .await;
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    let token = text(&minted.stdout);
    let config = AdminAuthConfig::new(SECRET, ["owner@example.com"]).expect("config");
    let claims = config.decode(&token).expect("a token of ours");
    assert_eq!(
        (claims.email.as_str(), claims.role),
        ("asha@example.com", Role::Ops)
    );
    let person = ledger.person(&asha).await.expect("read").expect("a person");
    assert!(person.accepts_token(&claims.token_id, claims.issued_at));

    let revoked = lightspeed(&["admin", "revoke-token", "--token", &token], &db).await;
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let person = ledger.person(&asha).await.expect("read").expect("a person");
    assert!(
        !person.accepts_token(&claims.token_id, claims.issued_at),
        "revoked in the log"
    );

    let all = lightspeed(
        &["admin", "revoke-token", "--email", "owner@example.com"],
        &db,
    )
    .await;
    assert!(all.status.success(), "{}", text(&all.stderr));
    let owner = ledger
        .person(&owner)
        .await
        .expect("read")
        .expect("a bootstrap admin");
    assert!(!owner.accepts_token("any", Utc::now() - chrono::TimeDelta::seconds(5)));
}
