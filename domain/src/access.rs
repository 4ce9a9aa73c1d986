//! Who may change what: the roles of the people who run the business, and the changes each role
//! may make. Reading is open to every role; the admin API and the console both ask
//! [`Role::permits`] before a change, so hiding a button is never the only guard.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A person's role in the admin API and the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, people and keys included.
    Admin,
    /// Gateways, queues, resends and alerts; no keys, fees or payouts.
    Ops,
    /// Commission, payouts, settlements, reconciliation and statements.
    Finance,
    /// Reads everything and exports the audit trail; changes nothing.
    Auditor,
}

/// Every role, most powerful first.
pub const ROLES: [Role; 4] = [Role::Admin, Role::Ops, Role::Finance, Role::Auditor];

/// A kind of change to the business (reads need no action: every role reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Onboard a merchant or change its profile, fee, thresholds, checkout settings or status.
    ManageMerchants,
    /// Regenerate a merchant's API keys or rotate its webhook secrets.
    ManageKeys,
    /// Add, change, remove or test a merchant's webhook endpoints.
    ManageWebhookEndpoints,
    /// Add, change, toggle, reorder, recover, test or retire gateways.
    ManageGateways,
    /// Pause, resume, retry or drain a work queue.
    ControlQueues,
    /// Resend a WhatsApp message or a merchant webhook delivery.
    Resend,
    /// Acknowledge an ops alert.
    AcknowledgeAlerts,
    /// Rebuild a projection.
    RebuildProjections,
    /// Run payouts or reconciliation, or record a manual settlement.
    MovePayouts,
    /// Export the audit trail.
    ExportAudit,
    /// Invite people, change their roles, revoke their sessions and tokens.
    ManagePeople,
}

/// Every action, in declaration order.
pub const ACTIONS: [Action; 11] = [
    Action::ManageMerchants,
    Action::ManageKeys,
    Action::ManageWebhookEndpoints,
    Action::ManageGateways,
    Action::ControlQueues,
    Action::Resend,
    Action::AcknowledgeAlerts,
    Action::RebuildProjections,
    Action::MovePayouts,
    Action::ExportAudit,
    Action::ManagePeople,
];

impl Action {
    /// The action's snake_case name, as problem documents and the docs write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ManageMerchants => "manage_merchants",
            Action::ManageKeys => "manage_keys",
            Action::ManageWebhookEndpoints => "manage_webhook_endpoints",
            Action::ManageGateways => "manage_gateways",
            Action::ControlQueues => "control_queues",
            Action::Resend => "resend",
            Action::AcknowledgeAlerts => "acknowledge_alerts",
            Action::RebuildProjections => "rebuild_projections",
            Action::MovePayouts => "move_payouts",
            Action::ExportAudit => "export_audit",
            Action::ManagePeople => "manage_people",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Role {
    /// Whether someone in this role may make a change of this kind.
    pub fn permits(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            Role::Ops => matches!(
                action,
                ManageWebhookEndpoints
                    | ManageGateways
                    | ControlQueues
                    | Resend
                    | AcknowledgeAlerts
                    | RebuildProjections
            ),
            Role::Finance => matches!(action, MovePayouts | ExportAudit),
            Role::Auditor => matches!(action, ExportAudit),
        }
    }

    /// The role's name as written in tokens, settings and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ops => "ops",
            Role::Finance => "finance",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`ROLES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, ops, finance or auditor")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ROLES
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| UnknownRole(text.chars().take(32).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_may_do_everything_and_auditor_only_export() {
        let all = ACTIONS;
        assert!(all.iter().all(|&a| Role::Admin.permits(a)));
        let auditor: Vec<_> = all
            .into_iter()
            .filter(|&a| Role::Auditor.permits(a))
            .collect();
        assert_eq!(auditor, [Action::ExportAudit]);
    }

    #[test]
    fn ops_has_no_keys_fees_or_payouts_and_finance_no_gateways() {
        for action in [
            Action::ManageKeys,
            Action::ManageMerchants,
            Action::MovePayouts,
        ] {
            assert!(!Role::Ops.permits(action), "{action:?}");
        }
        assert!(Role::Ops.permits(Action::ManageGateways));
        assert!(Role::Finance.permits(Action::MovePayouts));
        assert!(!Role::Finance.permits(Action::ManageGateways));
        assert!(!Role::Finance.permits(Action::ManagePeople));
    }

    #[test]
    fn action_names_match_their_serde_names() {
        for action in ACTIONS {
            assert_eq!(
                serde_json::to_value(action).expect("serialises"),
                serde_json::Value::from(action.as_str())
            );
        }
    }

    #[test]
    fn role_names_round_trip_and_unknown_names_are_refused() {
        for role in ROLES {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }
}
