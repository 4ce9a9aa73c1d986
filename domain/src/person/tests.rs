use super::*;
use crate::testing::{given, t};

fn email(text: &str) -> PersonEmail {
    PersonEmail::parse(text).expect("valid email")
}

fn invited(role: Role) -> PersonEvent {
    PersonEvent::PersonInvited {
        email: email("ops@example.com"),
        role,
        at: t(0),
    }
}

#[test]
fn inviting_someone_new_records_them_with_their_role() {
    let state = given::<Person>([])
        .when(PersonCommand::Invite {
            email: email("ops@example.com"),
            role: Role::Ops,
            at: t(0),
        })
        .then([invited(Role::Ops)]);
    assert_eq!(state.role(), Some(Role::Ops));
    assert_eq!(
        state.membership().map(|m| (m.email.as_str(), m.since)),
        Some(("ops@example.com", t(0)))
    );
}

#[test]
fn inviting_again_with_the_same_role_is_nothing_and_with_another_is_refused() {
    given::<Person>([invited(Role::Ops)])
        .when(PersonCommand::Invite {
            email: email("ops@example.com"),
            role: Role::Ops,
            at: t(5),
        })
        .then_nothing();
    given::<Person>([invited(Role::Ops)])
        .when(PersonCommand::Invite {
            email: email("ops@example.com"),
            role: Role::Admin,
            at: t(5),
        })
        .then_error(PersonError::AlreadyInvited { role: Role::Ops });
}

#[test]
fn a_role_changes_only_for_a_person_and_only_when_it_differs() {
    let state = given::<Person>([invited(Role::Admin)])
        .when(PersonCommand::ChangeRole {
            role: Role::Auditor,
            at: t(1),
        })
        .then([PersonEvent::PersonRoleChanged {
            from: Role::Admin,
            to: Role::Auditor,
            at: t(1),
        }]);
    assert_eq!(state.role(), Some(Role::Auditor));
    given::<Person>([invited(Role::Finance)])
        .when(PersonCommand::ChangeRole {
            role: Role::Finance,
            at: t(1),
        })
        .then_nothing();
    given::<Person>([])
        .when(PersonCommand::ChangeRole {
            role: Role::Ops,
            at: t(1),
        })
        .then_error(PersonError::NotAPerson);
}

#[test]
fn removing_a_person_revokes_everything_they_held_and_a_new_invitation_starts_clean() {
    let removed = given::<Person>([invited(Role::Ops)])
        .when(PersonCommand::Remove { at: t(10) })
        .then([PersonEvent::PersonRemoved {
            role: Role::Ops,
            at: t(10),
        }]);
    assert_eq!(removed.role(), None);
    assert!(!removed.accepts_token("jti-1", t(9)));
    assert!(
        !removed.accepts_token("jti-1", t(10)),
        "same second counts as before"
    );
    given::<Person>([
        invited(Role::Ops),
        PersonEvent::PersonRemoved {
            role: Role::Ops,
            at: t(10),
        },
    ])
    .when(PersonCommand::Remove { at: t(11) })
    .then_error(PersonError::NotAPerson);
    let again = given::<Person>([
        invited(Role::Ops),
        PersonEvent::PersonRemoved {
            role: Role::Ops,
            at: t(10),
        },
    ])
    .when(PersonCommand::Invite {
        email: email("ops@example.com"),
        role: Role::Finance,
        at: t(20),
    })
    .then([PersonEvent::PersonInvited {
        email: email("ops@example.com"),
        role: Role::Finance,
        at: t(20),
    }]);
    assert_eq!(again.role(), Some(Role::Finance));
    assert!(
        !again.accepts_token("old", t(5)),
        "tokens of before stay revoked"
    );
    assert!(again.accepts_token("new", t(21)));
}

