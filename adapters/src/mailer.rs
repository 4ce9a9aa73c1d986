//! Email for the whole product (sign-in links, alerts, invoices): plain-text messages sent over
//! SMTP with STARTTLS required, through `lettre`.
//!
//! Plain SMTP without TLS is accepted only towards a loopback host (a local relay, or the
//! loopback server tests run, [`loopback`]), so a password never crosses a network in clear.
//! The password is a [`Secret`]: it never shows in `Debug` output or logs.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::secrets::Secret;

#[cfg(any(test, feature = "testing"))]
pub mod loopback;

/// The default SMTP submission port (STARTTLS).
pub const DEFAULT_SMTP_PORT: u16 = 587;
/// How long one SMTP command may take before the send fails.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest subject accepted, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// The longest body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Where and as whom mail is sent (`SMTP_HOST`, `SMTP_PORT`, `SMTP_USERNAME`, `SMTP_PASSWORD`,
/// `SMTP_FROM`, `SMTP_STARTTLS`).
#[derive(Debug, Clone)]
pub struct MailerConfig {
    /// The SMTP server's host name.
    pub host: String,
    /// Its port (587 for submission with STARTTLS).
    pub port: u16,
    /// The user name, when the server wants one.
    pub username: Option<String>,
    /// The password, with the user name.
    pub password: Option<Secret>,
    /// The sender, e.g. `LightSpeed <ops@example.com>`.
    pub from: String,
    /// Whether STARTTLS is required (only a loopback host may go without).
    pub starttls: bool,
}

/// Why mail could not be configured or sent. Never carries the password.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The settings do not make a mailer.
    #[error("mail settings: {0}")]
    Config(String),
    /// The message is not one we send (an address, a subject or body too long).
    #[error("message: {0}")]
    Message(String),
    /// The SMTP server refused or could not be reached.
    #[error("smtp: {0}")]
    Smtp(String),
}

/// One plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject, one line.
    pub subject: String,
    /// The body, plain text.
    pub text: String,
}

/// A file sent with a message (an invoice's PDF).
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The name it is saved as, e.g. `LS-2627-000042.pdf`: letters, digits, `.`, `-`, `_`.
    pub file_name: String,
    /// Its media type, e.g. `application/pdf`.
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The longest receipt [`Mailer::send_for_receipt`] answers, in characters.
pub const MAX_RECEIPT_CHARS: usize = 200;

/// The largest attachment accepted, in bytes.
pub const MAX_ATTACHMENT_BYTES: usize = 5 * 1024 * 1024;

/// Sends mail through the configured SMTP server; cheap to clone (connections are pooled).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `config`: STARTTLS required unless the host is loopback and STARTTLS is
    /// switched off. Made and dropped inside a Tokio runtime (its connection pool runs there).
    pub fn new(config: &MailerConfig) -> Result<Self, MailerError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| MailerError::Config(format!("SMTP_FROM: {e}")))?;
        let builder = if config.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                .map_err(|e| MailerError::Config(format!("SMTP_HOST: {e}")))?
        } else if is_loopback(&config.host) {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
        } else {
            return Err(MailerError::Config(
                "SMTP_STARTTLS may be off only for a loopback SMTP_HOST".into(),
            ));
        };
        let mut builder = builder.port(config.port).timeout(Some(SMTP_TIMEOUT));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            let password = String::from_utf8_lossy(password.expose()).into_owned();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends `mail`; answers once the server accepted it.
    pub async fn send(&self, mail: &Mail) -> Result<(), MailerError> {
        self.send_for_receipt(mail).await.map(drop)
    }

    /// Sends `mail`; answers the server's acceptance, e.g. `250 2.0.0 Ok: queued as 4F2A1`
    /// (printable ASCII, at most [`MAX_RECEIPT_CHARS`] characters), to keep as its receipt.
    pub async fn send_for_receipt(&self, mail: &Mail) -> Result<String, MailerError> {
        let message = self.message(mail)?;
        let response = self
            .transport
            .send(message)
            .await
            .map_err(|e| MailerError::Smtp(e.to_string()))?;
        let text: Vec<&str> = response.message().collect();
        Ok(receipt(&response.code().to_string(), &text.join(" ")))
    }

    /// Sends `mail` with `attachments` (a `multipart/mixed` message: the text, then each file in
    /// base64); answers once the server accepted it.
    pub async fn send_with_attachments(
        &self,
        mail: &Mail,
        attachments: &[Attachment],
    ) -> Result<(), MailerError> {
        let message = self.message_with_attachments(mail, attachments)?;
        self.transport
            .send(message)
            .await
            .map_err(|e| MailerError::Smtp(e.to_string()))?;
        Ok(())
    }

    fn message_with_attachments(
        &self,
        mail: &Mail,
        attachments: &[Attachment],
    ) -> Result<Message, MailerError> {
        use lettre::message::{MultiPart, SinglePart};
        let builder = self.headers(mail)?;
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(mail.text.clone()));
        for attachment in attachments {
            let named = !attachment.file_name.is_empty()
                && attachment.file_name.len() <= 100
                && attachment
                    .file_name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !named {
                return Err(MailerError::Message(
                    "an attachment's name is 1 to 100 letters, digits, dots, hyphens or underscores"
                        .into(),
                ));
            }
            if attachment.bytes.len() > MAX_ATTACHMENT_BYTES {
                return Err(MailerError::Message(format!(
                    "an attachment must be at most {MAX_ATTACHMENT_BYTES} bytes"
                )));
            }
            let content_type = ContentType::parse(&attachment.content_type)
                .map_err(|e| MailerError::Message(format!("attachment type: {e}")))?;
            parts = parts.singlepart(
                lettre::message::Attachment::new(attachment.file_name.clone())
                    .body(attachment.bytes.clone(), content_type),
            );
        }
        builder
            .multipart(parts)
            .map_err(|e| MailerError::Message(e.to_string()))
    }

    /// The sender, recipient and subject of `mail`, checked, and its body's size.
    fn headers(&self, mail: &Mail) -> Result<lettre::message::MessageBuilder, MailerError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| MailerError::Message(format!("to: {e}")))?;
        let one_line = !mail.subject.chars().any(char::is_control);
        if !one_line || mail.subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(MailerError::Message(format!(
                "the subject must be one line of at most {MAX_SUBJECT_CHARS} characters"
            )));
        }
        if mail.text.len() > MAX_BODY_BYTES {
            return Err(MailerError::Message(format!(
                "the body must be at most {MAX_BODY_BYTES} bytes"
            )));
        }
        Ok(Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone()))
    }

    fn message(&self, mail: &Mail) -> Result<Message, MailerError> {
        self.headers(mail)?
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone())
            .map_err(|e| MailerError::Message(e.to_string()))
    }
}

