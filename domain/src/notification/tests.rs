use super::*;
use crate::testing::fixtures::{merchant_id, notification_id};
use crate::testing::{given, t};

fn queue() -> QueueNotification {
    QueueNotification {
        notification_id: notification_id(1),
        merchant_id: merchant_id(),
        kind: NotificationType::LowBalance,
        template: "low_balance_v2".to_owned(),
        recipient: "+919867800451".to_owned(),
        params: vec!["Acme".to_owned(), "₹5,210.00".to_owned()],
        at: t(0),
    }
}

fn queued() -> NotificationEvent {
    NotificationEvent::NotificationQueued {
        notification_id: notification_id(1),
        merchant_id: merchant_id(),
        kind: NotificationType::LowBalance,
        channel: Channel::Whatsapp,
        template: "low_balance_v2".to_owned(),
        recipient: "919867800451".to_owned(),
        params: vec!["Acme".to_owned(), "₹5,210.00".to_owned()],
        attempt_limit: 4,
        at: t(0),
    }
}

fn attempt_failed(retryable: bool, rate_limited: bool, at: DateTime<Utc>) -> NotificationCommand {
    NotificationCommand::RecordAttemptFailed {
        error_code: if rate_limited { "130429" } else { "131000" }.to_owned(),
        error_message: "provider said no".to_owned(),
        retryable,
        rate_limited,
        retry_after_secs: None,
        jitter: Jitter::NONE,
        at,
    }
}