#[test]
fn a_revoked_token_is_refused_until_it_would_have_expired_and_then_forgotten() {
    let revoke = PersonCommand::RevokeToken {
        token_id: "jti-1".to_owned(),
        expires_at: t(3600),
        at: t(60),
    };
    let state = given::<Person>([invited(Role::Admin)])
        .when(revoke.clone())
        .then([PersonEvent::PersonTokenRevoked {
            token_id: "jti-1".to_owned(),
            expires_at: t(3600),
            at: t(60),
        }]);
    assert!(!state.accepts_token("jti-1", t(0)));
    assert!(state.accepts_token("jti-2", t(0)));
    let revoked = PersonEvent::PersonTokenRevoked {
        token_id: "jti-1".to_owned(),
        expires_at: t(3600),
        at: t(60),
    };
    given::<Person>([invited(Role::Admin), revoked.clone()])
        .when(revoke)
        .then_nothing();
    let later = given::<Person>([invited(Role::Admin), revoked])
        .when(PersonCommand::RevokeToken {
            token_id: "jti-2".to_owned(),
            expires_at: t(9000),
            at: t(4000),
        })
        .then([PersonEvent::PersonTokenRevoked {
            token_id: "jti-2".to_owned(),
            expires_at: t(9000),
            at: t(4000),
        }]);
    assert_eq!(later.revoked.len(), 1, "jti-1 expired and was forgotten");
}

#[test]
fn revoking_an_expired_token_is_nothing_and_token_ids_are_checked() {
    given::<Person>([])
        .when(PersonCommand::RevokeToken {
            token_id: "jti-1".to_owned(),
            expires_at: t(10),
            at: t(10),
        })
        .then_nothing();
    given::<Person>([])
        .when(PersonCommand::RevokeToken {
            token_id: "no spaces".to_owned(),
            expires_at: t(100),
            at: t(10),
        })
        .then_error(PersonError::Invalid(
            Problem::BadCharacters {
                allowed: "letters, digits, - and _",
            }
            .at("token_id"),
        ));
}

#[test]
fn revoking_every_token_refuses_those_issued_up_to_then_even_for_a_bootstrap_admin() {
    let state = given::<Person>([])
        .when(PersonCommand::RevokeAllTokens { at: t(100) })
        .then([PersonEvent::PersonTokensRevoked { at: t(100) }]);
    assert_eq!(state.role(), None, "a bootstrap admin has no membership");
    assert!(!state.accepts_token("a", t(99)));
    assert!(!state.accepts_token("a", t(100)));
    assert!(state.accepts_token("a", t(101)));
}

#[test]
fn emails_are_normalised_and_checked() {
    assert_eq!(email("  Ops@Example.COM ").as_str(), "ops@example.com");
    for bad in [
        "",
        "ops",
        "ops@localhost",
        "@example.com",
        "a@b@example.com",
        "o ps@example.com",
        "ops@.example.com",
        "ops@example.com.",
        "ops\u{0}@example.com",
        "opś@example.com",
    ] {
        assert!(PersonEmail::parse(bad).is_err(), "{bad:?}");
    }
    let long = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS));
    assert!(PersonEmail::parse(&long).is_err());
    assert_eq!(
        serde_json::from_str::<PersonEmail>("\"not an email\"").ok(),
        None,
        "a stored email is checked when read"
    );
}

#[test]
fn stream_keys_are_readable_distinct_and_fit_a_stream_id() {
    assert_eq!(email("ops@example.com").stream_key(), "ops:example.com");
    assert_eq!(
        email("first_last+alerts@pay.example.in").stream_key(),
        "first_last::alerts:pay.example.in"
    );
    assert_ne!(
        email("a+b@c.example.com").stream_key(),
        email("a@b.c.example.com").stream_key()
    );
    let longest = format!(
        "{}@{}.com",
        "+".repeat(MAX_LOCAL_PART_CHARS),
        "d".repeat(MAX_EMAIL_CHARS - MAX_LOCAL_PART_CHARS - 5)
    );
    let key = email(&longest).stream_key();
    assert!(key.len() + "person-".len() <= 200, "{}", key.len());
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
    );
}
