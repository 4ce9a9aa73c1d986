//! What each provider's credentials look like, checked when an admin registers or corrects a
//! gateway: a credential of the wrong shape is refused there, field by field, rather than
//! failing at the first PSP call with a payment waiting. The checks are about form only; whether
//! the PSP accepts the credentials is `POST /admin/gateways/{id}/test`'s question.

use super::PspCredentials;
use crate::merchant_webhook::WebhookSecret;
use crate::secrets::{Secret, WEBHOOK_SECRET_PREFIX};

/// Longest credential value accepted, in bytes.
pub const MAX_CREDENTIAL_BYTES: usize = 256;

/// One credential field of the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialProblem {
    /// The field, e.g. `webhook_secret`.
    pub field: &'static str,
    /// What is wrong with it (never its value).
    pub problem: String,
}

impl PspCredentials {
    /// Every field of these credentials whose shape the provider would refuse; empty when all
    /// are well-formed.
    pub fn shape_problems(&self) -> Vec<CredentialProblem> {
        let mut problems = Problems(Vec::new());
        match self {
            Self::Razorpay {
                key_id,
                key_secret,
                webhook_secret,
            } => {
                if problems.token("key_id", key_id)
                    && !(key_id.starts_with("rzp_test_") || key_id.starts_with("rzp_live_"))
                {
                    problems.add("key_id", "must start with rzp_test_ or rzp_live_");
                }
                problems.secret("key_secret", key_secret);
                problems.secret("webhook_secret", webhook_secret);
            }
            Self::Payu { key, salt } => {
                problems.token("key", key);
                problems.secret("salt", salt);
            }
            Self::Cashfree {
                client_id,
                client_secret,
            } => {
                problems.token("client_id", client_id);
                problems.secret("client_secret", client_secret);
            }
            Self::Phonepe {
                merchant_id,
                salt_key,
                salt_index,
            } => {
                problems.token("merchant_id", merchant_id);
                problems.secret("salt_key", salt_key);
                if *salt_index == 0 {
                    problems.add("salt_index", "must be at least 1");
                }
            }
            Self::Sandbox { webhook_secret } => sandbox_secret(&mut problems, webhook_secret),
        }
        problems.0
    }
}

/// The sandbox signs with a Standard Webhooks secret and takes it as its account key.
fn sandbox_secret(problems: &mut Problems, secret: &Secret) {
    let field = "webhook_secret";
    if !problems.secret(field, secret) {
        return;
    }
    let text = secret.expose_str().unwrap_or_default();
    if !text.starts_with(WEBHOOK_SECRET_PREFIX) || WebhookSecret::parse(text).is_err() {
        problems.add(
            field,
            "must be whsec_ followed by base64, e.g. whsec_$(openssl rand -base64 24)",
        );
    }
}

struct Problems(Vec<CredentialProblem>);

impl Problems {
    fn add(&mut self, field: &'static str, problem: &str) {
        self.0.push(CredentialProblem {
            field,
            problem: problem.to_owned(),
        });
    }

    /// Checks a value PSPs issue as printable ASCII; answers whether it is well-formed.
    fn token(&mut self, field: &'static str, value: &str) -> bool {
        let problem = if value.is_empty() {
            "must not be empty"
        } else if value.len() > MAX_CREDENTIAL_BYTES {
            "must be at most 256 characters"
        } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
            "may only contain printable ASCII characters, without spaces"
        } else {
            return true;
        };
        self.add(field, problem);
        false
    }

    fn secret(&mut self, field: &'static str, secret: &Secret) -> bool {
        match secret.expose_str() {
            Ok(text) => self.token(field, text),
            Err(_) => {
                self.add(field, "must be text");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(credentials: &PspCredentials) -> Vec<&'static str> {
        credentials
            .shape_problems()
            .iter()
            .map(|p| p.field)
            .collect()
    }

    #[test]
    fn well_formed_credentials_pass() {
        let good = [
            PspCredentials::Razorpay {
                key_id: "rzp_test_1DP5mmOlF5G5ag".into(),
                key_secret: Secret::from("thisisasecret"),
                webhook_secret: Secret::from("whsec-of-my-choosing"),
            },
            PspCredentials::Payu {
                key: "gtKFFx".into(),
                salt: Secret::from("4R38IvwiV57FwVpsgOvTXBdLE4tHUXFW"),
            },
            PspCredentials::Cashfree {
                client_id: "TEST10123".into(),
                client_secret: Secret::from("cfsk_ma_test_abc"),
            },
            PspCredentials::Phonepe {
                merchant_id: "PGTESTPAYUAT".into(),
                salt_key: Secret::from("099eb0cd-02cf-4e2a-8aca-3e6c6aff0399"),
                salt_index: 1,
            },
            PspCredentials::Sandbox {
                webhook_secret: Secret::from("whsec_c2VjcmV0"),
            },
        ];
        for credentials in &good {
            assert_eq!(credentials.shape_problems(), vec![], "{credentials:?}");
        }
    }

    #[test]
    fn every_malformed_field_is_named() {
        let razorpay = PspCredentials::Razorpay {
            key_id: "key_1".into(),
            key_secret: Secret::from(""),
            webhook_secret: Secret::from("with space"),
        };
        assert_eq!(
            fields(&razorpay),
            vec!["key_id", "key_secret", "webhook_secret"]
        );
        let phonepe = PspCredentials::Phonepe {
            merchant_id: "M".repeat(300),
            salt_key: Secret::from("salt"),
            salt_index: 0,
        };
        assert_eq!(fields(&phonepe), vec!["merchant_id", "salt_index"]);
        for secret in ["c2VjcmV0", "whsec_", "whsec_not base64", "whsec_x"] {
            let sandbox = PspCredentials::Sandbox {
                webhook_secret: Secret::from(secret),
            };
            assert_eq!(fields(&sandbox), vec!["webhook_secret"], "{secret}");
        }
        let problems = PspCredentials::Sandbox {
            webhook_secret: Secret::from("plain"),
        }
        .shape_problems();
        assert!(problems[0].problem.contains("whsec_"));
        assert!(!problems[0].problem.contains("plain"));
    }
}