fn failed_attempt(
    attempt: u32,
    next: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> NotificationEvent {
    NotificationEvent::NotificationAttemptFailed {
        channel: Channel::Whatsapp,
        attempt,
        error_code: "131000".to_owned(),
        error_message: "provider said no".to_owned(),
        retryable: true,
        next_attempt_at: next,
        at,
    }
}

fn sent(attempt: u32) -> NotificationEvent {
    NotificationEvent::NotificationSent {
        channel: Channel::Whatsapp,
        attempt,
        provider_message_id: "wamid.HBgM".to_owned(),
        at: t(5),
    }
}

#[test]
fn a_notification_is_queued_for_immediate_sending_with_four_attempts() {
    let notification = given::<Notification>([])
        .when(NotificationCommand::Queue(queue()))
        .then([queued()])
        .expect("queued");
    assert_eq!(notification.status(), NotificationStatus::Queued);
    assert_eq!(notification.attempt_limit(), 4);
    assert!(notification.is_due(t(0)));
}

#[test]
fn queueing_refuses_bad_fields() {
    let refuse = |command: QueueNotification, error: FieldError| {
        given::<Notification>([])
            .when(NotificationCommand::Queue(command))
            .then_error(NotificationError::Invalid(error));
    };
    refuse(
        QueueNotification {
            template: "Low Balance".to_owned(),
            ..queue()
        },
        Problem::BadCharacters {
            allowed: "lowercase letters, digits and '_'",
        }
        .at("template"),
    );
    refuse(
        QueueNotification {
            recipient: "n/a".to_owned(),
            ..queue()
        },
        Problem::NotAPhoneNumber.at("recipient"),
    );
    refuse(
        QueueNotification {
            params: vec![String::new(); 21],
            ..queue()
        },
        Problem::OutOfRange { min: 0, max: 20 }.at("params"),
    );
    refuse(
        QueueNotification {
            params: vec!["x".repeat(1_025)],
            ..queue()
        },
        Problem::TooLong { max: 1_024 }.at("params"),
    );
    given::<Notification>([queued()])
        .when(NotificationCommand::Queue(queue()))
        .then_error(NotificationError::AlreadyQueued);
}

#[test]
fn an_email_notification_is_queued_to_a_trimmed_address_and_retried_like_any_other() {
    let email = QueueNotification {
        kind: NotificationType::AccountStatus,
        template: "merchant_suspended".to_owned(),
        recipient: " billing@acme.example ".to_owned(),
        params: vec!["Acme".to_owned(), "unpaid commission".to_owned()],
        ..queue()
    };
    let queued_email = NotificationEvent::NotificationQueued {
        notification_id: notification_id(1),
        merchant_id: merchant_id(),
        kind: NotificationType::AccountStatus,
        channel: Channel::Email,
        template: "merchant_suspended".to_owned(),
        recipient: "billing@acme.example".to_owned(),
        params: vec!["Acme".to_owned(), "unpaid commission".to_owned()],
        attempt_limit: 4,
        at: t(0),
    };
    let notification = given::<Notification>([])
        .when(NotificationCommand::QueueEmail(email.clone()))
        .then([queued_email.clone()])
        .expect("queued");
    assert_eq!(notification.channel(), Channel::Email);
    given::<Notification>([queued_email])
        .when(attempt_failed(true, false, t(0)))
        .then([NotificationEvent::NotificationAttemptFailed {
            channel: Channel::Email,
            attempt: 1,
            error_code: "131000".to_owned(),
            error_message: "provider said no".to_owned(),
            retryable: true,
            next_attempt_at: Some(crate::calendar::plus_secs(t(0), 30)),
            at: t(0),
        }]);
    given::<Notification>([])
        .when(NotificationCommand::queue_on(
            Channel::Email,
            QueueNotification {
                recipient: "919867800451".to_owned(),
                ..email
            },
        ))
        .then_error(NotificationError::Invalid(
            Problem::NotAnEmail.at("recipient"),
        ));
}

#[test]
fn an_smtp_servers_acceptance_line_is_kept_as_the_receipt() {
    given::<Notification>([queued()])
        .when(NotificationCommand::RecordSent {
            provider_message_id: "250 2.0.0 Ok: queued as 4F2A1".to_owned(),
            at: t(5),
        })
        .then([NotificationEvent::NotificationSent {
            channel: Channel::Whatsapp,
            attempt: 1,
            provider_message_id: "250 2.0.0 Ok: queued as 4F2A1".to_owned(),
            at: t(5),
        }]);
    given::<Notification>([queued()])
        .when(NotificationCommand::RecordSent {
            provider_message_id: "line\nbreak".to_owned(),
            at: t(5),
        })
        .then_error(NotificationError::Invalid(
            Problem::BadCharacters {
                allowed: "printable ASCII",
            }
            .at("provider_message_id"),
        ));
}

#[test]
fn a_notification_stored_before_channels_existed_is_a_whatsapp_one() {
    let mut stored = serde_json::to_value(queued()).expect("encodes");
    let data = stored["data"].as_object_mut().expect("an object");
    assert!(data.remove("channel").is_some());
    let decoded: NotificationEvent = serde_json::from_value(stored).expect("decodes");
    assert_eq!(decoded, queued());
}

#[test]
fn failed_attempts_back_off_exponentially_then_give_up_after_four() {
    let mut history = vec![queued()];
    let expected_waits = [30, 60, 120];
    let mut at = t(0);
    for (index, wait) in expected_waits.into_iter().enumerate() {
        let attempt = u32::try_from(index + 1).expect("small");
        let next = crate::calendar::plus_secs(at, wait);
        let event = failed_attempt(attempt, Some(next), at);
        given::<Notification>(history.clone())
            .when(attempt_failed(true, false, at))
            .then([event.clone()]);
        history.push(event);
        at = next;
    }
    let notification = given::<Notification>(history)
        .when(attempt_failed(true, false, at))
        .then([
            failed_attempt(4, None, at),
            NotificationEvent::NotificationFailed {
                channel: Channel::Whatsapp,
                attempts: 4,
                error_code: "131000".to_owned(),
                at,
            },
        ])
        .expect("queued");
    assert_eq!(notification.status(), NotificationStatus::Failed);
    assert_eq!(notification.next_attempt_at(), None);
}

#[test]
fn rate_limited_attempts_back_off_longer() {
    given::<Notification>([queued()])
        .when(attempt_failed(false, true, t(0)))
        .then([NotificationEvent::NotificationAttemptFailed {
            channel: Channel::Whatsapp,
            attempt: 1,
            error_code: "130429".to_owned(),
            error_message: "provider said no".to_owned(),
            retryable: true,
            next_attempt_at: Some(t(300)),
            at: t(0),
        }]);
}

#[test]
fn a_permanent_error_fails_the_notification_at_once() {
    given::<Notification>([queued()])
        .when(attempt_failed(false, false, t(0)))
        .then([
            NotificationEvent::NotificationAttemptFailed {
                channel: Channel::Whatsapp,
                attempt: 1,
                error_code: "131000".to_owned(),
                error_message: "provider said no".to_owned(),
                retryable: false,
                next_attempt_at: None,
                at: t(0),
            },
            NotificationEvent::NotificationFailed {
                channel: Channel::Whatsapp,
                attempts: 1,
                error_code: "131000".to_owned(),
                at: t(0),
            },
        ]);
}

#[test]
fn a_sent_notification_records_the_provider_message_id_once() {
    let history = [queued(), failed_attempt(1, Some(t(30)), t(0))];
    let notification = given::<Notification>(history)
        .when(NotificationCommand::RecordSent {
            provider_message_id: "wamid.HBgM".to_owned(),
            at: t(5),
        })
        .then([sent(2)])
        .expect("queued");
    assert_eq!(notification.provider_message_id(), Some("wamid.HBgM"));
    given::<Notification>([queued(), sent(1)])
        .when(NotificationCommand::RecordSent {
            provider_message_id: "wamid.HBgM".to_owned(),
            at: t(6),
        })
        .then_error(NotificationError::AlreadySent);
    given::<Notification>([queued(), sent(1)])
        .when(attempt_failed(true, false, t(6)))
        .then_error(NotificationError::AlreadySent);
    assert!(NotificationError::AlreadySent.is_already_recorded());
}

#[test]
fn a_failed_notification_can_be_resent_with_a_fresh_budget() {
    let history = [
        queued(),
        failed_attempt(1, None, t(0)),
        NotificationEvent::NotificationFailed {
            channel: Channel::Whatsapp,
            attempts: 1,
            error_code: "131000".to_owned(),
            at: t(0),
        },
    ];
    given::<Notification>(history.clone())
        .when(attempt_failed(true, false, t(1)))
        .then_error(NotificationError::AlreadyFailed);
    let notification = given::<Notification>(history)
        .when(NotificationCommand::Resend { at: t(100) })
        .then([NotificationEvent::NotificationRequeued {
            channel: Channel::Whatsapp,
            attempt_limit: 4,
            at: t(100),
        }])
        .expect("queued");
    assert_eq!(notification.status(), NotificationStatus::Queued);
    assert_eq!(notification.attempts(), 0);
    assert!(notification.is_due(t(100)));
    given::<Notification>([queued()])
        .when(NotificationCommand::Resend { at: t(1) })
        .then_error(NotificationError::NotFailed {
            status: NotificationStatus::Queued,
        });
}

#[test]
fn nothing_but_queueing_is_accepted_first() {
    given::<Notification>([])
        .when(NotificationCommand::Resend { at: t(1) })
        .then_error(NotificationError::NotQueued);
}

#[test]
fn notification_types_serialise_in_capitals() {
    let types = [
        NotificationType::LowBalance,
        NotificationType::TxnUpdate,
        NotificationType::PayoutUpdate,
        NotificationType::AccountStatus,
    ];
    let names: Vec<String> = types
        .iter()
        .map(|kind| serde_json::to_string(kind).expect("serialises"))
        .collect();
    assert_eq!(
        names,
        [
            "\"LOW_BALANCE\"",
            "\"TXN_UPDATE\"",
            "\"PAYOUT_UPDATE\"",
            "\"ACCOUNT_STATUS\""
        ]
    );
}

#[test]
fn a_longer_retry_after_is_honoured_and_capped() {
    let secs = std::time::Duration::from_secs;
    assert_eq!(next_wait(1, true, None, Jitter::NONE), Some(secs(300)));
    assert_eq!(next_wait(1, true, Some(900), Jitter::NONE), Some(secs(900)));
    assert_eq!(next_wait(1, false, Some(10), Jitter::NONE), Some(secs(30)));
    assert_eq!(
        next_wait(1, true, Some(86_400), Jitter::NONE),
        Some(secs(3_600))
    );
    assert_eq!(next_wait(4, true, Some(900), Jitter::NONE), None);
}