/// The server's code and words, cut to printable ASCII of at most [`MAX_RECEIPT_CHARS`].
fn receipt(code: &str, text: &str) -> String {
    format!("{code} {text}")
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_RECEIPT_CHARS)
        .collect()
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopback::LoopbackSmtp;

    fn config(port: u16) -> MailerConfig {
        MailerConfig {
            host: "127.0.0.1".into(),
            port,
            username: Some("mailer".into()),
            password: Some(Secret::from("smtp-password")),
            from: "LightSpeed <ops@lightspeed.example>".into(),
            starttls: false,
        }
    }

    #[tokio::test]
    async fn a_message_arrives_with_its_recipient_sender_subject_and_body() {
        let mut server = LoopbackSmtp::start().await;
        let mailer = Mailer::new(&config(server.port())).expect("mailer");
        let mail = Mail {
            to: "Asha@Example.com".into(),
            subject: "Your sign-in link".into(),
            text: "Open https://console.example/sign-in/abc to sign in.\n.leading dot".into(),
        };
        let receipt = mailer.send_for_receipt(&mail).await.expect("sent");
        assert_eq!(receipt, "250 2.0.0 queued", "the server's acceptance");
        let received = server.next().await;
        assert_eq!(received.from, "ops@lightspeed.example");
        assert_eq!(received.to, ["Asha@Example.com"]);
        assert!(
            received.data.contains("Subject: Your sign-in link"),
            "{}",
            received.data
        );
        assert!(
            received.data.contains("To: Asha@Example.com"),
            "{}",
            received.data
        );
        assert!(
            received
                .data
                .contains("Open https://console.example/sign-in/abc to sign in.\r\n.leading dot"),
            "{}",
            received.data
        );
        assert_eq!(
            received.auth.as_deref(),
            Some("mailer"),
            "signed in as the user"
        );
    }

    #[tokio::test]
    async fn an_attachment_arrives_as_a_named_base64_part_beside_the_text() {
        use base64::Engine;
        let mut server = LoopbackSmtp::start().await;
        let mailer = Mailer::new(&config(server.port())).expect("mailer");
        let mail = Mail {
            to: "billing@asha.example".into(),
            subject: "Invoice LS-2627-000001".into(),
            text: "Your invoice is attached.".into(),
        };
        let bytes: Vec<u8> = (0..=255u8).cycle().take(3_000).collect();
        let attachment = Attachment {
            file_name: "LS-2627-000001.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: bytes.clone(),
        };
        mailer
            .send_with_attachments(&mail, std::slice::from_ref(&attachment))
            .await
            .expect("sent");
        let received = server.next().await;
        assert_eq!(received.to, ["billing@asha.example"]);
        let data = &received.data;
        assert!(data.contains("multipart/mixed"), "{data}");
        assert!(data.contains("Your invoice is attached."), "{data}");
        let (_, part) = data
            .split_once("filename=\"LS-2627-000001.pdf\"")
            .expect("the attachment's part");
        assert!(data.contains("Content-Type: application/pdf"), "{data}");
        let body: String = part
            .split("\r\n\r\n")
            .nth(1)
            .expect("part body")
            .lines()
            .take_while(|line| !line.starts_with("--"))
            .collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .expect("base64");
        assert_eq!(decoded, bytes);
        for bad in ["../etc/passwd", "", "a b.pdf", "x\r\n.pdf"] {
            let named = Attachment {
                file_name: bad.into(),
                ..attachment.clone()
            };
            assert!(
                matches!(
                    mailer.message_with_attachments(&mail, &[named]),
                    Err(MailerError::Message(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn plain_smtp_only_to_loopback_and_bad_messages_are_refused() {
        let mut remote = config(25);
        remote.host = "smtp.example.com".into();
        assert!(matches!(Mailer::new(&remote), Err(MailerError::Config(_))));
        remote.starttls = true;
        assert!(Mailer::new(&remote).is_ok());
        let mailer = Mailer::new(&config(25)).expect("mailer");
        for mail in [
            Mail {
                to: "not an address".into(),
                subject: "s".into(),
                text: "t".into(),
            },
            Mail {
                to: "a@example.com".into(),
                subject: "two\r\nBcc: eve@example.com".into(),
                text: "t".into(),
            },
        ] {
            assert!(
                matches!(mailer.message(&mail), Err(MailerError::Message(_))),
                "{mail:?}"
            );
        }
        let debug = format!("{:?} {:?}", config(25), mailer);
        assert!(!debug.contains("smtp-password"), "{debug}");
    }
}
